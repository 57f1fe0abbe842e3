"""Fixtures: the web app served by a real waitress server on 127.0.0.1:0."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from sync.metrics import Metrics
from sync.web import WebApp, WebServer, make_app, serve

from .fakes import MemoryStore, SignedFakeConnector, StoreProxy
from .signing import body_of, signed_headers

SECRET = "test-client-secret-9f1c2e7a"


@dataclass
class Harness:
    """One running app: post signed webhooks, read metrics and the inbox."""

    app: WebApp
    server: WebServer
    store: StoreProxy
    metrics: Metrics
    connector: SignedFakeConnector
    session: requests.Session

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.post(self.url + path, data=body, headers=headers or {}, timeout=30)

    def post_signed(self, events: list[dict[str, Any]], path: str = "/webhooks/fakehub",
                    timestamp_ms: int | None = None, body: bytes | None = None) -> requests.Response:
        raw = body_of(events) if body is None else body
        headers = signed_headers(SECRET, self.url + path, raw, timestamp_ms)
        return self.post(path, raw, headers)

    def inbox(self) -> list[Any]:
        return self.store.inbox_claim("test", 10_000, timedelta(minutes=5))

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of one sample on /metrics, or None when the series does not exist."""
        text = self.session.get(self.url + "/metrics", timeout=30).text
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None


def _open_backing_store(tmp_path: Any) -> tuple[Any, Any]:
    """The real Store on SQLite when it is importable, else the in-memory stand-in."""
    try:
        from sync.store import Store
    except ImportError:
        return MemoryStore(), None
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    return store, store.close


@pytest.fixture
def web(tmp_path: Any) -> Iterator[Any]:
    """A factory: web(**make_app kwargs) -> Harness, served until the test ends."""
    started: list[tuple[WebServer, requests.Session]] = []
    closers: list[Any] = []

    def build(connectors: dict[str, Any] | None = None, store: Any = None,
              **kwargs: Any) -> Harness:
        if store is None:
            store, closer = _open_backing_store(tmp_path)
            if closer is not None:
                closers.append(closer)
        proxy = store if isinstance(store, StoreProxy) else StoreProxy(store)
        connector = SignedFakeConnector(SECRET)
        metrics = kwargs.pop("metrics", None) or Metrics()
        app = make_app(store=proxy, connectors=connectors or {"fakehub": connector},
                       metrics=metrics, readiness=kwargs.pop("readiness", None), **kwargs)
        server = serve(app, "127.0.0.1:0", threads=4)
        server.start()
        session = requests.Session()
        started.append((server, session))
        return Harness(app, server, proxy, metrics, connector, session)

    yield build
    for server, session in started:
        session.close()
        server.close()
    for close in closers:
        close()
