"""Odoo connector against mocked HTTP (``responses``): the JSON-RPC envelope, error mapping,
retries, and the create paths whose failures are hard to provoke on a real server."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from connectors.base import (
    AuthError,
    Connector,
    ConnectorError,
    EntitySpec,
    NotFound,
    RetryableError,
    ValidationError,
    WriteOp,
)
from connectors.odoo import OdooConnector, OdooSettings
from connectors.odoo.errors import OdooConfigError

URL = "https://erp.example.com"
KEY = "s3cret-api-key-0123"
OMIT = object()  # answer without a "result" key, as Odoo does for methods returning None

PARTNER = EntitySpec(entity="customer", object="res.partner", id_field="id", updated_field="write_date",
                     fields=("name", "email", "country_id.code"), key_field="x_concord_crm_id",
                     options={"xmlid_prefix": "hubspot_company_"})

PARTNER_FIELDS = {
    "id": {"type": "integer"}, "name": {"type": "char"}, "email": {"type": "char"},
    "active": {"type": "boolean"}, "write_date": {"type": "datetime"},
    "country_id": {"type": "many2one", "relation": "res.country"},
    "x_concord_crm_id": {"type": "char"},
}

VALIDATION_ERROR = {
    "code": 200, "message": "Odoo Server Error",
    "data": {"name": "odoo.exceptions.ValidationError",
             "debug": "Traceback (most recent call last):\n  File \"odoo/service/model.py\", line 156",
             "message": "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
                        "- Delete: another model requires the record being deleted. If possible, archive it "
                        "instead.\n\nModel: Sales Order (sale.order)\nField: Customer (partner_id)\n",
             "arguments": ["..."], "context": {}}}


def odoo_error(name: str, message: str) -> dict[str, Any]:
    return {"code": 200, "message": "Odoo Server Error",
            "data": {"name": name, "message": message, "debug": "Traceback ...", "arguments": [message],
                     "context": {}}}


class Err:
    """A handler result that becomes a JSON-RPC error."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error


Handler = Callable[[list[Any], dict[str, Any]], Any]


class FakeOdoo:
    """A scripted /jsonrpc endpoint: routes (model, method) or (service, method) to handlers."""

    def __init__(self) -> None:
        self.rsps: responses.RequestsMock | None = None
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.handlers: dict[tuple[str, str], Handler] = {
            ("common", "version"): lambda a, k: {"server_version": "18.0", "protocol_version": 1},
            ("common", "authenticate"): lambda a, k: 2,
            ("res.partner", "fields_get"): lambda a, k: PARTNER_FIELDS,
            ("ir.model.data", "search_read"): lambda a, k: [],
            ("ir.model.data", "create"): lambda a, k: list(range(900, 900 + len(a[0]))),
        }

    def replace_route(self, *answers: dict[str, Any] | Any) -> None:
        """Answer /jsonrpc with these canned responses (kwargs dicts) or callbacks, in order."""
        assert self.rsps is not None
        self.rsps.remove(responses.POST, f"{URL}/jsonrpc")
        for answer in answers:
            if callable(answer):
                self.rsps.add_callback(responses.POST, f"{URL}/jsonrpc", callback=answer)
            else:
                self.rsps.add(responses.POST, f"{URL}/jsonrpc", **answer)

    def on(self, target: str, method: str, handler: Handler) -> None:
        self.handlers[(target, method)] = handler

    def calls(self, target: str, method: str) -> list[dict[str, Any]]:
        """Recorded params of object calls on ``target.method`` (or service calls)."""
        out = []
        for p in self.requests:
            if p["service"] == "object" and p["args"][3] == target and p["args"][4] == method:
                out.append(p)
            elif p["service"] == target and p["method"] == method:
                out.append(p)
        return out

    def __call__(self, request: requests.PreparedRequest) -> Any:
        body = json.loads(request.body)
        params = body["params"]
        self.requests.append(params)
        self.headers.append(dict(request.headers))
        if params["service"] == "object":
            _db, _uid, _pw, model, method, args, kwargs = params["args"]
            handler = self.handlers.get((model, method))
        else:
            args, kwargs = params["args"], {}
            handler = self.handlers.get((params["service"], params["method"]))
        assert handler is not None, f"unexpected call {params['service']} {params.get('method')} {params['args'][3:5]}"
        result = handler(args, kwargs)
        if isinstance(result, Exception):
            return result
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": body["id"]}
        if isinstance(result, Err):
            answer["error"] = result.error
        elif result is not OMIT:
            answer["result"] = result
        return (200, {"Content-Type": "application/json"}, json.dumps(answer))


