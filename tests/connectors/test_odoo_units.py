"""Odoo connector pieces without HTTP: settings, wire formats, error mapping, webhooks."""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pydantic
import pytest

from connectors.base import AuthError, NotFound, RetryableError, ValidationError, WebhookRejected, WebhookRequest
from connectors.odoo import OdooConnector, OdooSettings
from connectors.odoo.errors import OdooConfigError, error_from_payload, field_of
from connectors.odoo.values import and_domains, format_datetime, parse_datetime, same_value, to_odoo, xmlid_name
from connectors.registry import get


def settings(**kw: object) -> OdooSettings:
    base: dict[str, object] = {"url": "https://erp.example.com/", "db": "prod", "username": "u", "api_key": "k" * 8}
    base.update(kw)
    return OdooSettings(**base)  # type: ignore[arg-type]


# ------------------------------------------------------------------ settings
def test_settings_url_and_base_url_alias() -> None:
    assert settings().endpoint == "https://erp.example.com"
    alias = OdooSettings(base_url="http://127.0.0.1:8069", db="d", username="u", api_key="key!")
    assert alias.endpoint == "http://127.0.0.1:8069"
    assert (alias.page_size, alias.batch_size, alias.webhook_header) == (1000, 100, "X-Concord-Token")
    with pytest.raises(pydantic.ValidationError, match="url is required"):
        OdooSettings(db="d", username="u", api_key="key!")
    with pytest.raises(pydantic.ValidationError):
        settings(unknown=1)


def test_registry_and_class_attributes() -> None:
    assert get("odoo") is OdooConnector
    assert (OdooConnector.name, OdooConnector.settings_model, OdooConnector.default_mapping) == \
        ("odoo", OdooSettings, "odoo.yaml")
    conn = OdooConnector(settings(page_size=50, batch_size=20))
    caps = conn.capabilities()
    assert (caps.page_size, caps.batch_size, caps.upsert, caps.webhooks) == (50, 20, False, True)
    assert conn.api_calls() == {"auth": 0, "read": 0, "search": 0, "write": 0, "create": 0, "setup": 0}
    conn.close()


# ------------------------------------------------------------------ values
def test_to_odoo_serialisation() -> None:
    berlin = timezone(timedelta(hours=2))
    assert to_odoo({"a": Decimal("12.50"), "b": date(2024, 3, 1), "c": datetime(2024, 3, 1, 12, 0, tzinfo=berlin),
                    "d": None, "e": True, "f": [[0, 0, {"price_unit": Decimal("1.5")}]]}) == \
        {"a": 12.5, "b": "2024-03-01", "c": "2024-03-01 10:00:00", "d": False, "e": True,
         "f": [[0, 0, {"price_unit": 1.5}]]}


def test_datetimes_are_utc() -> None:
    parsed = parse_datetime("2026-11-26 19:08:12")
    assert parsed == datetime(2026, 11, 26, 19, 8, 12, tzinfo=timezone.utc)
    assert parse_datetime(False) is None
    assert format_datetime(datetime(2026, 1, 1, 0, 0, 0, 999999)) == "2026-01-01 00:00:00"


def test_and_domains_is_explicit_prefix() -> None:
    assert and_domains([[("a", "=", 1), ("b", "=", 2)], [], ["|", ("c", "=", 3), ("d", "=", 4)]]) == \
        ["&", "&", ["a", "=", 1], ["b", "=", 2], "|", ["c", "=", 3], ["d", "=", 4]]
    assert and_domains([[], []]) == []
    with pytest.raises(ValueError):
        and_domains([["|", ("a", "=", 1)]])


def test_xmlid_names_are_safe_and_distinct() -> None:
    assert xmlid_name("hubspot_company_", "12345") == "hubspot_company_12345"
    a, b = xmlid_name("p_", "A-1"), xmlid_name("p_", "a_1")
    assert a != b and a.startswith("p_a_1_") and b == "p_a_1"
    assert all(c.isalnum() or c == "_" for c in a) and a == a.lower()


def test_same_value() -> None:
    assert same_value([7, "Acme"], 7) and not same_value([7, "Acme"], 8)
    assert same_value(12.5, 12.5) and same_value(False, None) and same_value(False, "")
    assert not same_value(0, "") and not same_value("a", "b")


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(("message", "field"), [
    ("The operation cannot be completed:\n\nModel: Sales Order (sale.order)\nField: Customer (partner_id)\n",
     "partner_id"),
    ("Invalid field 'x_foo' on model 'res.partner'", "x_foo"),
    ("Invalid field x_bar in leaf ('x_bar', '=', 1)", "x_bar"),
    ("Wrong value for res.partner.type: 'weird'", "type"),
    ("Something else went wrong", None),
])
def test_field_of(message: str, field: str | None) -> None:
    assert field_of(message) == field


@pytest.mark.parametrize(("name", "message", "kind"), [
    ("odoo.exceptions.AccessDenied", "Access Denied", AuthError),
    ("odoo.exceptions.AccessError", "You are not allowed to access 'Contact'", AuthError),
    ("odoo.exceptions.UserError", "Object no.such.model doesn't exist", ValidationError),
    ("builtins.KeyError", "'x'", ValidationError),
    ("odoo.exceptions.MissingError", "Record does not exist or has been deleted.", NotFound),
    ("psycopg2.errors.SerializationFailure", "could not serialize access due to concurrent update",
     RetryableError),
    ("psycopg2.OperationalError", 'FATAL:  database "nodb" does not exist', OdooConfigError),
    ("psycopg2.OperationalError", "server closed the connection unexpectedly", RetryableError),
])
def test_error_mapping(name: str, message: str, kind: type) -> None:
    error = error_from_payload({"code": 200, "message": "Odoo Server Error",
                                "data": {"name": name, "message": message}}, db="prod")
    assert type(error) is kind
    if isinstance(error, RetryableError):
        assert not error.maybe_applied  # Odoo rolled the transaction back


