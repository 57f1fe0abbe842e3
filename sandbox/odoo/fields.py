"""Field definitions of the simulated Odoo ORM: types, value conversion in and out, fields_get.

Stored ("cache") values are plain Python: ``str``/``None`` for char-like fields and dates, ``int``
and ``float`` for numbers, ``bool``, an ``int`` id or ``None`` for a many2one, a list of ids for a
many2many. Datetimes are stored as ``"YYYY-MM-DD HH:MM:SS.ffffff"`` strings, which sort correctly
as text: PostgreSQL keeps microseconds in timestamp columns, but the wire format has seconds only.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
WIRE_DATETIME_LENGTH = 19

CHAR_TYPES = frozenset({"char", "text", "html"})
X2MANY_TYPES = frozenset({"one2many", "many2many"})
RELATIONAL_TYPES = frozenset({"many2one", "one2many", "many2many"})
# The ttype values ir.model.fields accepts for custom (x_) fields in this simulator.
CUSTOM_FIELD_TYPES = ("char", "text", "html", "integer", "float", "monetary", "boolean", "date", "datetime",
                      "many2one")
ALL_TTYPES = (
    ("binary", "binary"), ("boolean", "boolean"), ("char", "char"), ("date", "date"),
    ("datetime", "datetime"), ("float", "float"), ("html", "html"), ("integer", "integer"),
    ("json", "json"), ("many2many", "many2many"), ("many2one", "many2one"),
    ("many2one_reference", "many2one_reference"), ("monetary", "monetary"), ("one2many", "one2many"),
    ("properties", "properties"), ("properties_definition", "properties_definition"),
    ("reference", "reference"), ("selection", "selection"), ("text", "text"),
)


def format_timestamp(value: datetime) -> str:
    """A naive-UTC datetime as the stored text ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return f"{value:%Y-%m-%d %H:%M:%S.%f}"


def to_wire_datetime(stored: str | None) -> str | bool:
    """A stored datetime as Odoo sends it: ``YYYY-MM-DD HH:MM:SS`` (UTC, seconds), or false."""
    return stored[:WIRE_DATETIME_LENGTH] if stored else False


def parse_datetime_value(value: Any) -> str:
    """A datetime written through the API, as Odoo's ``Datetime.to_datetime`` accepts it.

    Like Odoo, accepts ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM`` and ``YYYY-MM-DD HH:MM:SS`` and raises
    ``ValueError`` for anything else (including ISO ``T`` separators and microseconds).
    """
    parsed = datetime.strptime(value, DATETIME_FORMAT[: len(value) - 2])
    return format_timestamp(parsed)


def parse_datetime_operand(value: Any, operator: str) -> str:
    """A datetime in a domain, normalised to the stored text so that comparisons are textual.

    PostgreSQL casts the operand, so sub-second text is accepted here; a bare date means the start
    of the day, or its last second for ``>`` and ``<=`` (as Odoo's expression builder does).
    """
    if isinstance(value, datetime):
        return format_timestamp(value.replace(tzinfo=None))
    if not isinstance(value, str):
        raise ValueError(f"Invalid datetime value in domain: {value!r}")  # noqa: TRY004 - Odoo reports ValueError
    text = value.strip()
    if len(text) == 10:
        text += " 23:59:59" if operator in (">", "<=") else " 00:00:00"
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return format_timestamp(datetime.strptime(text, fmt))
        except ValueError:
            continue
    raise ValueError(f'invalid input syntax for type timestamp: "{value}"')


Default = Callable[[], Any]