@pytest.fixture
def fake() -> Any:
    fake = FakeOdoo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.POST, f"{URL}/jsonrpc", callback=fake)
        fake.rsps = rsps
        yield fake


def make_connector(**overrides: Any) -> OdooConnector:
    settings = OdooSettings(url=URL, db="prod", username="sync@example.com", api_key=KEY, **overrides)
    conn = OdooConnector(settings)
    # Keep retry waits tiny; the policy itself is HttpClient's.
    conn.rpc.http.settings = dataclasses.replace(conn.rpc.http.settings, backoff_initial=0.001, backoff_max=0.002)
    return conn


# ------------------------------------------------------------------ envelope and login
def test_envelope_login_and_uid_cached(fake: FakeOdoo) -> None:
    fake.on("res.partner", "search_read", lambda a, k: [{"id": 7, "name": "Acme"}])
    conn = make_connector()
    assert isinstance(conn, Connector)
    conn.rpc.execute_kw("res.partner", "search_read", [[("ref", "=", "CRM-1")]], {"fields": ["name"]})
    conn.rpc.execute_kw("res.partner", "search_read", [[]], {"fields": ["name"]})
    assert [p["method"] for p in fake.requests] == ["authenticate", "execute_kw", "execute_kw"]
    assert fake.requests[0]["args"] == ["prod", "sync@example.com", KEY, {}]
    assert fake.requests[1]["args"] == ["prod", 2, KEY, "res.partner", "search_read",
                                        [[["ref", "=", "CRM-1"]]], {"fields": ["name"]}]
    assert all(h["Content-Type"] == "application/json" for h in fake.headers)
    assert conn.api_calls()["auth"] == 1 and conn.api_calls()["search"] == 2


def test_request_ids_increase(fake: FakeOdoo) -> None:
    seen: list[int] = []
    conn = make_connector()
    original = fake.__call__

    def spy(request: requests.PreparedRequest) -> Any:
        seen.append(json.loads(request.body)["id"])
        return original(request)

    fake.replace_route(spy)
    conn.rpc.version()
    conn.rpc.version()
    assert seen == sorted(seen) and len(set(seen)) == 2


def test_authenticate_false_is_auth_error_without_key(fake: FakeOdoo) -> None:
    fake.on("common", "authenticate", lambda a, k: False)
    conn = make_connector()
    with pytest.raises(AuthError) as info:
        conn.check_connection()
    assert "login failed for user 'sync@example.com' on database 'prod'" in str(info.value)
    assert KEY not in str(info.value)


def test_access_denied_on_execute_kw_is_auth_error(fake: FakeOdoo) -> None:
    fake.on("res.partner", "search_read",
            lambda a, k: Err(odoo_error("odoo.exceptions.AccessDenied", "Access Denied")))
    conn = make_connector()
    with pytest.raises(AuthError) as info:
        conn.read(PARTNER, ["7"])
    assert not isinstance(info.value, RetryableError)
    assert KEY not in str(info.value)
    assert len(fake.calls("res.partner", "search_read")) == 1  # not retried


def test_unknown_database_is_config_error(fake: FakeOdoo) -> None:
    fake.on("common", "authenticate", lambda a, k: Err(odoo_error(
        "psycopg2.OperationalError",
        'connection to server at "127.0.0.1", port 5433 failed: FATAL:  database "nodb" does not exist')))
    conn = make_connector()
    with pytest.raises(OdooConfigError) as info:
        conn.check_connection()
    assert isinstance(info.value, AuthError)
    assert "database 'nodb' not found" in str(info.value)


def test_missing_result_key_means_none(fake: FakeOdoo) -> None:
    fake.on("stock.quant", "action_apply_inventory", lambda a, k: OMIT)
    conn = make_connector()
    assert conn.rpc.execute_kw("stock.quant", "action_apply_inventory", [[1]],
                               {"context": {"inventory_mode": True}}) is None