# ------------------------------------------------------------------ webhooks
TOKEN = "hook-secret-123"


def hook(body: object, *, headers: dict[str, str] | None = None, query: str = "",
         method: str = "POST") -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(method=method, url=f"https://concord.example.com/webhooks/odoo{query}",
                          headers=headers or {}, body=raw)


@pytest.fixture
def hooked() -> OdooConnector:
    return OdooConnector(settings(webhook_token=TOKEN))


def test_webhook_header_token(hooked: OdooConnector) -> None:
    body = {"_action": "Send Webhook Notification(#12)", "_model": "res.partner", "_id": 7, "id": 7,
            "name": "Acme", "write_date": "2026-11-26 19:08:12"}
    [event] = hooked.parse_webhook(hook(body, headers={"x-concord-token": TOKEN}))
    assert (event.object, event.record_id, event.kind) == ("res.partner", "7", "update")
    assert event.event_id == "res.partner:7:2026-11-26 19:08:12"
    assert event.occurred_at == datetime(2026, 11, 26, 19, 8, 12, tzinfo=timezone.utc)


def test_webhook_query_token_and_list_body(hooked: OdooConnector) -> None:
    body = [{"_model": "sale.order", "_id": 3}, {"_model": "sale.order", "id": 4, "state": "sale"}]
    events = hooked.parse_webhook(hook(body, query=f"?token={TOKEN}"))
    assert [e.record_id for e in events] == ["3", "4"]
    digest = hashlib.sha256(json.dumps(body[0], sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert events[0].event_id == f"sale.order:3:{digest}"
    # the same content redelivered is the same event; changed content is a new one
    again = hooked.parse_webhook(hook(body, query=f"?token={TOKEN}"))
    assert [e.event_id for e in again] == [e.event_id for e in events]
    assert events[0].event_id != events[1].event_id


@pytest.mark.parametrize(("headers", "query", "reason"), [
    ({}, "", "bad_token"),
    ({"X-Concord-Token": "wrong"}, "", "bad_token"),
    ({}, "?token=wrong", "bad_token"),
])
def test_webhook_rejects_bad_token(hooked: OdooConnector, headers: dict[str, str], query: str, reason: str) -> None:
    with pytest.raises(WebhookRejected) as info:
        hooked.parse_webhook(hook({"_model": "res.partner", "_id": 1}, headers=headers, query=query))
    assert (info.value.status, info.value.reason) == (401, reason)


def test_webhook_not_configured() -> None:
    conn = OdooConnector(settings())
    with pytest.raises(WebhookRejected) as info:
        conn.parse_webhook(hook({"_model": "res.partner", "_id": 1}, headers={"X-Concord-Token": "x"}))
    assert (info.value.status, info.value.reason) == (401, "not_configured")


@pytest.mark.parametrize("body", [b"not json", b"[]", b"42", json.dumps({"_id": 1}).encode(),
                                  json.dumps({"_model": "res.partner"}).encode(),
                                  json.dumps({"_model": "res.partner", "_id": "abc"}).encode()])
def test_webhook_malformed_body(hooked: OdooConnector, body: bytes) -> None:
    with pytest.raises(WebhookRejected) as info:
        hooked.parse_webhook(hook(body, headers={"X-Concord-Token": TOKEN}))
    assert (info.value.status, info.value.reason) == (400, "malformed")


def test_webhook_custom_header_name() -> None:
    conn = OdooConnector(settings(webhook_token=TOKEN, webhook_header="X-Odoo-Secret"))
    assert conn.parse_webhook(hook({"_model": "res.partner", "_id": 1}, headers={"X-Odoo-Secret": TOKEN}))
    with pytest.raises(WebhookRejected):
        conn.parse_webhook(hook({"_model": "res.partner", "_id": 1}, headers={"X-Concord-Token": TOKEN}))


def test_change_feeds_merge_into_one_in_watermark_order() -> None:
    """Variants changed themselves and variants whose template changed: one (updated_at, id) feed."""
    from datetime import UTC, datetime

    from connectors.base import NativeRecord, Page
    from connectors.odoo.reader import _merged

    def rec(rid: str, second: int) -> NativeRecord:
        return NativeRecord(id=rid, updated_at=datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC), data={})

    own = iter([Page([rec("3", 1), rec("10", 1)]), Page([rec("4", 5)])])
    via = iter([Page([rec("2", 1), rec("3", 3)]), Page([rec("9", 4), rec("1", 9)])])
    pages = list(_merged([own, via], page_size=4))
    assert [len(p.records) for p in pages] == [4, 3]
    order = [(r.updated_at.second, r.id) for p in pages for r in p.records]  # type: ignore[union-attr]
    assert order == [(1, "2"), (1, "3"), (1, "10"), (3, "3"), (4, "9"), (5, "4"), (9, "1")]
