"""HubSpot CRM v3 connector."""
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings

__all__ = ["HubSpotConnector", "HubSpotSettings"]
