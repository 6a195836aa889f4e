"""The Impairment value: every netem setting rendered exactly, and what needs what."""

from __future__ import annotations

import pytest

from netns_kit import Impairment, ValidationError


def test_every_netem_setting_renders_in_tc_netem_order() -> None:
    impairment = Impairment(
        limit=2000,
        delay="100ms",
        jitter="10ms",
        delay_correlation="25%",
        distribution="normal",
        loss="0.3%",
        loss_correlation="25%",
        corrupt="0.1%",
        corrupt_correlation="5%",
        duplicate="1%",
        duplicate_correlation="10%",
        reorder="25%",
        reorder_correlation="50%",
        gap=5,
        rate="10mbit",
    )
    assert impairment.netem_args() == (
        "netem",
        "limit", "2000",
        "delay", "100ms", "10ms", "25%",
        "distribution", "normal",
        "loss", "0.3%", "25%",
        "corrupt", "0.1%", "5%",
        "duplicate", "1%", "10%",
        "reorder", "25%", "50%", "gap", "5",
        "rate", "10mbit",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "args"),
    [
        ({"delay": "200ms"}, ("netem", "delay", "200ms")),
        ({"delay": "200ms", "jitter": "20ms"}, ("netem", "delay", "200ms", "20ms")),
        ({"loss": "5%"}, ("netem", "loss", "5%")),
        ({"duplicate": "1%"}, ("netem", "duplicate", "1%")),
        ({"corrupt": "0.5%"}, ("netem", "corrupt", "0.5%")),
        ({"delay": "10ms", "reorder": "25%"}, ("netem", "delay", "10ms", "reorder", "25%")),
        ({"delay": "200ms", "loss": "5%", "rate": "1mbit"}, ("netem", "delay", "200ms", "loss", "5%", "rate", "1mbit")),
    ],
)
def test_netem_settings_render_alone_and_together(settings: dict[str, str], args: tuple[str, ...]) -> None:
    assert Impairment(**settings).qdisc_args(netem_loss=True) == args


def test_a_rate_alone_is_tbf_with_10ms_of_burst_and_at_least_16k() -> None:
    assert Impairment(rate="100mbit").qdisc_args(netem_loss=True) == (
        "tbf", "rate", "100mbit", "burst", "125000b", "latency", "100ms",
    )  # fmt: skip
    assert Impairment(rate="1mbit").tbf_args()[4] == "16384b"
    assert Impairment(rate="1mbit", burst="64kb").tbf_args()[4] == "65536b"


def test_loss_kept_out_of_netem_leaves_a_pure_rate_limit_to_tbf() -> None:
    impairment = Impairment(loss="5%", rate="10mbit")
    assert impairment.qdisc_args(netem_loss=False)[0] == "tbf"
    assert impairment.qdisc_args(netem_loss=True)[0] == "netem"
    assert Impairment(loss="5%").qdisc_args(netem_loss=False) == ()


@pytest.mark.parametrize(
    ("settings", "netem", "method"),
    [
        ({"loss": "5%"}, True, "netem"),
        ({"loss": "5%"}, False, "iptables"),
        ({"loss": "5%", "loss_via": "netem"}, False, "netem"),
        ({"loss": "5%", "loss_via": "iptables"}, True, "iptables"),
        ({"loss": "5%", "loss_correlation": "25%"}, False, "userspace"),
        ({"loss": "5%", "loss_correlation": "25%"}, True, "netem"),
        ({"loss": "5%", "delay": "10ms"}, False, "userspace"),
        ({"loss": "5%", "delay": "10ms"}, True, "netem"),
        ({"loss": "5%", "delay": "10ms", "via": "netem"}, False, "netem"),
        ({"loss": "5%", "via": "userspace"}, True, "userspace"),
        ({"loss": "5%", "delay": "10ms", "loss_via": "iptables"}, False, "iptables"),
        ({"loss": "0%"}, False, None),
        ({"rate": "1mbit"}, False, None),
    ],
)
def test_loss_goes_through_iptables_only_when_netem_is_missing_and_nothing_else_needs_it(
    settings: dict[str, str], netem: bool, method: str | None
) -> None:
    assert Impairment(**settings).loss_method(netem_available=netem) == method


