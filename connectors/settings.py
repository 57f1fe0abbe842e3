"""Pydantic base of every connector's config section (``crm:`` / ``erp:`` in the YAML).

Each connector subclasses :class:`ConnectorSettings` with ``connector: Literal["<name>"]``; the
config loader builds a discriminated union of all registered connectors' models.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.http import HttpSettings


class ConnectorSettings(BaseModel):
    """Settings every HTTP connector takes: endpoint, timeouts, rate limit, TLS, mapping file."""

    model_config = ConfigDict(extra="forbid")

    connector: str
    mapping: str | None = Field(None, description="Mapping file; default: the one shipped for this connector")
    base_url: str | None = Field(None, description="Override the product's public endpoint (proxy, simulator)")
    timeout: float = Field(30.0, gt=0, description="Read timeout in seconds")
    connect_timeout: float = Field(5.0, gt=0)
    rate_limit: float | None = Field(None, gt=0, description="Requests per second (token bucket)")
    burst: int | None = Field(None, gt=0)
    max_attempts: int = Field(6, ge=1, le=20)
    backoff_max: float = Field(30.0, gt=0)
    verify_tls: bool = True

    def http_settings(self, *, default_rate: float | None = None, default_burst: int | None = None) -> HttpSettings:
        """The HTTP layer's settings for this connector."""
        return HttpSettings(
            timeout_connect=self.connect_timeout,
            timeout_read=self.timeout,
            max_attempts=self.max_attempts,
            backoff_max=self.backoff_max,
            rate_per_second=self.rate_limit or default_rate,
            burst=self.burst or default_burst,
            verify_tls=self.verify_tls,
        )

    def secret_values(self) -> list[str]:
        """Every secret value in this section, so logs and errors can mask them."""
        out: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
        return out