# ------------------------------------------------------------------ error mapping
def test_validation_error_inside_http_200_names_the_field(fake: FakeOdoo) -> None:
    fake.on("sale.order", "create", lambda a, k: Err(VALIDATION_ERROR))
    conn = make_connector()
    with pytest.raises(ValidationError) as info:
        conn.rpc.execute_kw("sale.order", "create", [{}], idempotent=False)
    assert info.value.field == "partner_id"
    assert info.value.message.startswith("The operation cannot be completed")
    assert "Traceback" not in info.value.message


def test_update_failure_is_a_per_record_result(fake: FakeOdoo) -> None:
    def write(args: list[Any], kwargs: dict[str, Any]) -> Any:
        if 8 in args[0]:
            return Err(odoo_error("builtins.ValueError", "Invalid field 'x_nope' on model 'res.partner'"))
        return True

    fake.on("res.partner", "write", write)
    conn = make_connector()
    results = conn.write(PARTNER, [WriteOp("a", {"name": "A"}, target_id="7"),
                                   WriteOp("b", {"name": "A"}, target_id="8"),
                                   WriteOp("c", {"name": "A"}, target_id="9")])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, ValidationError) and results[1].error.field == "x_nope"
    # identical vals went out as one write call first, then one by one after the refusal
    assert [c["args"][5][0] for c in fake.calls("res.partner", "write")] == [[7, 8, 9], [7], [8], [9]]


def test_missing_error_is_not_found(fake: FakeOdoo) -> None:
    fake.on("res.partner", "write", lambda a, k: Err(odoo_error(
        "odoo.exceptions.MissingError", "Record does not exist or has been deleted.")))
    conn = make_connector()
    [result] = conn.write(PARTNER, [WriteOp("a", {"name": "A"}, target_id="77")])
    assert not result.ok and isinstance(result.error, NotFound)


def test_invalid_json_400_is_validation_error(fake: FakeOdoo) -> None:
    fake.replace_route({"status": 400, "body": "Invalid JSON data", "content_type": "text/plain"})
    conn = make_connector()
    with pytest.raises(ValidationError) as info:
        conn.rpc.version()
    assert "Invalid JSON data" in str(info.value)


def test_html_answer_is_config_error(fake: FakeOdoo) -> None:
    fake.replace_route({"status": 200, "body": "<html>login</html>", "content_type": "text/html"})
    with pytest.raises(OdooConfigError):
        make_connector().check_connection()


def test_proxy_502_is_retried(fake: FakeOdoo) -> None:
    fake.replace_route({"status": 502, "body": "<html>Bad Gateway</html>"}, fake)
    conn = make_connector()
    assert conn.rpc.version()["server_version"] == "18.0"
    assert conn.rpc.http.statuses[502] == 1 and conn.rpc.http.statuses[200] == 1


def test_proxy_502_exhausts_into_retryable(fake: FakeOdoo) -> None:
    fake.replace_route({"status": 502, "body": "Bad Gateway"})
    conn = make_connector(max_attempts=3)
    with pytest.raises(RetryableError):
        conn.rpc.version()
    assert conn.rpc.http.statuses[502] == 3


def test_serialization_failure_is_retried(fake: FakeOdoo) -> None:
    answers = iter([Err(odoo_error("psycopg2.errors.SerializationFailure",
                                   "could not serialize access due to concurrent update")), True])
    fake.on("res.partner", "write", lambda a, k: next(answers))
    conn = make_connector()
    [result] = conn.write(PARTNER, [WriteOp("a", {"name": "A"}, target_id="7")])
    assert result.ok
    assert len(fake.calls("res.partner", "write")) == 2


