"""Runtime wiring: webhook secrets given under `webhooks:` reach the connectors."""
from pathlib import Path

from sync.config import load_config
from sync.runtime import build_runtime

CONFIG = """
state: {url: "sqlite://"}
crm: {connector: hubspot, token: t0ken-value, base_url: "http://127.0.0.1:9"}
erp: {connector: odoo, url: "http://127.0.0.1:9", db: d, username: u, api_key: k3y-value}
sync:
  customer: {direction: both}
webhooks:
  hubspot: {client_secret: hub-secret}
  odoo: {token: odoo-token, header: X-Odoo-Hook}
"""


def test_webhook_secrets_in_the_webhooks_section_reach_the_connectors(tmp_path: Path) -> None:
    path = tmp_path / "concord.yaml"
    path.write_text(CONFIG)
    rt = build_runtime(load_config(path))
    try:
        assert rt.crm.connector.settings.client_secret.get_secret_value() == "hub-secret"
        assert rt.erp.connector.settings.webhook_token.get_secret_value() == "odoo-token"
        assert rt.erp.connector.settings.webhook_header == "X-Odoo-Hook"
    finally:
        rt.close()


def test_the_connector_section_wins_over_the_webhooks_section(tmp_path: Path) -> None:
    path = tmp_path / "concord.yaml"
    path.write_text(CONFIG.replace("token: t0ken-value,", "token: t0ken-value, client_secret: own-secret,"))
    rt = build_runtime(load_config(path))
    try:
        assert rt.crm.connector.settings.client_secret.get_secret_value() == "own-secret"
    finally:
        rt.close()
