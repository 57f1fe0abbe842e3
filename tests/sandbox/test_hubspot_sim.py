"""The HubSpot simulator over real HTTP, every response checked against HubSpot's OpenAPI files."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.core import Clock, Faults, Request, Response
from sandbox.hubspot import HubSpotSimulator, parse_time_ms, sign_v1, sign_v3
from tests.support.openapi import (
    ValidatingObserver,
    validate_request,
    validate_response,
)

REPO = Path(__file__).resolve().parents[2]
CO = "/crm/v3/objects/companies"


class Api:
    """A requests session that checks each request (unless told not to) and every response."""

    def __init__(self, sim: HubSpotSimulator, token: str | None = None) -> None:
        self.base = sim.base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or sim.token}"

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None, *,
             valid_request: bool = True, **kw: Any) -> requests.Response:
        if valid_request:
            validate_request(method, path, body, params)
        r = self.session.request(method, self.base + path, json=body, params=params, timeout=10, **kw)
        payload = r.json() if r.content else None
        validate_response(method, path, r.status_code, payload, params)
        return r

    def create(self, props: dict[str, str], path: str = CO, **kw: Any) -> dict[str, Any]:
        r = self.call("POST", path, {"properties": props, "associations": kw.pop("associations", [])})
        assert r.status_code == 201, r.text
        return r.json()

    def search(self, body: dict[str, Any], path: str = CO, **kw: Any) -> requests.Response:
        return self.call("POST", path + "/search", body, **kw)


@pytest.fixture
def sim() -> Iterator[HubSpotSimulator]:
    s = HubSpotSimulator(burst_limit=None, search_rate=None).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def api(sim: HubSpotSimulator) -> Api:
    return Api(sim)


def _is_uuid(text: str) -> bool:
    return str(uuid.UUID(text)) == text


def _filter(prop: str, op: str, value: Any = None, **kw: Any) -> dict[str, Any]:
    f: dict[str, Any] = {"propertyName": prop, "operator": op}
    if value is not None:
        f["value"] = value
    f.update(kw)
    return f


def _ids(r: requests.Response) -> list[str]:
    return [x["id"] for x in r.json()["results"]]


# ============================================================================ basic CRUD
def test_crud_status_codes_and_record_shape(sim: HubSpotSimulator, api: Api) -> None:
    observer = ValidatingObserver()
    sim.observers.append(observer)
    created = api.create({"name": "Acme", "domain": "acme.example", "numberofemployees": "12"})
    cid = created["id"]
    assert cid.isdigit() and int(cid) > 10**9
    assert created["properties"]["name"] == "Acme"
    assert created["properties"]["hs_object_id"] == cid
    assert created["archived"] is False
    assert created["createdAt"].endswith("Z") and len(created["createdAt"]) == 24

    got = api.call("GET", f"{CO}/{cid}", params={"properties": "name,numberofemployees"})
    assert got.status_code == 200
    assert got.json()["properties"]["numberofemployees"] == "12"  # every value is a string

    sim.clock.advance(5)
    patched = api.call("PATCH", f"{CO}/{cid}", {"properties": {"phone": "+49 30 1234567"}})
    assert patched.status_code == 200
    assert patched.json()["updatedAt"] > created["updatedAt"]
    assert patched.json()["properties"]["hs_lastmodifieddate"] == patched.json()["updatedAt"]

    cleared = api.call("PATCH", f"{CO}/{cid}", {"properties": {"phone": ""}})
    assert "phone" not in cleared.json()["properties"]  # an empty string clears the value

    assert api.call("DELETE", f"{CO}/{cid}").status_code == 204
    missing = api.call("GET", f"{CO}/{cid}")
    assert missing.status_code == 404
    assert missing.json()["category"] == "OBJECT_NOT_FOUND" and _is_uuid(missing.json()["correlationId"])
    archived = api.call("GET", f"{CO}/{cid}", params={"archived": "true"})
    assert archived.status_code == 200
    assert archived.json()["archived"] is True and "archivedAt" in archived.json()
    assert api.call("PATCH", f"{CO}/{cid}", {"properties": {"name": "x"}}).status_code == 404
    observer.assert_clean()
    assert observer.checked == 8


def test_object_type_by_id_and_name(api: Api) -> None:
    deal = api.create({"dealname": "Big", "dealstage": "qualifiedtobuy", "pipeline": "default", "amount": "100"},
                      path="/crm/v3/objects/0-3")
    by_name = api.call("GET", f"/crm/v3/objects/deals/{deal['id']}", params={"properties": "amount"})
    assert by_name.json()["properties"]["amount"] == "100"
    assert api.call("GET", "/crm/v3/objects/nothing", valid_request=False).status_code == 400


def test_get_and_patch_by_unique_id_property(sim: HubSpotSimulator, api: Api) -> None:
    sim.define_property("companies", "concord_id", unique=True)
    cid = api.create({"name": "Keyed", "concord_id": "erp-7"})["id"]
    got = api.call("GET", f"{CO}/erp-7", params={"idProperty": "concord_id"})
    assert got.status_code == 200 and got.json()["id"] == cid
    patched = api.call("PATCH", f"{CO}/erp-7", {"properties": {"city": "Lyon"}}, params={"idProperty": "concord_id"})
    assert patched.status_code == 200 and sim.get("companies", cid)["properties"]["city"] == "Lyon"


def test_invalid_property_is_400_property_doesnt_exist(api: Api) -> None:
    r = api.call("POST", CO, {"properties": {"name": "x", "testproperty": "1"}, "associations": []})
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    prefix = "Property values were not valid: "
    assert body["message"].startswith(prefix)
    detail = json.loads(body["message"][len(prefix):])
    assert detail[0]["isValid"] is False and detail[0]["error"] == "PROPERTY_DOESNT_EXIST"
    assert detail[0]["name"] == "testproperty" and detail[0]["message"] == 'Property "testproperty" does not exist'
    assert body["errors"] == [{"message": 'Property "testproperty" does not exist', "code": "PROPERTY_DOESNT_EXIST",
                               "context": {"propertyName": ["testproperty"]}}]


def test_value_validation_read_only_number_and_enumeration(api: Api) -> None:
    r = api.call("POST", CO, {"properties": {"hs_object_id": "1", "numberofemployees": "many",
                                             "lifecyclestage": "nope"}, "associations": []})
    assert r.status_code == 400
    codes = {e["context"]["propertyName"][0]: e["code"] for e in r.json()["errors"]}
    assert codes == {"hs_object_id": "READ_ONLY_VALUE", "numberofemployees": "INVALID_FLOAT",
                     "lifecyclestage": "INVALID_OPTION"}


# ============================================================================ list
def test_list_pages_with_opaque_cursor_and_no_paging_on_last_page(sim: HubSpotSimulator, api: Api) -> None:
    ids = sim.seed_companies(25)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10, "properties": "name,domain"}
        if after:
            params["after"] = after
        r = api.call("GET", CO, params=params)
        assert r.status_code == 200
        pages += 1
        seen += _ids(r)
        assert all(set(x["properties"]) >= {"name", "domain", "hs_object_id"} for x in r.json()["results"])
        paging = r.json().get("paging")
        if paging is None:
            break
        after = paging["next"]["after"]
    assert pages == 3 and seen == ids
    assert len(_ids(api.call("GET", CO, params={"limit": 500}))) == 25  # capped at 100 per page
    default = api.call("GET", CO)
    assert len(_ids(default)) == 10 and default.json()["paging"]["next"]["after"]


def test_list_archived_returns_only_archived(sim: HubSpotSimulator, api: Api) -> None:
    ids = sim.seed_companies(3)
    sim.archive("companies", ids[1])
    assert _ids(api.call("GET", CO, params={"archived": "true"})) == [ids[1]]
    assert _ids(api.call("GET", CO)) == [ids[0], ids[2]]


# ============================================================================ search
def test_search_operators_and_or_groups(sim: HubSpotSimulator, api: Api) -> None:
    a = sim.create("companies", {"name": "Alpha Foods GmbH", "city": "Berlin", "numberofemployees": "100",
                                 "domain": "alpha.de"})
    b = sim.create("companies", {"name": "Beta Logistics", "city": "Paris", "numberofemployees": "25"})
    c = sim.create("companies", {"name": "Gamma Labs", "city": "berlin", "numberofemployees": "7",
                                 "phone": "+1 512 555"})

    def find(*filters: dict[str, Any], groups: list[list[dict[str, Any]]] | None = None) -> set[str]:
        body = {"filterGroups": [{"filters": g} for g in (groups or [list(filters)])], "limit": 100}
        r = api.search(body)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["results"])
        return set(_ids(r))

    assert find(_filter("city", "EQ", "BERLIN")) == {a, c}  # string values compare case-insensitively
    assert find(_filter("city", "NEQ", "berlin")) == {b}
    # numbers compare numerically, not as strings ("7" > "25" as text)
    assert find(_filter("numberofemployees", "GT", "20")) == {a, b}
    assert find(_filter("numberofemployees", "LTE", "25")) == {b, c}
    assert find(_filter("numberofemployees", "BETWEEN", "7", highValue="25")) == {b, c}
    assert find(_filter("city", "IN", values=["paris", "tokyo"])) == {b}
    assert find(_filter("city", "NOT_IN", values=["paris"])) == {a, c}
    assert find(_filter("phone", "HAS_PROPERTY")) == {c}
    assert find(_filter("phone", "NOT_HAS_PROPERTY")) == {a, b}
    assert find(_filter("name", "CONTAINS_TOKEN", "logistics")) == {b}
    assert find(_filter("name", "CONTAINS_TOKEN", "gam*")) == {c}
    assert find(_filter("name", "NOT_CONTAINS_TOKEN", "labs")) == {a, b}
    assert find(_filter("hs_object_id", "EQ", a)) == {a}
    assert find(groups=[[_filter("city", "EQ", "paris")], [_filter("numberofemployees", "LT", "10")]]) == {b, c}
    assert find(_filter("city", "EQ", "berlin"), _filter("numberofemployees", "GT", "50")) == {a}
    r = api.search({"query": "alpha", "limit": 10})
    assert _ids(r) == [a]


def test_search_dates_accept_epoch_ms_and_iso(sim: HubSpotSimulator, api: Api) -> None:
    sim.clock.freeze(datetime(2025, 1, 1, tzinfo=UTC))
    old = sim.create("companies", {"name": "Old"})
    sim.clock.advance(3600)
    new = sim.create("companies", {"name": "New"})
    cut_ms = str(parse_time_ms("2025-01-01T00:30:00Z"))
    for value in (cut_ms, "2025-01-01T00:30:00.000Z"):
        r = api.search({"filterGroups": [{"filters": [_filter("hs_lastmodifieddate", "GTE", value)]}]})
        assert _ids(r) == [new], value
    r = api.search({"filterGroups": [{"filters": [_filter("createdate", "LT", cut_ms)]}]})
    assert _ids(r) == [old]


def test_search_sorts_by_modified_then_id_and_pages_by_offset(sim: HubSpotSimulator, api: Api) -> None:
    sim.clock.freeze(datetime(2025, 3, 1, tzinfo=UTC))
    first = [sim.create("companies", {"name": f"c{i}"}) for i in range(3)]  # same timestamp: ties
    sim.clock.advance(1)
    later = sim.create("companies", {"name": "later"})
    sim.clock.advance(1)
    sim.update("companies", first[0], {"city": "Rome"})  # moves to the end
    body = {"filterGroups": [{"filters": [_filter("hs_lastmodifieddate", "GTE", "0")]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["name"], "limit": 2, "after": "0"}
    page1 = api.search(body)
    assert page1.json()["total"] == 4 and _ids(page1) == [first[1], first[2]]
    assert page1.json()["paging"]["next"]["after"] == "2"
    props = page1.json()["results"][0]["properties"]
    assert set(props) == {"name", "hs_object_id", "createdate", "hs_lastmodifieddate"}
    page2 = api.search({**body, "after": "2"})
    assert _ids(page2) == [later, first[0]] and "paging" not in page2.json()
    desc = api.search({**body, "limit": 10, "sorts": [{"propertyName": "hs_lastmodifieddate",
                                                       "direction": "DESCENDING"}]})
    assert _ids(desc) == [first[0], later, first[2], first[1]]
    by_name = api.search({"sorts": [{"propertyName": "name", "direction": "DESCENDING"}], "limit": 10})
    assert _ids(by_name) == [later, first[2], first[1], first[0]]
    unsorted = api.search({"limit": 10})  # oldest created first
    assert _ids(unsorted) == [*first, later]


def test_search_default_properties_and_contacts_modified_property(api: Api) -> None:
    api.create({"name": "N", "domain": "n.example", "city": "Oslo"})
    props = api.search({}).json()["results"][0]["properties"]
    assert set(props) == {"name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"}
    api.create({"email": "ada@example.com", "firstname": "Ada"}, path="/crm/v3/objects/contacts")
    r = api.search({"filterGroups": [{"filters": [_filter("lastmodifieddate", "GTE", "0")]}]},
                   path="/crm/v3/objects/contacts")
    assert set(r.json()["results"][0]["properties"]) >= {"lastmodifieddate", "email", "firstname"}


def test_search_never_returns_archived(sim: HubSpotSimulator, api: Api) -> None:
    ids = sim.seed_companies(4)
    api.call("DELETE", f"{CO}/{ids[2]}")
    r = api.search({"filterGroups": [{"filters": [_filter("hs_lastmodifieddate", "GTE", "0")]}], "limit": 10})
    assert _ids(r) == [ids[0], ids[1], ids[3]] and r.json()["total"] == 3


def test_search_10000_result_cap(api: Api, sim: HubSpotSimulator) -> None:
    sim.seed_companies(10_050)
    body = {"filterGroups": [{"filters": [_filter("hs_lastmodifieddate", "GTE", "0")]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], "limit": 200}
    near = api.search({**body, "after": "9800"})
    assert near.status_code == 200 and near.json()["total"] == 10_050
    assert len(near.json()["results"]) == 200 and near.json()["paging"]["next"]["after"] == "10000"
    clipped = api.search({**body, "after": "9900"})
    assert len(clipped.json()["results"]) == 100  # nothing past the 10,000th result
    beyond = api.search({**body, "after": "10000"})
    assert beyond.status_code == 400 and beyond.json()["category"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("body, fragment", [
    ({"limit": 201}, "limit"),
    ({"filterGroups": [{"filters": [_filter("name", "HAS_PROPERTY")]}] * 6}, "filter groups"),
    ({"filterGroups": [{"filters": [_filter("name", "HAS_PROPERTY")] * 7}]}, "filters in a filter group"),
    ({"filterGroups": [{"filters": [_filter("name", "HAS_PROPERTY")] * 5}] * 4}, "Too many filters: 20"),
    ({"sorts": [{"propertyName": "name", "direction": "ASCENDING"}] * 2}, "one sort"),
    ({"filterGroups": [{"filters": [_filter("nope", "EQ", "1")]}]}, "does not exist"),
    ({"query": "x" * 3001}, "characters"),
])
def test_search_validation_errors(api: Api, body: dict[str, Any], fragment: str) -> None:
    r = api.search(body)
    assert r.status_code == 400, r.text
    assert r.json()["category"] == "VALIDATION_ERROR" and fragment in r.json()["message"]


# ============================================================================ batch
def test_batch_read_reports_missing_ids_in_207(sim: HubSpotSimulator, api: Api) -> None:
    ids = sim.seed_companies(2)
    r = api.call("POST", f"{CO}/batch/read", {"inputs": [{"id": ids[0]}, {"id": "999"}, {"id": ids[1]}],
                                              "properties": ["name"], "propertiesWithHistory": []})
    assert r.status_code == 207
    body = r.json()
    assert [x["id"] for x in body["results"]] == [ids[0], ids[1]]
    assert body["numErrors"] == 1 and body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"] == {"ids": ["999"]}
    ok = api.call("POST", f"{CO}/batch/read", {"inputs": [{"id": ids[0]}], "properties": [],
                                               "propertiesWithHistory": []})
    assert ok.status_code == 200 and ok.json()["status"] == "COMPLETE" and "errors" not in ok.json()


def test_batch_read_by_unique_property_and_archived(sim: HubSpotSimulator, api: Api) -> None:
    sim.define_property("companies", "erp_key", unique=True)
    cid = sim.create("companies", {"name": "K", "erp_key": "E-1"})
    r = api.call("POST", f"{CO}/batch/read", {"inputs": [{"id": "E-1"}], "idProperty": "erp_key",
                                              "properties": ["name"], "propertiesWithHistory": []})
    assert r.status_code == 200 and r.json()["results"][0]["id"] == cid
    assert r.json()["results"][0]["properties"]["erp_key"] == "E-1"
    sim.archive("companies", cid)
    body = {"inputs": [{"id": cid}], "properties": ["name"], "propertiesWithHistory": []}
    assert api.call("POST", f"{CO}/batch/read", body).status_code == 207
    archived = api.call("POST", f"{CO}/batch/read", body, params={"archived": "true"})
    assert archived.status_code == 200 and archived.json()["results"][0]["archived"] is True


def test_batch_create_201_and_input_limit(sim: HubSpotSimulator, api: Api) -> None:
    inputs = [{"properties": {"name": f"n{i}"}, "associations": []} for i in range(3)]
    r = api.call("POST", f"{CO}/batch/create", {"inputs": inputs})
    assert r.status_code == 201 and len(r.json()["results"]) == 3
    too_many = api.call("POST", f"{CO}/batch/create", {"inputs": inputs * 34})
    assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"
    assert len(sim.all("companies")) == 3


def test_batch_create_invalid_input_without_trace_ids_fails_whole_batch(sim: HubSpotSimulator, api: Api) -> None:
    inputs = [{"properties": {"name": "ok"}, "associations": []},
              {"properties": {"missing": "1"}, "associations": []}]
    r = api.call("POST", f"{CO}/batch/create", {"inputs": inputs})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert sim.all("companies") == []


def test_batch_create_with_trace_ids_is_207_partial(sim: HubSpotSimulator, api: Api) -> None:
    inputs = [{"objectWriteTraceId": "t-1", "properties": {"name": "ok"}, "associations": []},
              {"objectWriteTraceId": "t-2", "properties": {"missing": "1"}, "associations": []}]
    r = api.call("POST", f"{CO}/batch/create", {"inputs": inputs})
    assert r.status_code == 207
    body = r.json()
    assert len(body["results"]) == 1 and body["results"][0]["properties"]["name"] == "ok"
    assert body["numErrors"] == 1 and body["errors"][0]["context"] == {"objectWriteTraceId": ["t-2"]}
    assert "PROPERTY_DOESNT_EXIST" in body["errors"][0]["message"]
    assert [c["properties"]["name"] for c in sim.all("companies")] == ["ok"]


def test_batch_update_missing_id_in_207_and_duplicate_ids_400(sim: HubSpotSimulator, api: Api) -> None:
    ids = sim.seed_companies(2)
    r = api.call("POST", f"{CO}/batch/update", {"inputs": [{"id": ids[0], "properties": {"city": "Oslo"}},
                                                           {"id": "42", "properties": {"city": "Oslo"}}]})
    assert r.status_code == 207
    assert r.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert r.json()["errors"][0]["context"]["ids"] == ["42"]
    assert sim.get("companies", ids[0])["properties"]["city"] == "Oslo"
    ok = api.call("POST", f"{CO}/batch/update", {"inputs": [{"id": ids[1], "properties": {"city": "Bern"}}]})
    assert ok.status_code == 200 and ok.json()["results"][0]["properties"]["city"] == "Bern"
    dup = api.call("POST", f"{CO}/batch/update", {"inputs": [{"id": ids[1], "properties": {}}] * 2})
    assert dup.status_code == 400


def test_batch_upsert_new_flag_is_idempotent(sim: HubSpotSimulator, api: Api) -> None:
    sim.define_property("companies", "concord_id", unique=True)
    body = {"inputs": [{"id": "k1", "idProperty": "concord_id", "properties": {"name": "One"}},
                       {"id": "k2", "idProperty": "concord_id", "properties": {"name": "Two"}}]}
    first = api.call("POST", f"{CO}/batch/upsert", body)
    assert first.status_code == 200
    assert [x["new"] for x in first.json()["results"]] == [True, True]
    assert first.json()["results"][0]["properties"]["concord_id"] == "k1"
    body["inputs"][1]["properties"]["name"] = "Two bis"
    second = api.call("POST", f"{CO}/batch/upsert", body)
    assert [x["new"] for x in second.json()["results"]] == [False, False]
    assert [x["id"] for x in second.json()["results"]] == [x["id"] for x in first.json()["results"]]
    names = sorted(c["properties"]["name"] for c in sim.all("companies"))
    assert names == ["One", "Two bis"]


def test_batch_upsert_needs_a_unique_id_property(api: Api) -> None:
    r = api.call("POST", f"{CO}/batch/upsert",
                 {"inputs": [{"id": "acme.com", "idProperty": "domain", "properties": {"name": "A"}}]})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"


def test_batch_archive_is_204(sim: HubSpotSimulator, api: Api) -> None:
    ids = sim.seed_companies(3)
    r = api.call("POST", f"{CO}/batch/archive", {"inputs": [{"id": ids[0]}, {"id": ids[2]}, {"id": "7"}]})
    assert r.status_code == 204 and r.content == b""
    assert [c["id"] for c in sim.all("companies")] == [ids[1]]
    assert len(sim.all("companies", include_archived=True)) == 3


# ============================================================================ unique values
def test_unique_property_conflicts(sim: HubSpotSimulator, api: Api) -> None:
    sim.define_property("companies", "concord_id", unique=True)
    holder = api.create({"name": "A", "concord_id": "x-1"})["id"]
    dup = api.call("POST", CO, {"properties": {"name": "B", "concord_id": "x-1"}, "associations": []})
    assert dup.status_code == 409 and dup.json()["category"] == "CONFLICT"
    assert dup.json()["message"].endswith(f"Existing ID: {holder}")
    other = api.create({"name": "C", "concord_id": "x-2"})["id"]
    patch = api.call("PATCH", f"{CO}/{other}", {"properties": {"concord_id": "x-1"}})
    assert patch.status_code == 409
    batch = api.call("POST", f"{CO}/batch/create", {"inputs": [
        {"properties": {"name": "D", "concord_id": "x-3"}, "associations": []},
        {"properties": {"name": "E", "concord_id": "x-3"}, "associations": []}]})
    assert batch.status_code == 207 and batch.json()["errors"][0]["category"] == "CONFLICT"
    assert len(sim.all("companies")) == 3
    # a value freed by clearing it can be used again
    api.call("PATCH", f"{CO}/{holder}", {"properties": {"concord_id": ""}})
    assert api.call("PATCH", f"{CO}/{other}", {"properties": {"concord_id": "x-1"}}).status_code == 200


def test_contact_email_is_unique_case_insensitively(api: Api) -> None:
    path = "/crm/v3/objects/contacts"
    first = api.create({"email": "Luke@Example.com"}, path=path)["id"]
    r = api.call("POST", path, {"properties": {"email": "luke@example.com"}, "associations": []})
    assert r.status_code == 409 and r.json()["message"] == f"Contact already exists. Existing ID: {first}"


# ============================================================================ properties API
def test_properties_api(api: Api) -> None:
    listed = api.call("GET", "/crm/v3/properties/companies")
    names = {p["name"] for p in listed.json()["results"]}
    assert {"name", "domain", "website", "phone", "city", "zip", "country", "hs_object_id"} <= names
    assert api.call("GET", "/crm/v3/properties/companies/nope").status_code == 404
    spec = {"groupName": "companyinformation", "name": "concord_id", "label": "Concord id", "type": "string",
            "fieldType": "text", "hasUniqueValue": True}
    created = api.call("POST", "/crm/v3/properties/companies", spec)
    assert created.status_code == 201 and created.json()["hasUniqueValue"] is True
    assert created.json()["hubspotDefined"] is False
    again = api.call("POST", "/crm/v3/properties/companies", spec)
    assert again.status_code == 409
    got = api.call("GET", "/crm/v3/properties/companies/concord_id")
    assert got.status_code == 200 and got.json()["label"] == "Concord id"
    bad = api.call("POST", "/crm/v3/properties/companies", {**spec, "name": "n2", "type": "number"})
    assert bad.status_code == 400  # fieldType text does not fit type number
    no_group = api.call("POST", "/crm/v3/properties/companies", {**spec, "name": "n3", "groupName": "nowhere"})
    assert no_group.status_code == 400
    read = api.call("POST", "/crm/v3/properties/companies/batch/read",
                    {"inputs": [{"name": "concord_id"}, {"name": "ghost"}], "archived": False,
                     "dataSensitivity": "non_sensitive"})
    assert read.status_code == 207 and [p["name"] for p in read.json()["results"]] == ["concord_id"]
    # the new property is writable and, being unique, usable for upsert
    up = api.call("POST", f"{CO}/batch/upsert",
                  {"inputs": [{"id": "u1", "idProperty": "concord_id", "properties": {"name": "U"}}]})
    assert up.status_code == 200 and up.json()["results"][0]["new"] is True


def test_standard_properties_of_other_objects(api: Api) -> None:
    for obj, expected in {"deals": {"dealname", "dealstage", "pipeline", "amount", "closedate"},
                          "products": {"name", "price", "hs_sku", "description"},
                          "line_items": {"quantity", "price", "amount", "hs_product_id", "hs_sku", "name",
                                         "discount"}}.items():
        names = {p["name"] for p in api.call("GET", f"/crm/v3/properties/{obj}").json()["results"]}
        assert expected <= names, obj


def test_line_item_copies_its_product_and_computes_amount(api: Api) -> None:
    product = api.create({"name": "Widget", "price": "9.50", "hs_sku": "W-1"}, path="/crm/v3/objects/products")
    line = api.create({"hs_product_id": product["id"], "quantity": "4", "discount": "0.50"},
                      path="/crm/v3/objects/line_items")
    props = line["properties"]
    assert (props["name"], props["price"], props["hs_sku"], props["amount"]) == ("Widget", "9.50", "W-1", "36")


# ============================================================================ associations
def test_associations_on_create_and_v4_reads_are_symmetric(sim: HubSpotSimulator, api: Api) -> None:
    company = api.create({"name": "Buyer"})["id"]
    deal = api.create({"dealname": "D1", "dealstage": "closedwon", "pipeline": "default"}, path="/crm/v3/objects/deals",
                      associations=[{"to": {"id": company}, "types": [
                          {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}])["id"]
    from_deal = api.call("GET", f"/crm/v4/objects/deals/{deal}/associations/companies")
    assert from_deal.json()["results"] == [{"toObjectId": company, "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"},
        {"category": "HUBSPOT_DEFINED", "typeId": 341}]}]
    from_company = api.call("GET", f"/crm/v4/objects/companies/{company}/associations/deals")
    assert {t["typeId"] for t in from_company.json()["results"][0]["associationTypes"]} == {6, 342}
    v3 = api.call("GET", f"/crm/v3/objects/deals/{deal}", params={"associations": "companies"})
    assert {a["type"] for a in v3.json()["associations"]["companies"]["results"]} == {
        "deal_to_company", "deal_to_company_unlabeled"}


def test_v4_default_put_batch_create_read_and_archive(sim: HubSpotSimulator, api: Api) -> None:
    deal = sim.create("deals", {"dealname": "D", "dealstage": "closedwon", "pipeline": "default"})
    items = [sim.create("line_items", {"name": f"L{i}", "quantity": "1", "price": "2"}) for i in range(3)]
    put = api.call("PUT", f"/crm/v4/objects/deals/{deal}/associations/default/line_items/{items[0]}")
    assert put.status_code == 200
    assert put.json()["results"][0]["associationSpec"]["associationTypeId"] == 19
    back = api.call("GET", f"/crm/v4/objects/line_items/{items[0]}/associations/deals")
    assert back.json()["results"][0]["associationTypes"][0]["typeId"] == 20
    created = api.call("POST", "/crm/v4/associations/deals/line_items/batch/create", {"inputs": [
        {"from": {"id": deal}, "to": {"id": items[1]},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 19}]},
        {"from": {"id": deal}, "to": {"id": "404"},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 19}]}]})
    assert created.status_code == 207 and created.json()["results"][0]["toObjectId"] == items[1]
    default = api.call("POST", "/crm/v4/associations/deals/line_items/batch/associate/default",
                       {"inputs": [{"from": {"id": deal}, "to": {"id": items[2]}}]})
    assert default.status_code == 200
    read = api.call("POST", "/crm/v4/associations/deals/line_items/batch/read",
                    {"inputs": [{"id": deal}, {"id": items[0]}]})
    assert read.status_code == 207  # the line item id has no deal->line item associations of its own
    assert sorted(t["toObjectId"] for t in read.json()["results"][0]["to"]) == sorted(items)
    assert read.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    archived = api.call("POST", "/crm/v4/associations/deals/line_items/batch/archive",
                        {"inputs": [{"from": {"id": deal}, "to": [{"id": items[0]}]}]})
    assert archived.status_code == 204
    assert set(sim.associations("deals", deal, "line_items")) == {items[1], items[2]}
    assert sim.associations("line_items", items[0], "deals") == {}
    # The labels endpoint belongs to the association-schema API, which has no file among the specs.
    labels = api.session.get(api.base + "/crm/v4/associations/deals/companies/labels", timeout=10)
    assert {x["typeId"] for x in labels.json()["results"]} == {5, 341}


def test_create_with_invalid_association_type_is_400(sim: HubSpotSimulator, api: Api) -> None:
    company = sim.create("companies", {"name": "X"})
    r = api.call("POST", "/crm/v3/objects/deals", {"properties": {"dealname": "D", "dealstage": "closedwon",
                                                                  "pipeline": "default"},
                                                   "associations": [{"to": {"id": company}, "types": [
                                                       {"associationCategory": "HUBSPOT_DEFINED",
                                                        "associationTypeId": 19}]}]})
    assert r.status_code == 400 and sim.all("deals") == []


# ============================================================================ auth and limits
def test_401_without_or_with_a_wrong_token(sim: HubSpotSimulator) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        r = requests.get(sim.base_url + CO, headers=headers, timeout=10)
        assert r.status_code == 401
        body = r.json()
        validate_response("GET", CO, 401, body)
        assert body["category"] == "INVALID_AUTHENTICATION" and body["status"] == "error"
        assert _is_uuid(body["correlationId"])


class FakeTime:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_limit_429_and_headers() -> None:
    fake = FakeTime()
    with HubSpotSimulator(burst_limit=(3, 10.0), search_rate=None, rate_clock=fake) as sim:
        api = Api(sim)
        first = api.call("GET", CO)
        assert first.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert first.headers["X-HubSpot-RateLimit-Remaining"] == "2"
        assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert "X-HubSpot-RateLimit-Daily" in first.headers and "X-HubSpot-RateLimit-Daily-Remaining" in first.headers
        api.call("GET", CO)
        api.call("GET", CO)
        limited = api.call("GET", CO)
        assert limited.status_code == 429 and "Retry-After" not in limited.headers
        body = limited.json()
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
        assert body["status"] == "error" and _is_uuid(body["correlationId"])
        fake.now += 9.9
        assert api.call("GET", CO).status_code == 429
        fake.now += 0.2  # the first three requests leave the rolling window
        assert api.call("GET", CO).status_code == 200


def test_search_has_its_own_limit_and_no_rate_headers() -> None:
    fake = FakeTime()
    with HubSpotSimulator(burst_limit=(2, 10.0), search_rate=5, rate_clock=fake) as sim:
        api = Api(sim)
        statuses = [api.search({}).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]  # not limited by the 2-per-10s burst bucket
        limited = api.search({})
        assert limited.json()["message"] == "You have reached your secondly limit."
        assert limited.json()["errorType"] == "RATE_LIMIT"
        ok_headers = api.search({}, ).headers
        assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in ok_headers)
        fake.now += 1.0
        ok = api.search({})
        assert ok.status_code == 200
        assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in ok.headers)


def test_daily_limit() -> None:
    with HubSpotSimulator(burst_limit=None, search_rate=None, daily_limit=2) as sim:
        api = Api(sim)
        first = api.call("GET", CO)
        assert first.headers["X-HubSpot-RateLimit-Daily"] == "2"
        assert first.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "1"
        api.call("GET", CO)
        limited = api.call("GET", CO)
        assert limited.status_code == 429 and limited.json()["policyName"] == "DAILY"
        assert limited.json()["message"] == "You have reached your daily limit."
        sim.clock.advance(86_400)  # a new day
        assert api.call("GET", CO).status_code == 200


# ============================================================================ faults
def test_injected_5xx_is_hubspot_shaped() -> None:
    with HubSpotSimulator(burst_limit=None, faults=Faults(error_rate=1.0)) as sim:
        r = Api(sim).call("GET", CO)
        assert r.status_code == 503 and r.json()["status"] == "error" and _is_uuid(r.json()["correlationId"])


def test_drop_after_applies_the_write_then_drops() -> None:
    with HubSpotSimulator(burst_limit=None, faults=Faults(drop_after_rate=1.0, writes_only=True)) as sim:
        with pytest.raises(requests.ConnectionError):
            requests.post(sim.base_url + CO, json={"properties": {"name": "Lost ack"}, "associations": []},
                          headers={"Authorization": f"Bearer {sim.token}"}, timeout=10)
        assert [c["properties"]["name"] for c in sim.all("companies")] == ["Lost ack"]
        # reads are not writes: they still answer
        assert Api(sim).call("GET", CO).status_code == 200


def test_partial_rate_fails_some_inputs_and_applies_the_others() -> None:
    faults = Faults(partial_rate=0.5, seed=3, paths=r"/batch/")
    with HubSpotSimulator(burst_limit=None, faults=faults) as sim:
        sim.define_property("companies", "concord_id", unique=True)
        inputs = [{"id": f"k{i}", "idProperty": "concord_id", "objectWriteTraceId": f"t{i}",
                   "properties": {"name": f"n{i}"}} for i in range(20)]
        r = Api(sim).call("POST", f"{CO}/batch/upsert", {"inputs": inputs})
        assert r.status_code == 207
        body = r.json()
        failed = {e["context"]["ids"][0] for e in body["errors"]}
        applied = {x["properties"]["concord_id"] for x in body["results"]}
        assert failed and applied and not failed & applied and len(failed) + len(applied) == 20
        assert {c["properties"]["concord_id"] for c in sim.all("companies")} == applied
        assert all(e["context"]["objectWriteTraceId"] for e in body["errors"])


# ============================================================================ webhooks
def test_signature_v3_official_vector() -> None:
    assert sign_v3("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "POST", "https://www.example.com/webhook_uri",
                   "{'example_field':'example_value'}", 1693657560000) == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
    body = ('[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
            '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
            '"changeFlag":"NEW","appId":54321}]')
    assert sign_v1("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", body) == \
        "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records each POST and answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append({"uri": f"http://{self.headers['Host']}{self.path}", "body": body,
                                       "headers": {k.lower(): v for k, v in self.headers.items()}})
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/hubspot?tenant=a"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [e for p in self.posts for e in json.loads(p["body"])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_webhooks_are_signed_batched_and_describe_changes(sim: HubSpotSimulator, api: Api,
                                                          receiver: Receiver) -> None:
    sim.configure_webhooks(receiver.url, client_secret="s3cret")
    cid = api.create({"name": "Hooked"})["id"]
    api.call("PATCH", f"{CO}/{cid}", {"properties": {"city": "Turin"}})
    sim.update("companies", cid, {"phone": "+39 011 555"})
    api.call("DELETE", f"{CO}/{cid}")
    assert sim.flush_webhooks()
    for post in receiver.posts:
        h = post["headers"]
        assert h["x-hubspot-signature-v3"] == sign_v3("s3cret", "POST", post["uri"], post["body"],
                                                      h["x-hubspot-request-timestamp"])
        assert h["x-hubspot-signature"] == sign_v1("s3cret", post["body"])
    events = receiver.events()
    kinds = [(e["subscriptionType"], e.get("propertyName")) for e in events]
    assert kinds == [("company.creation", None), ("company.propertyChange", "city"),
                     ("company.propertyChange", "phone"), ("company.deletion", None)]
    for e in events:
        assert e["objectId"] == int(cid) and e["portalId"] == sim.portal_id and e["appId"] == sim.app_id
        assert e["attemptNumber"] == 0 and isinstance(e["occurredAt"], int) and isinstance(e["eventId"], int)
    assert events[1]["propertyValue"] == "Turin" and events[1]["changeSource"] == "INTEGRATION"
    assert events[2]["changeSource"] == "CRM_UI"


def test_webhook_batches_hold_at_most_100_events(sim: HubSpotSimulator, receiver: Receiver) -> None:
    sim.configure_webhooks(receiver.url, batch_window=0.2)
    sim.seed_companies(250)
    assert sim.flush_webhooks()
    sizes = [len(json.loads(p["body"])) for p in receiver.posts]
    assert sum(sizes) == 250 and max(sizes) <= 100 and len(sizes) >= 3


def test_webhook_retries_non_2xx_with_attempt_number(sim: HubSpotSimulator) -> None:
    receiver = Receiver(statuses=[500, 503])
    try:
        sim.configure_webhooks(receiver.url, max_retries=3, retry_delay=0.01)
        sim.create("companies", {"name": "Retry me"})
        assert sim.flush_webhooks()
        assert [json.loads(p["body"])[0]["attemptNumber"] for p in receiver.posts] == [0, 1, 2]
        assert [d.status for d in sim.webhook_deliveries] == [500, 503, 204]
    finally:
        receiver.close()


def test_webhook_gives_up_after_max_retries(sim: HubSpotSimulator) -> None:
    receiver = Receiver(statuses=[500] * 10)
    try:
        sim.configure_webhooks(receiver.url, max_retries=2, retry_delay=0.01)
        sim.create("companies", {"name": "Never"})
        assert sim.flush_webhooks()
        assert len(receiver.posts) == 3
    finally:
        receiver.close()


def test_webhook_duplicates_knob(sim: HubSpotSimulator, receiver: Receiver) -> None:
    sim.configure_webhooks(receiver.url, duplicate_rate=1.0, reorder=True)
    ids = [sim.create("companies", {"name": f"d{i}"}) for i in range(5)]
    assert sim.flush_webhooks()
    delivered = [str(e["objectId"]) for e in receiver.events()]
    assert sorted(delivered) == sorted(ids * 2)


def test_no_webhooks_unless_configured(sim: HubSpotSimulator) -> None:
    sim.create("companies", {"name": "Quiet"})
    assert sim.flush_webhooks(timeout=1) and sim.webhook_deliveries == []


# ============================================================================ helpers and CLI
def test_seed_companies_is_deterministic_and_realistic() -> None:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    a, b = HubSpotSimulator(clock=Clock(frozen=at)), HubSpotSimulator(clock=Clock(frozen=at))
    a.seed_companies(500, faker_seed=7)
    b.seed_companies(500, faker_seed=7)
    rows_a = [c["properties"] for c in a.all("companies")]
    rows_b = [c["properties"] for c in b.all("companies")]
    assert rows_a == rows_b
    assert len({r["domain"] for r in rows_a}) == 500 and len({r["name"] for r in rows_a}) == 500
    assert all(r["phone"].startswith("+") and r["country"] and r["city"] and r["zip"] for r in rows_a)
    modified = [r["hs_lastmodifieddate"] for r in rows_a]
    assert modified == sorted(modified) and len(set(modified)) == 500 and modified[-1] == "2025-06-01T00:00:00.000Z"
    c = HubSpotSimulator()
    c.seed_companies(3, faker_seed=8, overrides={"lifecyclestage": "customer"})
    assert {r["properties"]["lifecyclestage"] for r in c.all("companies")} == {"customer"}
    assert [r["properties"]["name"] for r in c.all("companies")] != [r["name"] for r in rows_a[:3]]


def test_direct_edits_bump_updated_at_and_show_through_the_api(sim: HubSpotSimulator, api: Api) -> None:
    cid = sim.create("companies", {"name": "Edited"})
    before = sim.get("companies", cid)["updatedAt"]
    sim.clock.advance(2)
    sim.update("companies", cid, {"name": "Edited"})  # same value: a user saving still bumps it
    after = sim.get("companies", cid)
    assert after["updatedAt"] > before
    cut = str(parse_time_ms(after["updatedAt"]))
    r = api.search({"filterGroups": [{"filters": [_filter("hs_lastmodifieddate", "GTE", cut)]}]})
    assert _ids(r) == [cid]
    with pytest.raises(ValueError):
        sim.create("companies", {"no_such_property": "x"})
    sim.archive("companies", cid)
    assert api.call("GET", f"{CO}/{cid}").status_code == 404
    assert sim.get("companies", cid)["archived"] is True


def test_api_patch_without_changes_does_not_bump(sim: HubSpotSimulator, api: Api) -> None:
    cid = api.create({"name": "Same"})["id"]
    before = sim.get("companies", cid)["updatedAt"]
    sim.clock.advance(2)
    api.call("PATCH", f"{CO}/{cid}", {"properties": {"name": "Same"}})
    assert sim.get("companies", cid)["updatedAt"] == before


def test_validator_rejects_non_conforming_traffic() -> None:
    good = {"id": "1", "properties": {}, "createdAt": "2024-01-01T00:00:00.000Z",
            "updatedAt": "2024-01-01T00:00:00.000Z", "archived": False}
    validate_response("GET", f"{CO}/1", 200, good)
    with pytest.raises(AssertionError, match=r"results|id"):
        validate_response("GET", f"{CO}/1", 200, {**good, "id": 1})
    with pytest.raises(AssertionError, match=r"correlationId|category"):
        validate_response("GET", CO, 429, {"status": "error", "message": "x"})
    with pytest.raises(AssertionError, match="properties"):
        validate_request("POST", CO, {"associations": []})
    with pytest.raises(AssertionError, match="no HubSpot spec"):
        validate_request("GET", "/crm/v9/whatever")
    observer = ValidatingObserver()
    req = Request("POST", f"{CO}/batch/create", {}, {}, b'{"inputs": [{"properties": {"a": 1}}]}', "")
    observer(req, Response(201, {"results": []}))
    assert len(observer.failures) == 2  # the request (a number, no associations) and the response
    with pytest.raises(AssertionError):
        observer.assert_clean()


def test_main_runs_in_the_foreground_and_prints_what_it_accepts() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.hubspot", "--port", "0", "--seed", "3"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        while first and not first.startswith("HubSpot simulator at"):  # log lines may come first
            first = proc.stdout.readline()
        base = first.strip().rsplit(" ", 1)[-1]
        assert base.startswith("http://127.0.0.1:")
        token_line = proc.stdout.readline()
        secret_line = proc.stdout.readline()
        assert "sim-hubspot-token" in token_line and "sim-hubspot-secret" in secret_line
        r = requests.get(base + CO, headers={"Authorization": "Bearer sim-hubspot-token"}, timeout=10)
        assert r.status_code == 200 and len(r.json()["results"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
