"""The daemon's WSGI app with the real HubSpot and Odoo connectors and a real SQLite store, called
directly (no server in between), so thousands of hostile requests stay fast."""
from __future__ import annotations

import io
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.hubspot import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.webhooks import sign_v3
from connectors.odoo import OdooConnector
from connectors.odoo.settings import OdooSettings
from sync.metrics import Metrics
from sync.store import Store
from sync.web import WebApp, make_app

CLIENT_SECRET = "hubspot-client-secret-5e6f7a8b9c"
ODOO_HOOK_TOKEN = "odoo-webhook-token-0a1b2c3d4e"
HOST = "concord.example.com"
MAX_BODY = 64 * 1024


@dataclass
class Answer:
    """What the app answered."""

    status: int
    body: bytes


@dataclass
class Hooks:
    """The app and what it needs to sign requests for it."""

    app: WebApp
    store: Store

    def call(self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None,
             query: str = "", content_length: str | None = None) -> Answer:
        """One request through the WSGI interface, as waitress would pass it."""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
            "SERVER_NAME": HOST, "SERVER_PORT": "443", "wsgi.url_scheme": "https", "HTTP_HOST": HOST,
            "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": "203.0.113.7",
            "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length,
        }
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
        seen: list[str] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            seen.append(status)

        chunks = self.app(environ, start_response)
        return Answer(int(seen[0].split()[0]), b"".join(chunks))

    def hubspot(self, body: bytes, *, timestamp: int | None = None, path: str = "/webhooks/hubspot") -> Answer:
        """A HubSpot webhook signed (v3) with the configured client secret."""
        ts = str(timestamp if timestamp is not None else int(time.time() * 1000))
        signature = sign_v3(CLIENT_SECRET, "POST", f"https://{HOST}{path}", body, ts)
        return self.call("POST", path, body, {"Content-Type": "application/json",
                                              "X-HubSpot-Signature-v3": signature,
                                              "X-HubSpot-Request-Timestamp": ts})

    def odoo(self, body: bytes) -> Answer:
        """An Odoo webhook with the shared token."""
        return self.call("POST", "/webhooks/odoo", body, {"Content-Type": "application/json",
                                                          "X-Concord-Token": ODOO_HOOK_TOKEN})


@contextmanager
def hooks(folder: Path) -> Iterator[Hooks]:
    """The app on a fresh store in ``folder``; nothing listens on the network."""
    hub = HubSpotConnector(HubSpotSettings.model_validate(
        {"connector": "hubspot", "token": "pat-unused", "client_secret": CLIENT_SECRET,
         "base_url": "http://127.0.0.1:9"}))
    odoo = OdooConnector(OdooSettings.model_validate(
        {"connector": "odoo", "url": "http://127.0.0.1:9", "db": "prod", "username": "u", "api_key": "k-unused",
         "webhook_token": ODOO_HOOK_TOKEN}))
    store = Store.open(f"sqlite:///{folder / 'hooks.db'}")
    app = make_app(store=store, connectors={"hubspot": hub, "odoo": odoo}, metrics=Metrics(),
                   max_body=MAX_BODY, public_url=f"https://{HOST}",
                   object_entities={("hubspot", "companies"): "customer", ("odoo", "res.partner"): "customer"},
                   pipelines=["customer"])
    try:
        yield Hooks(app, store)
    finally:
        store.close()
        hub.close()
        odoo.close()
