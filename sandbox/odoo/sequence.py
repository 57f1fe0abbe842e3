"""``ir.sequence``: document numbers (S00001, P00001, WH/OUT/00001).

A ``standard`` sequence is a PostgreSQL sequence in Odoo: a number taken by a transaction that
rolls back is lost (gaps), so here too it is not undone. A ``no_gap`` sequence is a row update
and rolls back with the transaction.
"""
from __future__ import annotations

from typing import Any, ClassVar

from .commands import as_ids
from .fields import Field
from .orm import BaseModel, Env, api_model, api_records


def interpolate(text: str | None, now: str) -> str:
    """Expand ``%(year)s``, ``%(y)s``, ``%(month)s``, ``%(day)s`` (and ``range_`` variants) at ``now``."""
    if not text:
        return ""
    year, month, day = now[:4], now[5:7], now[8:10]
    values = {"year": year, "y": year[2:], "month": month, "day": day,
              "h24": now[11:13], "min": now[14:16], "sec": now[17:19]}
    values.update({f"range_{k}": v for k, v in list(values.items())})
    return text % values


class IrSequence(BaseModel):
    """``ir.sequence`` with ``next_by_code`` / ``next_by_id``."""

    _name = "ir.sequence"
    _description = "Sequence"
    _order = "name"
    _fields: ClassVar[dict[str, Field]] = {
        "name": Field("char", "Name", required=True),
        "code": Field("char", "Sequence Code", index=True),
        "implementation": Field("selection", "Implementation", required=True, default="standard",
                                selection=(("standard", "Standard"), ("no_gap", "No gap"))),
        "active": Field("boolean", "Active", default=True),
        "prefix": Field("char", "Prefix"),
        "suffix": Field("char", "Suffix"),
        "number_next": Field("integer", "Next Number", required=True, default=1),
        "number_increment": Field("integer", "Step", required=True, default=1),
        "padding": Field("integer", "Sequence Size", required=True, default=0),
    }

    def next_value(self, env: Env, rid: int) -> str:
        """Take the next number of sequence ``rid`` and format it."""
        rec = self.records[rid]
        number = rec.get("number_next") or 1
        step = rec.get("number_increment") or 1
        # standard: consumed even if the call fails later, like nextval() in PostgreSQL.
        self._update(env if rec.get("implementation") == "no_gap" else None, rid, {"number_next": number + step})
        padded = f"{number:0{rec.get('padding') or 0}d}"
        return f"{interpolate(rec.get('prefix'), env.now)}{padded}{interpolate(rec.get('suffix'), env.now)}"

    def next_for_code(self, env: Env, code: str) -> str | None:
        """The next number of the active sequence with ``code`` (lowest id first), or None."""
        for rid in sorted(self._hash["code"].get(code, ())):
            if self.records[rid].get("active", True):
                return self.next_value(env, rid)
        return None

    @api_model
    def next_by_code(self, env: Env, sequence_code: Any, sequence_date: Any = None) -> str | bool:
        """``next_by_code(code)`` -> the formatted next number, or false when no sequence has it."""
        return self.next_for_code(env, sequence_code) or False

    @api_records
    def next_by_id(self, env: Env, ids: Any, sequence_date: Any = None) -> str | bool:
        """``next_by_id()`` on one sequence record."""
        ids = as_ids(ids)
        self._check_exist(env, ids)
        return self.next_value(env, ids[0]) if ids else False
