"""A local simulator of the HubSpot CRM API (objects v3, search, batch, properties v3, associations v4).

It answers over real HTTP with HubSpot's paths, JSON shapes, status codes, error bodies, rate-limit
behaviour and v3-signed webhooks, as recorded in shared/api-notes (section 1) and HubSpot's official
OpenAPI files. Where the real behaviour is UNVERIFIED in the notes, the choice made here is stated
next to the code that makes it.

Run it alone with ``python -m sandbox.hubspot --port 8081 --seed 200``.
"""
from __future__ import annotations

from sandbox.hubspot.catalog import ASSOC_TYPES, OBJECT_TYPES, AssocType, ObjectType, resolve_object_type
from sandbox.hubspot.cli import main
from sandbox.hubspot.simulator import HubSpotSimulator
from sandbox.hubspot.values import parse_time_ms
from sandbox.hubspot.webhooks import WebhookDelivery, WebhookSettings, sign_v1, sign_v3

__all__ = [
    "ASSOC_TYPES", "OBJECT_TYPES", "AssocType", "HubSpotSimulator", "ObjectType", "WebhookDelivery",
    "WebhookSettings", "main", "parse_time_ms", "resolve_object_type", "sign_v1", "sign_v3",
]
