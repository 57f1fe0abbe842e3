"""Config section of the HubSpot connector (``crm: {connector: hubspot, ...}``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from connectors.settings import ConnectorSettings

Tier = Literal["free", "starter", "professional", "enterprise"]

# Burst limit per private app and 10-second window (usage guidelines, 2025-08).
BURST_PER_10S: dict[str, int] = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}


class HubSpotSettings(ConnectorSettings):
    """HubSpot private-app token, webhook secret, account tier and paging/batch sizes."""

    connector: Literal["hubspot"]
    token: SecretStr = Field(description="Private app access token (Authorization: Bearer)")
    client_secret: SecretStr | None = Field(
        None, description="App client secret: verifies X-HubSpot-Signature-v3 on webhooks")
    base_url: str = Field("https://api.hubapi.com", description="API host; override for a proxy or the simulator")
    tier: Tier = Field("professional", description="Account tier: sizes the 10-second burst limit")
    page_size: int = Field(200, ge=1, le=200, description="Search page size (HubSpot max 200)")
    batch_size: int = Field(100, ge=1, le=100, description="Inputs per batch request (HubSpot max 100)")
    search_rate: float = Field(4.0, gt=0, description="Search requests per second (HubSpot allows 5 per account)")
    webhook_max_age: float = Field(300.0, gt=0, description="Reject webhook timestamps further than this from now (s)")

    def burst_limit(self) -> int:
        """Requests per 10-second window allowed for this tier."""
        return BURST_PER_10S[self.tier]

    def default_rate(self) -> tuple[float, int]:
        """(tokens per second, bucket capacity) that never exceed the tier's 10-second limit.

        A bucket admits at most ``capacity + 10 * rate`` requests in any 10 s window, so a
        capacity of limit/10 and a rate of 0.9 * limit/10 stays within the limit exactly.
        """
        limit = self.burst_limit()
        return limit * 0.9 / 10.0, max(1, limit // 10)
