"""What happens to each packet: netem's decisions, made in Python, with no I/O.

:class:`Emulation` follows ``netem_enqueue`` of ``net/sched/sch_netem.c``
step for step, with the same 32-bit random numbers and the same order of
draws, so that a setting means here what it means to netem:

1. duplicate? (not for a packet that is itself a duplicate);
2. lost? (a duplicated packet that is lost is still sent once);
3. corrupted? which bit;
4. more than ``limit`` held: dropped;
5. reordered (sent at once, and the gap counter starts again) or delayed
   by ``delay`` +- ``jitter`` from the distribution's table.

Probabilities and correlations are scaled to 32 bits as ``tc`` does
(``rint(p * UINT32_MAX)``); a correlated draw mixes the last draw in
(``get_crandom``). The random source (``rand32``) and the clock (``clock``,
nanoseconds) are injected: seeded, the decisions are exact and testable.

Unlike netem, which flips any bit of the frame (MAC and IP headers
included), a corrupted packet here gets one bit flipped after its IP header:
the receiver's transport checksum catches it (UDP/TCP ``InCsumErrors``)
instead of the packet vanishing as an IP header error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from netns_kit.impairment import Impairment
from netns_kit.units import Percent

UINT32_MAX = 0xFFFFFFFF
NETEM_DIST_SCALE = 8192
#: where iproute2 installs netem's distribution tables (tc's own search order, then distributions')
TABLE_DIRS = (
    "/usr/lib/tc",
    "/usr/lib64/tc",
    "/usr/lib/x86_64-linux-gnu/tc",
    "/usr/lib/aarch64-linux-gnu/tc",
    "/usr/share/tc",
)


def scaled(value: Percent | None) -> int:
    """A percentage as netem holds it: ``rint(fraction * UINT32_MAX)`` (0 when not given)."""
    return 0 if value is None else round(value.fraction * UINT32_MAX)


def _trunc_div(a: int, b: int) -> int:
    """C's integer division (towards zero)."""
    return -(-a // b) if a < 0 else a // b


def load_table(name: str, dirs: Sequence[str] | None = None) -> tuple[int, ...]:
    """The ``NAME.dist`` table ``tc`` would load (``TC_LIB_DIR`` first), as netem's s16 values."""
    search = [os.environ["TC_LIB_DIR"]] if os.environ.get("TC_LIB_DIR") else []
    search += list(dirs if dirs is not None else TABLE_DIRS)
    for directory in search:
        path = Path(directory) / f"{name}.dist"
        if path.is_file():
            text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
            return tuple(int(word) for word in text.split())
    raise FileNotFoundError(f"netem's distribution table {name}.dist (iproute2) is not in any of {', '.join(search)}")


class Correlated:
    """netem's ``crndstate``: each draw leans on the last one by ``rho`` (of 2**32)."""

    def __init__(self, rho: int, rand32: Callable[[], int]) -> None:
        self.rho = rho
        self.last = rand32() if rho else 0

    def draw(self, rand32: Callable[[], int]) -> int:
        value = rand32()
        if self.rho == 0:
            return value
        rho = self.rho + 1
        self.last = (value * ((1 << 32) - rho) + self.last * rho) >> 32
        return self.last


@attrs.frozen
class Fate:
    """The decision for one packet: dropped (``send_at`` None) or sent at ``send_at`` (ns, the clock's),
    maybe a ``duplicate`` sent too, maybe bit ``corrupt[1]`` of byte ``corrupt[0]`` flipped."""

    send_at: int | None
    duplicate: bool = False
    corrupt: tuple[int, int] | None = None
    reordered: bool = False

    @property
    def dropped(self) -> bool:
        return self.send_at is None


def header_length(packet: bytes) -> int:
    """Bytes of the IP header (IPv4's IHL; IPv6's fixed 40)."""
    if packet and packet[0] >> 4 == 4:
        return (packet[0] & 0x0F) * 4
    return 40


def corrupted(packet: bytes, where: tuple[int, int]) -> bytes:
    """``packet`` with bit ``where[1]`` of byte ``where[0]`` flipped."""
    data = bytearray(packet)
    data[where[0]] ^= 1 << where[1]
    return bytes(data)


class Emulation:
    """Decides each packet's :class:`Fate` as netem would, for one :class:`Impairment`."""

    def __init__(
        self,
        impairment: Impairment,
        *,
        rand32: Callable[[], int],
        clock: Callable[[], int],
        table: Sequence[int] | None = None,
    ) -> None:
        imp = impairment
        self.rand32 = rand32
        self.clock = clock
        self.latency = imp.delay.us * 1000 if imp.delay is not None else 0
        self.jitter = imp.jitter.us * 1000 if imp.jitter is not None else 0
        if table is None and imp.distribution is not None and self.jitter:
            table = load_table(imp.distribution)
        self.table = tuple(table) if table is not None else None
        self.loss = scaled(imp.loss)
        self.duplicate = scaled(imp.duplicate)
        self.corrupt = scaled(imp.corrupt)
        self.reorder = scaled(imp.reorder)
        # tc: a reorder without a gap is gap 1 (every packet may be reordered)
        self.gap = (imp.gap or 1) if imp.reorder is not None else 0
        self.limit = imp.limit if imp.limit is not None else 1000
        self.counter = 0
        self.delay_cor = Correlated(scaled(imp.delay_correlation), rand32)
        self.loss_cor = Correlated(scaled(imp.loss_correlation), rand32)
        self.dup_cor = Correlated(scaled(imp.duplicate_correlation), rand32)
        self.reorder_cor = Correlated(scaled(imp.reorder_correlation), rand32)
        self.corrupt_cor = Correlated(scaled(imp.corrupt_correlation), rand32)

    def delay(self) -> int:
        """netem's ``tabledist``: ``latency`` +- ``jitter`` (ns), uniform or from the table."""
        mu, sigma = self.latency, self.jitter
        if sigma == 0:
            return mu
        rnd = self.delay_cor.draw(self.rand32)
        if self.table is None:
            return (rnd % (2 * sigma)) + mu - sigma
        t = self.table[rnd % len(self.table)]
        x = (sigma % NETEM_DIST_SCALE) * t
        x += NETEM_DIST_SCALE // 2 if x >= 0 else -(NETEM_DIST_SCALE // 2)
        return _trunc_div(x, NETEM_DIST_SCALE) + (sigma // NETEM_DIST_SCALE) * t + mu

    def decide(self, packet: bytes, *, is_duplicate: bool = False, held: int = 0) -> Fate:
        """The fate of ``packet`` (its IP bytes), ``held`` packets being held already."""
        count = 1
        if not is_duplicate and self.duplicate and self.duplicate >= self.dup_cor.draw(self.rand32):
            count += 1
        if self.loss and self.loss >= self.loss_cor.draw(self.rand32):
            count -= 1
        if count == 0:
            return Fate(None)
        where = None
        if self.corrupt and self.corrupt >= self.corrupt_cor.draw(self.rand32):
            start = header_length(packet)
            if len(packet) > start:
                where = (start + self.rand32() % (len(packet) - start), self.rand32() % 8)
        if held >= self.limit:
            return Fate(None)
        now = self.clock()
        if self.gap == 0 or self.counter < self.gap - 1 or self.reorder < self.reorder_cor.draw(self.rand32):
            self.counter += 1
            return Fate(now + max(self.delay(), 0), count > 1, where)
        self.counter = 0
        return Fate(now, count > 1, where, reordered=True)
