"""Property value serialisation and timestamp parsing."""
from __future__ import annotations

import enum
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.hubspot.values import (
    PropertyValueError,
    epoch_ms,
    parse_timestamp,
    to_properties,
    to_property,
)


class Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize("value, wire", [
    (None, ""),
    (True, "true"),
    (False, "false"),
    (Decimal("1E+3"), "1000"),
    (Decimal("0.000001"), "0.000001"),
    (Decimal("-12.50"), "-12.50"),
    (42, "42"),
    (1e20, "100000000000000000000"),
    (0.1, "0.1"),
    (date(2025, 2, 3), "2025-02-03"),
    (datetime(2025, 2, 3, 4, 5, 6, 789123, tzinfo=timezone.utc), "2025-02-03T04:05:06.789Z"),
    (datetime(2025, 2, 3, 1, 0, tzinfo=timezone(timedelta(hours=2))), "2025-02-02T23:00:00.000Z"),
    (["a", "b"], "a;b"),
    (Colour.RED, "red"),
    ("plain", "plain"),
])
def test_values_are_sent_as_hubspot_strings(value: object, wire: str) -> None:
    assert to_property(value) == wire


@pytest.mark.parametrize("value", [Decimal("NaN"), datetime(2025, 1, 1), object()])
def test_unsendable_values_fail_with_the_field_named(value: object) -> None:
    with pytest.raises(PropertyValueError) as caught:
        to_properties({"ok": "x", "amount": value})
    assert caught.value.field == "amount"


def test_timestamps_parse_iso_and_epoch_millis_to_aware_utc() -> None:
    expected = datetime(2024, 9, 13, 20, 23, 3, 333000, tzinfo=timezone.utc)
    assert parse_timestamp("2024-09-13T20:23:03.333Z") == expected
    assert parse_timestamp("1726258983333") == expected
    assert parse_timestamp("") is None and parse_timestamp(None) is None and parse_timestamp("soon") is None
    assert epoch_ms(expected) == 1726258983333
    assert epoch_ms(expected + timedelta(microseconds=999)) == 1726258983333  # floored: GTE still includes it
