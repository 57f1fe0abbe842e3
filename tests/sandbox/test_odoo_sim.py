"""The Odoo 18 simulator over real HTTP: envelope, errors, ORM semantics, faults and webhooks.

Expected texts are those a real Odoo 18 answers (shared/api-notes/odoo-18-observed.md) or, where the
notes are silent, Odoo's source (quoted in sandbox/odoo).
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sandbox.core import Clock, Faults
from sandbox.odoo import OdooSimulator

DB, LOGIN, KEY = "concord", "admin", "sim-odoo-key"
T0 = datetime(2026, 3, 2, 9, 30, 15, tzinfo=UTC)


class OdooError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["data"]["message"])
        self.error = error
        self.name = error["data"]["name"]
        self.message = error["data"]["message"]


class Rpc:
    """A minimal JSON-RPC client, written from the notes (not the connector under test)."""

    def __init__(self, sim: OdooSimulator) -> None:
        self.url = sim.base_url + "/jsonrpc"
        self.session = requests.Session()
        self.ids = itertools.count(1)
        self.password = KEY
        self.uid = 2

    def raw(self, service: str, method: str, *args: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": "call", "id": next(self.ids),
                                "params": {"service": service, "method": method, "args": list(args)}}
        resp = self.session.post(self.url, json=body, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def call(self, service: str, method: str, *args: Any) -> Any:
        body = self.raw(service, method, *args)
        if "error" in body:
            raise OdooError(body["error"])
        return body.get("result")

    def kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        return self.call("object", "execute_kw", DB, self.uid, self.password, model, method, args, kwargs or {})


@pytest.fixture
def clock() -> Clock:
    return Clock(frozen=T0)


@pytest.fixture
def sim(clock: Clock) -> Iterator[OdooSimulator]:
    with OdooSimulator(clock=clock) as s:
        yield s


@pytest.fixture
def rpc(sim: OdooSimulator) -> Rpc:
    return Rpc(sim)


def country_id(rpc: Rpc, code: str) -> int:
    return rpc.kw("res.country", "search", [[("code", "=", code)]])[0]


# ==================================================================================== envelope / HTTP
def test_envelope_echoes_id_ignores_method_and_versions(sim: OdooSimulator) -> None:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": "anything-goes", "id": "req-7",
                            "params": {"service": "common", "method": "version", "args": []}}
    resp = requests.post(sim.base_url + "/jsonrpc", json=body, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"jsonrpc": "2.0", "id": "req-7", "result": {
        "server_version": "18.0", "server_version_info": [18, 0, 0, "final", 0, ""],
        "server_serie": "18.0", "protocol_version": 1}}


def test_json_rpc_content_type_is_accepted(sim: OdooSimulator) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "params": {"service": "db", "method": "list", "args": []}})
    resp = requests.post(sim.base_url + "/jsonrpc", data=body, timeout=10,
                         headers={"Content-Type": "application/json-rpc; charset=utf-8"})
    assert resp.json()["result"] == [DB]


@pytest.mark.parametrize("data,headers,status,text", [
    ("{not json", {"Content-Type": "application/json"}, 400, "Invalid JSON data"),
    ("[1, 2]", {"Content-Type": "application/json"}, 400, "Invalid JSON-RPC data"),
    ('{"params": {}}', {"Content-Type": "text/plain"}, 400, "Please verify the Content-Type request header"),
])
def test_http_level_errors_bypass_the_json_envelope(sim: OdooSimulator, data: str, headers: dict[str, str],
                                                    status: int, text: str) -> None:
    resp = requests.post(sim.base_url + "/jsonrpc", data=data, headers=headers, timeout=10)
    assert resp.status_code == status
    assert text in resp.text
    assert resp.headers["Content-Type"].startswith("text/html")


def test_unknown_path_is_404(sim: OdooSimulator) -> None:
    resp = requests.post(sim.base_url + "/xmlrpc/2/nothing", data="x", timeout=10)
    assert resp.status_code == 404
    assert "Not Found" in resp.text


def test_params_must_be_an_object(sim: OdooSimulator) -> None:
    resp = requests.post(sim.base_url + "/jsonrpc", json={"jsonrpc": "2.0", "id": 3, "params": [1]}, timeout=10)
    body = resp.json()
    assert resp.status_code == 200 and body["id"] == 3
    assert body["error"]["code"] == 200
    assert body["error"]["message"] == "Odoo Server Error"
    assert body["error"]["data"]["name"] == "builtins.TypeError"


def test_error_code_is_configurable(clock: Clock) -> None:
    with OdooSimulator(clock=clock, error_code=0) as sim:
        body = Rpc(sim).raw("object", "execute_kw", DB, 2, "wrong", "res.partner", "search", [[]], {})
    assert body["error"]["code"] == 0


# ==================================================================================== authentication
def test_login_and_authenticate_return_uid_or_false(rpc: Rpc) -> None:
    assert rpc.call("common", "authenticate", DB, LOGIN, KEY, {}) == 2
    assert rpc.call("common", "login", DB, LOGIN, KEY) == 2
    assert rpc.call("common", "authenticate", DB, LOGIN, "bad", {}) is False
    assert rpc.call("common", "login", DB, "nobody", KEY) is False


def test_unknown_database_is_an_operational_error(rpc: Rpc) -> None:
    with pytest.raises(OdooError) as err:
        rpc.call("common", "authenticate", "nodb", LOGIN, KEY, {})
    assert err.value.name == "psycopg2.OperationalError"
    assert 'database "nodb" does not exist' in err.value.message


@pytest.mark.parametrize("uid,password", [(2, "wrong"), (2, ""), (7, KEY)])
def test_execute_kw_with_bad_credentials_is_access_denied(rpc: Rpc, uid: int, password: str) -> None:
    body = rpc.raw("object", "execute_kw", DB, uid, password, "res.partner", "search", [[]], {})
    data = body["error"]["data"]
    assert "result" not in body
    assert (data["name"], data["message"], data["arguments"]) == (
        "odoo.exceptions.AccessDenied", "Access Denied", ["Access Denied"])
    assert data["debug"].startswith("Traceback (most recent call last):")
    assert data["context"] == {}


def test_unknown_model_method_and_private_method(rpc: Rpc) -> None:
    with pytest.raises(OdooError) as err:
        rpc.kw("no.such.model", "search", [[]])
    assert (err.value.name, err.value.message) == ("odoo.exceptions.UserError", "Object no.such.model doesn't exist")
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "frobnicate", [[]])
    assert (err.value.name, err.value.message) == (
        "builtins.AttributeError", "The method 'res.partner.frobnicate' does not exist")
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "_insert", [[]])
    assert err.value.name == "odoo.exceptions.AccessError"
    assert "cannot be called remotely" in err.value.message


def test_unknown_object_service_method(rpc: Rpc) -> None:
    with pytest.raises(OdooError) as err:
        rpc.call("object", "execute_sql", DB, 2, KEY, "res.partner")
    assert (err.value.name, err.value.message) == ("builtins.NameError", "Method not available execute_sql")


# ==================================================================================== create / write / read
def test_create_returns_int_for_a_dict_and_a_list_for_a_list(rpc: Rpc) -> None:
    one = rpc.kw("res.partner", "create", [{"name": "Acme Test Customer", "ref": "CRM-0001", "is_company": True}])
    many = rpc.kw("res.partner", "create", [[{"name": "B"}, {"name": "C"}]])
    assert isinstance(one, int)
    assert isinstance(many, list) and len(many) == 2 and all(isinstance(i, int) for i in many)
    assert rpc.kw("res.partner", "create", [[]]) == []
    rows = rpc.kw("res.partner", "search_read", [[("ref", "=", "CRM-0001")]],
                  {"fields": ["id", "name", "email", "ref", "is_company"]})
    assert rows == [{"id": one, "name": "Acme Test Customer", "email": False, "ref": "CRM-0001", "is_company": True}]


def test_result_key_is_absent_when_the_method_returns_none(rpc: Rpc) -> None:
    pid = rpc.kw("res.partner", "create", [{"name": "X"}])
    rpc.kw("ir.model.data", "create", [{"module": "concord", "name": "p_x", "model": "res.partner", "res_id": pid}])
    body = rpc.raw("object", "execute_kw", DB, 2, KEY, "ir.model.data", "toggle_noupdate", ["res.partner", pid], {})
    assert body == {"jsonrpc": "2.0", "id": body["id"]}
    assert rpc.kw("ir.model.data", "search_read", [[("name", "=", "p_x")]], {"fields": ["noupdate"]})[0]["noupdate"]


def test_execute_takes_positional_args(rpc: Rpc) -> None:
    pid = rpc.call("object", "execute", DB, 2, KEY, "res.partner", "create", {"name": "Via execute"})
    assert rpc.call("object", "execute", DB, 2, KEY, "res.partner", "read", [pid], ["name"]) == [
        {"id": pid, "name": "Via execute"}]


def test_write_unlink_and_missing_records(rpc: Rpc) -> None:
    pid = rpc.kw("res.partner", "create", [{"name": "Old"}])
    assert rpc.kw("res.partner", "write", [[pid], {"name": "New", "email": "new@example.com"}]) is True
    assert rpc.kw("res.partner", "read", [[pid], ["name", "email"]]) == [
        {"id": pid, "name": "New", "email": "new@example.com"}]
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "read", [[pid, 9999], ["name"]])
    assert err.value.name == "odoo.exceptions.MissingError"
    assert err.value.message.startswith("Record does not exist or has been deleted.")
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "write", [[9999], {"name": "x"}])
    assert err.value.name == "odoo.exceptions.MissingError"
    assert rpc.kw("res.partner", "unlink", [[pid]]) is True
    assert rpc.kw("res.partner", "unlink", [[pid]]) is True  # deleting a deleted record is fine
    assert rpc.kw("res.partner", "search", [[("id", "=", pid)]]) == []


def test_value_formats(rpc: Rpc) -> None:
    de = country_id(rpc, "DE")
    company = rpc.kw("res.partner", "create", [{"name": "Acme GmbH", "is_company": True, "country_id": de,
                                                  "credit_limit": 1500, "customer_rank": 3}])
    person = rpc.kw("res.partner", "create", [{"name": "Jo", "parent_id": company}])
    rows = rpc.kw("res.partner", "read", [[person, company]], {"fields": [
        "country_id", "parent_id", "child_ids", "email", "credit_limit", "credit", "customer_rank",
        "supplier_rank", "write_date", "display_name", "active", "category_id"]})
    assert rows[0] == {"id": person, "country_id": False, "parent_id": [company, "Acme GmbH"], "child_ids": [],
                       "email": False, "credit_limit": 0.0, "credit": 0.0, "customer_rank": 0, "supplier_rank": 0,
                       "write_date": "2026-03-02 09:30:15", "display_name": "Acme GmbH, Jo", "active": True,
                       "category_id": []}
    assert rows[1]["country_id"] == [de, "Germany"]
    assert rows[1]["child_ids"] == [person]
    assert rows[1]["credit_limit"] == 1500.0 and isinstance(rows[1]["credit_limit"], float)
    assert rows[1]["customer_rank"] == 3


def test_search_read_without_fields_returns_every_field(rpc: Rpc) -> None:
    rpc.kw("res.partner", "create", [{"name": "All"}])
    (row,) = rpc.kw("res.partner", "search_read", [[("name", "=", "All")]])
    assert {"id", "name", "email", "write_date", "create_date", "create_uid", "display_name",
            "country_code"} <= set(row)
    assert row["create_uid"] == [2, "Administrator"]


def test_unknown_field_and_bad_values(rpc: Rpc) -> None:
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "create", [{"name": "x", "nickname": "y"}])
    assert (err.value.name, err.value.message) == (
        "builtins.ValueError", "Invalid field 'nickname' on model 'res.partner'")
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "create", [{"name": "x", "country_id": "DE"}])
    assert err.value.message == "Wrong value for res.partner.country_id: 'DE'"
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "create", [{"name": "x", "country_id": 99999}])
    assert err.value.name == "odoo.exceptions.ValidationError"
    assert "Constraint: res_partner_country_id_fkey" in err.value.message
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "search_read", [[]], {"fields": ["name", "nickname"]})
    assert err.value.message == "Invalid field 'nickname' on model 'res.partner'"
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "search", [[("nickname", "=", 1)]])
    assert err.value.name == "builtins.ValueError" and "Invalid field res.partner.nickname" in err.value.message
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "search", [[]], {"order": "name; drop table"})
    assert 'Invalid "order" specified' in err.value.message


def test_required_field_error_text_and_batch_atomicity(rpc: Rpc) -> None:
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "create", [[{"name": "Fine"}, {"email": "no-name@example.com"}]])
    assert err.value.name == "odoo.exceptions.ValidationError"
    assert err.value.message == (
        "The operation cannot be completed:\n"
        "- Create/update: a mandatory field is not set.\n"
        "- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n"
        "Model: Contact (res.partner)\nField: Name (name)\n")
    assert err.value.error["data"]["arguments"] == [err.value.message]
    assert rpc.kw("res.partner", "search_count", [[("name", "=", "Fine")]]) == 0  # the call is one transaction
    pid = rpc.kw("res.partner", "create", [{"name": "Named"}])
    with pytest.raises(OdooError) as err:
        rpc.kw("res.partner", "write", [[pid], {"name": False}])
    assert "Field: Name (name)" in err.value.message


# ==================================================================================== searching
@pytest.fixture
def people(rpc: Rpc) -> dict[str, int]:
    de, fr = country_id(rpc, "DE"), country_id(rpc, "FR")
    rows: list[dict[str, Any]] = [
        {"name": "Anna", "email": "anna@a.example", "country_id": de, "customer_rank": 1, "credit_limit": 10.0},
        {"name": "Bernd", "email": "BERND@b.example", "country_id": de, "customer_rank": 0},
        {"name": "Chloé", "email": "chloe@c.example", "country_id": fr, "customer_rank": 2, "credit_limit": 50.0},
        {"name": "Dirk", "country_id": False, "customer_rank": 5},
        {"name": "Emma", "email": "emma@a.example", "customer_rank": 1, "ref": "E-1"},
    ]
    ids = rpc.kw("res.partner", "create", [rows])
    return dict(zip([r["name"] for r in rows], ids))


def names(rpc: Rpc, domain: list[Any], **kw: Any) -> list[str]:
    return [r["name"] for r in rpc.kw("res.partner", "search_read", [domain], {"fields": ["name"], "order": "name",
                                                                                 **kw})]


def test_domain_operators(rpc: Rpc, people: dict[str, int]) -> None:
    assert names(rpc, [("customer_rank", ">", 0)]) == ["Anna", "Chloé", "Dirk", "Emma"]
    assert names(rpc, [("customer_rank", ">=", 2), ("customer_rank", "<", 5)]) == ["Chloé"]
    assert names(rpc, [("email", "=", False)]) == ["Dirk"]
    assert names(rpc, [("email", "!=", False)]) == ["Anna", "Bernd", "Chloé", "Emma"]
    assert names(rpc, [("ref", "!=", "E-1")]) == ["Anna", "Bernd", "Chloé", "Dirk"]  # != keeps NULLs
    assert names(rpc, [("email", "like", "@a.")]) == ["Anna", "Emma"]
    assert names(rpc, [("email", "like", "bernd")]) == []
    assert names(rpc, [("email", "ilike", "bernd")]) == ["Bernd"]
    assert names(rpc, [("email", "=like", "%@a.example")]) == ["Anna", "Emma"]
    assert names(rpc, [("email", "=ilike", "bernd@%")]) == ["Bernd"]
    assert names(rpc, [("email", "not ilike", "a.example")]) == ["Bernd", "Chloé", "Dirk"]
    assert names(rpc, [("id", "in", [people["Anna"], people["Dirk"]])]) == ["Anna", "Dirk"]
    assert names(rpc, [("name", "not in", ["Anna", "Bernd"])]) == ["Chloé", "Dirk", "Emma"]
    assert names(rpc, [("country_id", "=", False)]) == ["Dirk", "Emma"]
    assert names(rpc, [("country_id.code", "=", "FR")]) == ["Chloé"]
    assert names(rpc, [("country_id", "ilike", "germ")]) == ["Anna", "Bernd"]
    assert names(rpc, [("credit_limit", "=?", False), ("customer_rank", "=", 5)]) == ["Dirk"]


def test_prefix_operators(rpc: Rpc, people: dict[str, int]) -> None:
    assert names(rpc, ["|", ("name", "=", "Anna"), ("name", "=", "Emma")]) == ["Anna", "Emma"]
    assert names(rpc, ["!", ("customer_rank", ">", 0)]) == ["Bernd"]
    assert names(rpc, ["&", ("customer_rank", ">", 0), "|", ("email", "ilike", "a.example"),
                       ("country_id.code", "=", "FR")]) == ["Anna", "Chloé", "Emma"]
    assert names(rpc, ["|", "&", ("name", "=", "Anna"), ("customer_rank", "=", 1), "!", ("email", "!=", False)]
                 ) == ["Anna", "Dirk"]
    with pytest.raises(OdooError) as err:
        names(rpc, ["|", ("name", "=", "Anna")])
    assert err.value.name == "builtins.ValueError"


def test_order_offset_limit_and_count(rpc: Rpc, people: dict[str, int]) -> None:
    rows = rpc.kw("res.partner", "search_read", [], {"domain": [], "fields": ["name"],
                                                     "order": "customer_rank desc, name asc"})
    assert [r["name"] for r in rows] == ["Dirk", "Chloé", "Anna", "Emma", "Bernd"]
    assert names(rpc, [], offset=1, limit=2) == ["Bernd", "Chloé"]
    ids = rpc.kw("res.partner", "search", [[]], {"order": "id desc", "limit": 2})
    assert ids == [people["Emma"], people["Dirk"]]
    assert rpc.kw("res.partner", "search_count", [[("customer_rank", ">", 0)]]) == 4
    # NULLs sort last ascending and first descending, as in PostgreSQL
    assert names(rpc, [], order="credit_limit asc, name") == ["Anna", "Chloé", "Bernd", "Dirk", "Emma"]
    assert names(rpc, [], order="credit_limit desc, name") == ["Bernd", "Dirk", "Emma", "Chloé", "Anna"]


def test_active_test(rpc: Rpc, sim: OdooSimulator, people: dict[str, int]) -> None:
    sim.archive("res.partner", people["Bernd"])
    assert "Bernd" not in names(rpc, [])
    assert "Bernd" in names(rpc, [], context={"active_test": False})
    assert names(rpc, [("active", "=", False)]) == ["Bernd"]
    assert len(names(rpc, [("active", "in", [True, False])])) == 5
    # read() does not filter archived records
    assert rpc.kw("res.partner", "read", [[people["Bernd"]], ["active"]]) == [{"id": people["Bernd"], "active": False}]


def test_fields_get_and_name_search(rpc: Rpc, people: dict[str, int]) -> None:
    desc = rpc.kw("res.partner", "fields_get", [], {"attributes": ["type", "relation", "required", "string"]})
    assert desc["country_id"] == {"type": "many2one", "relation": "res.country", "required": False, "string": "Country"}
    assert desc["name"]["required"] is True and desc["write_date"]["type"] == "datetime"
    assert rpc.kw("res.partner", "name_search", [], {"name": "emm"}) == [[people["Emma"], "Emma"]]


def test_subsecond_write_dates_compare_like_postgresql(clock: Clock) -> None:
    # Odoo 18 stores cr.now() with microseconds but sends seconds: "=" on the wire value misses,
    # ">" on it still matches the record (odoo/odoo#24102; whole-second domains only from 18.4 on).
    clock.freeze(T0.replace(microsecond=250000))
    with OdooSimulator(clock=clock) as sim:
        rpc = Rpc(sim)
        pid = rpc.kw("res.partner", "create", [{"name": "Sub"}])
        (row,) = rpc.kw("res.partner", "read", [[pid], ["write_date"]])
        assert row["write_date"] == "2026-03-02 09:30:15"
        assert sim.get("res.partner", pid)["write_date"] == "2026-03-02 09:30:15.250000"  # type: ignore[index]
        assert rpc.kw("res.partner", "search", [[("write_date", "=", row["write_date"])]]) == []
        assert rpc.kw("res.partner", "search", [[("write_date", ">", row["write_date"])]]) == [pid]
        sim.subsecond_timestamps = False
        rpc.kw("res.partner", "write", [[pid], {"name": "Whole"}])
        assert rpc.kw("res.partner", "search", [[("write_date", "=", row["write_date"])]]) == [pid]


def test_keyset_paging_over_one_shared_write_date(sim: OdooSimulator, rpc: Rpc) -> None:
    ids = sim.seed_partners(2300, seed=3)
    seen: list[int] = []
    domain: list[Any] = [("write_date", ">=", "2026-03-02 00:00:00")]
    while True:
        page = rpc.kw("res.partner", "search_read", [domain], {
            "fields": ["id", "write_date"], "order": "write_date asc, id asc", "limit": 500})
        if not page:
            break
        seen += [r["id"] for r in page]
        last = page[-1]
        domain = ["|", ("write_date", ">", last["write_date"]), "&", ("write_date", "=", last["write_date"]),
                  ("id", ">", last["id"])]
    assert seen == ids


# ==================================================================================== relations
def test_one2many_and_many2many_commands(rpc: Rpc) -> None:
    vip, retail = rpc.kw("res.partner.category", "create", [[{"name": "VIP"}, {"name": "Retail"}]])
    company = rpc.kw("res.partner", "create", [{
        "name": "Acme", "is_company": True, "category_id": [[6, 0, [vip]]],
        "child_ids": [[0, 0, {"name": "Ann"}], [0, 0, {"name": "Bob"}]]}])

    def state() -> tuple[list[str], list[int]]:
        (row,) = rpc.kw("res.partner", "read", [[company], ["child_ids", "category_id"]])
        kids = rpc.kw("res.partner", "read", [row["child_ids"], ["display_name"]])
        return [k["display_name"] for k in kids], row["category_id"]

    assert state() == (["Acme, Ann", "Acme, Bob"], [vip])
    ann = rpc.kw("res.partner", "search", [[("name", "=", "Ann")]])[0]
    rpc.kw("res.partner", "write", [[company], {"child_ids": [[3, ann, 0]], "category_id": [[4, retail, 0]]}])
    assert state() == (["Acme, Bob"], [vip, retail])
    assert rpc.kw("res.partner", "read", [[ann], ["parent_id"]])[0]["parent_id"] is False
    rpc.kw("res.partner", "write", [[company], {"child_ids": [[6, 0, [ann]]], "category_id": [[3, vip, 0]]}])
    assert state() == (["Acme, Ann"], [retail])
    rpc.kw("res.partner", "write", [[company], {"category_id": [[5, 0, 0]], "child_ids": [[1, ann, {"name": "Anne"}]]}])
    assert state() == (["Acme, Anne"], [])
    assert names(rpc, [("category_id", "=", False), ("parent_id", "!=", False)]) == ["Anne"]


def test_tags_are_searchable_through_a_path(rpc: Rpc) -> None:
    vip = rpc.kw("res.partner.category", "create", [{"name": "VIP"}])
    rpc.kw("res.partner", "create", [[{"name": "Tagged", "category_id": [vip]}, {"name": "Plain"}]])
    assert names(rpc, [("category_id.name", "=", "VIP")]) == ["Tagged"]
    assert names(rpc, [("category_id", "in", [vip])]) == ["Tagged"]


# ==================================================================================== external ids
def test_ir_model_data_is_unique_per_module_and_name(rpc: Rpc, sim: OdooSimulator) -> None:
    pid = rpc.kw("res.partner", "create", [{"name": "Keyed"}])
    xml = {"module": "concord", "name": "cust_4711", "model": "res.partner", "res_id": pid, "noupdate": True}
    assert isinstance(rpc.kw("ir.model.data", "create", [[xml]])[0], int)
    with pytest.raises(OdooError) as err:
        rpc.kw("ir.model.data", "create", [[{**xml, "name": "cust_other"}, xml]])
    assert err.value.name == "odoo.exceptions.ValidationError"
    assert 'duplicate key value violates unique constraint "ir_model_data_module_name_uniq_index"' in err.value.message
    assert "concord.cust_other" not in sim.xmlids("concord")  # the whole batch was rolled back
    rpc.kw("ir.model.data", "create", [{**xml, "module": "other"}])  # same name, other module: fine
    rows = rpc.kw("ir.model.data", "search_read", [[("module", "=", "concord"), ("name", "in", ["cust_4711"]),
                                                    ("model", "=", "res.partner")]],
                  {"fields": ["res_id", "complete_name"]})
    assert [(r["res_id"], r["complete_name"]) for r in rows] == [(pid, "concord.cust_4711")]


def test_unlink_drops_external_ids_but_a_raw_delete_leaves_them_dangling(rpc: Rpc, sim: OdooSimulator) -> None:
    a, b = rpc.kw("res.partner", "create", [[{"name": "A"}, {"name": "B"}]])
    rpc.kw("ir.model.data", "create", [[{"module": "concord", "name": n, "model": "res.partner", "res_id": r}
                                        for n, r in (("a", a), ("b", b))]])
    rpc.kw("res.partner", "unlink", [[a]])
    sim.delete("res.partner", b, keep_xmlids=True)
    assert sim.xmlids("concord") == {"concord.b": ("res.partner", b)}
    assert sim.xmlids("base")["base.de"][0] == "res.country"


# ==================================================================================== custom fields
def test_custom_field_through_ir_model_fields(rpc: Rpc) -> None:
    model_id = rpc.kw("ir.model", "search", [[("model", "=", "res.partner")]])[0]
    field = {"model_id": model_id, "name": "x_concord_crm_id", "field_description": "Concord CRM id",
             "ttype": "char", "index": True, "state": "manual"}
    assert "x_concord_crm_id" not in rpc.kw("res.partner", "fields_get", [], {"attributes": ["type"]})
    rpc.kw("ir.model.fields", "create", [field])
    assert rpc.kw("res.partner", "fields_get", [["x_concord_crm_id"]], {"attributes": ["type", "string", "manual"]}
                  ) == {"x_concord_crm_id": {"type": "char", "string": "Concord CRM id", "manual": True}}
    pid = rpc.kw("res.partner", "create", [{"name": "Custom", "x_concord_crm_id": "hs-42"}])
    rpc.kw("res.partner", "create", [{"name": "Other"}])
    assert rpc.kw("res.partner", "search_read", [[("x_concord_crm_id", "in", ["hs-42", "hs-43"])]],
                  {"fields": ["x_concord_crm_id"]}) == [{"id": pid, "x_concord_crm_id": "hs-42"}]
    with pytest.raises(OdooError) as err:
        rpc.kw("ir.model.fields", "create", [field])
    assert "Field names must be unique per model" in err.value.message
    with pytest.raises(OdooError) as err:
        rpc.kw("ir.model.fields", "create", [{**field, "name": "concord_id"}])
    assert err.value.message == "Custom fields must have a name that starts with 'x_'!"
    rpc.kw("ir.model.fields", "create", [{**field, "name": "x_score", "ttype": "float", "model_id": False,
                                          "model": "res.partner"}])
    rpc.kw("res.partner", "write", [[pid], {"x_score": 2.5}])
    assert rpc.kw("res.partner", "read", [[pid], ["x_score"]])[0]["x_score"] == 2.5


# ==================================================================================== write_date semantics
def test_write_date_is_the_transaction_time_and_can_lag(sim: OdooSimulator, rpc: Rpc, clock: Clock) -> None:
    ids = rpc.kw("res.partner", "create", [[{"name": "One"}, {"name": "Two"}]])
    stamps = {r["write_date"] for r in rpc.kw("res.partner", "read", [ids, ["write_date"]])}
    assert stamps == {"2026-03-02 09:30:15"}
    clock.advance(120)
    cursor = "2026-03-02 09:32:15"  # "now": a poller has seen everything up to here
    sim.write_date_lag = 90  # a long transaction that started 90 s ago commits now
    rpc.kw("res.partner", "write", [[ids[0]], {"name": "Late"}])
    (row,) = rpc.kw("res.partner", "read", [[ids[0]], ["write_date", "create_date"]])
    assert row == {"id": ids[0], "write_date": "2026-03-02 09:30:45", "create_date": "2026-03-02 09:30:15"}
    assert rpc.kw("res.partner", "search", [[("write_date", ">=", cursor)]]) == []
    assert rpc.kw("res.partner", "search", [[("write_date", ">=", "2026-03-02 09:30:15")]],
                  {"order": "write_date asc, id asc"}) == [ids[1], ids[0]]


def test_direct_helpers_bump_write_date_and_set_computed_credit(sim: OdooSimulator, rpc: Rpc, clock: Clock) -> None:
    pid = sim.create("res.partner", {"name": "Helper"})
    clock.advance(5)
    sim.update("res.partner", pid, {"credit": 120.5, "email": "h@example.com"})
    rpc.kw("res.partner", "write", [[pid], {"credit": 1.0}])  # computed without inverse: ignored
    (row,) = rpc.kw("res.partner", "read", [[pid], ["credit", "email", "write_date"]])
    assert row == {"id": pid, "credit": 120.5, "email": "h@example.com", "write_date": "2026-03-02 09:30:20"}
    assert sim.get("res.partner", 424242) is None
    assert [r["id"] for r in sim.all("res.partner")] == [pid]


# ==================================================================================== faults
def test_drop_after_applies_the_write_then_drops(clock: Clock) -> None:
    with OdooSimulator(clock=clock, faults=Faults(drop_after_rate=1.0, writes_only=True)) as sim:
        rpc = Rpc(sim)
        assert rpc.call("common", "authenticate", DB, LOGIN, KEY, {}) == 2  # reads are not faulted
        with pytest.raises(requests.ConnectionError):
            rpc.kw("res.partner", "create", [[{"name": "Lost ack"}]])
        assert rpc.kw("res.partner", "search_read", [[]], {"fields": ["name"]})[0]["name"] == "Lost ack"


def test_injected_5xx_is_a_proxy_page(clock: Clock) -> None:
    with OdooSimulator(clock=clock, faults=Faults(error_rate=1.0)) as sim:
        resp = requests.post(sim.base_url + "/jsonrpc", timeout=10, json={
            "jsonrpc": "2.0", "id": 1, "params": {"service": "common", "method": "version", "args": []}})
    assert resp.status_code == 503
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "503 Service Temporarily Unavailable" in resp.text and "nginx" in resp.text


def test_partial_rate_fails_a_whole_write_call_without_applying_it(clock: Clock) -> None:
    with OdooSimulator(clock=clock, faults=Faults(partial_rate=1.0)) as sim:
        rpc = Rpc(sim)
        with pytest.raises(OdooError) as err:
            rpc.kw("res.partner", "create", [[{"name": "A"}, {"name": "B"}]])
        assert err.value.name == "psycopg2.errors.SerializationFailure"
        assert rpc.kw("res.partner", "search_count", [[]]) == 0


# ==================================================================================== webhooks
class _Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((dict(self.headers), json.loads(body)))
                receiver.event.set()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/odoo?token=t0k"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_webhooks_post_the_record_after_create_and_write(sim: OdooSimulator, rpc: Rpc) -> None:
    receiver = _Receiver()
    try:
        rpc.kw("res.partner", "create", [{"name": "Silent"}])  # webhooks are off by default
        sim.webhook_url = receiver.url
        sim.webhook_models = {"res.partner"}
        sim.webhook_headers = {"X-Concord-Token": "t0k"}
        de = country_id(rpc, "DE")
        pid = rpc.kw("res.partner", "create", [{"name": "Hooked", "country_id": de}])
        sim.update("res.partner", pid, {"email": "hooked@example.com"})
        rpc.kw("res.country", "write", [[de], {"name": "Deutschland"}])  # not a webhook model
    finally:
        receiver.server.shutdown()
    assert len(receiver.posts) == 2  # delivered before each call returned
    (headers, created), (_, updated) = receiver.posts
    assert headers["X-Concord-Token"] == "t0k" and headers["Content-Type"] == "application/json"
    assert (created["_model"], created["_id"], created["id"], created["name"], created["country_id"]) == (
        "res.partner", pid, pid, "Hooked", de)
    assert created["email"] is False and updated["email"] == "hooked@example.com"
    assert updated["write_date"] == "2026-03-02 09:30:15"
    assert [d.status for d in sim.webhook_deliveries] == [200, 200]


# ==================================================================================== seeding and main
def test_seed_partners_is_realistic_and_deterministic(clock: Clock) -> None:
    with OdooSimulator(clock=clock) as a, OdooSimulator(clock=clock) as b:
        ids = a.seed_partners(3000, seed=7, overrides={"customer_rank": 1})
        b.seed_partners(3000, seed=7, overrides={"customer_rank": 1})
        rows_a, rows_b = a.all("res.partner"), b.all("res.partner")
    assert len(ids) == 3000 and rows_a == rows_b
    emails = [r["email"].strip().lower() for r in rows_a if r.get("email")]
    assert len(emails) > 2700 and len(set(emails)) == len(emails)
    assert {r["customer_rank"] for r in rows_a} == {1}
    assert len({r["country_id"] for r in rows_a}) > 10
    phones = [r["phone"] for r in rows_a if r.get("phone")]
    assert any(p.startswith("+") for p in phones) and any(p.startswith("(") for p in phones)
    assert any(r.get("is_company") for r in rows_a) and any(not r.get("is_company") for r in rows_a)
    assert all(r["write_date"] == "2026-03-02 09:30:15.000000" for r in rows_a)


def test_main_prints_how_to_connect() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.odoo", "--port", "0", "--seed", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        url = text.split("listening on ", 1)[1].split()[0]
        assert "db: concord" in text and "password (API key): sim-odoo-key" in text
        args = [DB, 2, KEY, "res.partner", "search_count", [[]], {}]
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1,
                                "params": {"service": "object", "method": "execute_kw", "args": args}}
        assert requests.post(url + "/jsonrpc", json=body, timeout=10).json()["result"] == 5
    finally:
        proc.terminate()
        proc.wait(timeout=10)
