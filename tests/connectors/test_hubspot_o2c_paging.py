"""Association paging and failure handling for deal virtual paths, against `responses` mocks
(more than 100 deals on a page, more than 500 line items on one deal), plus the units that
choose a primary company, parse stage filters and recognise virtual paths. Every mocked
request and response is checked against HubSpot's OpenAPI files."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import responses

from connectors.base import EntitySpec, RetryableError, ValidationError
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.associations import AssociationType, Link, primary_id
from connectors.hubspot.filters import RecordFilters
from connectors.hubspot.virtual import VirtualFields
from tests.support.openapi import validate_request, validate_response

BASE = "https://api.hubapi.test"
NOW = "2025-01-01T00:00:00.000Z"
ITEM_PATHS = ("hs_object_id", "hs_sku", "quantity", "price")
SPEC = EntitySpec(entity="order", object="deals", id_field="hs_object_id", updated_field="hs_lastmodifieddate",
                  fields=("hs_object_id", "hs_lastmodifieddate", "associations.companies", "line_items",
                          "closedate"),
                  options={"filters": {"dealstage": ["closedwon"]}, "item_fields": {"line_items": ITEM_PATHS}})
ASSOC_PAGE = 500
PRIMARY = {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"}
UNLABELED = {"category": "HUBSPOT_DEFINED", "typeId": 341}
TO_LINE = {"category": "HUBSPOT_DEFINED", "typeId": 19}


def make() -> HubSpotConnector:
    return HubSpotConnector(HubSpotSettings(connector="hubspot", token="pat-test-token", base_url=BASE,
                                            rate_limit=1000, burst=1000, search_rate=1000, max_attempts=2))


def obj(rid: str, props: dict[str, str]) -> dict[str, Any]:
    return {"id": rid, "properties": {"hs_object_id": rid, "hs_lastmodifieddate": NOW, **props},
            "createdAt": NOW, "updatedAt": NOW, "archived": False}


def batch(results: list[Any], errors: list[Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": NOW, "completedAt": NOW}
    if errors:
        out.update(numErrors=len(errors), errors=errors)
    return out


def not_found(key: str) -> dict[str, Any]:
    return {"status": "error", "category": "OBJECT_NOT_FOUND", "message": f"No associations for {key}.",
            "context": {"fromObjectId": [key]}, "errors": [], "links": {}}


Handler = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def mock(method: str, path: str, handler: Handler, seen: list[dict[str, Any]]) -> None:
    """Answer ``path`` with ``handler(body)``, both sides checked against HubSpot's spec."""

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        validate_request(method, request.path_url, body)
        seen.append(body)
        status, payload = handler(body)
        validate_response(method, request.path_url, status, payload)
        return status, {"Content-Type": "application/json"}, json.dumps(payload)

    responses.add_callback(getattr(responses, method), BASE + path, callback=callback)


