"""Batch write inputs and the matching of HubSpot's batch results back to Concord's ops.

HubSpot does not promise result order. Results are matched by ``objectWriteTraceId`` (sent on
every input), then by record id (updates) or key property value (upserts); 207 errors by the
trace id or the ``ids`` in their context.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.base import (
    ConnectorError,
    NativeRecord,
    RetryableError,
    WriteOp,
    WriteResult,
)
from connectors.hubspot.errors import item_error

Mode = Literal["update", "upsert", "create"]


@dataclass
class Input:
    """One op ready to send: its position in the caller's list, trace id and properties."""

    index: int
    op: WriteOp
    properties: dict[str, str]
    trace: str = ""


@dataclass
class BatchPlan:
    """One batch request body and how to match its answer to the ops."""

    mode: Mode
    inputs: list[Input]
    key_field: str | None
    by_trace: dict[str, Input] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for n, item in enumerate(self.inputs):
            trace = item.op.ref if item.op.ref not in seen else f"{item.op.ref}#{n}"
            seen.add(trace)
            item.trace = trace
            self.by_trace[trace] = item

    def body(self) -> dict[str, Any]:
        """The JSON body of the batch request."""
        rows: list[dict[str, Any]] = []
        for item in self.inputs:
            if self.mode == "update":
                rows.append({"id": item.op.target_id, "properties": item.properties,
                             "objectWriteTraceId": item.trace})
            elif self.mode == "upsert":
                rows.append({"id": item.op.key, "idProperty": self.key_field, "properties": item.properties,
                             "objectWriteTraceId": item.trace})
            else:
                rows.append({"properties": item.properties, "associations": [],
                             "objectWriteTraceId": item.trace})
        return {"inputs": rows}

    def match(self, payload: dict[str, Any], to_native: Callable[[dict[str, Any]], NativeRecord],
              system: str = "hubspot") -> dict[int, WriteResult]:
        """Per-op results from a 200/201/207 batch response (keyed by the op's index)."""
        out: dict[int, WriteResult] = {}
        for obj in payload.get("results") or []:
            item = self._owner_of_result(obj, out)
            if item is None:
                continue
            created = bool(obj.get("new")) if self.mode == "upsert" else self.mode == "create"
            out[item.index] = WriteResult(ref=item.op.ref, ok=True, target_id=str(obj.get("id")),
                                          created=created, record=to_native(obj))
        unassigned: list[ConnectorError] = []
        for err in payload.get("errors") or []:
            owners = self._owners_of_error(err, out)
            error = item_error(err, system)
            if not owners:
                unassigned.append(error)
            for item in owners:
                out[item.index] = WriteResult(ref=item.op.ref, ok=False, target_id=item.op.target_id, error=error)
        for item in self.inputs:
            if item.index in out:
                continue
            error = unassigned[0] if unassigned else RetryableError(
                f"{system}: the batch response has no result for this input", system=system, maybe_applied=True)
            out[item.index] = WriteResult(ref=item.op.ref, ok=False, target_id=item.op.target_id, error=error)
        return out

    def _owner_of_result(self, obj: dict[str, Any], done: dict[int, WriteResult]) -> Input | None:
        trace = obj.get("objectWriteTraceId")
        if trace in self.by_trace:
            return self.by_trace[trace]
        pending = [i for i in self.inputs if i.index not in done]
        props = obj.get("properties") or {}
        if self.mode == "update":
            return next((i for i in pending if i.op.target_id == str(obj.get("id"))), None)
        if self.mode == "upsert" and self.key_field:
            value = str(props.get(self.key_field, ""))
            return next((i for i in pending if str(i.op.key) == value), None) or next(
                (i for i in pending if str(i.op.key).casefold() == value.casefold()), None)
        # Plain create without an echoed trace id: the input whose every value came back.
        return next((i for i in pending
                     if all(props.get(k, "") == v for k, v in i.properties.items())), None)

    def _owners_of_error(self, err: dict[str, Any], done: dict[int, WriteResult]) -> list[Input]:
        context = err.get("context") or {}
        owners = [self.by_trace[t] for t in context.get("objectWriteTraceId") or [] if t in self.by_trace]
        ids = {str(i) for i in context.get("ids") or []}
        if err.get("id"):
            ids.add(str(err["id"]))
        if ids:
            for item in self.inputs:
                ref_id = item.op.target_id if self.mode == "update" else item.op.key
                if ref_id is not None and str(ref_id) in ids and item not in owners:
                    owners.append(item)
        return [o for o in owners if o.index not in done]


def failed(inputs: Sequence[Input], error: ConnectorError) -> dict[int, WriteResult]:
    """The same error for every input (a whole batch refused or not sent)."""
    return {i.index: WriteResult(ref=i.op.ref, ok=False, target_id=i.op.target_id, error=error) for i in inputs}