# ------------------------------------------------------------------ creates
class PartnerTable:
    """Just enough of res.partner for key lookups: create, search_read on the key field."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.next_id = 10

    def create(self, vals_list: list[dict[str, Any]]) -> list[int]:
        ids = []
        for vals in vals_list:
            self.rows[self.next_id] = {"id": self.next_id, "active": True,
                                       "write_date": "2026-11-26 19:08:12", **vals}
            ids.append(self.next_id)
            self.next_id += 1
        return ids

    def search_read(self, args: list[Any], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        [domain] = args
        [(field, op, values)] = [t for t in domain if isinstance(t, list)]
        assert op == "in"
        rows = [r for r in self.rows.values() if r.get(field) in values]
        return [{f: r.get(f, False) for f in kwargs["fields"]} | {"id": r["id"]} for r in rows]


def test_create_lost_ack_is_looked_up_not_duplicated(fake: FakeOdoo) -> None:
    table = PartnerTable()
    creates = {"n": 0}

    def create(args: list[Any], kwargs: dict[str, Any]) -> Any:
        creates["n"] += 1
        table.create(args[0])
        if creates["n"] == 1:  # applied, then the connection drops: a lost acknowledgement
            return requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())")
        return list(range(len(args[0])))

    fake.on("res.partner", "create", create)
    fake.on("res.partner", "search_read", lambda a, k: table.search_read(a, k))
    conn = make_connector()
    spec = dataclasses.replace(PARTNER, fields=("name",))
    results = conn.write(spec, [WriteOp("r1", {"name": "Acme"}, key="101"),
                                WriteOp("r2", {"name": "Beta"}, key="102")])
    assert [(r.ok, r.created) for r in results] == [(True, True), (True, True)]
    assert creates["n"] == 1 and len(table.rows) == 2  # never resent
    assert sorted(r.target_id for r in results) == ["10", "11"]
    # the external ids were written for the adopted records
    [xmlid_create] = fake.calls("ir.model.data", "create")
    names = sorted(v["name"] for v in xmlid_create["args"][5][0])
    assert names == ["hubspot_company_101", "hubspot_company_102"]


def test_create_is_one_call_with_keys_and_defaults(fake: FakeOdoo) -> None:
    table = PartnerTable()
    fake.on("res.partner", "create", lambda a, k: table.create(a[0]))
    fake.on("res.partner", "search_read", lambda a, k: table.search_read(a, k))
    spec = dataclasses.replace(PARTNER, fields=("name",),
                               options={**PARTNER.options, "create_defaults": {"customer_rank": 1, "name": "?"}})
    conn = make_connector()
    results = conn.write(spec, [WriteOp(f"r{i}", {"name": f"N{i}"}, key=f"K-{i}") for i in range(3)])
    assert all(r.ok and r.created for r in results)
    [call] = fake.calls("res.partner", "create")
    vals = call["args"][5][0]
    assert vals[0] == {"customer_rank": 1, "name": "N0", "x_concord_crm_id": "K-0"}
    assert len(fake.calls("ir.model.data", "create")) == 1
    assert call["args"][5] == [vals]  # a list of vals: one round trip for the batch


def test_create_validation_error_isolated_to_the_bad_record(fake: FakeOdoo) -> None:
    table = PartnerTable()

    def create(args: list[Any], kwargs: dict[str, Any]) -> Any:
        if any(v["name"] == "bad" for v in args[0]):
            return Err(odoo_error("odoo.exceptions.ValidationError",
                                  "Invalid value\n\nModel: Contact (res.partner)\nField: Name (name)\n"))
        return table.create(args[0])

    fake.on("res.partner", "create", create)
    fake.on("res.partner", "search_read", lambda a, k: table.search_read(a, k))
    conn = make_connector()
    spec = dataclasses.replace(PARTNER, fields=("name",))
    results = conn.write(spec, [WriteOp("r1", {"name": "ok1"}, key="1"), WriteOp("r2", {"name": "bad"}, key="2"),
                                WriteOp("r3", {"name": "ok3"}, key="3")])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error is not None and results[1].error.field == "name"
    assert sorted(r["name"] for r in table.rows.values()) == ["ok1", "ok3"]


def test_create_refused_connection_is_resent_by_http_policy(fake: FakeOdoo) -> None:
    table = PartnerTable()
    answers: list[Any] = [requests.exceptions.ConnectionError("Connection refused")]

    def create(args: list[Any], kwargs: dict[str, Any]) -> Any:
        if answers:
            return answers.pop()  # never reached the server: safe to resend
        return table.create(args[0])

    fake.on("res.partner", "create", create)
    fake.on("res.partner", "search_read", lambda a, k: table.search_read(a, k))
    conn = make_connector()
    [result] = conn.write(dataclasses.replace(PARTNER, fields=("name",)), [WriteOp("r", {"name": "A"}, key="1")])
    assert result.ok and result.created and len(table.rows) == 1


def test_create_lost_ack_without_key_field_is_not_resent(fake: FakeOdoo) -> None:
    calls = {"n": 0}

    def create(args: list[Any], kwargs: dict[str, Any]) -> Any:
        calls["n"] += 1
        return requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())")

    fake.on("res.partner", "create", create)
    fake.on("res.partner", "search_read", lambda a, k: [])
    conn = make_connector()
    spec = dataclasses.replace(PARTNER, fields=("name",), key_field=None)
    [result] = conn.write(spec, [WriteOp("r", {"name": "A"}, key="1")])
    assert not result.ok and isinstance(result.error, RetryableError) and result.error.maybe_applied
    assert calls["n"] == 1


def test_dotted_write_unknown_country(fake: FakeOdoo) -> None:
    fake.on("res.country", "search_read", lambda a, k: [{"id": 57, "code": "DE"}])
    writes: list[Any] = []
    fake.on("res.partner", "write", lambda a, k: writes.append(a) or True)
    conn = make_connector()
    results = conn.write(PARTNER, [WriteOp("a", {"country_id.code": "XX"}, target_id="7"),
                                   WriteOp("b", {"country_id.code": "DE"}, target_id="8"),
                                   WriteOp("c", {"country_id.code": None}, target_id="9")])
    assert not results[0].ok
    assert results[0].error is not None and results[0].error.field == "country_id.code"
    assert results[0].error.message == "no res.country with code 'XX'"
    assert results[1].ok and results[2].ok
    assert sorted(map(str, writes)) == sorted([str([[8], {"country_id": 57}]), str([[9], {"country_id": False}])])
    # the country lookup was one batched call, and is cached for the next batch
    conn.write(PARTNER, [WriteOp("d", {"country_id.code": "DE"}, target_id="10")])
    assert len(fake.calls("res.country", "search_read")) == 1


def test_paging_stops_if_the_server_ignores_the_keyset(fake: FakeOdoo) -> None:
    page = [{"id": i, "name": "x", "write_date": "2026-11-26 19:08:12", "active": True} for i in (1, 2)]
    fake.on("res.partner", "search_read", lambda a, k: page)
    conn = make_connector(page_size=2)
    spec = dataclasses.replace(PARTNER, fields=("name",))
    pages = conn.iter_changes(spec, None)
    assert [r.id for r in next(pages).records] == ["1", "2"]
    with pytest.raises(ConnectorError, match="no progress"):
        next(pages)
    # a full page inside one second is walked by id within that second: the second request asked
    # for ids after the last one, between that second and the next
    second_domain = fake.calls("res.partner", "search_read")[-1]["args"][5][0]
    assert ["id", ">", 2] in second_domain
    assert ["write_date", ">=", "2026-11-26 19:08:12"] in second_domain
    assert ["write_date", "<", "2026-11-26 19:08:13"] in second_domain


def test_setup_creates_fields_and_copes_without_copied_column(fake: FakeOdoo) -> None:
    fake.on("res.partner", "fields_get", lambda a, k: {"name": {"type": "char"}})
    fake.on("ir.model", "search_read", lambda a, k: [{"id": 77}])
    answers = iter([Err(odoo_error("builtins.ValueError", "Invalid field 'copied' on model 'ir.model.fields'")),
                    [501]])
    fake.on("ir.model.fields", "create", lambda a, k: next(answers))
    conn = make_connector()
    assert conn.missing_setup([PARTNER]) == ["res.partner.x_concord_crm_id (char)"]
    assert conn.setup([PARTNER]) == ["res.partner.x_concord_crm_id (char)"]
    first, second = (c["args"][5][0][0] for c in fake.calls("ir.model.fields", "create"))
    assert first == {"model_id": 77, "name": "x_concord_crm_id", "field_description": "Concord key (customer)",
                     "ttype": "char", "index": True, "copied": False, "state": "manual"}
    assert "copied" not in second and second["name"] == "x_concord_crm_id"
    assert conn.api_calls()["setup"] == 3
