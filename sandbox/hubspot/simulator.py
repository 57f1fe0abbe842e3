"""HubSpotSimulator: the routes of every API plus the direct-edit helpers for tests and demos."""
from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sandbox.core import Request, Response
from sandbox.hubspot.associations import AssociationsApi
from sandbox.hubspot.catalog import DEFAULT_ASSOC, FIELD_TYPES_FOR, PropertyDef, opts, resolve_object_type
from sandbox.hubspot.objects import ObjectsApi
from sandbox.hubspot.properties import PropertiesApi
from sandbox.hubspot.search import SearchApi
from sandbox.hubspot.seed import seed_company
from sandbox.hubspot.store import ObjectStore, Record


class HubSpotSimulator(ObjectsApi, SearchApi, PropertiesApi, AssociationsApi):
    """HubSpot CRM API over real HTTP: objects v3, search, batch, properties v3, associations v4.

    Knobs: ``burst_limit`` (count, seconds) per app, ``search_rate`` per second, ``daily_limit``,
    ``faults`` (sandbox.core.Faults), ``clock``, ``webhooks`` (WebhookSettings), ``rate_clock``
    (monotonic seconds used by the rate windows, injectable for tests). The direct-edit helpers
    (create, update, archive, seed_companies, ...) change data "behind Concord's back".
    """

    def _register_routes(self) -> None:
        t = r"(?P<t>[A-Za-z0-9_\-]+)"
        obj = r"/crm/v3/objects/" + t
        routes: list[tuple[str, str, Callable[[Request, re.Match[str]], Response], str]] = [
            ("POST", obj + r"/search", self._h_search, "search"),
            ("POST", obj + r"/batch/read", self._h_batch_read, "batch/read"),
            ("POST", obj + r"/batch/create", self._h_batch_create, "batch/create"),
            ("POST", obj + r"/batch/update", self._h_batch_update, "batch/update"),
            ("POST", obj + r"/batch/upsert", self._h_batch_upsert, "batch/upsert"),
            ("POST", obj + r"/batch/archive", self._h_batch_archive, "batch/archive"),
            ("GET", obj, self._h_list, "list"),
            ("POST", obj, self._h_create, "create"),
            ("GET", obj + r"/(?P<id>[^/]+)", self._h_get, "get"),
            ("PATCH", obj + r"/(?P<id>[^/]+)", self._h_patch, "patch"),
            ("DELETE", obj + r"/(?P<id>[^/]+)", self._h_delete, "delete"),
            ("GET", r"/crm/v3/properties/" + t + r"/groups", self._h_prop_groups, "properties/groups"),
            ("POST", r"/crm/v3/properties/" + t + r"/batch/read", self._h_prop_batch_read, "properties/batch/read"),
            ("GET", r"/crm/v3/properties/" + t, self._h_prop_list, "properties/list"),
            ("POST", r"/crm/v3/properties/" + t, self._h_prop_create, "properties/create"),
            ("GET", r"/crm/v3/properties/" + t + r"/(?P<name>[^/]+)", self._h_prop_get, "properties/get"),
        ]
        v4o = r"/crm/v4/objects/(?P<f>[A-Za-z0-9_\-]+)/(?P<fid>[^/]+)/associations/"
        v4b = r"/crm/v4/associations/(?P<f>[A-Za-z0-9_\-]+)/" + t
        routes += [
            ("PUT", v4o + r"default/" + t + r"/(?P<tid>[^/]+)", self._h_v4_put_default, "v4/put-default"),
            ("PUT", v4o + t + r"/(?P<tid>[^/]+)", self._h_v4_put_labelled, "v4/put"),
            ("DELETE", v4o + t + r"/(?P<tid>[^/]+)", self._h_v4_delete, "v4/delete"),
            ("GET", v4o + t, self._h_v4_list, "v4/list"),
            ("POST", v4b + r"/batch/read", self._h_v4_batch_read, "v4/batch/read"),
            ("POST", v4b + r"/batch/create", self._h_v4_batch_create, "v4/batch/create"),
            ("POST", v4b + r"/batch/associate/default", self._h_v4_batch_default, "v4/batch/associate/default"),
            ("POST", v4b + r"/batch/archive", self._h_v4_batch_archive, "v4/batch/archive"),
            ("GET", v4b + r"/labels", self._h_v4_labels, "v4/labels"),
        ]
        for method, pattern, handler, name in routes:
            self.add_route(method, pattern, self._guarded(handler), name)

    def _helper_store(self, obj_type: str) -> ObjectStore:
        otype = resolve_object_type(obj_type)
        if otype is None:
            raise ValueError(f"unknown HubSpot object type {obj_type!r}")
        return self._stores[otype.name]

    def _helper_values(self, store: ObjectStore, properties: Mapping[str, Any]) -> dict[str, str]:
        values, problems = self._clean(store, dict(properties))
        if problems:
            raise ValueError("; ".join(f"{p.name}: {p.message}" for p in problems))
        return values

    def create(self, obj_type: str, properties: Mapping[str, Any]) -> str:
        """Create a record as a user in HubSpot's UI would (webhooks fire); returns its id."""
        with self.lock:
            store = self._helper_store(obj_type)
            values = self._helper_values(store, properties)
            clash = self._unique_clash(store, values, None)
            if clash:
                raise ValueError(self._conflict_message(store, *clash))
            return self._insert(store, values, source="CRM_UI").id

    def update(self, obj_type: str, record_id: str, properties: Mapping[str, Any]) -> None:
        """Edit a record behind Concord's back; always bumps updatedAt (a user saved it)."""
        with self.lock:
            store = self._helper_store(obj_type)
            rec = store.find(str(record_id), None)
            if rec is None:
                raise KeyError(f"{store.otype.singular} {record_id} not found (or archived)")
            values = self._helper_values(store, properties)
            clash = self._unique_clash(store, values, rec.num)
            if clash:
                raise ValueError(self._conflict_message(store, *clash))
            self._modify(store, rec, values, source="CRM_UI", touch=True)

    def archive(self, obj_type: str, record_id: str) -> None:
        """Archive (soft-delete) a record as a user would."""
        with self.lock:
            store = self._helper_store(obj_type)
            rec = store.find(str(record_id), None)
            if rec is None:
                raise KeyError(f"{store.otype.singular} {record_id} not found (or archived)")
            self._retire(store, rec, source="CRM_UI")

    def get(self, obj_type: str, record_id: str) -> dict[str, Any] | None:
        """The record with every stored property (archived ones too), or None."""
        with self.lock:
            store = self._helper_store(obj_type)
            rec = store.records.get(int(record_id)) if str(record_id).isdigit() else None
            return self._render(store, rec, None) if rec is not None else None

    def all(self, obj_type: str, include_archived: bool = False) -> list[dict[str, Any]]:
        """Every record of a type, oldest first."""
        with self.lock:
            store = self._helper_store(obj_type)
            nums = sorted(store.live + store.gone) if include_archived else list(store.live)
            return [self._render(store, store.records[n], None) for n in nums]

    def define_property(self, obj_type: str, name: str, type: str = "string", unique: bool = False,
                        *, label: str | None = None, group: str | None = None,
                        options: Sequence[str] | None = None) -> None:
        """Add (or replace) a custom property definition, as an admin would."""
        if type not in FIELD_TYPES_FOR:
            raise ValueError(f"unknown property type {type!r}")
        field_type = {"string": "text", "number": "number", "date": "date", "datetime": "date",
                      "bool": "booleancheckbox", "enumeration": "select", "phone_number": "phonenumber"}[type]
        with self.lock:
            store = self._helper_store(obj_type)
            existing = store.properties.get(name)
            if existing is not None and existing.hubspot_defined:
                raise ValueError(f"{name} is a HubSpot-defined property of {store.otype.name}")
            if existing is not None and existing.unique and not unique:
                store.unique.pop(name, None)
            pdef = PropertyDef(name, label or name.replace("_", " ").title(), type, field_type,
                               group or store.otype.group, unique=unique, hubspot_defined=False,
                               options=opts(*options) if options else [], created_ms=self._now_ms())
            self._add_property(store, pdef)

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int | None = None) -> None:
        """Associate two records (the default type unless ``type_id``), as a user would."""
        with self.lock:
            fs, ts = self._helper_store(from_type), self._helper_store(to_type)
            tid = type_id if type_id is not None else DEFAULT_ASSOC[(fs.otype.type_id, ts.otype.type_id)]
            self._associate(fs.otype.type_id, int(from_id), ts.otype.type_id, int(to_id), tid)

    def associations(self, from_type: str, from_id: str, to_type: str) -> dict[str, list[int]]:
        """{to id: [association type ids]} of one record."""
        with self.lock:
            fs, ts = self._helper_store(from_type), self._helper_store(to_type)
            return {str(n): sorted(t) for n, t in self._linked(fs.otype.type_id, int(from_id), ts.otype.type_id)}

    def seed_companies(self, n: int, *, faker_seed: int = 0,
                       overrides: Mapping[str, Any] | Callable[[int, dict[str, str]], Mapping[str, Any] | None]
                       | None = None) -> list[str]:
        """Create ``n`` realistic companies fast and deterministically; returns their ids.

        Timestamps are one millisecond apart, ending now, so the records have a stable order and
        never share a modified date. ``overrides`` is a dict of properties for every record or a
        function (index, properties) -> properties to merge. Webhook creation events fire only when
        webhooks are configured.
        """
        rng = random.Random(faker_seed)
        with self.lock:
            store = self._stores["companies"]
            seen_names = {r.props.get("name", "") for r in store.records.values()}
            seen_domains = {r.props.get("domain", "") for r in store.records.values()}
            now = self._now_ms()
            new: list[Record] = []
            for i in range(n):
                props = seed_company(rng, seen_names, seen_domains)
                if overrides is not None:
                    extra = overrides(i, props) if callable(overrides) else overrides
                    if extra:
                        props.update({k: str(v) for k, v in extra.items()})
                if i == 0 and overrides is not None:
                    self._helper_values(store, props)  # fail fast on an unknown overridden property
                stamp = now - (n - 1 - i)
                new.append(Record(next(self._ids), props, stamp, stamp))
            self._bulk_add(store, new)
            if self.webhooks.target_url:
                for rec in new:
                    self._emit(store, rec, "creation", source="IMPORT")
            return [r.id for r in new]

    def _bulk_add(self, store: ObjectStore, records: Sequence[Record]) -> None:
        for rec in records:
            clash = self._unique_clash(store, rec.props, None)
            if clash:
                raise ValueError(self._conflict_message(store, *clash))
            store.records[rec.num] = rec
            store.index_unique(rec, rec.props)
        store.live.extend(r.num for r in records)
        keys = [(r.updated_ms, r.num) for r in records]
        if store.by_modified and keys and store.by_modified[-1] > keys[0]:
            store.by_modified.extend(keys)
            store.by_modified.sort()
        else:
            store.by_modified.extend(keys)
