"""How a link misbehaves: delay, jitter, loss, duplication, reordering, corruption, rate.

An :class:`Impairment` is a frozen value, validated at construction, that
renders the ``tc`` arguments for one root qdisc:

* only ``rate`` (and ``burst``): ``tbf``, which every kernel has;
* anything else: ``netem``, with its own ``rate`` when one is given.

Where the kernel has no netem (minimal and microVM kernels), everything
but ``rate`` goes to the userspace link emulator instead
(:mod:`netns_kit.linkemu`: an NFQUEUE rule and a process holding each
packet), and ``rate`` stays with tbf; ``via`` chooses (:meth:`Impairment.methods`).
Random ``loss`` has a third way: an iptables ``statistic`` rule dropping
that share of packets where they arrive (see :meth:`Impairment.loss_method`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from netns_kit.errors import ValidationError
from netns_kit.units import (
    Duration,
    Percent,
    Rate,
    Size,
    to_duration,
    to_percent,
    to_rate,
    to_size,
    valid_duration,
    valid_percent,
    valid_rate,
    valid_size,
)

DISTRIBUTIONS = ("normal", "pareto", "paretonormal")
LOSS_VIA = ("auto", "netem", "iptables", "userspace")
VIA = ("auto", "netem", "userspace")
#: the settings the userspace emulator takes (``--delay-correlation`` and so on)
EMULATOR_SETTINGS = (
    "delay", "jitter", "delay_correlation", "distribution", "duplicate", "duplicate_correlation",
    "reorder", "reorder_correlation", "gap", "corrupt", "corrupt_correlation", "limit",
)  # fmt: skip
#: how long a packet may wait in tbf's queue before it is dropped
TBF_LATENCY = Duration(100_000)


#: setting -> the setting it needs (a correlation means nothing without its value)
_NEEDS = {
    "jitter": "delay",
    "distribution": "jitter",
    "delay_correlation": "jitter",
    "loss_correlation": "loss",
    "duplicate_correlation": "duplicate",
    "reorder": "delay",
    "reorder_correlation": "reorder",
    "gap": "reorder",
    "corrupt_correlation": "corrupt",
    "burst": "rate",
}


def _choice(options: tuple[str, ...]) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and value not in options:
            name = f"{type(instance).__name__}.{attribute.name}"
            raise ValidationError(name, value, f"must be one of {', '.join(options)}")

    return check


def _count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValidationError(f"{type(instance).__name__}.{attribute.name}", value, "must be an int of at least 1")


@attrs.frozen(repr=False)
class Impairment:
    """What to do to the packets leaving one end of a link.

    Times have units (``"200ms"``, ``"1.5s"``, ``"500us"``), shares are
    percentages (``"5%"``), rates are bits per second (``"10mbit"``; ``tc``
    reads ``"bps"`` as BYTES per second). ``jitter`` varies the delay (with
    ``distribution`` normal, pareto or paretonormal; uniform by default),
    ``reorder`` sends that share of packets at once while the others wait
    ``delay`` (``gap``: every Nth), and each ``*_correlation`` ties a packet's
    fate to the previous one's.

    ``via`` picks what does delay, jitter, duplication, reordering,
    corruption and ``limit``: ``"netem"``, ``"userspace"`` (the link
    emulator, :mod:`netns_kit.linkemu`: an NFQUEUE rule and a process in the
    namespace; about 0.3 ms median error, a few ms at p99) or ``"auto"``
    (netem where the kernel has it, else the emulator).

    ``loss_via`` picks how loss is made: ``"netem"``, ``"userspace"``,
    ``"iptables"`` (a random-drop rule where the packets arrive; needs
    neither, cannot correlate) or ``"auto"`` (with whatever does the rest;
    alone: netem where the kernel has it, else iptables, or the emulator
    for a correlated loss).
    """

    delay: Duration | None = attrs.field(default=None, converter=to_duration, validator=valid_duration)
    jitter: Duration | None = attrs.field(default=None, converter=to_duration, validator=valid_duration)
    delay_correlation: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    distribution: str | None = attrs.field(default=None, validator=_choice(DISTRIBUTIONS))
    loss: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    loss_correlation: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    duplicate: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    duplicate_correlation: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    reorder: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    reorder_correlation: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    gap: int | None = attrs.field(default=None, validator=_count)
    corrupt: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    corrupt_correlation: Percent | None = attrs.field(default=None, converter=to_percent, validator=valid_percent)
    rate: Rate | None = attrs.field(default=None, converter=to_rate, validator=valid_rate)
    burst: Size | None = attrs.field(default=None, converter=to_size, validator=valid_size)
    limit: int | None = attrs.field(default=None, validator=_count)
    loss_via: str = attrs.field(default="auto", validator=_choice(LOSS_VIA))
    via: str = attrs.field(default="auto", validator=_choice(VIA))

    def __attrs_post_init__(self) -> None:
        for name, needed in _NEEDS.items():
            value = getattr(self, name)
            if value is not None and getattr(self, needed) is None:
                shown = value if isinstance(value, int | str) else str(value)
                raise ValidationError(f"Impairment.{name}", shown, f"needs {needed} to be set too")
        if self.reorder is not None and self.delay == Duration(0):
            raise ValidationError(
                "Impairment.reorder", str(self.reorder), "needs a delay above 0 (netem reorders by not delaying)"
            )
        if self.loss_via == "iptables" and self.loss_correlation is not None:
            raise ValidationError(
                "Impairment.loss_correlation",
                str(self.loss_correlation),
                "cannot be done by iptables (loss_via='iptables' drops each packet independently)",
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Impairment:
        """From plain data (a topology file): ``{"delay": "200ms", "loss": "5%"}``."""
        fields = {a.name for a in attrs.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValidationError("Impairment", unknown[0], f"is not a setting; known: {', '.join(sorted(fields))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The settings given, as plain strings (the inverse of :meth:`from_dict`)."""
        data: dict[str, Any] = {}
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if value is not None and value != field.default:
                data[field.name] = value if isinstance(value, int | str) else str(value)
        return data

    def __bool__(self) -> bool:
        return bool(self.to_dict().keys() - {"loss_via", "via"})

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.to_dict().items()) or "no impairment"

    def __repr__(self) -> str:
        return f"Impairment({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    # -- how it is done ------------------------------------------------------
    def netem_settings(self, *, loss: bool = True) -> list[str]:
        """The settings given that only netem can do (``loss`` counted when it goes through netem)."""
        names = ["delay", "jitter", "duplicate", "reorder", "corrupt", "limit"]
        if loss:
            names.append("loss")
        return [n for n in names if getattr(self, n) is not None]

    def methods(self, *, netem_available: bool) -> tuple[str | None, str | None]:
        """What does the netem-only settings and what does loss, on a kernel with or without netem:
        ``(emulation, loss)``, each ``"netem"``, ``"userspace"``, ``"iptables"`` (loss only) or None."""
        emulation = None
        if self.netem_settings(loss=False):
            emulation = self.via if self.via != "auto" else ("netem" if netem_available else "userspace")
        loss = None
        if self.loss is not None and self.loss.value != 0:
            if self.loss_via != "auto":
                loss = self.loss_via
            elif emulation is not None:
                loss = emulation
            elif self.via != "auto":
                loss = self.via
            elif netem_available:
                loss = "netem"
            else:
                loss = "userspace" if self.loss_correlation is not None else "iptables"
        if loss == "userspace":
            emulation = "userspace"
        return emulation, loss

    def loss_method(self, *, netem_available: bool) -> str | None:
        """``"netem"``, ``"userspace"``, ``"iptables"`` or None (no loss) on a kernel with or without netem."""
        return self.methods(netem_available=netem_available)[1]

    def emulator_options(self, *, loss: bool) -> tuple[str, ...]:
        """The settings as ``python3 -m netns_kit.linkemu`` options (``loss`` too when it does the loss)."""
        names = [*EMULATOR_SETTINGS, *(("loss", "loss_correlation") if loss else ())]
        out: list[str] = []
        for name in sorted(names, key=[f.name for f in attrs.fields(type(self))].index):
            value = getattr(self, name)
            if value is not None:
                out += ["--" + name.replace("_", "-"), str(value)]
        return tuple(out)

    def qdisc_args(self, *, netem_loss: bool, emulated: bool = False) -> tuple[str, ...]:
        """The qdisc after ``tc qdisc add dev X root`` (empty: no qdisc); ``emulated``: the
        userspace emulator does the netem-only settings, so netem is left only loss (when it does it)."""
        if (netem_loss and self.loss is not None) if emulated else self.netem_settings(loss=netem_loss):
            return self.netem_args(loss=netem_loss, emulated=emulated)
        if self.rate is not None:
            return self.tbf_args()
        return ()

    def netem_args(self, *, loss: bool = True, emulated: bool = False) -> tuple[str, ...]:
        """``netem ...`` with every setting given, in the order tc-netem(8) lists them
        (``emulated``: only loss and rate, the rest being the userspace emulator's)."""
        args = ["netem"]
        mine = not emulated
        if self.limit is not None and mine:
            args += ["limit", str(self.limit)]
        if self.delay is not None and mine:
            args += ["delay", str(self.delay)]
            args += _tail(self.jitter, self.delay_correlation)
            if self.distribution is not None:
                args += ["distribution", self.distribution]
        if loss and self.loss is not None:
            args += ["loss", str(self.loss), *_tail(self.loss_correlation)]
        if self.corrupt is not None and mine:
            args += ["corrupt", str(self.corrupt), *_tail(self.corrupt_correlation)]
        if self.duplicate is not None and mine:
            args += ["duplicate", str(self.duplicate), *_tail(self.duplicate_correlation)]
        if self.reorder is not None and mine:
            args += ["reorder", str(self.reorder), *_tail(self.reorder_correlation)]
            if self.gap is not None:
                args += ["gap", str(self.gap)]
        if self.rate is not None:
            args += ["rate", str(self.rate)]
        return tuple(args)

    def tbf_args(self) -> tuple[str, ...]:
        """``tbf rate R burst B latency 100ms``: a rate limit without netem."""
        assert self.rate is not None
        return ("tbf", "rate", str(self.rate), "burst", str(self.tbf_burst), "latency", str(TBF_LATENCY))

    @property
    def tbf_burst(self) -> Size:
        """``burst``, else 10 ms worth of ``rate`` and at least 16 KiB (a few full-size packets)."""
        if self.burst is not None:
            return self.burst
        assert self.rate is not None
        return Size(max(self.rate.bits // 8 // 100, 16 * 1024))

    @property
    def drop_probability(self) -> str:
        """``loss`` as the probability iptables' statistic match takes (``"0.05"`` for 5%)."""
        assert self.loss is not None
        return f"{(self.loss.value / Decimal(100)).normalize():f}"


def _tail(*values: Any) -> list[str]:
    """Optional trailing arguments: each one only when the ones before it are given."""
    out: list[str] = []
    for value in values:
        if value is None:
            break
        out.append(str(value))
    return out


def to_impairment(value: Any) -> Any:
    """Accept a mapping where an :class:`Impairment` is expected (refused by name later if bad)."""
    if isinstance(value, Mapping):
        return Impairment.from_dict(value)
    return value
