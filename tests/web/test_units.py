"""Request helpers, the app called directly as WSGI (as under any other server), serve/close."""
from __future__ import annotations

import io
import socket
from typing import Any

import pytest

from sync.metrics import Metrics
from sync.web import (
    BadLength,
    BodyTooLarge,
    Headers,
    make_app,
    parse_listen,
    read_body,
    request_headers,
    request_url,
    serve,
)

from .fakes import MemoryStore, SignedFakeConnector


class Unreadable(io.RawIOBase):
    """A wsgi.input that fails the test if anything reads it."""

    def read(self, *args: Any) -> bytes:
        raise AssertionError("the body was read")


def environ(**extra: Any) -> dict[str, Any]:
    base = {"REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/webhooks/hubspot",
            "QUERY_STRING": "", "SERVER_NAME": "internal", "SERVER_PORT": "8080",
            "wsgi.url_scheme": "http", "HTTP_HOST": "concord.local:8080",
            "wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0"}
    base.update(extra)
    return base


def test_url_keeps_the_raw_path_and_query_as_sent() -> None:
    env = environ(PATH_INFO="/webhooks/a:b", QUERY_STRING="x=%2F&y=1",
                  REQUEST_URI="/webhooks/a%3Ab?x=%2F&y=1")
    assert request_url(env) == "http://concord.local:8080/webhooks/a%3Ab?x=%2F&y=1"


def test_url_with_public_url_replaces_scheme_host_and_mount_point() -> None:
    env = environ(SCRIPT_NAME="/hooks", PATH_INFO="/webhooks/hubspot", QUERY_STRING="a=1",
                  REQUEST_URI="/hooks/webhooks/hubspot?a=1")
    assert request_url(env, "https://concord.example.com/sync") \
        == "https://concord.example.com/sync/webhooks/hubspot?a=1"
    assert request_url(env) == "http://concord.local:8080/hooks/webhooks/hubspot?a=1"


def test_url_without_raw_uri_or_host_header() -> None:
    env = environ(PATH_INFO="/webhooks/a b")
    env.pop("HTTP_HOST")
    assert request_url(env) == "http://internal:8080/webhooks/a%20b"
    env = environ(REQUEST_URI="https://proxy.example/webhooks/hubspot?q=1", QUERY_STRING="q=1")
    assert request_url(env) == "http://concord.local:8080/webhooks/hubspot?q=1"
    env = environ(**{"wsgi.url_scheme": "https", "SERVER_PORT": "443"})
    env.pop("HTTP_HOST")
    assert request_url(env) == "https://internal/webhooks/hubspot"


def test_headers_are_case_insensitive() -> None:
    headers = request_headers(environ(HTTP_X_HUBSPOT_SIGNATURE_V3="sig", CONTENT_TYPE="application/json"))
    assert headers["X-HubSpot-Signature-v3"] == "sig"
    assert headers.get("content-type") == "application/json"
    assert "content-length" in headers and len(headers) == 4  # Host, Content-Length too
    assert Headers([("A", "1")]).get("b") is None


def test_read_body_refuses_a_declared_oversize_without_reading() -> None:
    with pytest.raises(BodyTooLarge):
        read_body(environ(CONTENT_LENGTH=str(2 * 1024 * 1024), **{"wsgi.input": Unreadable()}), 1024)
    with pytest.raises(BadLength):
        read_body(environ(CONTENT_LENGTH="12abc"), 1024)
    with pytest.raises(BadLength):
        read_body(environ(CONTENT_LENGTH="-1"), 1024)


def test_read_body_caps_a_body_without_length() -> None:
    stream = io.BytesIO(b"x" * 5000)
    with pytest.raises(BodyTooLarge):
        read_body(environ(CONTENT_LENGTH="", **{"wsgi.input": stream,
                                                 "wsgi.input_terminated": True}), 1024)
    assert stream.tell() <= 1025 + 65536  # never drained past the cap's read
    assert read_body(environ(CONTENT_LENGTH="", **{"wsgi.input": io.BytesIO(b"[]"),
                                                    "wsgi.input_terminated": True}), 1024) == b"[]"
    # PEP 3333: no length and no terminated input means no body.
    assert read_body(environ(CONTENT_LENGTH="", **{"wsgi.input": Unreadable()}), 1024) == b""
    assert read_body(environ(CONTENT_LENGTH="2", **{"wsgi.input": io.BytesIO(b"[]extra")}), 1024) == b"[]"


def call(app: Any, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    body = b"".join(app(env, start_response))
    return captured["status"], captured["headers"], body


def test_app_alone_refuses_oversize_from_content_length() -> None:
    # Under a server that does not enforce the limit itself, the app still never reads it.
    metrics = Metrics()
    app = make_app(store=MemoryStore(), connectors={"hubspot": SignedFakeConnector("s")},
                   metrics=metrics, readiness=None)
    status, headers, body = call(app, environ(CONTENT_LENGTH=str(2 * 1024 * 1024),
                                             **{"wsgi.input": Unreadable()}))
    assert status.startswith("413") and body == b'{"error":"body_too_large"}'
    assert headers["Content-Length"] == str(len(body))
    assert metrics.webhook_rejected_total.labels("hubspot", "body_too_large")._value.get() == 1
    status, _, body = call(app, environ(CONTENT_LENGTH="x"))
    assert status.startswith("400") and body == b'{"error":"bad_content_length"}'


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":8080") == ("127.0.0.1", 8080)
    for bad in ("8080", "host:http", "host:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_make_app_refuses_a_nonpositive_body_limit() -> None:
    with pytest.raises(ValueError):
        make_app(store=MemoryStore(), connectors={}, metrics=Metrics(), readiness=None, max_body=0)


def test_serve_binds_loopback_and_close_frees_the_port() -> None:
    app = make_app(store=MemoryStore(), connectors={}, metrics=Metrics(), readiness=None)
    server = serve(app, "127.0.0.1:0", threads=2)
    assert server.host == "127.0.0.1" and server.port > 0
    thread = server.start()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
    server.close()
    thread.join(10)
    assert not thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=10).close()
    server.close()  # idempotent


def test_close_before_run_releases_the_socket() -> None:
    app = make_app(store=MemoryStore(), connectors={}, metrics=Metrics(), readiness=None)
    server = serve(app, "127.0.0.1:0")
    server.close()
    server.run()  # returns at once: the server is closed
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=10).close()
