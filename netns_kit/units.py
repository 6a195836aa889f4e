"""Quantities with units, as ``tc`` spells them: ``10ms``, ``1%``, ``10mbit``, ``32kb``.

Each is a frozen value parsed from a string (or taken as is) and rendered
back in canonical ``tc`` form by ``str()``. Bare numbers are refused: ``tc``
reads a bare ``10`` as 10 microseconds, or bytes, which nobody means.
:func:`duration`, :func:`percent`, :func:`rate` and :func:`size` raise
:class:`~netns_kit.errors.ValidationError` naming the field, the value and
the rule; :func:`to_duration`, :func:`valid_duration` and the like plug them into attrs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs

from netns_kit.errors import ValidationError
from netns_kit.validate import field_name

_NUMBER = r"(\d+(?:\.\d+)?)"
_TIME = re.compile(rf"^{_NUMBER}(s|sec|secs|ms|msec|msecs|us|usec|usecs)$", re.IGNORECASE)
_PERCENT = re.compile(rf"^{_NUMBER}%$")
_RATE = re.compile(rf"^{_NUMBER}([kmgt]?i?)(bit|bps)$", re.IGNORECASE)
_SIZE = re.compile(rf"^{_NUMBER}([kmg]?)(b)?$", re.IGNORECASE)

_TIME_US = {
    **dict.fromkeys(("s", "sec", "secs"), 1_000_000),
    **dict.fromkeys(("ms", "msec", "msecs"), 1_000),
    **dict.fromkeys(("us", "usec", "usecs"), 1),
}
_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_SIZE_B = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regexes admit only digits
        raise ValueError(text) from None


@attrs.frozen(order=True)
class Duration:
    """A time span in whole microseconds (``tc``'s resolution)."""

    us: int

    def __str__(self) -> str:
        if self.us and self.us % 1_000_000 == 0:
            return f"{self.us // 1_000_000}s"
        if self.us % 1_000 == 0:
            return f"{self.us // 1_000}ms"
        return f"{self.us}us"

    @property
    def seconds(self) -> float:
        return self.us / 1_000_000


@attrs.frozen(order=True)
class Percent:
    """A percentage from 0 to 100 (``5%``)."""

    value: Decimal

    def __str__(self) -> str:
        return f"{self.value.normalize():f}%"

    @property
    def fraction(self) -> float:
        """0.05 for 5%."""
        return float(self.value) / 100


@attrs.frozen(order=True)
class Rate:
    """A bit rate in bits per second (``10mbit``; note ``tc``'s ``bps`` means BYTES per second)."""

    bits: int

    def __str__(self) -> str:
        for unit, factor in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
            if self.bits % factor == 0:
                return f"{self.bits // factor}{unit}"
        return f"{self.bits}bit"

    @property
    def bytes_per_second(self) -> float:
        return self.bits / 8


@attrs.frozen(order=True)
class Size:
    """A size in bytes (``32kb``: ``tc`` sizes count k as 1024)."""

    bytes: int

    def __str__(self) -> str:
        return f"{self.bytes}b"


def duration(field: str, value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(field, value, "must be a time with a unit, like '200ms', '1.5s' or '500us'")
    us = _decimal(match.group(1)) * _TIME_US[match.group(2).lower()]
    if us != int(us):
        raise ValidationError(field, value, "must be a whole number of microseconds (tc's resolution)")
    return Duration(int(us))


def percent(field: str, value: Any) -> Percent:
    if isinstance(value, Percent):
        return value
    match = _PERCENT.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(field, value, "must be a percentage with a % sign, like '5%' or '0.1%'")
    number = _decimal(match.group(1))
    if number > 100:
        raise ValidationError(field, value, "must be at most 100%")
    return Percent(number)


def rate(field: str, value: Any) -> Rate:
    if isinstance(value, Rate):
        return value
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(
            field, value, "must be a rate with a unit, like '10mbit', '512kbit' or '1gbit' (tc: 'bps' is bytes/s)"
        )
    number, prefix, unit = match.groups()
    bits = _decimal(number) * _PREFIX[prefix.lower()] * (8 if unit.lower() == "bps" else 1)
    if bits < 8 or bits != int(bits):
        raise ValidationError(field, value, "must be a whole number of bits per second, at least 8bit")
    return Rate(int(bits))


def size(field: str, value: Any) -> Size:
    if isinstance(value, Size):
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None or (not match.group(2) and not match.group(3)):
        raise ValidationError(field, value, "must be a size with a unit, like '1500b', '32kb' or '1mb'")
    count = _decimal(match.group(1)) * _SIZE_B[match.group(2).lower()]
    if count < 1 or count != int(count):
        raise ValidationError(field, value, "must be a whole number of bytes, at least 1b")
    return Size(int(count))


T = TypeVar("T")
Parser = Callable[[str, Any], T]


def lenient(parse: Parser[T], value: Any) -> Any:
    """For attrs converters: the parsed value, or the raw one for the validator to refuse by name."""
    if value is None:
        return None
    try:
        return parse("", value)
    except ValidationError:
        return value


def check(parse: Parser[T], instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """For attrs validators: raise :class:`ValidationError` naming ``Class.field``."""
    if value is not None:
        parse(field_name(instance, attribute), value)


# Named converters and validators (mypy's attrs plugin wants named functions).
def to_duration(value: Any) -> Any:
    return lenient(duration, value)


def to_percent(value: Any) -> Any:
    return lenient(percent, value)


def to_rate(value: Any) -> Any:
    return lenient(rate, value)


def to_size(value: Any) -> Any:
    return lenient(size, value)


def valid_duration(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check(duration, instance, attribute, value)


def valid_percent(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check(percent, instance, attribute, value)


def valid_rate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check(rate, instance, attribute, value)


def valid_size(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check(size, instance, attribute, value)
