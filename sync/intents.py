"""Write intents: recovering from a crash between a write and the commit of its batch.

Before a batch's API calls the pipeline records, per record, what both sides will hold once the
write lands (the link's next base) and which fields it sends to each side; the batch's commit
deletes them with the links. An intent found on a later pass means the process died in between:
the side it wrote may hold Concord's own values, which are neither a user's edit nor in the link.
:func:`recovered_base` gives the merge the base the commit would have stored, for the writes that
landed, so a user's later edit on either side still wins per the policy.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sync.merge import _key
from sync.store import WriteIntent

ROLES = ("crm", "erp")


def make_intent(entity: str, source: str, source_id: str, target_id: str | None,
                base: dict[str, Any], written: Mapping[str, Iterable[str]]) -> WriteIntent:
    """The intent of one record's write; ``target_id`` None: the target is created, keyed by ``source_id``."""
    ids = {source: source_id, _other(source): target_id}
    return WriteIntent(entity=entity, source=source, crm_id=ids["crm"], erp_id=ids["erp"],  # type: ignore[arg-type]
                       base=base, written={r: sorted(written.get(r, ())) for r in ROLES},
                       is_create=target_id is None)


def belongs(intent: WriteIntent, ids: Mapping[str, str | None]) -> bool:
    """Whether ``intent`` is about the record pair ``ids`` (role -> id, None when not known yet)."""
    named = {"crm": intent.crm_id, "erp": intent.erp_id}
    if not any(named[r] is not None and named[r] == ids.get(r) for r in ROLES):
        return False
    # A pair the intent names on both sides must be this one (a link superseded since is another pair).
    return all(named[r] is None or ids.get(r) is None or named[r] == ids[r] for r in ROLES)


def landed(intent: WriteIntent, role: str, current: Mapping[str, Any] | None, key: str | None) -> bool:
    """Whether the intent's write to ``role`` reached it, judged by that side's current content.

    A create landed when the record exists and (if the side shows its key) carries the source's id;
    an update when one of the fields it sent holds the value sent (a record's write is atomic, so
    another field differing is a user's edit made since).
    """
    fields = intent.written.get(role) or []
    if not fields or current is None:
        return False
    if intent.is_create and role != intent.source:
        source_id = intent.crm_id if intent.source == "crm" else intent.erp_id
        return key is None or key == source_id
    sent = intent.base.get(role) or {}
    return any(f in current and f in sent and _key(current[f]) == _key(sent[f]) for f in fields)


def recovered_base(link_base: Mapping[str, Any] | None, intents: Sequence[WriteIntent],
                   current: Mapping[str, Mapping[str, Any] | None],
                   keys: Mapping[str, str | None]) -> dict[str, Any] | None:
    """The merge base once the intents' writes that landed are counted (oldest intent first).

    A field takes the intent's values on both sides when every side it was sent to got it (a field
    sent nowhere was agreed on already); otherwise it keeps the link's base. An intent that landed
    nowhere is ignored: its batch never reached the products.
    """
    base: dict[str, Any] | None = None
    if link_base is not None:
        base = {r: dict(link_base.get(r) or {}) for r in ROLES}
    for intent in intents:
        arrived = {r: landed(intent, r, current.get(r), keys.get(r)) for r in ROLES}
        if not any(arrived.values()):
            continue
        if base is None:
            base = {r: {} for r in ROLES}
        names = set().union(*((intent.base.get(r) or {}).keys() for r in ROLES))
        for name in names:
            senders = [r for r in ROLES if name in (intent.written.get(r) or [])]
            if not all(arrived[r] for r in senders):
                continue
            for r in ROLES:
                side = intent.base.get(r) or {}
                if name in side:
                    base[r][name] = side[name]
    return base


def _other(role: str) -> str:
    return "erp" if role == "crm" else "crm"
