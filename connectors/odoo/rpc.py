"""JSON-RPC client of Odoo's external API (``POST {url}/jsonrpc``), over the shared HttpClient.

Errors arrive inside HTTP 200; they are classified in the HttpClient's classify hook so that
the one retry policy (tenacity, in connectors/http.py) also covers Odoo's retryable errors.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
import structlog

from connectors.base import AuthError, ConnectorError, ValidationError
from connectors.http import HttpClient, default_classify
from connectors.odoo.errors import SYSTEM, OdooConfigError, error_from_payload
from connectors.odoo.settings import OdooSettings

log = structlog.get_logger("concord.odoo.rpc")

_PAYLOAD_ATTR = "_concord_jsonrpc_payload"
_SEARCH_METHODS = {"search", "search_read", "search_count", "fields_get", "name_search", "read_group"}

OnResponse = Callable[[str, str, int | None, float], None]


def kind_of(method: str) -> str:
    """The api_calls kind of an ORM method (read, search, create, write)."""
    if method in _SEARCH_METHODS:
        return "search"
    if method == "read":
        return "read"
    if method == "create":
        return "create"
    return "write"


class OdooRPC:
    """Odoo's ``common`` and ``object`` services over JSON-RPC, with a cached login (uid)."""

    def __init__(self, settings: OdooSettings, *, on_response: OnResponse | None = None,
                 http: HttpClient | None = None) -> None:
        self.settings = settings
        self.http = http or HttpClient(
            SYSTEM, settings.endpoint, settings.http_settings(),
            headers={"Accept": "application/json"},
            secrets=settings.secret_values(), classify=self._classify, on_response=on_response)
        self._ids = itertools.count(1)
        self._uid: int | None = None
        self._login_lock = threading.Lock()

    # ------------------------------------------------------------------ public
    def call(self, service: str, method: str, *args: Any, kind: str = "auth", idempotent: bool = True) -> Any:
        """Call ``service.method(*args)``; returns ``result`` (None when Odoo omits it)."""
        envelope = {"jsonrpc": "2.0", "method": "call", "id": next(self._ids),
                    "params": {"service": service, "method": method, "args": list(args)}}
        response = self.http.request("POST", "/jsonrpc", kind=kind, json=envelope, idempotent=idempotent,
                                     headers={"Content-Type": "application/json"})
        payload = getattr(response, _PAYLOAD_ATTR, None)
        if payload is None:
            payload = self._parse(response)
        # Odoo omits "result" when the method returned None (observed on 18.0).
        return payload.get("result")

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: Mapping[str, Any] | None = None,
                   *, idempotent: bool = True, kind: str | None = None) -> Any:
        """``object.execute_kw`` as the logged-in user; ``idempotent=False`` for plain creates."""
        uid = self.uid
        log.debug("odoo.execute_kw", model=model, method=method)
        return self.call("object", "execute_kw", self.settings.db, uid, self.settings.api_key.get_secret_value(),
                         model, method, args, dict(kwargs or {}),
                         kind=kind or kind_of(method), idempotent=idempotent)

    @property
    def uid(self) -> int:
        """The integration user's id, logging in on first use."""
        if self._uid is None:
            with self._login_lock:
                if self._uid is None:
                    self._uid = self.authenticate()
        return self._uid

    def login(self) -> int:
        """Authenticate now (even if a uid is cached) and cache the new uid."""
        with self._login_lock:
            self._uid = self.authenticate()
            return self._uid

    def authenticate(self) -> int:
        """``common.authenticate``; a false result means wrong login or key (not an RPC error)."""
        s = self.settings
        uid = self.call("common", "authenticate", s.db, s.username, s.api_key.get_secret_value(), {}, kind="auth")
        if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
            log.warning("odoo.login_failed", db=s.db, username=s.username)
            raise AuthError(f"odoo: login failed for user {s.username!r} on database {s.db!r} "
                            "(check username and api_key)", system=SYSTEM)
        log.info("odoo.login", db=s.db, username=s.username, uid=uid)
        return uid

    def version(self) -> dict[str, Any]:
        """``common.version``: needs no login; proves the URL points at an Odoo server."""
        result = self.call("common", "version", kind="auth")
        if not isinstance(result, dict):
            raise OdooConfigError(f"odoo: {self.settings.endpoint}/jsonrpc did not answer common.version",
                                  system=SYSTEM)
        return result

    def api_calls(self) -> dict[str, int]:
        """HTTP calls so far by kind."""
        return self.http.api_calls()

    def close(self) -> None:
        """Release the HTTP session."""
        self.http.close()

    # ------------------------------------------------------------------ internals
    def _classify(self, response: requests.Response, system: str) -> ConnectorError | None:
        status = response.status_code
        if status == 404:
            return OdooConfigError(f"odoo: no JSON-RPC endpoint at {self.settings.endpoint}/jsonrpc (HTTP 404); "
                                   "check url", system=system, status=404)
        if status == 400:
            body = response.text[:200].strip()
            return ValidationError(f"odoo: request refused (HTTP 400): {body}", system=system, status=400)
        if status >= 300:
            return default_classify(response, system)
        try:
            payload = self._parse(response)
        except ConnectorError as exc:
            return exc
        setattr(response, _PAYLOAD_ATTR, payload)  # saves parsing a large page twice
        if "error" in payload:
            return error_from_payload(payload["error"], db=self.settings.db, status=status)
        return None

    def _parse(self, response: requests.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or ("result" not in payload and "error" not in payload
                                              and payload.get("jsonrpc") != "2.0"):
            ctype = response.headers.get("Content-Type", "?")
            raise OdooConfigError(f"odoo: {self.settings.endpoint}/jsonrpc did not answer JSON-RPC "
                                  f"(HTTP {response.status_code}, {ctype}); check url", system=SYSTEM,
                                  status=response.status_code)
        return payload
