"""The Odoo 18 simulator: the external JSON-RPC API (``POST /jsonrpc``) over the in-memory ORM.

What a client sees is what a real Odoo 18 answers (see shared/api-notes/odoo-18-observed.md):
errors inside HTTP 200 with ``error.data.name``/``message``, ``authenticate`` answering ``false``
for bad credentials, no ``result`` key when a method returns None, many2one as ``[id, name]``,
datetimes as naive-UTC ``YYYY-MM-DD HH:MM:SS`` text, HTTP 400 plain bodies for malformed JSON.
Proxy failures (injected 5xx) come back as a reverse proxy's HTML page, not as JSON-RPC.

Knobs: ``write_date_lag`` (seconds; write_date = now - lag, a long transaction that commits late),
``subsecond_timestamps`` (PostgreSQL keeps microseconds while the API shows seconds), ``error_code``
(200 up to Odoo 18, 0 in 19), webhooks (``webhook_url``/``webhook_models``/``webhook_headers``),
and the core ``Faults``. ``partial_rate`` has no per-record meaning in Odoo (a call is one
transaction), so it fails a whole write call with a serialization failure, nothing applied.
"""
from __future__ import annotations

import argparse
import html
import json
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any, Self
from urllib.parse import urlsplit

import requests
import structlog

from sandbox.core import Clock, Faults, Request, Response, Simulator

from .errors import (
    AccessDenied,
    PgOperationalError,
    PgSerializationFailure,
    exception_name,
    serialize_exception,
)
from .fields import WIRE_DATETIME_LENGTH, format_timestamp
from .helpers import OrderToCashHelpers
from .models import ADMIN_UID, build_registry
from .orm import BaseModel, Env
from .seed import PartnerGenerator

log = structlog.get_logger("sandbox.odoo")

SERVER_VERSION = "18.0"
SERVER_VERSION_INFO = [18, 0, 0, "final", 0, ""]
JSON_MIMETYPES = frozenset({"application/json", "application/json-rpc"})
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
# Methods that only read; everything else on the object service counts as a write (faults, counters).
READ_METHODS = frozenset({
    "search", "search_read", "search_count", "read", "fields_get", "name_search", "exists", "default_get",
    "check_access_rights", "has_access", "read_group", "web_search_read", "search_fetch",
})
_REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


@dataclass
class WebhookDelivery:
    """One webhook POST the simulator made (``status`` None when the request failed)."""

    url: str
    payload: dict[str, Any]
    status: int | None
    error: str | None = None


