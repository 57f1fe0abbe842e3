"""Transforms: each one's conversions, argument checks, and properties (idempotent on its own
output, inverse round trips) checked with hypothesis."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pycountry
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.transforms import (
    Transform,
    TransformArgsError,
    TransformValueError,
    make_transform,
    register_transform,
    transform_names,
)

FAST = settings(max_examples=150, deadline=None)


def t(name: str, args: Any = None) -> Transform:
    return make_transform(name, args)


def test_builtin_names() -> None:
    assert {"strip", "lower", "upper", "e164", "decimal", "date", "datetime", "bool", "country", "default",
            "int", "not", "split"} <= set(transform_names())


@pytest.mark.parametrize(("name", "args", "native", "canonical", "back"), [
    ("strip", None, "  a b \n", "a b", "a b"),
    ("lower", None, "MiXeD", "mixed", "mixed"),
    ("upper", None, "de", "DE", "DE"),
    ("e164", {"region": "US"}, "(415) 555-0100", "+14155550100", "+14155550100"),
    ("e164", "DE", "030 1234567", "+49301234567", "+49301234567"),
    ("e164", {"region": "GB", "out": "international"}, "020 7946 0018", "+442079460018", "+44 20 7946 0018"),
    ("e164", None, " call reception ", "call reception", "call reception"),  # messy: kept, stripped
    ("e164", None, "12", "12", "12"),
    ("decimal", None, "12.50", Decimal("12.50"), Decimal("12.50")),
    ("decimal", None, 12.5, Decimal("12.5"), Decimal("12.5")),
    ("decimal", None, 0.1, Decimal("0.1"), Decimal("0.1")),  # no binary float noise
    ("decimal", {"scale": 2}, "2.345", Decimal("2.35"), Decimal("2.35")),
    ("decimal", 0, 7, Decimal(7), Decimal(7)),
    ("int", None, "42", 42, 42),
    ("int", None, 3.0, 3, 3),
    ("bool", None, "true", True, True),
    ("bool", None, "FALSE", False, False),
    ("bool", None, 1, True, True),
    ("not", None, True, False, True),
    ("not", None, "false", True, False),
    ("date", None, "2024-02-29", date(2024, 2, 29), date(2024, 2, 29)),
    ("date", None, "1709164800000", date(2024, 2, 29), date(2024, 2, 29)),  # HubSpot: midnight UTC ms
    ("datetime", None, "2024-05-01 10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC),
     datetime(2024, 5, 1, 10, tzinfo=UTC)),  # Odoo: naive UTC
    ("datetime", "iso", "2024-05-01T12:00:00.250+02:00",
     datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC), "2024-05-01T10:00:00.250Z"),
    ("datetime", {"out": "epoch_ms"}, "1714557600000", datetime(2024, 5, 1, 10, tzinfo=UTC),
     1714557600000),
    ("datetime", {"out": "odoo"}, "2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC),
     "2024-05-01 10:00:00"),
    ("country", None, "Germany", "DE", "DE"),
    ("country", None, "deu", "DE", "DE"),
    ("country", {"out": "name"}, "us", "US", "United States"),
    ("country", {"out": "alpha3"}, "UK", "GB", "GBR"),
    ("country", "name", "Taiwan", "TW", "Taiwan"),
    ("split", None, "a;b; c", ["a", "b", "c"], "a;b;c"),
    ("split", {"sep": ","}, "x,y", ["x", "y"], "x,y"),
    ("default", {"value": "EUR"}, None, "EUR", "EUR"),
    ("default", "EUR", "USD", "USD", "USD"),
])
def test_conversions(name: str, args: Any, native: Any, canonical: Any, back: Any) -> None:
    tr = t(name, args)
    assert tr.inbound(native) == canonical
    assert tr.outbound(canonical) == back


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("decimal", "1,5", "expected a number"),
    ("decimal", "NaN", "finite"),
    ("decimal", "1_000", "expected a number"),
    ("decimal", True, "expected a number"),
    ("int", "2.5", "whole number"),
    ("bool", "perhaps", "expected true or false"),
    ("date", "2024-02-30", "expected a date"),
    ("datetime", "yesterday", "expected a date-time"),
    ("country", "Narnia", "unknown country"),
])
def test_bad_values_raise_transform_value_error(name: str, value: Any, fragment: str) -> None:
    with pytest.raises(TransformValueError, match=fragment):
        t(name).inbound(value)


@pytest.mark.parametrize(("name", "args", "fragment"), [
    ("strip", {"x": 1}, "unknown argument 'x'"),
    ("strip", "x", "takes no arguments"),
    ("e164", {"region": "Atlantis"}, "bad value for 'region'"),
    ("decimal", {"scale": "two"}, "bad value for 'scale'"),
    ("datetime", {"out": "rfc822"}, "bad value for 'out'"),
    ("country", {"out": "flag"}, "bad value for 'out'"),
    ("default", {}, "missing argument 'value'"),
    ("split", {"sep": ""}, "bad value for 'sep'"),
])
def test_bad_arguments(name: str, args: Any, fragment: str) -> None:
    with pytest.raises(TransformArgsError, match=fragment):
        t(name, args)


def test_unknown_transform() -> None:
    with pytest.raises(KeyError):
        t("titlecase")


def test_register_a_plugin_transform() -> None:
    def factory(args: Any) -> Transform:
        return Transform("reverse_for_test", lambda v: v[::-1], lambda v: v[::-1])

    register_transform("reverse_for_test", factory)
    assert t("reverse_for_test").inbound("abc") == "cba"
    with pytest.raises(ValueError, match="already registered"):
        register_transform("reverse_for_test", factory)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------
@FAST
@given(st.text())
def test_strip_lower_upper_idempotent(text: str) -> None:
    for name in ("strip", "lower", "upper"):
        tr = t(name)
        once = tr.inbound(text)
        assert tr.inbound(once) == once
        assert tr.outbound(once) == once


decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e12"), max_value=Decimal("1e12"))


@FAST
@given(decimals, st.sampled_from([None, 0, 2, 4]))
def test_decimal_idempotent_and_string_round_trip(value: Decimal, scale: int | None) -> None:
    tr = t("decimal", {"scale": scale} if scale is not None else None)
    once = tr.inbound(str(value))
    assert tr.inbound(once) == once
    assert tr.inbound(str(tr.outbound(once))) == once  # what the connector would send back
    if scale is None:
        assert once == value
    else:
        assert abs(once - value) <= Decimal(1).scaleb(-scale) / 2


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_decimal_from_odoo_float_matches_its_repr(value: float) -> None:
    assert t("decimal").inbound(value) == Decimal(repr(value))


countries = st.sampled_from(list(pycountry.countries))


@FAST
@given(countries, st.sampled_from(["alpha2", "alpha3", "name"]))
def test_country_round_trips_through_every_output_form(country: Any, out: str) -> None:
    tr = t("country", {"out": out})
    code = tr.inbound(country.alpha_2)
    assert code == country.alpha_2
    assert tr.inbound(tr.outbound(code)) == code  # the written name/code reads back as the same country
    assert tr.inbound(code) == code  # idempotent on its own output


@FAST
@given(countries, st.sampled_from([str.lower, str.upper, str.title]))
def test_country_accepts_names_and_codes_in_any_case(country: Any, case: Any) -> None:
    tr = t("country")
    for form in (country.alpha_2, country.alpha_3, country.name):
        assert tr.inbound(case(form)) == country.alpha_2


phone_regions = st.sampled_from(["US", "DE", "GB", "FR", "JP", "BR", "IN", "AU"])


@FAST
@given(phone_regions, st.text(alphabet="0123456789 +-().", min_size=0, max_size=18))
def test_e164_idempotent_on_its_own_output(region: str, text: str) -> None:
    tr = t("e164", {"region": region})
    once = tr.inbound(text)
    if once is not None:
        assert tr.inbound(once) == once
        assert tr.outbound(once) == once


@FAST
@given(phone_regions)
def test_e164_example_numbers_normalise(region: str) -> None:
    import phonenumbers

    example = phonenumbers.example_number(region)
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    expected = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert t("e164", {"region": region}).inbound(national) == expected


aware = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                timezone(timedelta(hours=-8))]))


@FAST
@given(aware, st.sampled_from(["iso", "epoch_ms", "odoo"]))
def test_datetime_round_trips_in_every_native_form(value: datetime, out: str) -> None:
    tr = t("datetime", {"out": out})
    canonical = tr.inbound(value)
    assert canonical.tzinfo is UTC and canonical == value
    back = tr.inbound(tr.outbound(canonical))
    precision = {"iso": timedelta(milliseconds=1), "epoch_ms": timedelta(milliseconds=1),
                 "odoo": timedelta(seconds=1)}[out]
    assert timedelta(0) <= canonical - back < precision


@FAST
@given(st.dates(min_value=date(1971, 1, 1), max_value=date(2100, 1, 1)))
def test_date_from_hubspot_epoch_ms(day: date) -> None:
    ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    assert t("date").inbound(str(ms)) == day
    assert t("date").inbound(day.isoformat()) == day


@FAST
@given(st.booleans())
def test_bool_and_not_are_inverses(value: bool) -> None:
    assert t("bool").inbound("true" if value else "false") is value
    assert t("not").outbound(t("not").inbound(value)) is value
