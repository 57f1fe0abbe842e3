"""Associations v4: batch reads with per-record paging, and the choice of a primary record.

``POST /crm/v4/associations/{from}/{to}/batch/read`` takes up to 100 ``{id}`` inputs and answers
one result per record that has associations; a result carries ``paging.next.after`` when the
record has more, fetched by sending ``{id, after}`` again. A record without any answers a 207
``OBJECT_NOT_FOUND`` error (``crm.associations.NO_ASSOCIATIONS_FOUND``): that means "none".
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from connectors.base import RetryableError, id_sort_key
from connectors.hubspot.errors import error_message

log = structlog.get_logger("concord.hubspot.associations")

# HUBSPOT_DEFINED "Primary" type ids (notes §1.9): deal->company 5, company->deal 6,
# contact->company 1, company->contact 2. Any type labelled "Primary" counts too.
PRIMARY_TYPE_IDS = frozenset({1, 2, 5, 6})
MAX_ROUNDS = 100_000  # a guard against a server that never stops paging

Post = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class AssociationType:
    """One ``AssociationSpecWithLabel`` of a link."""

    category: str
    type_id: int
    label: str | None

    @property
    def primary(self) -> bool:
        """A HubSpot-defined "Primary" association."""
        return self.category == "HUBSPOT_DEFINED" and (
            self.type_id in PRIMARY_TYPE_IDS or (self.label or "").casefold() == "primary")

    @property
    def unlabeled(self) -> bool:
        """The HubSpot-defined default association every linked pair has."""
        return self.category == "HUBSPOT_DEFINED" and not self.label and self.type_id not in PRIMARY_TYPE_IDS


@dataclass(frozen=True)
class Link:
    """One associated record and the association types that link it."""

    to_id: str
    types: tuple[AssociationType, ...]


def primary_id(links: Sequence[Link]) -> str | None:
    """The primary associated record, else the first (lowest id) unlabeled one, else None."""
    ordered = sorted(links, key=lambda link: id_sort_key(link.to_id))
    for link in ordered:
        if any(t.primary for t in link.types):
            return link.to_id
    for link in ordered:
        if any(t.unlabeled for t in link.types):
            return link.to_id
    return None


class AssociationReader:
    """Reads the associations of many records of one type to one other type, batched."""

    def __init__(self, post: Post, batch_size: int) -> None:
        self.post = post
        self.batch_size = batch_size

    def read(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[Link]]:
        """{from id: links} for every id (an empty list when it has none), following paging."""
        out: dict[str, list[Link]] = {i: [] for i in ids}
        path = f"/crm/v4/associations/{from_type}/{to_type}/batch/read"
        pending: list[dict[str, str]] = [{"id": i} for i in dict.fromkeys(ids)]
        rounds = 0
        while pending:
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise RetryableError(f"hubspot: {from_type}->{to_type} associations kept paging", system="hubspot")
            follow: list[dict[str, str]] = []
            for start in range(0, len(pending), self.batch_size):
                chunk = pending[start:start + self.batch_size]
                follow.extend(self._read_chunk(path, chunk, out))
            pending = follow
        for links in out.values():
            links.sort(key=lambda link: id_sort_key(link.to_id))
        log.debug("hubspot.associations.read", from_type=from_type, to_type=to_type, records=len(out),
                  links=sum(len(v) for v in out.values()))
        return out

    def _read_chunk(self, path: str, chunk: list[dict[str, str]],
                    out: dict[str, list[Link]]) -> list[dict[str, str]]:
        payload = self.post(path, {"inputs": chunk})
        asked = {item["id"]: item.get("after") for item in chunk}
        follow: list[dict[str, str]] = []
        for result in payload.get("results") or []:
            from_id = str((result.get("from") or {}).get("id", ""))
            if from_id not in out:
                continue
            seen = {link.to_id for link in out[from_id]}
            for item in result.get("to") or []:
                link = _link(item)
                if link.to_id not in seen:
                    seen.add(link.to_id)
                    out[from_id].append(link)
            after = (((result.get("paging") or {}).get("next") or {}).get("after"))
            if after in (None, ""):
                continue
            if str(after) == asked.get(from_id):
                raise RetryableError(f"hubspot: associations of {from_id} made no progress past {after}",
                                     system="hubspot")
            follow.append({"id": from_id, "after": str(after)})
        for error in payload.get("errors") or []:
            if str(error.get("category") or "") == "OBJECT_NOT_FOUND":
                continue  # no associations (or the record is gone): nothing to add
            # Anything else leaves the record's associations unknown: reporting "none" could
            # make the engine drop a customer or every order line, so the page fails instead.
            raise RetryableError(f"hubspot: reading associations failed: {error.get('category')}: "
                                 f"{error_message(error, 'batch input failed')}", system="hubspot")
        return follow


def _link(item: dict[str, Any]) -> Link:
    # The spec types toObjectId as a string; some clients see a number (notes open item 6).
    types = tuple(AssociationType(str(t.get("category") or ""), int(t.get("typeId") or 0), t.get("label") or None)
                  for t in item.get("associationTypes") or [])
    return Link(str(item.get("toObjectId")), types)