def _arity(name: str, args: list[Any], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        takes = f"{low}" if low == high else f"from {low} to {high}"
        raise TypeError(f"{name}() takes {takes} positional arguments but {len(args)} were given")


def _missing_args(names: list[str]) -> TypeError:
    quoted = [f"'{n}'" for n in names]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    plural = "s" if len(names) > 1 else ""
    return TypeError(f"RPC.jsonrpc() missing {len(names)} required positional argument{plural}: {listed}")


def _str_datetime(stored: str) -> str:
    # json.dumps(default=str) of a Python datetime: microseconds only when there are some.
    return stored[:WIRE_DATETIME_LENGTH] if stored.endswith(".000000") else stored


class OdooSimulator(OrderToCashHelpers, Simulator):
    """A local Odoo 18 server: JSON-RPC ``common``/``object``/``db`` services over a small ORM.

    Order-to-cash direct helpers (``seed_products``, ``set_stock``, ``confirm``, ``deliver``,
    ``invoice``, ``pay``, ...) come from :class:`~sandbox.odoo.helpers.OrderToCashHelpers`.
    """

    name = "odoo"

    def __init__(self, *, db: str = "concord", login: str = "admin", password: str = "sim-odoo-key",
                 port: int = 0, faults: Faults | None = None, clock: Clock | None = None, error_code: int = 200,
                 host: str = "127.0.0.1", builtin_partners: bool = False, log_bodies: bool = False) -> None:
        super().__init__(host=host, port=port, faults=faults, clock=clock, log_bodies=log_bodies)
        self.db = db
        self.login = login
        self.password = password
        self.uid = ADMIN_UID
        self.error_code = error_code
        self.write_date_lag = 0.0
        self.subsecond_timestamps = True
        self.webhook_url: str | None = None
        self.webhook_models: set[str] = set()
        self.webhook_headers: dict[str, str] = {}
        self.webhook_fields: dict[str, list[str]] = {}
        self.webhook_timeout = 1.0  # Odoo's "send and forget" timeout
        self.webhook_action = "Send Webhook Notification(#1)"
        self.webhook_deliveries: deque[WebhookDelivery] = deque(maxlen=10_000)
        self.registry = build_registry(db, self._transaction_timestamp, builtin_partners=builtin_partners)
        self.add_route("POST", "/jsonrpc", self._jsonrpc, "jsonrpc")
        self.add_route("GET", "/jsonrpc", self._jsonrpc, "jsonrpc")

    # ================================================================== framework hooks
    def start(self) -> Self:
        """Start serving; responses go out without Nagle delays (see below)."""
        super().start()
        assert self._server is not None
        # The core handler writes headers and body in two send() calls; with Nagle's algorithm and
        # the client's delayed ACK every keep-alive response then stalls ~40 ms. This handler class
        # is private to this server (made in start()), and no client knows the port yet.
        self._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        return self

    def __enter__(self) -> Self:
        return self.start()

    def is_write(self, request: Request) -> bool:
        """Object-service calls other than reads (create, write, unlink, action_*) count as writes."""
        if request.path != "/jsonrpc":
            return False
        try:
            body = request.json()
        except ValueError:
            return False
        params = body.get("params") if isinstance(body, dict) else None
        if not isinstance(params, dict) or params.get("service") != "object":
            return False
        args = params.get("args")
        if not isinstance(args, list) or len(args) < 5:
            return False
        return isinstance(args[4], str) and args[4] not in READ_METHODS

    def error_response(self, status: int, message: str) -> Response:
        """HTTP-level errors: a reverse proxy's page for 5xx, werkzeug's page for 4xx."""
        reason = _REASONS.get(status, "Error")
        if status >= 500 and status != 500:
            body = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
                    f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                    "</body>\r\n</html>\r\n")
            return Response(status, body, content_type="text/html")
        if status == 404:
            message = ("The requested URL was not found on the server. If you entered the URL manually "
                       "please check your spelling and try again.")
        body = (f"<!doctype html>\n<html lang=en>\n<title>{status} {reason}</title>\n<h1>{reason}</h1>\n"
                f"<p>{html.escape(message)}</p>\n")
        return Response(status, body, content_type=HTML_CONTENT_TYPE)

    def _transaction_timestamp(self) -> str:
        # Odoo's cr.now(): the transaction start, naive UTC; the lag emulates a late commit.
        now = self.clock.now().astimezone(UTC).replace(tzinfo=None)
        if self.write_date_lag:
            now -= timedelta(seconds=self.write_date_lag)
        if not self.subsecond_timestamps:
            now = now.replace(microsecond=0)
        return format_timestamp(now)

    # ================================================================== JSON-RPC
    def _jsonrpc(self, request: Request, match: Any) -> Response:
        mimetype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if mimetype not in JSON_MIMETYPES:
            return self.error_response(400, (
                "Request inferred type is compatible with ['http'] but '/jsonrpc' is type='json'.\n\n"
                "Please verify the Content-Type request header and try again."))
        try:
            if not request.body:
                raise ValueError("empty body")
            body = request.json()
        except ValueError:
            return Response(400, "Invalid JSON data", content_type=HTML_CONTENT_TYPE)
        if not isinstance(body, dict):
            return Response(400, "Invalid JSON-RPC data", content_type=HTML_CONTENT_TYPE)
        request_id = body.get("id")
        try:
            result, deliveries = self._dispatch_rpc(body.get("params", {}))
        except Exception as exc:  # noqa: BLE001 - every server error becomes a JSON-RPC error, as in Odoo
            log.info("odoo_rpc_error", error=exception_name(exc), message=str(exc)[:200])
            error = {"code": self.error_code, "message": "Odoo Server Error", "data": serialize_exception(exc)}
            return Response(200, {"jsonrpc": "2.0", "id": request_id, "error": error},
                            content_type=JSON_CONTENT_TYPE)
        self._deliver(deliveries)
        payload: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if result is not None:  # Odoo omits "result" when a method returns None
            payload["result"] = result
        return Response(200, payload, content_type=JSON_CONTENT_TYPE)

    def _dispatch_rpc(self, params: Any) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
        if not isinstance(params, dict):
            raise TypeError("'params' must be a JSON object (JSON-RPC by-name parameters)")
        missing = [k for k in ("service", "method", "args") if k not in params]
        if missing:
            raise _missing_args(missing)
        service, method, args = params["service"], params["method"], params["args"]
        if not isinstance(args, list):
            raise TypeError(f"'args' must be a list, not {type(args).__name__}")
        if service == "common":
            return self._common(method, args), []
        if service == "object":
            return self._object(method, args)
        if service == "db":
            return self._db_service(method, args), []
        raise KeyError(service)

    def _check_db(self, db: Any) -> None:
        if db != self.db:
            raise PgOperationalError(
                f'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "{db}" does not exist\n')

    def _credentials_ok(self, login: Any, password: Any) -> bool:
        return bool(password) and login == self.login and password == self.password

    def _common(self, method: Any, args: list[Any]) -> Any:
        if method == "version":
            _arity("exp_version", args, 0)
            return {"server_version": SERVER_VERSION, "server_version_info": SERVER_VERSION_INFO,
                    "server_serie": SERVER_VERSION, "protocol_version": 1}
        if method == "login":
            _arity("exp_login", args, 3)
            method, args = "authenticate", [*args, None]
        if method == "authenticate":
            _arity("exp_authenticate", args, 4)
            db, login, password, _user_agent_env = args
            self._check_db(db)
            # A wrong password is not an error here: Odoo catches AccessDenied and answers false.
            return self.uid if self._credentials_ok(login, password) else False
        if method == "about":
            _arity("exp_about", args, 0, 1)
            info = "See http://openerp.com"
            return [info, SERVER_VERSION] if args and args[0] else info
        raise Exception(f"Method not found: {method}")  # noqa: TRY002 - Odoo raises a bare Exception

    def _db_service(self, method: Any, args: list[Any]) -> Any:
        if method == "list":
            return [self.db]
        if method == "server_version":
            return SERVER_VERSION
        if method == "db_exist":
            _arity("exp_db_exist", args, 1)
            return args[0] == self.db
        raise KeyError(f"exp_{method}")

    def _object(self, method: Any, args: list[Any]) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
        if len(args) < 3:
            raise IndexError("list index out of range")
        db, uid, password = args[0], int(args[1]), args[2]
        self._check_db(db)
        if uid != self.uid or not self._credentials_ok(self.login, password):
            raise AccessDenied()
        if method == "execute_kw":
            _arity("execute_kw", args[1:], 5, 6)
            model, name, call_args = args[3], args[4], args[5]
            kw = args[6] if len(args) > 6 else None
        elif method == "execute":
            _arity("execute", args[1:], 4, len(args))
            model, name, call_args, kw = args[3], args[4], list(args[5:]), None
        else:
            raise NameError(f"Method not available {method}")
        if kw is not None and not isinstance(kw, dict):
            raise TypeError(f"odoo.service.model.execute() argument after ** must be a mapping, not "
                            f"{type(kw).__name__}")
        kwargs = dict(kw or {})
        context = kwargs.pop("context", None) or {}
        if not isinstance(context, dict):
            raise TypeError(f"context must be a dictionary, not {type(context).__name__}")
        if isinstance(name, str) and name not in READ_METHODS and self.faults.applies("/jsonrpc", True) \
                and self.faults.roll(self.faults.partial_rate):
            raise PgSerializationFailure()
        with self.lock, self.registry.transaction(uid, context) as env:
            result = self.registry.call_kw(env, model, name, call_args, kwargs)
            deliveries = self._collect_webhooks(env)
        return result, deliveries

    # ================================================================== webhooks
    def _collect_webhooks(self, env: Env) -> list[tuple[str, dict[str, Any]]]:
        url = self.webhook_url
        if not url or not self.webhook_models or not env.touched:
            return []
        out = []
        for model_name, rid in env.touched:
            if model_name not in self.webhook_models:
                continue
            model = self.registry.models[model_name]
            rec = model.records.get(rid)
            if rec is not None:
                out.append((url, self._webhook_payload(model, rec)))
        return out

    def _webhook_payload(self, model: BaseModel, rec: dict[str, Any]) -> dict[str, Any]:
        # What Odoo's "Send Webhook Notification" posts: _action/_id/_model plus read(fields, load=None).
        names = self.webhook_fields.get(model._name) or [
            n for n, f in model.fields.items() if f.store and n != "id"]
        values = model.read_records([rec], names, load=None)[0]
        for n in names:
            if model.fields[n].type == "datetime" and rec.get(n):
                values[n] = _str_datetime(rec[n])
        return {"_action": self.webhook_action, "_id": rec["id"], "_model": model._name, **values}

    def _deliver(self, deliveries: list[tuple[str, dict[str, Any]]]) -> None:
        for url, payload in deliveries:
            body = json.dumps(payload, sort_keys=True, default=str)
            headers = {"Content-Type": "application/json", **self.webhook_headers}
            host = urlsplit(url).netloc  # never log the query: it may carry a token
            try:
                resp = requests.post(url, data=body, headers=headers, timeout=self.webhook_timeout)
                delivery = WebhookDelivery(url, payload, resp.status_code)
                if resp.status_code >= 400:
                    log.warning("odoo_webhook_rejected", host=host, status=resp.status_code)
            except requests.RequestException as exc:
                delivery = WebhookDelivery(url, payload, None, type(exc).__name__)
                log.warning("odoo_webhook_failed", host=host, error=type(exc).__name__)
            with self.lock:
                self.webhook_deliveries.append(delivery)

    # ================================================================== direct helpers (behind Concord's back)
    def _model(self, model: str) -> BaseModel:
        try:
            return self.registry.models[model]
        except KeyError:
            raise KeyError(f"the Odoo simulator has no model {model!r}") from None

    def _direct(self, fn: Callable[[Env], Any]) -> Any:
        """Run ``fn`` as the administrator in one transaction; webhooks fire as for UI edits."""
        with self.lock, self.registry.transaction(self.uid, {"active_test": False}, force=True) as env:
            result = fn(env)
            deliveries = self._collect_webhooks(env)
        self._deliver(deliveries)
        return result

    def create(self, model: str, vals: Mapping[str, Any]) -> int:
        """Create a record as a user would (defaults, checks, write_date); returns its id."""
        m = self._model(model)
        return int(self._direct(lambda env: m.create_records(env, [dict(vals)])[0]))

    def update(self, model: str, record_id: int, vals: Mapping[str, Any]) -> None:
        """Write values as a user would; may also set computed raw values such as ``credit``."""
        m = self._model(model)
        self._direct(lambda env: m.write_records(env, [record_id], dict(vals)))

    def archive(self, model: str, record_id: int) -> None:
        """Archive a record (``active = False``), bumping its write_date."""
        self.update(model, record_id, {"active": False})

    def delete(self, model: str, record_id: int, *, keep_xmlids: bool = False) -> None:
        """Delete a record: through the ORM (its external ids go too), or behind the ORM's back
        (``keep_xmlids=True``, like an SQL delete: external ids are left dangling)."""
        m = self._model(model)
        if keep_xmlids:
            with self.lock:
                m._remove(None, record_id)
            return
        self._direct(lambda env: m.unlink_records(env, [record_id]))

    def get(self, model: str, record_id: int) -> dict[str, Any] | None:
        """The raw stored values of a record, or None (datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
        m = self._model(model)
        with self.lock:
            rec = m.records.get(record_id)
            return dict(rec) if rec is not None else None

    def all(self, model: str, include_archived: bool = True) -> list[dict[str, Any]]:
        """The raw stored values of every record of ``model``, by id."""
        m = self._model(model)
        with self.lock:
            return [dict(r) for r in m._ordered_records()
                    if include_archived or r.get("active", True) is not False]

    def read(self, model: str, ids: list[int], fields: list[str] | None = None) -> list[dict[str, Any]]:
        """Records as the API's ``read`` returns them (many2one as [id, name], false for empty)."""
        m = self._model(model)
        with self.lock:
            return m.read_records([m.records[i] for i in ids], fields)

    def xmlids(self, module: str | None = None) -> dict[str, tuple[str, int]]:
        """External ids: ``"module.name" -> (model, res_id)``, optionally of one module."""
        imd = self._model("ir.model.data")
        with self.lock:
            return {imd.display_name(r): (r["model"], r.get("res_id") or 0)
                    for r in imd._ordered_records() if module is None or r.get("module") == module}

    def seed_partners(self, n: int, seed: int = 0, overrides: Mapping[str, Any] | Callable[[int], Mapping[str, Any]]
                      | None = None) -> list[int]:
        """Insert ``n`` realistic partners fast (one transaction, one write_date); returns their ids.

        ``overrides`` is a dict of values for every partner, or ``f(i) -> dict`` for the i-th one.
        """
        partner = self._model("res.partner")
        with self.lock:
            countries = self.registry.models["res.country"].records
            country_ids = {r["code"]: r["id"] for r in countries.values()}
            state_ids = {(countries[r["country_id"]]["code"], r["code"]): r["id"]
                         for r in self.registry.models["res.country.state"].records.values()}
            generator = PartnerGenerator(seed, country_ids, state_ids)
            with self.registry.transaction(self.uid, force=True) as env:
                # One import transaction; whole seconds keep keyset pages over 100k rows sharing
                # one timestamp cheap whichever way a client pages (see fields.py on precision).
                env.now = env.now[:WIRE_DATETIME_LENGTH] + ".000000"
                static = self._convert_override(partner, env, overrides) if isinstance(overrides, Mapping) else None
                rows = []
                for i, row in enumerate(generator.rows(n)):
                    if static:
                        row.update(static)
                    elif callable(overrides):
                        row.update(self._convert_override(partner, env, overrides(i)))
                    row["create_uid"] = row["write_uid"] = self.uid
                    row["create_date"] = row["write_date"] = env.now
                    rows.append(row)
                return partner._bulk_insert(rows)

    @staticmethod
    def _convert_override(model: BaseModel, env: Env, values: Mapping[str, Any]) -> dict[str, Any]:
        stored, x2many = model._convert_vals(env, dict(values))
        if x2many:
            raise ValueError("seed_partners overrides cannot set one2many/many2many fields")
        return stored


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.odoo``: run the simulator in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.odoo", description="Local Odoo 18 JSON-RPC simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8069)
    parser.add_argument("--db", default="concord")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="sim-odoo-key", help="password / API key the server accepts")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed N realistic partners")
    parser.add_argument("--random-seed", type=int, default=0, help="random seed of the generated partners")
    parser.add_argument("--products", type=int, default=0, metavar="N",
                        help="seed N storable products (SKU-00001...) with stock")
    parser.add_argument("--builtin-partners", action="store_true",
                        help="add the company/OdooBot/admin partners a real fresh database has")
    parser.add_argument("--write-date-lag", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-model", action="append", default=[], metavar="MODEL")
    parser.add_argument("--webhook-header", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)

    sim = OdooSimulator(host=args.host, port=args.port, db=args.db, login=args.login, password=args.password,
                        builtin_partners=args.builtin_partners)
    sim.write_date_lag = args.write_date_lag
    sim.webhook_url = args.webhook_url
    sim.webhook_models = set(args.webhook_model or (["res.partner"] if args.webhook_url else []))
    for header in args.webhook_header:
        name, sep, value = header.partition("=")
        if not sep:
            parser.error(f"--webhook-header expects NAME=VALUE, got {header!r}")
        sim.webhook_headers[name.strip()] = value.strip()
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.seed:
        sim.seed_partners(args.seed, seed=args.random_seed)
    if args.products:
        sim.seed_products(args.products, seed=args.random_seed)
    print(f"Odoo {SERVER_VERSION} simulator listening on {sim.base_url} (JSON-RPC: {sim.base_url}/jsonrpc)")
    print(f"  db: {sim.db}")
    print(f"  login: {sim.login}")
    print(f"  password (API key): {sim.password}")
    print(f"  uid: {sim.uid}   partners seeded: {args.seed}   products seeded: {args.products}")
    print("Ctrl-C to stop.", flush=True)
    sim.serve_forever()
    return 0
