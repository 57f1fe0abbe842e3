"""iter_changes against a fake search endpoint that behaves like HubSpot's: one sort property,
ties in arbitrary order, integer offsets and a 400 beyond 10,000 results."""
from __future__ import annotations

import bisect
import json
import operator
import random
from datetime import datetime, timedelta, timezone

import pytest
import responses

from connectors.base import EntitySpec, Watermark, id_sort_key
from connectors.hubspot import HubSpotConnector, HubSpotSettings

BASE = "https://api.hubapi.test"
UPD = "hs_lastmodifieddate"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z in ms

SPEC = EntitySpec(entity="customer", object="companies", id_field="hs_object_id", updated_field=UPD,
                  fields=("name", "domain"), key_field="concord_erp_id")


OPS = {"GTE": operator.ge, "GT": operator.gt, "LTE": operator.le, "LT": operator.lt, "EQ": operator.eq}


def iso(ms: int) -> str:
    when = EPOCH + timedelta(milliseconds=ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class FakeSearch:
    """Just enough of POST /crm/v3/objects/companies/search to test paging strategies.

    Records are kept sorted by modified time so a 25,000-record store answers quickly; the order
    among equal sort values is shuffled on every request, as HubSpot promises none.
    """

    def __init__(self, stamps: dict[int, int], seed: int = 7) -> None:
        self.stamps = dict(stamps)  # id -> modified ms
        self.rng = random.Random(seed)
        self.bodies: list[dict] = []
        self.on_query = None  # hook(n) called before answering the n-th query
        self._order: list[tuple[int, int]] | None = None

    def touch(self, rid: int, ms: int) -> None:
        """Modify a record (it moves to its new place in the modified-time order)."""
        self.stamps[rid] = ms
        self._order = None

    def _value(self, rid: int, prop: str) -> int:
        return rid if prop == "hs_object_id" else self.stamps[rid]

    def _match(self, rid: int, flt: dict) -> bool:
        have, want, op = self._value(rid, flt["propertyName"]), int(flt["value"]), flt["operator"]
        return OPS[op](have, want)

    def _candidates(self, filters: list[dict]) -> list[int]:
        """Ids matching one AND-group: a bisected range of modified times, then the other filters."""
        if self._order is None:
            self._order = sorted((ms, rid) for rid, ms in self.stamps.items())
        order = self._order
        lo, hi = 0, len(order)
        for f in filters:
            if f["propertyName"] != UPD:
                continue
            v = int(f["value"])
            if f["operator"] in ("GTE", "GT"):
                cut = v if f["operator"] == "GTE" else v + 1
                lo = max(lo, bisect.bisect_left(order, (cut, -1)))
            elif f["operator"] in ("LTE", "LT"):
                cut = v + 1 if f["operator"] == "LTE" else v
                hi = min(hi, bisect.bisect_left(order, (cut, -1)))
        others = [f for f in filters if f["propertyName"] != UPD]
        return [rid for _, rid in order[lo:hi] if all(self._match(rid, f) for f in others)]

    def __call__(self, request):
        body = json.loads(request.body)
        self.bodies.append(body)
        if self.on_query:
            self.on_query(len(self.bodies))
        groups = body.get("filterGroups") or []
        assert len(groups) <= 1, "this fake answers one filter group"
        ids = self._candidates(groups[0]["filters"] if groups else [])
        (sort,) = body["sorts"]
        after, limit = int(body.get("after") or 0), int(body["limit"])
        assert limit <= 200
        if after + limit > 10_000:
            return (400, {}, json.dumps({"status": "error", "category": "VALIDATION_ERROR",
                                         "message": "paging beyond 10,000 results is not supported",
                                         "correlationId": "c0ffee00-0000-0000-0000-000000000000"}))
        key = {rid: (self._value(rid, sort["propertyName"]), self.rng.random()) for rid in ids}
        ids.sort(key=key.__getitem__)
        page = ids[after:after + limit]
        results = [{"id": str(rid), "properties": {UPD: iso(self.stamps[rid]), "hs_object_id": str(rid),
                                                   "name": f"Co {rid}", "createdate": iso(T0)},
                    "createdAt": iso(T0), "updatedAt": iso(self.stamps[rid]), "archived": False}
                   for rid in page]
        payload = {"total": len(ids), "results": results}
        if after + limit < len(ids):
            payload["paging"] = {"next": {"after": str(after + limit)}}
        return (200, {"Content-Type": "application/json"}, json.dumps(payload))


def make_connector(page_size: int = 200) -> HubSpotConnector:
    return HubSpotConnector(HubSpotSettings(connector="hubspot", token="pat-test-token", base_url=BASE,
                                            page_size=page_size, search_rate=10_000, rate_limit=10_000,
                                            burst=10_000))


def scan(fake: FakeSearch, since: Watermark | None = None, page_size: int = 200) -> list:
    connector = make_connector(page_size)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, f"{BASE}/crm/v3/objects/companies/search", callback=fake)
        # After the search, an incremental scan lists archived records (none here).
        mock.add(responses.GET, f"{BASE}/crm/v3/objects/companies", json={"results": []})
        mock.assert_all_requests_are_fired = False
        return [list(page.records) for page in connector.iter_changes(SPEC, since)]


