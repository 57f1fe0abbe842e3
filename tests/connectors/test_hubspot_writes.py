"""write/archive/read/find_by_keys against mocked HubSpot batch endpoints."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses

from connectors.base import (
    AuthError,
    EntitySpec,
    NotFound,
    RetryableError,
    ValidationError,
    WriteOp,
)
from connectors.hubspot import HubSpotConnector, HubSpotSettings

BASE = "https://api.hubapi.test"
OBJ = f"{BASE}/crm/v3/objects/companies"
NOW = "2025-01-01T00:00:00.000Z"
SPEC = EntitySpec(entity="customer", object="companies", id_field="hs_object_id",
                  updated_field="hs_lastmodifieddate", fields=("name", "domain"), key_field="concord_erp_id")


def make() -> HubSpotConnector:
    return HubSpotConnector(HubSpotSettings(connector="hubspot", token="pat-test-token", base_url=BASE,
                                            rate_limit=1000, burst=1000, max_attempts=2, batch_size=100))


def obj(rid: str, props: dict, **extra) -> dict:
    return {"id": rid, "properties": {"hs_object_id": rid, "hs_lastmodifieddate": NOW, **props},
            "createdAt": NOW, "updatedAt": NOW, "archived": False, **extra}


def batch(results: list, errors: list | None = None) -> dict:
    out = {"status": "COMPLETE", "results": results, "startedAt": NOW, "completedAt": NOW}
    if errors:
        out.update(numErrors=len(errors), errors=errors)
    return out


def body(call) -> dict:
    return json.loads(call.request.body)


@responses.activate
def test_upsert_creates_by_key_and_reports_new() -> None:
    def upsert(request):
        inputs = json.loads(request.body)["inputs"]
        # answer in reverse order and without trace ids: matching must use the key property
        results = [dict(obj(str(900 + n), i["properties"]), new=(i["id"] == "ERP-1"))
                   for n, i in reversed(list(enumerate(inputs)))]
        return (200, {}, json.dumps(batch(results)))

    responses.add_callback(responses.POST, f"{OBJ}/batch/upsert", callback=upsert)
    ops = [WriteOp(ref="a", data={"name": "Acme", "credit": Decimal("1E+3")}, key="ERP-1"),
           WriteOp(ref="b", data={"name": "Beta", "domain": None}, key="ERP-2")]
    results = make().write(SPEC, ops)
    sent = body(responses.calls[0])["inputs"]
    assert sent[0] == {"id": "ERP-1", "idProperty": "concord_erp_id", "objectWriteTraceId": "a",
                       "properties": {"name": "Acme", "credit": "1000", "concord_erp_id": "ERP-1"}}
    assert sent[1]["properties"]["domain"] == ""  # None clears the property
    assert [(r.ref, r.ok, r.target_id, r.created) for r in results] == [("a", True, "900", True),
                                                                       ("b", True, "901", False)]
    assert results[0].record is not None and results[0].record.data["name"] == "Acme"


@responses.activate
def test_207_partial_failure_gives_per_record_results() -> None:
    responses.add(responses.POST, f"{OBJ}/batch/update", status=207, json=batch(
        [obj("11", {"name": "ok"}, objectWriteTraceId="r1")],
        [{"status": "error", "category": "VALIDATION_ERROR",
          "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"nope\\\" "
                     "does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"nope\"}]",
          "context": {"objectWriteTraceId": ["r2"]}},
         {"status": "error", "category": "OBJECT_NOT_FOUND",
          "message": "Could not get some COMPANY objects, they may be deleted or not exist.",
          "context": {"ids": ["13"]}}]))
    ops = [WriteOp(ref="r1", data={"name": "ok"}, target_id="11"),
           WriteOp(ref="r2", data={"nope": "x"}, target_id="12"),
           WriteOp(ref="r3", data={"name": "gone"}, target_id="13")]
    r1, r2, r3 = make().write(SPEC, ops)
    assert r1.ok and r1.target_id == "11" and not r1.created
    assert not r2.ok and isinstance(r2.error, ValidationError) and r2.error.field == "nope"
    assert not r3.ok and isinstance(r3.error, NotFound)
    assert body(responses.calls[0])["inputs"][1] == {"id": "12", "properties": {"nope": "x"},
                                                     "objectWriteTraceId": "r2"}


@responses.activate
def test_a_whole_batch_400_is_bisected_so_good_records_go_through() -> None:
    def update(request):
        inputs = json.loads(request.body)["inputs"]
        if any("bad" in i["properties"] for i in inputs):
            return (400, {}, json.dumps({"status": "error", "category": "VALIDATION_ERROR",
                                         "message": "Property \"bad\" does not exist",
                                         "errors": [{"message": "Property \"bad\" does not exist",
                                                     "code": "PROPERTY_DOESNT_EXIST",
                                                     "context": {"propertyName": ["bad"]}}]}))
        return (200, {}, json.dumps(batch([obj(i["id"], i["properties"], objectWriteTraceId=i["objectWriteTraceId"])
                                           for i in inputs])))

    responses.add_callback(responses.POST, f"{OBJ}/batch/update", callback=update)
    ops = [WriteOp(ref=f"r{n}", data={"bad" if n == 5 else "name": "x"}, target_id=str(n)) for n in range(8)]
    results = make().write(SPEC, ops)
    assert [r.ok for r in results] == [n != 5 for n in range(8)]
    assert isinstance(results[5].error, ValidationError) and results[5].error.field == "bad"
    assert len(responses.calls) <= 1 + 2 * 3  # log2(8) levels of halving


@responses.activate
def test_without_a_key_field_creates_use_batch_create_with_trace_ids() -> None:
    spec = EntitySpec(entity="order", object="deals", id_field="hs_object_id", updated_field="hs_lastmodifieddate",
                      fields=("dealname",))
    responses.add(responses.POST, f"{BASE}/crm/v3/objects/deals/batch/create", status=201,
                  json=batch([obj("5", {"dealname": "D2"}, objectWriteTraceId="o2"),
                              obj("4", {"dealname": "D1"}, objectWriteTraceId="o1")]))
    results = make().write(spec, [WriteOp(ref="o1", data={"dealname": "D1"}),
                                  WriteOp(ref="o2", data={"dealname": "D2"})])
    assert [(r.target_id, r.created) for r in results] == [("4", True), ("5", True)]
    sent = body(responses.calls[0])["inputs"]
    assert sent[0] == {"properties": {"dealname": "D1"}, "associations": [], "objectWriteTraceId": "o1"}


@responses.activate
def test_a_lost_create_acknowledgement_is_not_resent() -> None:
    spec = EntitySpec(entity="order", object="deals", id_field="hs_object_id", updated_field="hs_lastmodifieddate",
                      fields=("dealname",))
    responses.add(responses.POST, f"{BASE}/crm/v3/objects/deals/batch/create", status=502,
                  json={"status": "error", "message": "Bad gateway", "category": "UNKNOWN"})
    (result,) = make().write(spec, [WriteOp(ref="o1", data={"dealname": "D1"})])
    assert not result.ok and isinstance(result.error, RetryableError) and result.error.maybe_applied
    assert len(responses.calls) == 1


@responses.activate
def test_a_retryable_failure_stops_the_remaining_batches() -> None:
    responses.add(responses.POST, f"{OBJ}/batch/update", status=503, json={"message": "down", "category": "X"})
    ops = [WriteOp(ref=f"r{n}", data={"name": "x"}, target_id=str(n)) for n in range(150)]
    c = make()
    results = c.write(SPEC, ops)
    assert all(not r.ok and isinstance(r.error, RetryableError) for r in results)
    assert len(responses.calls) == 2  # first batch tried twice (max_attempts=2), second never sent
    assert c.api_calls()["write"] == 2


@responses.activate
def test_auth_errors_are_raised_not_reported_per_record() -> None:
    responses.add(responses.POST, f"{OBJ}/batch/update", status=401,
                  json={"message": "expired", "category": "INVALID_AUTHENTICATION"})
    with pytest.raises(AuthError):
        make().write(SPEC, [WriteOp(ref="r", data={"name": "x"}, target_id="1")])


def test_unsendable_values_fail_only_their_record() -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{OBJ}/batch/update", json=batch([obj("2", {"name": "y"}, objectWriteTraceId="b")]))
        bad, good = make().write(SPEC, [WriteOp(ref="a", data={"amount": Decimal("NaN")}, target_id="1"),
                                        WriteOp(ref="b", data={"name": "y"}, target_id="2")])
        assert len(mock.calls) == 1 and len(body(mock.calls[0])["inputs"]) == 1
    assert not bad.ok and isinstance(bad.error, ValidationError) and bad.error.field == "amount"
    assert good.ok


@responses.activate
def test_writes_are_chunked_by_batch_size() -> None:
    def update(request):
        inputs = json.loads(request.body)["inputs"]
        return (200, {}, json.dumps(batch([obj(i["id"], {}, objectWriteTraceId=i["objectWriteTraceId"])
                                           for i in inputs])))

    responses.add_callback(responses.POST, f"{OBJ}/batch/update", callback=update)
    results = make().write(SPEC, [WriteOp(ref=f"r{n}", data={"name": "x"}, target_id=str(n)) for n in range(250)])
    assert all(r.ok for r in results)
    assert [len(body(c)["inputs"]) for c in responses.calls] == [100, 100, 50]


@responses.activate
def test_read_skips_missing_ids_and_find_by_keys_maps_by_key() -> None:
    responses.add(responses.POST, f"{OBJ}/batch/read", status=207, json=batch(
        [obj("1", {"name": "A"})],
        [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some COMPANY objects",
          "context": {"ids": ["2"]}}]))
    responses.add(responses.POST, f"{OBJ}/batch/read", json=batch([obj("1", {"concord_erp_id": "erp-9"})]))
    c = make()
    found = c.read(SPEC, ["1", "2", "1"])
    assert list(found) == ["1"] and found["1"].data["name"] == "A"
    read_body = body(responses.calls[0])
    assert read_body["inputs"] == [{"id": "1"}, {"id": "2"}] and "idProperty" not in read_body
    assert responses.calls[0].request.url.endswith("archived=false")
    by_key = c.find_by_keys(SPEC, ["ERP-9", "erp-404"])
    assert list(by_key) == ["ERP-9"] and by_key["ERP-9"].id == "1"  # unique values match case-insensitively
    assert body(responses.calls[1])["idProperty"] == "concord_erp_id"


@responses.activate
def test_iter_all_lists_active_then_archived() -> None:
    responses.add(responses.GET, OBJ, json={"results": [obj("1", {})], "paging": {"next": {"after": "2"}}})
    responses.add(responses.GET, OBJ, json={"results": [obj("2", {})]})
    responses.add(responses.GET, OBJ, json={"results": [dict(obj("3", {}), archived=True)]})
    pages = list(make().iter_all(SPEC))
    assert [(r.id, r.deleted) for p in pages for r in p.records] == [("1", False), ("2", False), ("3", True)]
    queries = [c.request.url for c in responses.calls]
    assert "archived=false" in queries[0] and "after=2" in queries[1] and "archived=true" in queries[2]
    assert "limit=100" in queries[0] and "properties=name%2Cdomain" in queries[0]


@responses.activate
def test_archive_in_chunks() -> None:
    responses.add(responses.POST, f"{OBJ}/batch/archive", status=204)
    results = make().archive(SPEC, [str(n) for n in range(130)])
    assert all(r.ok for r in results) and len(results) == 130
    assert [len(body(c)["inputs"]) for c in responses.calls] == [100, 30]


@responses.activate
def test_setup_creates_missing_unique_property_and_tolerates_409() -> None:
    spec = EntitySpec(entity="customer", object="companies", id_field="hs_object_id",
                      updated_field="hs_lastmodifieddate", fields=("name",), key_field="concord_erp_id",
                      options={"custom_fields": {"concord_erp_id": {"type": "string", "unique": True},
                                                 "credit_limit": {"type": "number", "label": "Credit limit"},
                                                 "on_hold": {"type": "bool"}}})
    props = f"{BASE}/crm/v3/properties/companies"
    responses.add(responses.GET, f"{props}/concord_erp_id", status=404,
                  json={"status": "error", "category": "OBJECT_NOT_FOUND", "message": "not found"})
    responses.add(responses.GET, f"{props}/credit_limit", json={"name": "credit_limit", "hasUniqueValue": False})
    responses.add(responses.GET, f"{props}/on_hold", status=404, json={"message": "nf", "category": "OBJECT_NOT_FOUND"})
    c = make()
    assert c.missing_setup([spec]) == ["property companies.concord_erp_id (string, unique) does not exist",
                                       "property companies.on_hold (bool) does not exist"]
    responses.add(responses.POST, props, status=201, json={"name": "concord_erp_id"})
    responses.add(responses.POST, props, status=409, json={"status": "error", "category": "CONFLICT",
                                                            "message": "Property already exists"})
    assert c.setup([spec]) == ["property companies.concord_erp_id (string, unique)"]
    created = [body(call) for call in responses.calls if call.request.method == "POST"]
    assert created[0] == {"name": "concord_erp_id", "label": "Concord Erp Id", "type": "string",
                          "fieldType": "text", "groupName": "companyinformation", "hasUniqueValue": True}
    assert created[1]["type"] == "bool" and created[1]["fieldType"] == "booleancheckbox"
    assert {o["value"] for o in created[1]["options"]} == {"true", "false"}
    assert c.api_calls()["setup"] == 8


@responses.activate
def test_missing_setup_flags_a_key_property_that_is_not_unique() -> None:
    spec = EntitySpec(entity="customer", object="companies", id_field="hs_object_id",
                      updated_field="hs_lastmodifieddate", fields=(), key_field="k",
                      options={"custom_fields": {"k": {"type": "string", "unique": True}}})
    responses.add(responses.GET, f"{BASE}/crm/v3/properties/companies/k", json={"name": "k", "hasUniqueValue": False})
    (problem,) = make().missing_setup([spec])
    assert "not a unique-value property" in problem
