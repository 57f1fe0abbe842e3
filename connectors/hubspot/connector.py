"""The HubSpot CRM v3 connector: search-based change listing, batch reads and idempotent
batch upserts, custom-property setup and signed webhooks.

Virtual read paths (``associations.companies``, ``line_items``: see virtual.py) are filled from
associations v4 for each page of records (expand.py); ``options.filters`` narrows every listing
to records with given property values, e.g. deals in a closed-won stage (filters.py).

Deletes: archived records never appear in search results, so after the search :meth:`iter_changes`
lists the archived records (``GET ...?archived=true``; HubSpot keeps them 90 days, so the list stays
bounded) and reports those archived since the cursor with ``deleted=True``. They also arrive through
``*.deletion`` webhooks, and :meth:`iter_all` lists them for reconcile.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

import structlog

from connectors.base import (
    AuthError,
    Capabilities,
    ConnectorError,
    EntitySpec,
    NativeRecord,
    NotFound,
    Page,
    RetryableError,
    ValidationError,
    Watermark,
    WebhookEvent,
    WebhookRequest,
    WriteOp,
    WriteResult,
)
from connectors.http import HttpClient, TokenBucket
from connectors.hubspot import webhooks
from connectors.hubspot.errors import classify
from connectors.hubspot.expand import Expander
from connectors.hubspot.filters import RecordFilters
from connectors.hubspot.properties import PropertyDef, required_properties
from connectors.hubspot.search import SEARCH_PAGE_MAX, ChangeScan, value_search_bodies
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.values import (
    PropertyValueError,
    epoch_ms,
    parse_timestamp,
    to_properties,
)
from connectors.hubspot.virtual import VirtualFields
from connectors.hubspot.writes import BatchPlan, Input, Mode, failed

log = structlog.get_logger("concord.hubspot")

LIST_LIMIT = 100  # GET /crm/v3/objects/{T}: "up to 100"
SEARCH_BODY_LIMIT = 3000  # characters; longer search bodies get a 400
CALL_KINDS = ("search", "read", "write", "archive", "setup", "auth")

OnResponse = Callable[[str, str, int | None, float], None]


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v not in (None, "")))


class HubSpotConnector:
    """Connector for HubSpot's CRM API v3 (private-app token)."""

    name: ClassVar[str] = "hubspot"
    settings_model: ClassVar[type[HubSpotSettings]] = HubSpotSettings
    default_mapping: ClassVar[str] = "hubspot.yaml"

    def __init__(self, settings: HubSpotSettings, *, on_response: OnResponse | None = None) -> None:
        self.settings = settings
        rate, burst = settings.default_rate()
        token = settings.token.get_secret_value()
        # Search has its own per-account limit and is exempt from the 10-second bucket.
        search_bucket = TokenBucket(settings.search_rate, 1)
        self.http = HttpClient(
            self.name, settings.base_url, settings.http_settings(default_rate=rate, default_burst=burst),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            secrets=settings.secret_values(), classify=classify,
            buckets={"search": search_bucket}, on_response=on_response)
        self.expander = Expander(self._post_read, settings.batch_size)

    # ------------------------------------------------------------------ protocol: meta
    def capabilities(self) -> Capabilities:
        """Batch and page sizes from the settings; batch upsert and signed webhooks supported."""
        return Capabilities(batch_size=self.settings.batch_size, page_size=self.settings.page_size,
                            upsert=True, webhooks=True, archive=True)

    def check_connection(self) -> None:
        """One cheap authenticated call; AuthError on a bad token, RetryableError when unreachable."""
        self.http.request("GET", "/crm/v3/objects/companies", kind="auth", params={"limit": 1})

    def api_calls(self) -> dict[str, int]:
        """Calls made so far by kind (search, read, write, archive, setup, auth)."""
        calls = {kind: 0 for kind in CALL_KINDS}
        calls.update(self.http.api_calls())
        return calls

    def close(self) -> None:
        """Release the HTTP session."""
        self.http.close()

    # ------------------------------------------------------------------ setup
    def missing_setup(self, specs: Sequence[EntitySpec]) -> list[str]:
        """Custom properties the specs declare that are absent (or not unique when they must be)."""
        missing = []
        for prop in self._declared(specs):
            existing = self._get_property(prop)
            if existing is None:
                missing.append(f"property {prop.describe()} does not exist")
            elif prop.unique and not existing.get("hasUniqueValue"):
                missing.append(f"property {prop.object}.{prop.name} exists but is not a unique-value property "
                               f"(HubSpot cannot change that: delete it or choose another name)")
        return missing

    def setup(self, specs: Sequence[EntitySpec]) -> list[str]:
        """Create the missing custom properties (409 = created meanwhile = fine); return what was created."""
        created = []
        for prop in self._declared(specs):
            if self._get_property(prop) is not None:
                continue
            try:
                self.http.request("POST", f"/crm/v3/properties/{prop.object}", kind="setup",
                                  json=prop.create_body())
            except ValidationError as exc:
                if exc.status != 409:
                    raise
                log.info("hubspot.setup.exists", object=prop.object, property=prop.name)
                continue
            log.info("hubspot.setup.created", object=prop.object, property=prop.name, unique=prop.unique)
            created.append(f"property {prop.describe()}")
        return created

    def _declared(self, specs: Sequence[EntitySpec]) -> list[PropertyDef]:
        seen: dict[tuple[str, str], PropertyDef] = {}
        for spec in specs:
            for prop in required_properties(spec):
                seen.setdefault((prop.object, prop.name), prop)
        return list(seen.values())

    def _get_property(self, prop: PropertyDef) -> dict[str, Any] | None:
        try:
            response = self.http.request("GET", f"/crm/v3/properties/{prop.object}/{prop.name}", kind="setup")
        except NotFound:
            return None
        return response.json()

    # ------------------------------------------------------------------ reading
    def iter_changes(self, spec: EntitySpec, since: Watermark | None) -> Iterator[Page]:
        """Records modified at or after ``since.updated_at``, in (updated_at, id) order (see search.py).

        Archived records are not in search results (see the module docstring).
        """
        properties = self._properties(spec)
        virtual = VirtualFields.of(spec)
        scan = ChangeScan(lambda body: self._search(spec, body), updated_field=spec.updated_field,
                          properties=properties, page_size=self.settings.page_size,
                          since_ms=epoch_ms(since.updated_at) if since is not None else None,
                          filters=RecordFilters.of(spec).search_filters())
        # A search body over 3,000 characters is refused: then search for ids only and batch-read.
        reread = len(json.dumps(scan.longest_body())) > SEARCH_BODY_LIMIT
        if reread:
            scan.properties = [spec.updated_field]
        for results in scan.pages():
            records = [self._native(obj, spec) for obj in results]
            if reread:
                full = self._read_records(spec, [r.id for r in records])
                records = [full[r.id] for r in records if r.id in full]
            self.expander.expand(spec, virtual, records)
            log.debug("hubspot.search.page", object=spec.object, count=len(records))
            yield Page(records=records)
        if since is not None:
            for page in self._list(spec, archived=True):
                gone = [r for r in page.records if r.updated_at is not None and r.updated_at >= since.updated_at]
                if gone:
                    yield Page(records=gone)

    def _search(self, spec: EntitySpec, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.request("POST", f"/crm/v3/objects/{spec.object}/search", kind="search",
                                     json=body, bucket="search")
        return response.json()

    def iter_all(self, spec: EntitySpec) -> Iterator[Page]:
        """Every record: active ones, then archived ones (``deleted=True``), 100 per page; records
        that fail ``options.filters`` are skipped."""
        yield from self._list(spec, archived=False)
        yield from self._list(spec, archived=True)

    def _list(self, spec: EntitySpec, *, archived: bool) -> Iterator[Page]:
        """GET /crm/v3/objects/{object}, 100 per page, active or archived records."""
        params_base = {"limit": LIST_LIMIT, "properties": ",".join(self._properties(spec))}
        filters, virtual = RecordFilters.of(spec), VirtualFields.of(spec)
        after: str | None = None
        while True:
            params = dict(params_base, archived="true" if archived else "false")
            if after:
                params["after"] = after
            payload = self.http.request("GET", f"/crm/v3/objects/{spec.object}", kind="read",
                                        params=params).json()
            records = [self._native(obj, spec) for obj in payload.get("results") or []]
            records = [r for r in records if filters.matches(r.data)]
            if records:
                self.expander.expand(spec, virtual, records)
                yield Page(records=records)
            after = ((payload.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break

    def read(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, NativeRecord]:
        """Records by id via batch/read, virtual paths filled; missing ids (207 errors) are simply
        absent. ``options.filters`` does not apply: the caller asked for these records."""
        out = self._read_records(spec, ids)
        self.expander.expand(spec, VirtualFields.of(spec), list(out.values()))
        return out

    def _read_records(self, spec: EntitySpec, ids: Sequence[str]) -> dict[str, NativeRecord]:
        out: dict[str, NativeRecord] = {}
        for chunk in _chunks(_unique(ids), self.settings.batch_size):
            for obj in self._batch_read(spec, {"inputs": [{"id": i} for i in chunk]}):
                record = self._native(obj, spec)
                out[record.id] = record
        return out

    def find_by_keys(self, spec: EntitySpec, keys: Sequence[str]) -> dict[str, NativeRecord]:
        """Records whose unique property ``spec.key_field`` has one of ``keys``, by that key."""
        if not spec.key_field:
            raise ValidationError(f"hubspot: {spec.entity}: no key_field to look records up by",
                                  system=self.name, field="key_field")
        out: dict[str, NativeRecord] = {}
        for chunk in _chunks(_unique(keys), self.settings.batch_size):
            wanted = {k.casefold(): k for k in chunk}
            body = {"inputs": [{"id": k} for k in chunk], "idProperty": spec.key_field}
            for obj in self._batch_read(spec, body):
                value = str((obj.get("properties") or {}).get(spec.key_field, ""))
                key = value if value in chunk else wanted.get(value.casefold())
                if key is not None:
                    out[key] = self._native(obj, spec)
        self.expander.expand(spec, VirtualFields.of(spec), list(out.values()))
        return out

    def find_by_values(self, spec: EntitySpec, field: str, values: Sequence[str]) -> list[NativeRecord]:
        """Live records whose property ``field`` equals one of ``values``, ignoring case: CRM search
        with ``IN`` (string values must be sent lowercase), as few bodies under 3,000 characters as fit."""
        wanted = _unique(str(v).casefold() for v in values)
        properties = self._properties(spec)
        extra = RecordFilters.of(spec).search_filters()
        # Many mapped properties leave little room for values: then search for ids and batch-read.
        probe = next(value_search_bodies(field, ["x" * 64], properties, extra, limit=SEARCH_PAGE_MAX,
                                         max_chars=SEARCH_BODY_LIMIT // 2), None)
        reread = probe is None
        if reread:
            properties = [field]
        found: dict[str, NativeRecord] = {}
        for body in value_search_bodies(field, wanted, properties, extra, limit=SEARCH_PAGE_MAX,
                                        max_chars=SEARCH_BODY_LIMIT):
            after = "0"
            while True:
                payload = self._search(spec, {**body, "after": after})
                for obj in payload.get("results") or []:
                    record = self._native(obj, spec)
                    found[record.id] = record
                after = ((payload.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        if reread and found:
            full = self._read_records(spec, list(found))
            found = {i: full[i] for i in found if i in full}
        records = list(found.values())
        self.expander.expand(spec, VirtualFields.of(spec), records)
        log.debug("hubspot.search.by_values", object=spec.object, property=field, values=len(wanted),
                  found=len(records))
        return records

    def _batch_read(self, spec: EntitySpec, body: dict[str, Any]) -> list[dict[str, Any]]:
        body = dict(body, properties=self._properties(spec), propertiesWithHistory=[])
        try:
            response = self.http.request("POST", f"/crm/v3/objects/{spec.object}/batch/read", kind="read",
                                         json=body, params={"archived": "false"})
        except NotFound:
            return []
        return list(response.json().get("results") or [])

    def _post_read(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A POST that only reads (association and batch reads of virtual paths)."""
        payload = self.http.request("POST", path, kind="read", json=body).json()
        return payload if isinstance(payload, dict) else {}

    # ------------------------------------------------------------------ writing
    def write(self, spec: EntitySpec, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Updates via batch/update; creates via batch/upsert on ``spec.key_field`` (idempotent), or
        batch/create when the entity has no key (NOT idempotent: a lost acknowledgement is reported
        as a RetryableError with ``maybe_applied`` and never resent).

        Whole-batch 400s are bisected so one bad record fails alone; a retryable failure stops
        the remaining batches, which are reported failed with that error; AuthError is raised.
        """
        results: dict[int, WriteResult] = {}
        groups: dict[Mode, list[Input]] = {"update": [], "upsert": [], "create": []}
        virtual = VirtualFields.of(spec)
        for index, op in enumerate(ops):
            data = {k: v for k, v in op.data.items() if not virtual.is_virtual(k)}
            if len(data) != len(op.data):
                # Associations are read-only here: they are no properties, and HubSpot would
                # refuse the whole input for an unknown property.
                log.warning("hubspot.write.virtual_dropped", object=spec.object, ref=op.ref,
                            fields=sorted(set(op.data) - set(data)))
            mode: Mode = "update" if op.target_id else (
                "upsert" if spec.key_field and op.key not in (None, "") else "create")
            if mode == "upsert":
                data[spec.key_field] = op.key  # type: ignore[index]
            try:
                props = to_properties(data)
            except PropertyValueError as exc:
                results[index] = WriteResult(ref=op.ref, ok=False, target_id=op.target_id, error=ValidationError(
                    f"hubspot: {exc}", system=self.name, field=exc.field))
                continue
            groups[mode].append(Input(index, op, props))
        if groups["create"]:
            log.warning("hubspot.write.not_idempotent", object=spec.object, count=len(groups["create"]),
                        hint="no key_field/key: plain batch/create; a lost acknowledgement may duplicate")

        stop: RetryableError | None = None
        for mode, inputs in groups.items():
            for chunk in _chunks(inputs, self.settings.batch_size):
                if stop is not None:
                    results.update(failed(chunk, stop))
                    continue
                try:
                    results.update(self._send(spec, mode, chunk))
                except RetryableError as exc:
                    stop = exc
                    results.update(failed(chunk, exc))
        return [results[i] for i in range(len(ops))]

    def _send(self, spec: EntitySpec, mode: Mode, inputs: list[Input]) -> dict[int, WriteResult]:
        plan = BatchPlan(mode, inputs, spec.key_field)
        try:
            response = self.http.request("POST", f"/crm/v3/objects/{spec.object}/batch/{mode}", kind="write",
                                         json=plan.body(), idempotent=mode != "create")
        except ValidationError as exc:
            if len(inputs) > 1 and exc.status == 400:
                # HubSpot refuses a whole batch for one bad input (nothing is applied): halve it
                # until the bad inputs fail alone and the good ones go through.
                mid = len(inputs) // 2
                return {**self._send(spec, mode, inputs[:mid]), **self._send(spec, mode, inputs[mid:])}
            return failed(inputs, exc)
        except NotFound as exc:
            return failed(inputs, exc)
        except AuthError:
            raise
        out = plan.match(response.json(), lambda obj: self._native(obj, spec), self.name)
        failures = sum(1 for r in out.values() if not r.ok)
        log.info("hubspot.batch.written", object=spec.object, mode=mode, count=len(inputs) - failures,
                 failed=failures)
        return out

    def archive(self, spec: EntitySpec, ids: Sequence[str]) -> list[WriteResult]:
        """Archive records by id via batch/archive (HubSpot answers 204 whether or not they existed)."""
        results: list[WriteResult] = []
        stop: RetryableError | None = None
        for chunk in _chunks(_unique(ids), self.settings.batch_size):
            error: ConnectorError | None = stop
            if error is None:
                try:
                    self.http.request("POST", f"/crm/v3/objects/{spec.object}/batch/archive", kind="archive",
                                      json={"inputs": [{"id": i} for i in chunk]})
                except (ValidationError, NotFound) as exc:
                    error = exc
                except RetryableError as exc:
                    error = stop = exc
            results.extend(WriteResult(ref=i, ok=error is None, target_id=i, error=error) for i in chunk)
            log.info("hubspot.batch.archived", object=spec.object, count=len(chunk) if error is None else 0,
                     failed=0 if error is None else len(chunk))
        return results

    # ------------------------------------------------------------------ webhooks
    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Verify X-HubSpot-Signature-v3 and the 5-minute window, then parse the event array."""
        secret = self.settings.client_secret.get_secret_value() if self.settings.client_secret else None
        webhooks.verify_v3(secret, request, now=time.time(), max_age=self.settings.webhook_max_age)
        return webhooks.parse_events(request.body)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _properties(spec: EntitySpec) -> list[str]:
        """The real properties to request: mapped ones (virtual paths excluded) and filtered ones."""
        paths = _unique([*spec.fields, spec.updated_field, spec.key_field, *RecordFilters.of(spec).properties])
        return VirtualFields.of(spec).properties(paths)

    @staticmethod
    def _native(obj: dict[str, Any], spec: EntitySpec) -> NativeRecord:
        props = {k: v for k, v in (obj.get("properties") or {}).items() if v is not None}
        updated = parse_timestamp(props.get(spec.updated_field)) or parse_timestamp(obj.get("updatedAt"))
        if obj.get("archived") and obj.get("archivedAt"):
            # The archive is the change: order it (and move the cursor) by when it happened.
            updated = parse_timestamp(obj.get("archivedAt")) or updated
        return NativeRecord(id=str(obj["id"]), updated_at=updated, data=props, deleted=bool(obj.get("archived")))
