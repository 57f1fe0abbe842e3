"""Secrets stay secret: the configured token, API key, client secret and webhook token never appear
in anything Concord prints, logs (at debug level), stores as a dead letter or shows in `concord
status`/`dlq`, even when records fail and a credential is wrong; TLS is verified unless the admin
turns it off, which is logged."""
from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import certifi
import pytest
from structlog.testing import capture_logs

from connectors.base import AuthError, RetryableError
from connectors.http import HttpClient, HttpSettings
from connectors.hubspot import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings
from connectors.odoo import OdooConnector
from connectors.odoo.settings import OdooSettings
from sandbox.core import Faults
from tests.chaos.world import record_figures
from tests.e2e.conftest import Concord, Result

HUB_TOKEN = "pat-eu1-5d7c1f0e-9b2a-4c3d-8e6f-SECRETTOKEN"
HUB_CLIENT_SECRET = "hubspot-app-secret-77aa99bb"
ODOO_KEY = "odoo-api-key-1f2e3d4c5b6a-SECRET"
ODOO_HOOK = "odoo-hook-token-0fe1d2c3"
WRONG_HUB_TOKEN = "pat-eu1-00000000-WRONG-TOKEN-VALUE"
WRONG_ODOO_KEY = "odoo-wrong-key-ABCDEF123456"
SECRETS = (HUB_TOKEN, HUB_CLIENT_SECRET, ODOO_KEY, ODOO_HOOK, WRONG_HUB_TOKEN, WRONG_ODOO_KEY)


@pytest.fixture
def env(make_env: Callable[..., Concord]) -> Concord:
    e = make_env(hub={"token": HUB_TOKEN, "client_secret": HUB_CLIENT_SECRET}, odoo={"password": ODOO_KEY},
                 erp={"webhook_token": ODOO_HOOK, "max_attempts": 2}, crm={"max_attempts": 2},
                 extra={"webhooks": {"hubspot": {"client_secret": HUB_CLIENT_SECRET}}}, log_level="debug")
    e.setup_systems()
    return e


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def scan(results: list[Result], env: Concord) -> int:
    """Every output and every dead letter, searched for every secret; returns the bytes searched."""
    searched = 0
    for r in results:
        found = leaks(r.out + r.err)
        assert not found, f"{found} in the output of concord {' '.join(r.args)}:\n{r}"
        searched += len(r.out) + len(r.err)
    with env.store() as store:
        for d in store.list_dead_letters(include_resolved=True):
            text = f"{d.error_class} {d.error_message} {d.field} {d.payload}"
            assert not leaks(text), f"a secret in dead letter {d.id}: {text}"
            searched += len(text)
        for run in store.last_runs(limit=100):
            assert not leaks(f"{run.error} {run.counts} {run.api_calls}")
    return searched