def assert_in_order(records: list) -> None:
    keys = [(r.updated_at, id_sort_key(r.id)) for r in records]
    assert keys == sorted(keys)
    assert len({r.id for r in records}) == len(records), "a record was yielded twice"


def test_25000_records_on_five_timestamps_are_each_yielded_once_in_order() -> None:
    rng = random.Random(1)
    ids = rng.sample(range(1_000, 10_000_000), 25_000)
    fake = FakeSearch({rid: T0 + 1000 * (n % 5) for n, rid in enumerate(ids)})
    pages = scan(fake)
    records = [r for page in pages for r in page]
    assert {r.id for r in records} == {str(i) for i in ids}
    assert_in_order(records)
    # No request ever asked HubSpot to page past its 10,000-result cap.
    assert all(int(b.get("after") or 0) + b["limit"] <= 10_000 for b in fake.bodies)
    # Tie groups larger than a page were listed by id, not by offset.
    assert any(f["propertyName"] == "hs_object_id" for b in fake.bodies
               for g in b["filterGroups"] for f in g["filters"])


def test_25000_records_with_small_ties_span_windows_without_loss() -> None:
    fake = FakeSearch({rid: T0 + 7 * (rid // 3) for rid in range(1, 25_001)})  # ties of 3
    records = [r for page in scan(fake) for r in page]
    assert [r.id for r in records] == [str(i) for i in range(1, 25_001)]
    assert all(int(b.get("after") or 0) + b["limit"] <= 10_000 for b in fake.bodies)


def test_ties_across_a_page_boundary_keep_id_order() -> None:
    # 4 records share T0+5 and straddle the boundary of 5-record pages.
    stamps = {1: T0, 2: T0 + 1, 3: T0 + 2, 9: T0 + 5, 4: T0 + 5, 7: T0 + 5, 5: T0 + 5, 6: T0 + 9}
    for seed in range(20):  # many tie orders
        records = [r for page in scan(FakeSearch(stamps, seed=seed), page_size=5) for r in page]
        assert [r.id for r in records] == ["1", "2", "3", "4", "5", "7", "9", "6"]


def test_since_filters_with_gte_on_epoch_millis_and_records_carry_aware_utc() -> None:
    fake = FakeSearch({1: T0, 2: T0 + 10, 3: T0 + 20})
    since = Watermark(EPOCH + timedelta(milliseconds=T0 + 10, microseconds=900), "2")
    records = [r for page in scan(fake, since) for r in page]
    assert [r.id for r in records] == ["2", "3"]
    first = fake.bodies[0]
    assert first["filterGroups"] == [{"filters": [{"propertyName": UPD, "operator": "GTE",
                                                   "value": str(T0 + 10)}]}]
    assert first["sorts"] == [{"propertyName": UPD, "direction": "ASCENDING"}]
    assert set(first["properties"]) == {"name", "domain", UPD, "concord_erp_id"}
    assert records[0].updated_at == EPOCH + timedelta(milliseconds=T0 + 10)
    assert records[0].data["name"] == "Co 2" and records[0].deleted is False


def test_a_record_modified_mid_scan_does_not_make_the_scan_skip_another() -> None:
    # With offset paging, moving record 1 to the end shifts every later record up by one and
    # the first record of the next page is never seen. Fresh queries per page cannot skip.
    fake = FakeSearch({rid: T0 + rid for rid in range(1, 1_001)})
    late = T0 + 5_000

    def touch(n: int) -> None:
        if n == 2:
            fake.touch(1, late)

    fake.on_query = touch
    records = [r for page in scan(fake) for r in page]
    ids = [r.id for r in records]
    assert set(ids) == {str(i) for i in range(1, 1_001)}
    assert ids.count("1") == 2 and ids[-1] == "1"  # seen before and after its change
    assert records[-1].updated_at == EPOCH + timedelta(milliseconds=late)


def test_empty_result_yields_no_pages() -> None:
    assert scan(FakeSearch({})) == []


def test_long_property_lists_search_ids_then_batch_read() -> None:
    fields = tuple(f"custom_property_with_a_rather_long_name_{n:03d}" for n in range(80))
    spec = EntitySpec(entity="customer", object="companies", id_field="hs_object_id", updated_field=UPD,
                      fields=fields)
    fake = FakeSearch({1: T0, 2: T0 + 1})
    reads: list[dict] = []

    def batch_read(request):
        body = json.loads(request.body)
        reads.append(body)
        results = [{"id": i["id"], "properties": {UPD: iso(fake.stamps[int(i["id"])]), fields[0]: "x"},
                    "createdAt": iso(T0), "updatedAt": iso(T0), "archived": False} for i in body["inputs"]]
        return (200, {}, json.dumps({"status": "COMPLETE", "results": results,
                                     "startedAt": iso(T0), "completedAt": iso(T0)}))

    connector = make_connector()
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, f"{BASE}/crm/v3/objects/companies/search", callback=fake)
        mock.add_callback(responses.POST, f"{BASE}/crm/v3/objects/companies/batch/read", callback=batch_read)
        mock.add(responses.GET, f"{BASE}/crm/v3/objects/companies", json={"results": []})
        mock.assert_all_requests_are_fired = False
        records = [r for page in connector.iter_changes(spec, None) for r in page.records]
    assert fake.bodies[0]["properties"] == [UPD]
    assert len(json.dumps(fake.bodies[0])) <= 3000
    assert reads and len(reads[0]["properties"]) == 81
    assert [r.id for r in records] == ["1", "2"] and records[0].data[fields[0]] == "x"


@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_tiny_pages_still_terminate_and_cover_everything(page_size: int) -> None:
    stamps = {rid: T0 + (rid % 4) for rid in range(1, 30)}
    records = [r for page in scan(FakeSearch(stamps), page_size=page_size) for r in page]
    assert sorted(r.id for r in records) == sorted(str(i) for i in stamps)
    assert_in_order(records)


def test_an_incremental_scan_reports_records_archived_since_the_cursor() -> None:
    # Search never returns archived records; the archived list does, with archivedAt.
    fake = FakeSearch({1: T0})
    since = Watermark(EPOCH + timedelta(milliseconds=T0), "1")
    archived_at = EPOCH + timedelta(milliseconds=T0 + 500)
    old = EPOCH + timedelta(milliseconds=T0 - 86_400_000)
    listing = {"results": [
        {"id": "7", "properties": {"name": "Gone"}, "createdAt": "2020-01-01T00:00:00Z",
         "updatedAt": archived_at.isoformat().replace("+00:00", "Z"), "archived": True,
         "archivedAt": archived_at.isoformat().replace("+00:00", "Z")},
        {"id": "8", "properties": {"name": "Long gone"}, "createdAt": "2020-01-01T00:00:00Z",
         "updatedAt": old.isoformat().replace("+00:00", "Z"), "archived": True,
         "archivedAt": old.isoformat().replace("+00:00", "Z")}]}
    connector = make_connector(200)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, f"{BASE}/crm/v3/objects/companies/search", callback=fake)
        mock.add(responses.GET, f"{BASE}/crm/v3/objects/companies", json=listing)
        records = [r for page in connector.iter_changes(SPEC, since) for r in page.records]
        assert "archived=true" in mock.calls[-1].request.url
    gone = [r for r in records if r.deleted]
    assert [r.id for r in gone] == ["7"]
    assert gone[0].updated_at == archived_at
