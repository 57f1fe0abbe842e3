"""Named value transforms used by mapping files (``transform: [strip, lower]``).

A transform converts one native value to its canonical form (``inbound``) and back
(``outbound``). A chain runs in order inbound and in reverse order outbound. Transforms are
built once when a mapping file is loaded; their per-value work is plain Python (no pydantic).
Plugins add their own with :func:`register_transform`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import phonenumbers
import pycountry


class TransformArgsError(ValueError):
    """A transform was given arguments it does not accept (raised at mapping load time)."""


class TransformValueError(ValueError):
    """A value cannot be transformed (raised per record; the record goes to dead letters)."""


@dataclass(frozen=True)
class Transform:
    """One configured transform: a pair of value functions.

    ``handles_none``: the functions also see None (only ``default`` needs that; the others are
    skipped for empty values). ``produces_bool``: the canonical side is a boolean, so a native
    ``False`` is a value, not Odoo's "empty".
    """

    name: str
    inbound: Callable[[Any], Any]
    outbound: Callable[[Any], Any]
    handles_none: bool = False
    produces_bool: bool = False


TransformFactory = Callable[[Mapping[str, Any]], Transform]


@dataclass(frozen=True)
class _Entry:
    factory: TransformFactory
    positional: str | None  # `{e164: DE}` is short for `{e164: {region: DE}}`


_REGISTRY: dict[str, _Entry] = {}


def register_transform(name: str, factory: TransformFactory, *, positional: str | None = None,
                       replace: bool = False) -> None:
    """Make ``name`` usable in mapping files. ``factory(args)`` returns a :class:`Transform` or
    raises :class:`TransformArgsError`; ``positional`` names the argument a scalar stands for."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"transform {name!r} is already registered")
    _REGISTRY[name] = _Entry(factory, positional)


def transform_names() -> list[str]:
    """Every registered transform name, sorted."""
    return sorted(_REGISTRY)


def make_transform(name: str, args: Any = None) -> Transform:
    """Build a transform from its name and its mapping-file arguments.

    Raises KeyError for an unknown name and :class:`TransformArgsError` for bad arguments.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise KeyError(name)
    if args is None:
        args = {}
    elif not isinstance(args, Mapping):
        if entry.positional is None:
            raise TransformArgsError(f"{name} takes no arguments")
        args = {entry.positional: args}
    return entry.factory(args)


def _args(name: str, args: Mapping[str, Any], allowed: Mapping[str, Callable[[Any], bool]],
          required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check argument names (and each value with its predicate)."""
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise TransformArgsError(f"{name}: unknown argument {', '.join(map(repr, unknown))} (accepted: {known})")
    missing = [a for a in required if a not in args]
    if missing:
        raise TransformArgsError(f"{name}: missing argument {', '.join(map(repr, missing))}")
    for key, value in args.items():
        if not allowed[key](value):
            raise TransformArgsError(f"{name}: bad value for {key!r}: {value!r}")
    return dict(args)


def _one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: v in choices


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _nonneg_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 18


