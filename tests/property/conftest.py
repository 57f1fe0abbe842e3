"""Quiet logs for the in-process property runs (thousands of passes would print every event)."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def warnings_only() -> Iterator[None]:
    """structlog at WARNING for this test, the previous configuration restored afterwards."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**saved)
