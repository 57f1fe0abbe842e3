"""Local simulator of Odoo 18's external JSON-RPC API (``from sandbox.odoo import OdooSimulator``).

Modules: ``server`` (HTTP/JSON-RPC, faults, webhooks, direct helpers), ``orm`` (models, records,
transactions), ``domain`` (search domains and order), ``fields`` (types and value formats),
``models`` (res.partner, ir.model.data, ..., and the list of every model), ``seed`` (countries and
generated partners), ``errors`` (Odoo's exception names and error bodies); order to cash:
``product``, ``stock``, ``sale``, ``purchase``, ``account``, ``sequence``, ``money``, ``data``
(master data) and ``helpers`` (seed_products, set_stock, deliver, invoice, pay, ...).
"""
from sandbox.core import Clock, Faults

from .server import OdooSimulator, WebhookDelivery, main

__all__ = ["Clock", "Faults", "OdooSimulator", "WebhookDelivery", "main"]
