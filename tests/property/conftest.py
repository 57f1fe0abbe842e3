"""Quiet logs for the in-process property runs (thousands of passes would print every event), and the
machines the deterministic reproductions run on."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from .machine import CrmWinsMachine, CustomerSyncMachine


@pytest.fixture(autouse=True)
def warnings_only() -> Iterator[None]:
    """structlog at WARNING for this test, the previous configuration restored afterwards."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**saved)


@pytest.fixture
def newest_wins() -> Iterator[CustomerSyncMachine]:
    machine = CustomerSyncMachine()
    try:
        yield machine
    finally:
        machine.close()


@pytest.fixture
def crm_wins() -> Iterator[CustomerSyncMachine]:
    machine = CrmWinsMachine()
    try:
        yield machine
    finally:
        machine.close()


def names(m: CustomerSyncMachine, email: str) -> tuple[str, str]:
    """(HubSpot company name, Odoo partner name) of the customer with ``email``; both must exist."""
    company, partner = m.hub_record(email), m.odoo_record(email)
    assert company is not None and partner is not None
    return company["properties"]["name"], partner["name"]
