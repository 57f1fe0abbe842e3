"""Associations v4: default and labelled pairs, reads and the batch endpoints."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sandbox.core import Request, Response
from sandbox.hubspot.base import HubSpotBase
from sandbox.hubspot.catalog import ASSOC_PAGE_DEFAULT, ASSOC_TYPES, DEFAULT_ASSOC
from sandbox.hubspot.errors import Abort, std_error
from sandbox.hubspot.store import ObjectStore, Record


class AssociationsApi(HubSpotBase):
    """Handlers of /crm/v4/objects/.../associations and /crm/v4/associations/..."""

    @staticmethod
    def _type_specs(tids: Iterable[int]) -> list[dict[str, Any]]:
        specs = []
        for tid in sorted(tids):
            spec: dict[str, Any] = {"category": "HUBSPOT_DEFINED", "typeId": tid}
            if ASSOC_TYPES[tid].label:
                spec["label"] = ASSOC_TYPES[tid].label
            specs.append(spec)
        return specs

    def _pair(self, m: re.Match[str]) -> tuple[ObjectStore, ObjectStore]:
        return self._store(m["f"]), self._store(m["t"])

    def _existing(self, store: ObjectStore, raw_id: str) -> Record:
        rec = store.live_record(int(raw_id)) if raw_id.isdigit() else None
        if rec is None:
            raise self._abort(404, "OBJECT_NOT_FOUND", f"No {store.otype.singular} with id {raw_id} exists.")
        return rec

    def _h_v4_put_default(self, request: Request, m: re.Match[str]) -> Response:
        started = self._now_ms()
        fs, ts = self._pair(m)
        f_rec, t_rec = self._existing(fs, m["fid"]), self._existing(ts, m["tid"])
        tid = self._default_type(fs, ts)
        self._associate(fs.otype.type_id, f_rec.num, ts.otype.type_id, t_rec.num, tid)
        result = {"from": {"id": f_rec.id}, "to": {"id": t_rec.id},
                  "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": tid}}
        return Response(200, self._batch_body([result], [], started))

    def _default_type(self, fs: ObjectStore, ts: ObjectStore) -> int:
        tid = DEFAULT_ASSOC.get((fs.otype.type_id, ts.otype.type_id))
        if tid is None:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"No default association type exists from {fs.otype.name} to {ts.otype.name}.")
        return tid

    def _check_specs(self, fs: ObjectStore, ts: ObjectStore, specs: Any) -> list[int]:
        if not isinstance(specs, list) or not specs:
            raise self._abort(400, "VALIDATION_ERROR", "At least one association type is required.")
        tids: list[int] = []
        for spec in specs:
            tid = (spec or {}).get("associationTypeId")
            atype = ASSOC_TYPES.get(tid) if isinstance(tid, int) else None
            if (atype is None or (spec or {}).get("associationCategory") != "HUBSPOT_DEFINED"
                    or (atype.from_type, atype.to_type) != (fs.otype.type_id, ts.otype.type_id)):
                raise self._abort(400, "VALIDATION_ERROR",
                                  f"{spec} is not a valid association type from {fs.otype.name} to {ts.otype.name}.")
            tids.append(atype.type_id)
        return tids

    def _h_v4_put_labelled(self, request: Request, m: re.Match[str]) -> Response:
        fs, ts = self._pair(m)
        try:
            specs = request.json() if request.body else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._abort(400, "VALIDATION_ERROR", f"Invalid input JSON: {exc}") from None
        f_rec, t_rec = self._existing(fs, m["fid"]), self._existing(ts, m["tid"])
        for tid in self._check_specs(fs, ts, specs):
            self._associate(fs.otype.type_id, f_rec.num, ts.otype.type_id, t_rec.num, tid)
        return Response(201, self._labels_between(fs, f_rec.num, ts, t_rec.num))

    def _labels_between(self, fs: ObjectStore, f_num: int, ts: ObjectStore, t_num: int) -> dict[str, Any]:
        tids = self._assoc.get((fs.otype.type_id, f_num), {}).get((ts.otype.type_id, t_num), set())
        return {"fromObjectTypeId": fs.otype.type_id, "fromObjectId": str(f_num), "toObjectTypeId": ts.otype.type_id,
                "toObjectId": str(t_num), "labels": sorted({ASSOC_TYPES[t].label or "" for t in tids} - {""})}

    def _h_v4_delete(self, request: Request, m: re.Match[str]) -> Response:
        fs, ts = self._pair(m)
        if m["fid"].isdigit() and m["tid"].isdigit():
            self._dissociate(fs.otype.type_id, int(m["fid"]), ts.otype.type_id, int(m["tid"]))
        return Response(204)

    def _h_v4_list(self, request: Request, m: re.Match[str]) -> Response:
        fs, ts = self._pair(m)
        try:
            limit = int(request.arg("limit") or ASSOC_PAGE_DEFAULT)
            start = int(request.arg("after") or 0)
        except ValueError:
            raise self._abort(400, "VALIDATION_ERROR", "limit and after must be integers") from None
        limit = max(1, min(limit, ASSOC_PAGE_DEFAULT))
        f_num = int(m["fid"]) if m["fid"].isdigit() else -1
        linked = self._linked(fs.otype.type_id, f_num, ts.otype.type_id)
        # The spec types toObjectId as a string; the wire type is UNVERIFIED (notes open item 6).
        results = [{"toObjectId": str(n), "associationTypes": self._type_specs(tids)}
                   for n, tids in linked[start:start + limit]]
        body: dict[str, Any] = {"results": results}
        if start + limit < len(linked):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return Response(200, body)

    def _h_v4_batch_read(self, request: Request, m: re.Match[str]) -> Response:
        started = self._now_ms()
        fs, ts = self._pair(m)
        results, errors = [], []
        for item in self._inputs(self._body(request)):
            key = str((item or {}).get("id", ""))
            linked = self._linked(fs.otype.type_id, int(key), ts.otype.type_id) if key.isdigit() else []
            if not linked:
                # 3p: a record without associations answers 207 OBJECT_NOT_FOUND, subCategory
                # crm.associations.NO_ASSOCIATIONS_FOUND; the spec types StandardError.subCategory
                # as an object, so it is left out to keep the body valid.
                errors.append(std_error("OBJECT_NOT_FOUND",
                                        f"No {ts.otype.singular} is associated with {fs.otype.singular} {key}.",
                                         {"fromObjectId": [key]}))
                continue
            results.append({"from": {"id": key},
                            "to": [{"toObjectId": str(n), "associationTypes": self._type_specs(tids)}
                                   for n, tids in linked]})
        return Response(207 if errors else 200, self._batch_body(results, errors, started))

    def _pair_input(self, fs: ObjectStore, ts: ObjectStore, item: Any) -> tuple[Record, Record] | dict[str, Any]:
        f_id = str(((item or {}).get("from") or {}).get("id", ""))
        t_id = str(((item or {}).get("to") or {}).get("id", ""))
        f_rec = fs.live_record(int(f_id)) if f_id.isdigit() else None
        t_rec = ts.live_record(int(t_id)) if t_id.isdigit() else None
        if f_rec is None or t_rec is None:
            which = (fs, f_id) if f_rec is None else (ts, t_id)
            return std_error("OBJECT_NOT_FOUND", f"No {which[0].otype.singular} with id {which[1]} exists.",
                              {"fromObjectId": [f_id], "toObjectId": [t_id]})
        return f_rec, t_rec

    def _h_v4_batch_create(self, request: Request, m: re.Match[str]) -> Response:
        started = self._now_ms()
        fs, ts = self._pair(m)
        results, errors = [], []
        for item in self._inputs(self._body(request)):
            pair = self._pair_input(fs, ts, item)
            if isinstance(pair, dict):
                errors.append(pair)
                continue
            try:
                tids = self._check_specs(fs, ts, item.get("types"))
            except Abort as abort:
                errors.append(std_error("VALIDATION_ERROR", abort.response.body["message"], {}))
                continue
            for tid in tids:
                self._associate(fs.otype.type_id, pair[0].num, ts.otype.type_id, pair[1].num, tid)
            results.append(self._labels_between(fs, pair[0].num, ts, pair[1].num))
        return Response(207 if errors else 201, self._batch_body(results, errors, started))

    def _h_v4_batch_default(self, request: Request, m: re.Match[str]) -> Response:
        started = self._now_ms()
        fs, ts = self._pair(m)
        tid = self._default_type(fs, ts)
        results, errors = [], []
        for item in self._inputs(self._body(request)):
            pair = self._pair_input(fs, ts, item)
            if isinstance(pair, dict):
                errors.append(pair)
                continue
            self._associate(fs.otype.type_id, pair[0].num, ts.otype.type_id, pair[1].num, tid)
            results.append({"from": {"id": pair[0].id}, "to": {"id": pair[1].id},
                            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": tid}})
        # The spec declares only 200 here; errors travel in the body (numErrors/errors).
        return Response(200, self._batch_body(results, errors, started))

    def _h_v4_batch_archive(self, request: Request, m: re.Match[str]) -> Response:
        fs, ts = self._pair(m)
        for item in self._inputs(self._body(request)):
            f_id = str(((item or {}).get("from") or {}).get("id", ""))
            for to in (item or {}).get("to") or []:
                t_id = str((to or {}).get("id", ""))
                if f_id.isdigit() and t_id.isdigit():
                    self._dissociate(fs.otype.type_id, int(f_id), ts.otype.type_id, int(t_id))
        return Response(204)

    def _h_v4_labels(self, request: Request, m: re.Match[str]) -> Response:
        fs, ts = self._pair(m)
        tids = [a.type_id for a in ASSOC_TYPES.values()
                if (a.from_type, a.to_type) == (fs.otype.type_id, ts.otype.type_id)]
        return Response(200, {"results": self._type_specs(tids)})
