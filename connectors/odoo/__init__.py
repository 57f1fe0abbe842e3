"""Odoo connector (external JSON-RPC API)."""
from connectors.odoo.connector import OdooConnector
from connectors.odoo.settings import OdooSettings

__all__ = ["OdooConnector", "OdooSettings"]