class FakePortal:
    """150 closed-won deals; deal 0 has 1,200 line items, the rest one each, one has none."""

    def __init__(self, deals: int = 150, big: int = 1200) -> None:
        self.deals = [str(1000 + n) for n in range(deals)]
        self.lines: dict[str, list[str]] = {d: [str(600_000 + n)] for n, d in enumerate(self.deals)}
        # Answered newest first: the connector must order lines by id itself.
        self.lines[self.deals[0]] = [str(500_000 + n) for n in reversed(range(big))]
        self.lines[self.deals[1]] = []
        self.companies: dict[str, list[dict[str, Any]]] = {
            d: [{"toObjectId": "77", "associationTypes": [PRIMARY, UNLABELED]}] for d in self.deals}
        self.companies[self.deals[0]] = [{"toObjectId": "5", "associationTypes": [UNLABELED]},
                                         {"toObjectId": "9", "associationTypes": [UNLABELED, PRIMARY]}]
        self.companies[self.deals[1]] = [{"toObjectId": "8", "associationTypes": [UNLABELED]},
                                         {"toObjectId": "6", "associationTypes": [UNLABELED]}]
        self.companies[self.deals[2]] = []
        self.search_bodies: list[dict[str, Any]] = []
        self.company_reads: list[dict[str, Any]] = []
        self.line_assoc_reads: list[dict[str, Any]] = []
        self.line_reads: list[dict[str, Any]] = []

    def install(self) -> None:
        mock("POST", "/crm/v3/objects/deals/search", self.search, self.search_bodies)
        mock("POST", "/crm/v4/associations/deals/companies/batch/read", self.assoc(self.companies),
             self.company_reads)
        mock("POST", "/crm/v4/associations/deals/line_items/batch/read", self.assoc(self.line_links),
             self.line_assoc_reads)
        mock("POST", "/crm/v3/objects/line_items/batch/read", self.read_lines, self.line_reads)

    @property
    def line_links(self) -> dict[str, list[dict[str, Any]]]:
        return {d: [{"toObjectId": i, "associationTypes": [TO_LINE]} for i in ids] for d, ids in self.lines.items()}

    def search(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        results = [obj(d, {"dealstage": "closedwon"}) for d in self.deals]
        return 200, {"total": len(results), "results": results}

    @staticmethod
    def assoc(table: dict[str, list[dict[str, Any]]]) -> Handler:
        def handler(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            results, errors = [], []
            for item in body["inputs"]:
                start = int(item.get("after") or 0)
                links = table.get(item["id"], [])
                if not links:
                    errors.append(not_found(item["id"]))
                    continue
                result: dict[str, Any] = {"from": {"id": item["id"]}, "to": links[start:start + ASSOC_PAGE]}
                if start + ASSOC_PAGE < len(links):
                    result["paging"] = {"next": {"after": str(start + ASSOC_PAGE)}}
                results.append(result)
            return (207 if errors else 200), batch(results, errors)
        return handler

    def read_lines(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        results = [obj(i["id"], {"hs_sku": f"SKU-{int(i['id']) % 7}", "quantity": "1", "price": "9.5",
                                 "name": "not asked for"}) for i in body["inputs"]]
        for result in results:  # only the asked properties come back
            result["properties"] = {k: v for k, v in result["properties"].items()
                                    if k in body["properties"] or k in ("hs_object_id", "hs_lastmodifieddate")}
        return 200, batch(results)


@responses.activate
def test_associations_page_past_100_deals_and_500_links_with_bounded_calls() -> None:
    portal = FakePortal()
    portal.install()
    c = make()
    (page,) = list(c.iter_changes(SPEC, None))
    by_id = {r.id: r for r in page.records}
    first, second, third = portal.deals[:3]

    lines = by_id[first].data["line_items"]
    assert len(lines) == 1200
    assert [line["hs_object_id"] for line in lines] == [str(500_000 + n) for n in range(1200)]
    assert lines[0] == {"hs_object_id": "500000", "hs_sku": f"SKU-{500_000 % 7}", "quantity": "1", "price": "9.5"}
    assert by_id[second].data["line_items"] == []
    assert [line["hs_object_id"] for line in by_id[portal.deals[-1]].data["line_items"]] == ["600149"]
    assert by_id[first].data["associations.companies"] == "9"  # primary, though 5 comes first
    assert by_id[second].data["associations.companies"] == "6"  # no primary: the lowest unlabeled id
    assert by_id[third].data["associations.companies"] is None

    # Deals go 100 at a time; the big deal's further pages are asked for by (id, after).
    assert [len(b["inputs"]) for b in portal.company_reads] == [100, 50]
    assert [b["inputs"] for b in portal.line_assoc_reads[2:]] == [[{"id": first, "after": "500"}],
                                                                  [{"id": first, "after": "1000"}]]
    assert len(portal.line_assoc_reads) == 4
    unique_lines = 1200 + 148
    assert len(portal.line_reads) == -(-unique_lines // 100)
    assert all(len(b["inputs"]) <= 100 and b["properties"] == list(ITEM_PATHS) for b in portal.line_reads)
    assert c.api_calls()["search"] == 1 and c.api_calls()["read"] == 2 + 4 + len(portal.line_reads)

    search = portal.search_bodies[0]
    assert "dealstage" in search["properties"]  # read, so listings can test it too
    assert not {"associations.companies", "line_items"} & set(search["properties"])
    assert {"propertyName": "dealstage", "operator": "IN", "values": ["closedwon"]} in \
        search["filterGroups"][0]["filters"]


@responses.activate
def test_an_unexpected_association_error_fails_the_page_instead_of_dropping_lines() -> None:
    portal = FakePortal(deals=3, big=2)
    portal.install()
    responses.replace(responses.POST, f"{BASE}/crm/v4/associations/deals/line_items/batch/read", status=207,
                      json=batch([], [{"status": "error", "category": "INTERNAL_ERROR", "message": "try later",
                                       "context": {}, "errors": [], "links": {}}]))
    with pytest.raises(RetryableError, match="INTERNAL_ERROR"):
        list(make().iter_changes(SPEC, None))


@responses.activate
def test_an_association_cursor_that_does_not_move_is_an_error_not_a_loop() -> None:
    portal = FakePortal(deals=3, big=2)
    portal.install()
    stuck = {"from": {"id": portal.deals[0]}, "to": [{"toObjectId": "1", "associationTypes": [TO_LINE]}],
             "paging": {"next": {"after": "500"}}}
    responses.replace(responses.POST, f"{BASE}/crm/v4/associations/deals/line_items/batch/read",
                      json=batch([stuck]))
    with pytest.raises(RetryableError, match="no progress"):
        list(make().iter_changes(SPEC, None))


# ------------------------------------------------------------------------------ units
def link(to_id: str, *types: tuple[str, int, str | None]) -> Link:
    return Link(to_id, tuple(AssociationType(*t) for t in types))


def test_primary_company_choice() -> None:
    unlabeled = ("HUBSPOT_DEFINED", 341, None)
    primary = ("HUBSPOT_DEFINED", 5, "Primary")
    user_label = ("USER_DEFINED", 12, "Billing")
    assert primary_id([link("30", unlabeled), link("20", unlabeled, primary)]) == "20"
    assert primary_id([link("30", unlabeled), link("4", unlabeled), link("100", unlabeled)]) == "4"
    assert primary_id([link("30", user_label), link("31", unlabeled)]) == "31"
    assert primary_id([link("30", user_label)]) is None
    assert primary_id([]) is None
    # A label "Primary" on a type id we do not know (another object pair) still counts.
    assert primary_id([link("2", unlabeled), link("3", ("HUBSPOT_DEFINED", 9999, "Primary"))]) == "3"


def spec_with(**options: Any) -> EntitySpec:
    return EntitySpec(entity="order", object="deals", id_field="hs_object_id", updated_field="hs_lastmodifieddate",
                      fields=("hs_object_id", "associations.companies", "associations.contacts", "line_items",
                              "dealname"), options=options)


def test_virtual_paths_are_recognised_and_generic() -> None:
    virtual = VirtualFields.of(spec_with(item_fields={"line_items": ["hs_sku", "quantity", "hs_sku"]}))
    assert virtual.singles == {"associations.companies": "companies", "associations.contacts": "contacts"}
    assert virtual.lists["line_items"].object == "line_items"
    assert virtual.lists["line_items"].properties == ("hs_sku", "quantity")
    assert virtual.object_types() == ["companies", "contacts", "line_items"]
    assert virtual.properties(["dealname", "line_items", "associations.companies", "hs_object_id"]) == \
        ["dealname", "hs_object_id"]
    aliased = VirtualFields.of(spec_with(item_fields={"line_items": ["hs_sku"]},
                                         associations={"line_items": "0-8"}))
    assert aliased.lists["line_items"].object == "0-8"
    # Without item fields, line_items is an ordinary (unknown) property: not virtual.
    assert not VirtualFields.of(spec_with()).is_virtual("line_items")
    with pytest.raises(ValidationError):
        VirtualFields.of(spec_with(item_fields={"line_items": []}))


def test_record_filters() -> None:
    filters = RecordFilters.of(spec_with(filters={"dealstage": ["closedwon", "contractsent"], "pipeline": "default"}))
    assert filters.search_filters() == [
        {"propertyName": "dealstage", "operator": "IN", "values": ["closedwon", "contractsent"]},
        {"propertyName": "pipeline", "operator": "IN", "values": ["default"]}]
    assert filters.properties == ["dealstage", "pipeline"]
    assert filters.matches({"dealstage": "contractsent", "pipeline": "default"})
    assert not filters.matches({"dealstage": "closedlost", "pipeline": "default"})
    assert not filters.matches({"pipeline": "default"})
    assert not RecordFilters.of(spec_with()) and RecordFilters.of(spec_with()).matches({})
    for bad in ({"dealstage": []}, ["closedwon"], {"dealstage": [{"x": 1}]},
                {"a": ["1"], "b": ["1"], "c": ["1"], "d": ["1"]}):
        with pytest.raises(ValidationError) as caught:
            RecordFilters.of(spec_with(filters=bad))
        assert caught.value.field == "filters"
