"""Fixtures of the store tests: a controllable clock and a store that uses it."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sync.store import Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """An aware-UTC clock that only moves when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed_store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    """A migrated store whose notion of now is ``clock``."""
    s = Store.open(store_url, clock=clock)
    try:
        yield s
    finally:
        s.close()