@pytest.mark.parametrize(
    ("settings", "field", "rule"),
    [
        ({"jitter": "10ms"}, "Impairment.jitter", "needs delay"),
        ({"delay": "10ms", "distribution": "normal"}, "Impairment.distribution", "needs jitter"),
        ({"delay": "10ms", "delay_correlation": "5%"}, "Impairment.delay_correlation", "needs jitter"),
        ({"loss_correlation": "5%"}, "Impairment.loss_correlation", "needs loss"),
        ({"reorder": "5%"}, "Impairment.reorder", "needs delay"),
        ({"delay": "0ms", "reorder": "5%"}, "Impairment.reorder", "above 0"),
        ({"delay": "1ms", "reorder": "5%", "gap": 0}, "Impairment.gap", "at least 1"),
        ({"burst": "32kb"}, "Impairment.burst", "needs rate"),
        ({"duplicate_correlation": "1%"}, "Impairment.duplicate_correlation", "needs duplicate"),
        ({"corrupt_correlation": "1%"}, "Impairment.corrupt_correlation", "needs corrupt"),
        ({"delay": "1ms", "reorder": "5%", "reorder_correlation": "1%", "gap": True}, "Impairment.gap", "int"),
        ({"delay": "1ms", "jitter": "1ms", "distribution": "gauss"}, "Impairment.distribution", "normal, pareto"),
        ({"loss": "5%", "loss_correlation": "9%", "loss_via": "iptables"}, "Impairment.loss_correlation", "iptables"),
        ({"loss_via": "tc"}, "Impairment.loss_via", "auto, netem, iptables, userspace"),
        ({"via": "nfqueue"}, "Impairment.via", "auto, netem, userspace"),
        ({"delay": 200}, "Impairment.delay", "'200ms'"),
        ({"loss": 0.05}, "Impairment.loss", "'5%'"),
        ({"rate": "10mb"}, "Impairment.rate", "'10mbit'"),
        ({"limit": -1}, "Impairment.limit", "at least 1"),
    ],
)
def test_bad_settings_raise_naming_field_value_and_rule(settings: dict[str, object], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        Impairment(**settings)  # type: ignore[arg-type]
    assert info.value.field == field
    assert rule in info.value.rule
    assert field in str(info.value)


def test_from_dict_round_trips_and_names_unknown_settings() -> None:
    data = {"delay": "200ms", "jitter": "20ms", "loss": "5%", "rate": "10mbit"}
    impairment = Impairment.from_dict(data)
    assert impairment.to_dict() == data
    assert Impairment.from_dict(impairment.to_dict()) == impairment
    with pytest.raises(ValidationError, match="'latency' is not a setting"):
        Impairment.from_dict({"latency": "200ms"})


def test_an_empty_impairment_is_false_and_says_so() -> None:
    assert not Impairment()
    assert not Impairment(loss_via="iptables")
    assert not Impairment(via="userspace")
    assert Impairment(rate="1mbit")
    assert str(Impairment()) == "no impairment"
    assert repr(Impairment(delay="200ms", loss="5%")) == "Impairment(delay='200ms', loss='5%')"


def test_drop_probability_is_the_exact_fraction() -> None:
    assert Impairment(loss="5%").drop_probability == "0.05"
    assert Impairment(loss="0.1%").drop_probability == "0.001"
    assert Impairment(loss="100%").drop_probability == "1"


def test_a_missing_prerequisite_is_named_in_the_units_given() -> None:
    with pytest.raises(ValidationError) as info:
        Impairment(jitter="10ms")
    assert str(info.value) == "Impairment.jitter: '10ms' needs delay to be set too"


@pytest.mark.parametrize(
    ("settings", "netem", "methods"),
    [
        ({"delay": "10ms"}, True, ("netem", None)),
        ({"delay": "10ms"}, False, ("userspace", None)),
        ({"delay": "10ms", "via": "userspace"}, True, ("userspace", None)),
        ({"delay": "10ms", "via": "netem"}, False, ("netem", None)),
        ({"rate": "1mbit"}, False, (None, None)),
        ({"rate": "1mbit", "via": "userspace"}, False, (None, None)),
        ({"loss": "1%", "loss_correlation": "5%"}, False, ("userspace", "userspace")),
        ({"loss": "1%", "loss_via": "userspace"}, True, ("userspace", "userspace")),
        ({"delay": "10ms", "loss": "1%", "loss_via": "netem"}, False, ("userspace", "netem")),
    ],
)
def test_netem_where_the_kernel_has_it_else_the_userspace_emulator(
    settings: dict[str, str], netem: bool, methods: tuple[str | None, str | None]
) -> None:
    assert Impairment(**settings).methods(netem_available=netem) == methods


def test_emulator_options_name_each_setting_as_the_emulator_takes_it() -> None:
    impairment = Impairment(
        delay="100ms", jitter="10ms", delay_correlation="25%", distribution="normal", loss="5%",
        loss_correlation="10%", duplicate="1%", reorder="25%", gap=5, corrupt="0.1%", limit=500, rate="1mbit",
    )  # fmt: skip
    assert impairment.emulator_options(loss=True) == (
        "--delay", "100ms", "--jitter", "10ms", "--delay-correlation", "25%", "--distribution", "normal",
        "--loss", "5%", "--loss-correlation", "10%", "--duplicate", "1%", "--reorder", "25%", "--gap", "5",
        "--corrupt", "0.1%", "--limit", "500",
    )  # fmt: skip
    assert "--loss" not in impairment.emulator_options(loss=False)


def test_with_the_emulator_netem_keeps_only_loss_and_rate_and_tbf_the_rate() -> None:
    impairment = Impairment(delay="100ms", loss="5%", rate="1mbit", corrupt="1%", limit=9)
    assert impairment.qdisc_args(netem_loss=True, emulated=True) == ("netem", "loss", "5%", "rate", "1mbit")
    assert impairment.qdisc_args(netem_loss=False, emulated=True)[0] == "tbf"
    assert Impairment(delay="1ms").qdisc_args(netem_loss=False, emulated=True) == ()


def test_via_round_trips_through_dicts() -> None:
    impairment = Impairment.from_dict({"delay": "20ms", "via": "userspace"})
    assert impairment.to_dict() == {"delay": "20ms", "via": "userspace"}
