"""Local simulator of Odoo 18's external JSON-RPC API (``from sandbox.odoo import OdooSimulator``).

Modules: ``server`` (HTTP/JSON-RPC, faults, webhooks, direct helpers), ``orm`` (models, records,
transactions), ``domain`` (search domains and order), ``fields`` (types and value formats),
``models`` (res.partner, ir.model.data, ...), ``seed`` (countries and generated partners),
``errors`` (Odoo's exception names and error bodies).
"""
from sandbox.core import Clock, Faults

from .server import OdooSimulator, WebhookDelivery, main

__all__ = ["Clock", "Faults", "OdooSimulator", "WebhookDelivery", "main"]
