"""HubSpot error classification and the retry behaviour it drives through HttpClient."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests
import responses
import tenacity

from connectors.base import (
    AuthError,
    EntitySpec,
    NotFound,
    RateLimited,
    RetryableError,
    ValidationError,
)
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.errors import classify

BASE = "https://api.hubapi.test"
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
SPEC = EntitySpec(entity="customer", object="companies", id_field="hs_object_id",
                  updated_field="hs_lastmodifieddate", fields=("name",), key_field="concord_erp_id")


def response(status: int, body: object = None, headers: dict | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body).encode() if body is not None else b""
    r.headers.update(headers or {})
    return r


def connector(**extra) -> HubSpotConnector:
    settings = {"connector": "hubspot", "token": TOKEN, "base_url": BASE, "rate_limit": 1000, "burst": 1000,
                "search_rate": 1000}
    settings.update(extra)
    return HubSpotConnector(HubSpotSettings(**settings))


class FakeTime:
    """Stands in for the time module inside tenacity.nap: records sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(tenacity.nap, "time", fake)
    return fake


def test_success_is_not_an_error() -> None:
    assert classify(response(200, {}), "hubspot") is None
    assert classify(response(207, {}), "hubspot") is None


def test_ten_secondly_429_waits_for_the_next_window() -> None:
    err = classify(response(429, {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                                  "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}), "hubspot")
    assert isinstance(err, RateLimited) and err.retry_after == 10.0


def test_search_secondly_429_waits_one_second() -> None:
    err = classify(response(429, {"status": "error", "message": "You have reached your secondly limit.",
                                  "category": "RATE_LIMITS"}), "hubspot")
    assert isinstance(err, RateLimited) and err.retry_after == 1.0


def test_daily_429_waits_until_midnight_utc() -> None:
    now = datetime(2025, 3, 4, 22, 30, tzinfo=timezone.utc)
    err = classify(response(429, {"status": "error", "message": "You have reached your daily limit.",
                                  "errorType": "RATE_LIMIT", "policyName": "DAILY"}), "hubspot", now=now)
    assert isinstance(err, RateLimited) and err.retry_after == 5400.0


def test_477_uses_retry_after_and_423_waits_two_seconds() -> None:
    migrating = classify(response(477, {"message": "Migration in progress"}, {"Retry-After": "3600"}), "hubspot")
    assert isinstance(migrating, RateLimited) and migrating.retry_after == 3600.0
    locked = classify(response(423, {"message": "Locked"}), "hubspot")
    assert isinstance(locked, RateLimited) and locked.retry_after == 2.0


def test_5xx_is_retryable_and_503_was_not_applied() -> None:
    bad_gateway = classify(response(502, {"message": "timeout"}), "hubspot")
    assert isinstance(bad_gateway, RetryableError) and bad_gateway.maybe_applied
    unavailable = classify(response(503, {"message": "down"}), "hubspot")
    assert isinstance(unavailable, RetryableError) and not unavailable.maybe_applied


def test_400_property_doesnt_exist_names_the_field() -> None:
    body = {"status": "error",
            "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"testproperty\\\" "
                       "does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"testproperty\"}]",
            "correlationId": "8a3f6c3a-8296-4002-b0a6-2a06fecf7c0c",
            "errors": [{"message": "Property \"testproperty\" does not exist", "code": "PROPERTY_DOESNT_EXIST",
                        "context": {"propertyName": ["testproperty"]}}],
            "category": "VALIDATION_ERROR"}
    err = classify(response(400, body), "hubspot")
    assert isinstance(err, ValidationError)
    assert err.field == "testproperty"
    assert 'Property "testproperty" does not exist' in err.message
    assert "8a3f6c3a" in err.message


def test_400_field_from_the_embedded_list_when_there_are_no_details() -> None:
    body = {"status": "error", "category": "VALIDATION_ERROR",
            "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"1570233600 is at "
                       "4:10:33.600 UTC, not midnight!\",\"error\":\"INVALID_DATE\",\"name\":\"closedate\"}]"}
    err = classify(response(400, body), "hubspot")
    assert isinstance(err, ValidationError) and err.field == "closedate"
    assert "not midnight" in err.message


def test_404_not_found_and_403_auth() -> None:
    assert isinstance(classify(response(404, {"category": "OBJECT_NOT_FOUND", "message": "gone"}), "hubspot"),
                      NotFound)
    err = classify(response(403, {"category": "MISSING_SCOPES", "message": "This app hasn't been granted all "
                                  "required scopes"}), "hubspot")
    assert isinstance(err, AuthError) and "MISSING_SCOPES" in err.message


@responses.activate
def test_401_raises_auth_error_without_leaking_the_token() -> None:
    responses.add(responses.GET, f"{BASE}/crm/v3/objects/companies", status=401,
                  json={"status": "error", "category": "INVALID_AUTHENTICATION",
                        "message": f"Authentication credentials not found: {TOKEN}",
                        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf"})
    with pytest.raises(AuthError) as caught:
        connector().check_connection()
    assert TOKEN not in str(caught.value) and "INVALID_AUTHENTICATION" in str(caught.value)
    assert len(responses.calls) == 1  # never retried
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@responses.activate
def test_ten_secondly_429_is_retried_after_ten_seconds(naps: FakeTime) -> None:
    url = f"{BASE}/crm/v3/objects/companies/batch/read"
    responses.add(responses.POST, url, status=429,
                  json={"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                        "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"})
    responses.add(responses.POST, url, status=200,
                  json={"status": "COMPLETE", "startedAt": "2025-01-01T00:00:00Z",
                        "completedAt": "2025-01-01T00:00:00Z",
                        "results": [{"id": "7", "properties": {"name": "Acme"}, "archived": False,
                                     "createdAt": "2025-01-01T00:00:00Z", "updatedAt": "2025-01-01T00:00:00Z"}]})
    c = connector()
    assert list(c.read(SPEC, ["7"])) == ["7"]
    assert len(naps.slept) == 1 and 10.0 <= naps.slept[0] <= 10.25
    assert c.api_calls()["read"] == 2


@responses.activate
def test_daily_429_is_not_retried(naps: FakeTime) -> None:
    responses.add(responses.POST, f"{BASE}/crm/v3/objects/companies/batch/read", status=429,
                  json={"status": "error", "message": "You have reached your daily limit.",
                        "errorType": "RATE_LIMIT", "policyName": "DAILY"})
    with pytest.raises(RateLimited) as caught:
        connector().read(SPEC, ["7"])
    assert caught.value.retry_after and caught.value.retry_after > 0
    assert naps.slept == [] or caught.value.retry_after <= 120  # only retried if midnight is close


def test_settings_size_the_buckets_from_the_tier() -> None:
    pro = HubSpotConnector(HubSpotSettings(connector="hubspot", token=TOKEN))
    free = HubSpotConnector(HubSpotSettings(connector="hubspot", token=TOKEN, tier="free"))
    for c, limit in ((pro, 190), (free, 100)):
        bucket = c.http.buckets["default"]
        assert bucket.capacity + 10 * bucket.rate <= limit + 1e-9  # never over the 10 s limit
        assert bucket.capacity >= 10
    search = pro.http.buckets["search"]
    assert search.capacity + search.rate <= 5
