"""CRM objects v3: list, read, create, update, archive, and the batch endpoints."""
from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.core import Request, Response
from sandbox.hubspot.base import HubSpotBase
from sandbox.hubspot.catalog import LIST_PAGE_MAX
from sandbox.hubspot.errors import Abort, Problem, problem_details, problems_message, std_error
from sandbox.hubspot.store import ObjectStore


class ObjectsApi(HubSpotBase):
    """Handlers of /crm/v3/objects/{T}, /{id} and /batch/*."""

    def _h_list(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        try:
            limit = int(request.arg("limit") or 10)
        except ValueError:
            raise self._abort(400, "VALIDATION_ERROR", "limit must be an integer") from None
        limit = max(1, min(limit, LIST_PAGE_MAX))  # HubSpot caps list pages at 100
        archived = self._bool_arg(request, "archived")
        ids = store.gone if archived else store.live
        after = request.arg("after")
        start = 0
        if after:
            if not after.isdigit():
                raise self._abort(400, "VALIDATION_ERROR", f"Invalid paging cursor: {after}")
            start = bisect.bisect_left(ids, int(after))
        props = self._read_props(store, self._csv_arg(request, "properties"))
        assoc_types = self._csv_arg(request, "associations") or []
        page = ids[start:start + limit]
        results = [self._render(store, store.records[n], props, self._v3_assoc(store, n, assoc_types))
                   for n in page]
        body: dict[str, Any] = {"results": results}
        if start + limit < len(ids):
            nxt = str(ids[start + limit])
            base = request.url.split("/crm/", 1)[0]
            body["paging"] = {"next": {"after": nxt,
                                       "link": f"{base}/crm/v3/objects/{m['t']}?limit={limit}&after={nxt}"}}
        return Response(200, body)

    def _h_get(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        rec = store.find(m["id"], request.arg("idProperty"), archived=self._bool_arg(request, "archived"))
        if rec is None:
            raise self._abort(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
        props = self._read_props(store, self._csv_arg(request, "properties"))
        extra = self._v3_assoc(store, rec.num, self._csv_arg(request, "associations") or [])
        return Response(200, self._render(store, rec, props, extra))

    def _h_create(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        body = self._body(request)
        values, problems = self._clean(store, body.get("properties"))
        if problems:
            raise self._validation_error(problems)
        links = self._create_links(store, body.get("associations"))
        clash = self._unique_clash(store, values, None)
        if clash:
            raise self._conflict(store, *clash)
        rec = self._insert(store, values, source="INTEGRATION")
        for to_type, to_num, type_id in links:
            self._associate(store.otype.type_id, rec.num, to_type, to_num, type_id)
        return Response(201, self._render(store, rec, None))

    def _h_patch(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        body = self._body(request)
        rec = store.find(m["id"], request.arg("idProperty"))
        if rec is None:
            raise self._abort(404, "OBJECT_NOT_FOUND", f"Object not found. objectId={m['id']}")
        values, problems = self._clean(store, body.get("properties"))
        if problems:
            raise self._validation_error(problems)
        clash = self._unique_clash(store, values, rec.num)
        if clash:
            raise self._conflict(store, *clash)
        self._modify(store, rec, values, source="INTEGRATION")
        return Response(200, self._render(store, rec, None))

    def _h_delete(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        rec = store.find(m["id"], None)
        if rec is not None:
            self._retire(store, rec, source="INTEGRATION")
        # An id that is absent or already archived is also answered 204: archiving is idempotent.
        return Response(204)

    def _h_batch_read(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        started = self._now_ms()
        body = self._body(request)
        inputs = self._inputs(body)
        id_prop = body.get("idProperty") or None
        if id_prop and id_prop != "hs_object_id" and id_prop not in store.unique:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"{id_prop} is not a unique identifier property for {store.otype.name}.")
        archived = self._bool_arg(request, "archived")
        props = self._read_props(store, body.get("properties") or None)
        if id_prop and id_prop not in props:
            props = [*props, id_prop]
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[str] = set()
        for item in inputs:
            key = str(item.get("id", ""))
            if key in seen:
                continue
            seen.add(key)
            rec = store.find(key, id_prop, archived=archived)
            if rec is None:
                missing.append(key)
            else:
                results.append(self._render(store, rec, props))
        errors = []
        if missing:
            errors.append(std_error(
                "OBJECT_NOT_FOUND",
                f"Could not get some {store.otype.upper} objects, they may be deleted or not exist. "
                f"Check that ids are valid.", {"ids": missing}))
        return Response(207 if errors else 200, self._batch_body(results, errors, started))

    def _partial_fault(self, request: Request) -> bool:
        f = self.faults
        return f.partial_rate > 0 and f.applies(request.path, True) and f.roll(f.partial_rate)

    @staticmethod
    def _input_context(item: Mapping[str, Any], key: str | None = None) -> dict[str, list[str]]:
        ctx: dict[str, list[str]] = {}
        if item.get("objectWriteTraceId"):
            ctx["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
        if key is not None:
            ctx["ids"] = [key]
        return ctx

    def _injected_error(self, item: Mapping[str, Any], key: str | None = None) -> dict[str, Any]:
        return std_error("INTERNAL_ERROR", "Internal error while writing this object (injected partial failure).",
                         self._input_context(item, key))

    def _h_batch_create(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        started = self._now_ms()
        inputs = self._inputs(self._body(request))
        prepared: list[tuple[dict[str, Any], dict[str, str], list[Problem], list[tuple[str, int, int]] | str]] = []
        for item in inputs:
            values, problems = self._clean(store, item.get("properties"))
            try:
                links: list[tuple[str, int, int]] | str = self._create_links(store, item.get("associations"))
            except Abort as abort:
                links = str(abort.response.body.get("message", "invalid association"))
            prepared.append((item, values, problems, links))
        traced = all(item.get("objectWriteTraceId") for item in inputs)
        bad = [p for p in prepared if p[2] or isinstance(p[3], str)]
        if bad and not traced:
            # Docs: per-input multi-status on batch create needs an objectWriteTraceId on every input;
            # without them one invalid input fails the whole request and nothing is written.
            problems = [pr for p in bad for pr in p[2]]
            if problems:
                raise self._validation_error(problems)
            raise self._abort(400, "VALIDATION_ERROR", str(bad[0][3]))
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item, values, problems, links in prepared:
            if problems:
                errors.append(std_error("VALIDATION_ERROR", problems_message(problems, self.portal_id),
                                        self._input_context(item), problem_details(problems)))
                continue
            if isinstance(links, str):
                errors.append(std_error("VALIDATION_ERROR", links, self._input_context(item)))
                continue
            if self._partial_fault(request):
                errors.append(self._injected_error(item))
                continue
            clash = self._unique_clash(store, values, None)
            if clash:
                ctx = self._input_context(item)
                ctx.update({"propertyName": [clash[0]], "existingId": [str(clash[1])]})
                errors.append(std_error("CONFLICT", self._conflict_message(store, *clash), ctx))
                continue
            rec = self._insert(store, dict(values), source="INTEGRATION")
            for to_type, to_num, type_id in links:
                self._associate(store.otype.type_id, rec.num, to_type, to_num, type_id)
            extra = {"objectWriteTraceId": str(item["objectWriteTraceId"])} if item.get("objectWriteTraceId") else None
            results.append(self._render(store, rec, None, extra))
        return Response(207 if errors else 201, self._batch_body(results, errors, started))

    def _check_duplicates(self, inputs: Sequence[Mapping[str, Any]]) -> None:
        keys = [str(i.get("id", "")) for i in inputs]
        dups = sorted({k for k in keys if keys.count(k) > 1})
        if dups:
            raise self._abort(400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: {dups}. "
                              "IDs must be unique", context={"ids": dups})

    def _h_batch_update(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        started = self._now_ms()
        inputs = self._inputs(self._body(request))
        self._check_duplicates(inputs)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        for item in inputs:
            key = str(item.get("id", ""))
            id_prop = item.get("idProperty") or None
            rec = store.find(key, id_prop)
            if rec is None:
                missing.append(key)
                continue
            values, problems = self._clean(store, item.get("properties"))
            if problems:
                errors.append(std_error("VALIDATION_ERROR", problems_message(problems, self.portal_id),
                                        self._input_context(item, key), problem_details(problems)))
                continue
            if self._partial_fault(request):
                errors.append(self._injected_error(item, key))
                continue
            clash = self._unique_clash(store, values, rec.num)
            if clash:
                ctx = self._input_context(item, key)
                ctx.update({"propertyName": [clash[0]], "existingId": [str(clash[1])]})
                errors.append(std_error("CONFLICT", self._conflict_message(store, *clash), ctx))
                continue
            self._modify(store, rec, values, source="INTEGRATION")
            extra = {"objectWriteTraceId": str(item["objectWriteTraceId"])} if item.get("objectWriteTraceId") else None
            results.append(self._render(store, rec, None, extra))
        if missing:
            errors.append(std_error(
                "OBJECT_NOT_FOUND",
                f"Could not get some {store.otype.upper} objects, they may be deleted or not exist. "
                f"Check that ids are valid.", {"ids": missing}))
        return Response(207 if errors else 200, self._batch_body(results, errors, started))

    def _upsert_id_property(self, store: ObjectStore, id_prop: str | None) -> str:
        if not id_prop or id_prop == "hs_object_id":
            return "hs_object_id"
        if id_prop not in store.unique:
            raise self._abort(400, "VALIDATION_ERROR",
                              f"Upsert requires a unique identifier property: {id_prop} does not have "
                              f"hasUniqueValue=true on {store.otype.name}.",
                              context={"idProperty": [id_prop]})
        return id_prop

    def _h_batch_upsert(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        started = self._now_ms()
        inputs = self._inputs(self._body(request))
        id_props = [self._upsert_id_property(store, i.get("idProperty")) for i in inputs]
        self._check_duplicates(inputs)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item, id_prop in zip(inputs, id_props, strict=True):
            key = str(item.get("id", ""))
            values, problems = self._clean(store, item.get("properties"))
            if problems:
                errors.append(std_error("VALIDATION_ERROR", problems_message(problems, self.portal_id),
                                        self._input_context(item, key), problem_details(problems)))
                continue
            if self._partial_fault(request):
                errors.append(self._injected_error(item, key))
                continue
            rec = store.find(key, id_prop)
            if rec is None and id_prop == "hs_object_id":
                errors.append(std_error("OBJECT_NOT_FOUND", f"Could not find {store.otype.singular} {key}.",
                                        self._input_context(item, key)))
                continue
            if id_prop != "hs_object_id":
                values[id_prop] = key
            clash = self._unique_clash(store, values, rec.num if rec else None)
            if clash:
                ctx = self._input_context(item, key)
                ctx.update({"propertyName": [clash[0]], "existingId": [str(clash[1])]})
                errors.append(std_error("CONFLICT", self._conflict_message(store, *clash), ctx))
                continue
            created = rec is None
            if rec is None:
                rec = self._insert(store, values, source="INTEGRATION")
            else:
                self._modify(store, rec, values, source="INTEGRATION")
            extra: dict[str, Any] = {"new": created}
            if item.get("objectWriteTraceId"):
                extra["objectWriteTraceId"] = str(item["objectWriteTraceId"])
            results.append(self._render(store, rec, None, extra))
        return Response(207 if errors else 200, self._batch_body(results, errors, started))

    def _h_batch_archive(self, request: Request, m: re.Match[str]) -> Response:
        store = self._store(m["t"])
        for item in self._inputs(self._body(request)):
            rec = store.find(str(item.get("id", "")), None)
            if rec is not None:
                self._retire(store, rec, source="INTEGRATION")
        return Response(204)
