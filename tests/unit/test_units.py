"""Units as tc spells them: parsed, rendered back canonically, refused with the rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from netns_kit.errors import ValidationError
from netns_kit.units import Duration, Percent, Rate, Size, duration, percent, rate, size


@pytest.mark.parametrize(
    ("text", "us", "shown"),
    [
        ("200ms", 200_000, "200ms"),
        ("1.5s", 1_500_000, "1500ms"),
        ("2s", 2_000_000, "2s"),
        ("500us", 500, "500us"),
        ("10msec", 10_000, "10ms"),
        ("3secs", 3_000_000, "3s"),
        ("0ms", 0, "0ms"),
        ("0.5ms", 500, "500us"),
        ("10MS", 10_000, "10ms"),
    ],
)
def test_durations_parse_and_render_canonically(text: str, us: int, shown: str) -> None:
    value = duration("f", text)
    assert value == Duration(us)
    assert str(value) == shown


WITH_A_UNIT = "must be a time with a unit, like '200ms', '1.5s' or '500us'"


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        *[(bad, WITH_A_UNIT) for bad in ("10", 10, 0.2, "10 ms", "ms", "-5ms", "10min", None)],
        ("1.0000001s", "must be a whole number of microseconds (tc's resolution)"),
    ],
)
def test_durations_without_a_unit_are_refused_with_the_rule(bad: object, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        duration("Impairment.delay", bad)
    assert info.value.field == "Impairment.delay"
    assert info.value.value == bad
    assert info.value.rule == rule


@pytest.mark.parametrize(
    ("text", "shown", "fraction"),
    [("5%", "5%", 0.05), ("0.1%", "0.1%", 0.001), ("100%", "100%", 1.0), ("2.50%", "2.5%", 0.025)],
)
def test_percentages_parse(text: str, shown: str, fraction: float) -> None:
    value = percent("f", text)
    assert str(value) == shown
    assert value.fraction == pytest.approx(fraction)


@pytest.mark.parametrize("bad", ["5", 0.05, "101%", "-1%", "5 %", "%"])
def test_percentages_need_a_percent_sign_and_at_most_100(bad: object) -> None:
    with pytest.raises(ValidationError, match=r"Impairment\.loss"):
        percent("Impairment.loss", bad)


@pytest.mark.parametrize(
    ("text", "bits", "shown"),
    [
        ("10mbit", 10_000_000, "10mbit"),
        ("512kbit", 512_000, "512kbit"),
        ("1gbit", 10**9, "1gbit"),
        ("1.5mbit", 1_500_000, "1500kbit"),
        ("1mibit", 2**20, "1048576bit"),
        ("1mbps", 8_000_000, "8mbit"),
        ("100bit", 100, "100bit"),
        ("10Mbit", 10_000_000, "10mbit"),
    ],
)
def test_rates_count_bits_and_bps_means_bytes(text: str, bits: int, shown: str) -> None:
    value = rate("f", text)
    assert value == Rate(bits)
    assert str(value) == shown


@pytest.mark.parametrize("bad", ["10", 10_000_000, "10mb", "10 mbit", "4bit", "0.1bit", "fast"])
def test_rates_without_a_rate_unit_are_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        rate("Impairment.rate", bad)
    assert info.value.field == "Impairment.rate"


@pytest.mark.parametrize(("text", "count"), [("1500b", 1500), ("32kb", 32 * 1024), ("1mb", 2**20), ("16k", 16384)])
def test_sizes_count_k_as_1024_like_tc(text: str, count: int) -> None:
    assert size("f", text) == Size(count)
    assert str(size("f", text)) == f"{count}b"


@pytest.mark.parametrize("bad", ["1500", 1500, "0b", "1.5b", "big"])
def test_sizes_need_a_unit(bad: object) -> None:
    with pytest.raises(ValidationError, match=r"Impairment\.burst"):
        size("Impairment.burst", bad)


def test_parsed_values_pass_through_unchanged() -> None:
    assert duration("f", Duration(5)) == Duration(5)
    assert percent("f", Percent(Decimal(1))) == Percent(Decimal(1))
    assert rate("f", Rate(8)) == Rate(8)
    assert size("f", Size(1)) == Size(1)
