"""Fixtures for config and mapping tests: small fake connector settings (so these tests do not
depend on the real connectors) and a helper that writes YAML files."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field, SecretStr

from connectors.settings import ConnectorSettings
from sync.config import Config, build_config_model


class FakeCrmSettings(ConnectorSettings):
    """A CRM connector's settings: a token and an optional webhook secret."""

    connector: Literal["fakecrm"]
    token: SecretStr
    client_secret: SecretStr | None = None
    page_size: int = Field(100, ge=1, le=200)


class FakeErpSettings(ConnectorSettings):
    """An ERP connector's settings: URL, login and API key."""

    connector: Literal["fakeerp"]
    url: str
    db: str = "prod"
    api_key: SecretStr


@pytest.fixture(scope="session")
def config_model() -> type[Config]:
    return build_config_model({"fakecrm": FakeCrmSettings, "fakeerp": FakeErpSettings})


WriteYaml = Callable[..., Path]


@pytest.fixture
def write_yaml(tmp_path: Path) -> WriteYaml:
    """Write dedented YAML text to tmp_path/<name> and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