def _same(v: Any) -> Any:
    return v


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------
def _str_fn(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return fn(value) if type(value) is str or isinstance(value, str) else value
    return apply


def _strip(args: Mapping[str, Any]) -> Transform:
    _args("strip", args, {})
    f = _str_fn(str.strip)
    return Transform("strip", f, f)


def _lower(args: Mapping[str, Any]) -> Transform:
    _args("lower", args, {})
    f = _str_fn(str.lower)
    return Transform("lower", f, f)


def _upper(args: Mapping[str, Any]) -> Transform:
    _args("upper", args, {})
    f = _str_fn(str.upper)
    return Transform("upper", f, f)


def _split(args: Mapping[str, Any]) -> Transform:
    """``"a;b"`` <-> ``["a", "b"]`` (HubSpot multi-select values are ;-separated)."""
    sep = _args("split", args, {"sep": lambda v: isinstance(v, str) and v != ""}).get("sep", ";")

    def inbound(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [str(v).strip() for v in value if str(v).strip()]
        parts = [p.strip() for p in str(value).split(sep)]
        return [p for p in parts if p] or None

    def outbound(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return sep.join(str(v) for v in value)
        return value

    return Transform("split", inbound, outbound)


# --------------------------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------------------------
_PHONE_FORMATS = {
    "e164": phonenumbers.PhoneNumberFormat.E164,
    "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    "national": phonenumbers.PhoneNumberFormat.NATIONAL,
}


# Parsing a phone number costs ~15 us, more than the rest of a record's mapping: memoise
# (a pure function of its inputs, so a shared cache is safe). An E.164 result is also stored as
# its own answer, since normalising it again (the other side's outbound pass, the next poll)
# gives it back unchanged.
_PHONE_MEMO: dict[tuple[str, str, int], str] = {}
_PHONE_MEMO_MAX = 200_000
# Entries parsed since the last phone_memo_taken() (a map worker hands them to the sync process,
# which would otherwise parse the same numbers again when it computes what a write reads back).
_PHONE_NEW: list[tuple[tuple[str, str, int], str]] | None = None


def phone_memo_track() -> None:
    """Start keeping the phone numbers parsed from now on, for :func:`phone_memo_taken`."""
    global _PHONE_NEW
    _PHONE_NEW = []


def phone_memo_taken() -> list[tuple[tuple[str, str, int], str]]:
    """The phone numbers parsed since the last call (after :func:`phone_memo_track`)."""
    global _PHONE_NEW
    out, _PHONE_NEW = _PHONE_NEW or [], ([] if _PHONE_NEW is not None else None)
    return out


def phone_memo_add(entries: Iterable[tuple[tuple[str, str, int], str]]) -> None:
    """Remember phone numbers another process parsed (a pure function of its inputs)."""
    if len(_PHONE_MEMO) >= _PHONE_MEMO_MAX:
        _PHONE_MEMO.clear()
    _PHONE_MEMO.update(entries)


def _phone(text: str, region: str, fmt: int) -> str:
    # A number written with + does not depend on the default region.
    key = (text, "" if text.startswith("+") else region, fmt)
    hit = _PHONE_MEMO.get(key)
    if hit is not None:
        return hit
    # Real data is messy ("call reception", "0800-FLOWERS", extensions, typos): a number we
    # cannot parse is kept as written, stripped, instead of failing the whole record.
    try:
        number = phonenumbers.parse(text, region)
        result = phonenumbers.format_number(number, fmt) if phonenumbers.is_possible_number(number) else text
    except phonenumbers.NumberParseException:
        result = text
    if len(_PHONE_MEMO) >= _PHONE_MEMO_MAX:
        _PHONE_MEMO.clear()
    _PHONE_MEMO[key] = result
    if _PHONE_NEW is not None:
        _PHONE_NEW.append((key, result))
    if fmt == phonenumbers.PhoneNumberFormat.E164 and result.startswith("+"):
        _PHONE_MEMO[(result, "", fmt)] = result
        if _PHONE_NEW is not None:
            _PHONE_NEW.append(((result, "", fmt), result))
    return result


def _e164(args: Mapping[str, Any]) -> Transform:
    """Phone numbers to E.164 (``+14155550100``); ``region`` is the default country for
    numbers written without a country code; ``out`` is the format written back."""
    regions = phonenumbers.SUPPORTED_REGIONS
    a = _args("e164", args, {"region": lambda v: isinstance(v, str) and v.upper() in regions,
                             "out": _one_of(*_PHONE_FORMATS)})
    region = str(a.get("region", "US")).upper()
    out_format = _PHONE_FORMATS[a.get("out", "e164")]
    e164 = phonenumbers.PhoneNumberFormat.E164

    def inbound(value: Any) -> Any:
        text = str(value).strip()
        return _phone(text, region, e164) if text else None

    def outbound(value: Any) -> Any:
        text = str(value).strip()
        return _phone(text, region, out_format) if text else None

    return Transform("e164", inbound, outbound)


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
def to_decimal(value: Any) -> Decimal:
    """A native number (string, int, float, Decimal) as a finite Decimal."""
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool):
        raise TransformValueError(f"expected a number, found {value!r}")
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, float):
        # Odoo floats: str() gives the shortest repr (12.5, not 12.4999999...).
        d = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            if "_" in value:  # Decimal() accepts "1_000"; no product sends that
                raise InvalidOperation
            d = Decimal(value.strip())
        except InvalidOperation:
            raise TransformValueError(f"expected a number, found {value!r}") from None
    else:
        raise TransformValueError(f"expected a number, found {type(value).__name__}")
    if not d.is_finite():
        raise TransformValueError(f"expected a finite number, found {value!r}")
    return d


def _decimal(args: Mapping[str, Any]) -> Transform:
    """Numbers as Decimal (never float); ``scale`` quantizes to that many decimal places."""
    a = _args("decimal", args, {"scale": _nonneg_int})
    scale = a.get("scale")
    exp = Decimal(1).scaleb(-scale) if scale is not None else None

    def convert(value: Any) -> Decimal:
        d = to_decimal(value)
        if exp is not None:
            try:
                d = d.quantize(exp, rounding=ROUND_HALF_UP)
            except InvalidOperation:
                raise TransformValueError(f"number too large: {value!r}") from None
        return d

    return Transform("decimal", convert, convert)


def _int(args: Mapping[str, Any]) -> Transform:
    _args("int", args, {})

    def convert(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        d = to_decimal(value)
        if d != d.to_integral_value():
            raise TransformValueError(f"expected a whole number, found {value!r}")
        return int(d)

    return Transform("int", convert, convert)


# --------------------------------------------------------------------------------------------
# Booleans
# --------------------------------------------------------------------------------------------
_TRUE = frozenset({"true", "1", "yes", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "off"})


def to_bool(value: Any) -> bool | None:
    """HubSpot's "true"/"false" strings, Odoo booleans, 0/1 -> bool ("" -> None)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if text == "":
            return None
    raise TransformValueError(f"expected true or false, found {value!r}")


def _bool(args: Mapping[str, Any]) -> Transform:
    _args("bool", args, {})
    return Transform("bool", to_bool, to_bool, produces_bool=True)


def _not(args: Mapping[str, Any]) -> Transform:
    """Boolean inversion (Odoo ``active`` <-> canonical ``deleted``)."""
    _args("not", args, {})

    def invert(value: Any) -> Any:
        b = to_bool(value)
        return None if b is None else not b

    return Transform("not", invert, invert, produces_bool=True)


# --------------------------------------------------------------------------------------------
# Dates and times
# --------------------------------------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def to_datetime(value: Any) -> datetime:
    """Aware UTC datetime from ISO 8601 (``Z`` or offset), Odoo's naive ``YYYY-MM-DD
    HH:MM:SS`` (UTC) or epoch milliseconds (HubSpot), as int or digit string."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, int) and not isinstance(value, bool):
        return _from_epoch_ms(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return _from_epoch_ms(int(text))
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise TransformValueError(f"expected a date-time, found {value!r}") from None
    else:
        raise TransformValueError(f"expected a date-time, found {type(value).__name__}")
    # Naive values are UTC: that is what Odoo sends (and what HubSpot would mean).
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _datetime(args: Mapping[str, Any]) -> Transform:
    """Date-times; ``out`` picks the native form written back: iso (``...T...Z`` with ms),
    epoch_ms (HubSpot), odoo (``YYYY-MM-DD HH:MM:SS`` UTC); default: a datetime object."""
    out = _args("datetime", args, {"out": _one_of("iso", "epoch_ms", "odoo", "datetime")}).get("out", "datetime")

    def outbound(value: Any) -> Any:
        dt = to_datetime(value)
        if out == "iso":
            return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
        if out == "epoch_ms":
            return int((dt - _EPOCH).total_seconds() * 1000)
        if out == "odoo":
            return dt.strftime("%Y-%m-%d %H:%M:%S")
        return dt

    return Transform("datetime", to_datetime, outbound)


def to_date(value: Any) -> date:
    """A date from ``YYYY-MM-DD``, a datetime (its UTC date) or epoch ms (HubSpot date
    properties hold midnight UTC as epoch milliseconds)."""
    if isinstance(value, datetime):
        return to_datetime(value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise TransformValueError(f"expected a date, found {value!r}") from None
    return to_datetime(value).date()


def _date(args: Mapping[str, Any]) -> Transform:
    _args("date", args, {})
    return Transform("date", to_date, to_date)


# --------------------------------------------------------------------------------------------
# Countries
# --------------------------------------------------------------------------------------------
# Names people type that ISO 3166 does not know (pycountry's lookup covers codes and the
# official and common names).
_COUNTRY_ALIASES = {
    "uk": "GB", "u.k.": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "great britain": "GB", "britain": "GB",
    "usa": "US", "u.s.": "US", "u.s.a.": "US", "united states of america": "US", "america": "US",
    "russia": "RU", "south korea": "KR", "korea": "KR", "north korea": "KP", "vietnam": "VN",
    "iran": "IR", "syria": "SY", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ",
    "czech republic": "CZ", "holland": "NL", "the netherlands": "NL", "ivory coast": "CI",
    "macedonia": "MK", "turkey": "TR", "laos": "LA", "moldova": "MD", "taiwan": "TW",
    "uae": "AE", "vatican": "VA", "brunei": "BN", "palestine": "PS", "cape verde": "CV",
    "swaziland": "SZ", "burma": "MM", "east timor": "TL",
}


@lru_cache(maxsize=4096)
def country_code(value: str) -> str:
    """Any country name, alpha-2 or alpha-3 code -> ISO 3166 alpha-2 (upper case)."""
    text = value.strip()
    if not text:
        raise TransformValueError("empty country")
    alias = _COUNTRY_ALIASES.get(text.lower())
    if alias:
        return alias
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        raise TransformValueError(f"unknown country {value!r}") from None


@lru_cache(maxsize=512)
def _country_out(code: str, out: str) -> str:
    country = pycountry.countries.get(alpha_2=code.upper())
    if country is None:
        raise TransformValueError(f"unknown country code {code!r}")
    if out == "name":
        return str(getattr(country, "common_name", None) or country.name)
    if out == "alpha3":
        return str(country.alpha_3)
    return str(country.alpha_2)


def _country(args: Mapping[str, Any]) -> Transform:
    """Countries: any name or code -> alpha-2 inbound; ``out``: alpha2 (default), alpha3 or name."""
    out = _args("country", args, {"out": _one_of("alpha2", "alpha3", "name")}).get("out", "alpha2")

    def inbound(value: Any) -> Any:
        return country_code(str(value))

    def outbound(value: Any) -> Any:
        return _country_out(country_code(str(value)), out)

    return Transform("country", inbound, outbound)


# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------
def _default(args: Mapping[str, Any]) -> Transform:
    """``value`` replaces an empty value (None or "") in both directions."""
    fill = _args("default", args, {"value": lambda v: True}, required=("value",))["value"]

    def apply(value: Any) -> Any:
        return fill if value is None or value == "" else value

    return Transform("default", apply, apply, handles_none=True)


for _name, _factory, _positional in (
    ("strip", _strip, None),
    ("lower", _lower, None),
    ("upper", _upper, None),
    ("split", _split, "sep"),
    ("e164", _e164, "region"),
    ("decimal", _decimal, "scale"),
    ("int", _int, None),
    ("bool", _bool, None),
    ("not", _not, None),
    ("date", _date, None),
    ("datetime", _datetime, "out"),
    ("country", _country, "out"),
    ("default", _default, "value"),
):
    register_transform(_name, _factory, positional=_positional)

__all__ = [
    "Transform", "TransformArgsError", "TransformFactory", "TransformValueError", "country_code",
    "make_transform", "register_transform", "to_bool", "to_date", "to_datetime", "to_decimal",
    "transform_names",
]