@dataclass
class Field:
    """One field of a model: its type and the attributes the ORM and ``fields_get`` need.

    ``compute`` marks a non-stored computed field: ``compute(model, record) -> value``. Writes to it
    through the API are ignored (no inverse), as Odoo does; direct helpers may still set the raw
    value it reads from (e.g. ``credit``). ``computed`` marks a stored computed field (amounts,
    states): the model maintains it, API writes to it are ignored. ``inherited`` names the
    many2one through which an ``_inherits`` child reads and writes a parent's field.
    ``o2m_domain`` keeps only the comodel records it accepts in a one2many.
    """

    type: str
    string: str = ""
    required: bool = False
    default: Any = None
    relation: str | None = None
    inverse_name: str | None = None
    selection: tuple[tuple[str, str], ...] | None = None
    compute: Callable[[Any, dict[str, Any]], Any] | None = None
    index: bool = False
    readonly: bool = False
    ondelete: str = "set null"
    manual: bool = False
    help: str = ""
    computed: bool = False
    inherited: str | None = None
    o2m_domain: Callable[[dict[str, Any]], bool] | None = None
    name: str = ""
    model_name: str = ""

    @property
    def store(self) -> bool:
        """Whether the value lives in the record (one2many values live on the other side)."""
        return self.compute is None and self.type != "one2many" and self.inherited is None

    @property
    def is_x2many(self) -> bool:
        """Whether the field holds a list of ids (one2many, many2many)."""
        return self.type in X2MANY_TYPES

    def bind(self, model_name: str, name: str) -> Field:
        """A copy of this definition attached to ``model_name.name`` (models own their fields)."""
        string = self.string or name.replace("_", " ").title()
        return dataclasses.replace(self, name=name, model_name=model_name, string=string)

    def default_value(self) -> Any:
        """The default for a new record, or ``None`` when the field has none."""
        return self.default() if callable(self.default) else self.default

    def __str__(self) -> str:
        return f"{self.model_name}.{self.name}"

    # ------------------------------------------------------------------ values in
    def convert_to_cache(self, value: Any) -> Any:
        """Convert a value received through the API to the stored form; raise like Odoo on bad input."""
        t = self.type
        if t in CHAR_TYPES:
            if value is None or value is False:
                return None
            return value if isinstance(value, str) else str(value)
        if t == "boolean":
            return bool(value)
        if t == "integer" or t == "many2one_reference":
            return int(value or 0)
        if t in ("float", "monetary"):
            return float(value or 0.0)
        if t == "selection":
            if value is None or value is False:
                return None
            if self.selection is not None and value not in {k for k, _ in self.selection}:
                raise ValueError(f"Wrong value for {self}: {value!r}")
            return value
        if t == "date":
            if value is None or value is False:
                return None
            return datetime.strptime(value[:10], DATE_FORMAT).date().isoformat()
        if t == "datetime":
            if value is None or value is False:
                return None
            return parse_datetime_value(value)
        if t == "many2one":
            if value is None or value is False:
                return None
            # Odoo accepts an int id (or a (id, name) tuple, which JSON cannot express).
            if type(value) is int:
                return value
            raise ValueError(f"Wrong value for {self}: {value!r}")
        raise TypeError(f"{self} of type {t} cannot be converted directly")

    # ------------------------------------------------------------------ values out
    def convert_to_read_simple(self, raw: Any) -> Any:
        """The wire value of a non-relational field (relational ones need the registry)."""
        t = self.type
        if t == "datetime":
            return raw[:WIRE_DATETIME_LENGTH] if raw else False
        if t == "boolean":
            return bool(raw)
        if t == "integer" or t == "many2one_reference":
            return raw or 0
        if t in ("float", "monetary"):
            return float(raw or 0.0)
        return False if raw is None else raw

    def empty_value(self) -> Any:
        """What a record reads when the value was never set (sparse storage)."""
        t = self.type
        if t == "boolean":
            return False
        if t == "integer" or t == "many2one_reference":
            return 0
        if t in ("float", "monetary"):
            return 0.0
        if t == "many2many":
            return []
        return None

    def describe(self) -> dict[str, Any]:
        """The full ``fields_get`` description of this field."""
        d: dict[str, Any] = {
            "type": self.type,
            "string": self.string,
            "name": self.name,
            "required": self.required,
            "readonly": self.readonly or self.compute is not None or self.computed,
            "store": self.store,
            "searchable": True,
            "sortable": self.store and not self.is_x2many,
            "groupable": self.store and not self.is_x2many,
            "manual": self.manual,
            "company_dependent": False,
            "change_default": False,
            "exportable": True,
            "depends": [],
        }
        if self.help:
            d["help"] = self.help
        if self.relation:
            d["relation"] = self.relation
            d["domain"] = []
            d["context"] = {}
        if self.type == "one2many" and self.inverse_name:
            d["relation_field"] = self.inverse_name
        if self.selection is not None:
            d["selection"] = [[k, label] for k, label in self.selection]
        if self.type in CHAR_TYPES:
            d["translate"] = False
            d["trim"] = self.type == "char"
        return d