def test_no_secret_in_output_logs_status_or_dead_letters(env: Concord) -> None:
    # Records that fail: an unknown country (mapping), a NaN credit limit, and a HubSpot write
    # refused per record (207), all under 5xx faults and lost acknowledgements.
    env.hub.create("companies", {"name": "Atlantis Ltd", "company_email": "a@atl.example", "country": "Atlantis"})
    env.odoo.create("res.partner", {"name": "NaN Ltd", "email": "n@nan.example", "is_company": True,
                                    "customer_rank": 1, "credit_limit": float("nan")})
    for i in range(5):
        env.odoo.create("res.partner", {"name": f"Fine {i}", "email": f"f{i}@fine.example", "is_company": True,
                                        "customer_rank": 1})
    env.hub.faults = Faults(partial_rate=0.5, error_rate=0.2, drop_after_rate=0.2, seed=11)
    env.odoo.faults = Faults(error_rate=0.2, drop_after_rate=0.2, seed=12)
    results = [env.sync(), env.sync()]
    env.hub.faults, env.odoo.faults = Faults(), Faults()
    results += [env.sync(), env.run("status"), env.run("status", "--json"), env.run("dlq", "list"),
                env.run("dlq", "list", "--json", "--all"), env.run("validate", "--check-connections")]
    with env.store() as store:
        dead = store.list_dead_letters()
    assert dead, "the failing records left no dead letter"
    results += [env.run("dlq", "show", str(d.id)) for d in dead[:3]]

    # A wrong HubSpot token, then a wrong Odoo key: the run stops (exit 3) and says why, without them.
    env.configure(crm={"token": WRONG_HUB_TOKEN, "max_attempts": 1},
                  erp={"webhook_token": ODOO_HOOK, "max_attempts": 1}, log_level="debug")
    wrong_hub = env.sync()
    env.configure(erp={"api_key": WRONG_ODOO_KEY, "max_attempts": 1}, crm={"token": HUB_TOKEN}, log_level="debug")
    wrong_odoo = env.sync()
    refused = env.run("validate", "--check-connections")
    results += [wrong_hub, wrong_odoo, refused]
    assert wrong_hub.code == 3 and "hubspot" in wrong_hub.err.lower(), str(wrong_hub)
    assert wrong_odoo.code == 3 and "odoo" in wrong_odoo.err.lower(), str(wrong_odoo)
    assert any('"level": "debug"' in r.err for r in results), "the runs did not log at debug level"
    searched = scan(results, env)
    record_figures("secrets_scan", outputs=len(results), characters_searched=searched,
                   dead_letters=len(dead), secrets=len(SECRETS), leaks=0)


# ------------------------------------------------------------------------------------------ TLS
def test_tls_verification_is_on_by_default_and_off_only_with_a_warning() -> None:
    assert HttpSettings().verify_tls is True
    hub = HubSpotConnector(HubSpotSettings.model_validate({"connector": "hubspot", "token": HUB_TOKEN}))
    odoo = OdooConnector(OdooSettings.model_validate(
        {"connector": "odoo", "url": "https://erp.example.com", "db": "prod", "username": "u", "api_key": ODOO_KEY}))
    assert hub.http.session.verify is True and odoo.rpc.http.session.verify is True
    with capture_logs() as logs:
        insecure = HttpClient("hubspot", "https://api.hubapi.com", HttpSettings(verify_tls=False))
    assert insecure.session.verify is False
    assert any(e["event"] == "http.tls_verification_off" and e["log_level"] == "warning" for e in logs), logs
    quiet = [e for e in logs if e["event"] == "http.tls_verification_off"]
    assert len(quiet) == 1
    for client in (hub, odoo, insecure):
        client.close()


class _Unauthorized(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"error","message":"nope","category":"INVALID_AUTHENTICATION"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate (needs the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = HTTPServer(("127.0.0.1", 0), _Unauthorized)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _connector(base_url: str, *, verify: bool) -> HubSpotConnector:
    return HubSpotConnector(HubSpotSettings.model_validate(
        {"connector": "hubspot", "token": HUB_TOKEN, "base_url": base_url, "max_attempts": 1, "verify_tls": verify}))


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_an_untrusted_certificate_is_refused_unless_verify_tls_is_off(self_signed_server: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # with them set: the next test
        monkeypatch.delenv(name, raising=False)
    strict = _connector(self_signed_server, verify=True)
    with pytest.raises(RetryableError) as refused:
        strict.check_connection()
    assert "SSL" in str(refused.value) and HUB_TOKEN not in str(refused.value)
    lax = _connector(self_signed_server, verify=False)
    with pytest.raises(AuthError):  # the TLS handshake went through: the server's 401 came back
        lax.check_connection()
    strict.close()
    lax.close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_tls_off_also_holds_when_a_ca_bundle_is_set_in_the_environment(
        self_signed_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE replace a session's verify=False (common in containers)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    lax = _connector(self_signed_server, verify=False)
    try:
        with pytest.raises(AuthError):
            lax.check_connection()
    finally:
        lax.close()
