"""Config section of the Odoo connector (``erp: {connector: odoo, ...}`` in the YAML)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from connectors.settings import ConnectorSettings


class OdooSettings(ConnectorSettings):
    """Where the Odoo server is and how to log in (external API, JSON-RPC).

    ``url`` is the server's base URL (``https://erp.example.com``); ``base_url`` is accepted as
    an alias because every other connector uses that name. ``api_key`` is an Odoo API key (or
    the password) of ``username``.
    """

    connector: Literal["odoo"] = "odoo"
    url: str | None = Field(None, description="Base URL of the Odoo server, e.g. https://erp.example.com")
    db: str = Field(..., min_length=1, description="Odoo database name")
    username: str = Field(..., min_length=1, description="Login of the integration user")
    api_key: SecretStr = Field(..., description="API key (Preferences > Account Security) or password")
    page_size: int = Field(1000, ge=1, le=10_000, description="Records per search_read page")
    batch_size: int = Field(100, ge=1, le=5_000, description="Records per create/write batch")
    write_concurrency: int = Field(4, ge=1, le=16, description="Odoo write calls in flight at once (updates "
                                   "with different values need a call each)")
    webhook_token: SecretStr | None = Field(
        None, description="Shared secret expected on /webhooks/odoo (Odoo does not sign webhooks)")
    webhook_header: str = Field("X-Concord-Token", min_length=1,
                                description="Header carrying webhook_token; a ?token= query parameter also works")
    purchase_vendor_id: int | None = Field(
        None, ge=1, description="res.partner id of the vendor for purchase requests of products without a "
                                "vendor (product.supplierinfo); default: a 'Concord default vendor' partner")
    purchase_key_field: str = Field(
        "x_concord_po_key", pattern=r"^x_[a-z0-9_]+$",
        description="Custom purchase.order.line field holding each purchase request's key (created by setup)")

    @model_validator(mode="after")
    def _one_url(self) -> OdooSettings:
        if self.url is None and self.base_url is None:
            raise ValueError("url is required (the Odoo server's base URL, e.g. https://erp.example.com)")
        if self.url is not None and self.base_url is not None and self.url.rstrip("/") != self.base_url.rstrip("/"):
            raise ValueError("url and base_url are the same setting; give only one")
        return self

    @property
    def endpoint(self) -> str:
        """The server's base URL without a trailing slash."""
        return (self.url or self.base_url or "").rstrip("/")
