"""The link emulator's decisions, made as netem makes them, exact with scripted random numbers."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from netns_kit import Impairment
from netns_kit.linkemu.fate import UINT32_MAX, Correlated, Emulation, Fate, corrupted, load_table, scaled
from netns_kit.units import percent

MS = 1_000_000
NOW = 1_000 * MS
#: an IPv4/UDP packet: 20-byte header, 8-byte UDP header, 4 bytes of data
PACKET = bytes([0x45]) + bytes(19) + bytes(12)


def script(*values: int) -> Callable[[], int]:
    """A random source that returns ``values`` in order, and fails when asked for more."""
    it = iter(values)

    def rand32() -> int:
        try:
            return next(it)
        except StopIteration:
            raise AssertionError("one random number more was drawn than the test expects") from None

    return rand32


def emulation(rand: Callable[[], int] | Iterable[int] = (), **settings: object) -> Emulation:
    rand32 = rand if callable(rand) else script(*rand)
    return Emulation(Impairment(**settings), rand32=rand32, clock=lambda: NOW)  # type: ignore[arg-type]


def p(text: str) -> int:
    return scaled(percent("p", text))


def test_percentages_scale_to_32_bits_as_tc_rounds_them() -> None:
    assert p("5%") == 214748365  # rint(0.05 * 4294967295)
    assert p("100%") == UINT32_MAX
    assert scaled(None) == 0


def test_constant_delay_draws_no_random_number() -> None:
    assert emulation(delay="100ms").decide(PACKET) == Fate(NOW + 100 * MS)


def test_uniform_jitter_spans_delay_plus_minus_jitter() -> None:
    assert emulation([0], delay="100ms", jitter="10ms").decide(PACKET) == Fate(NOW + 90 * MS)
    assert emulation([20 * MS - 1], delay="100ms", jitter="10ms").decide(PACKET) == Fate(NOW + 110 * MS - 1)
    assert emulation([20 * MS + 5], delay="100ms", jitter="10ms").decide(PACKET) == Fate(NOW + 90 * MS + 5)


def test_a_distribution_table_scales_its_entries_by_the_jitter() -> None:
    table = (-8192, 0, 8192, -16384)  # -1, 0, +1 and -2 jitters (NETEM_DIST_SCALE is 8192)
    emu = Emulation(
        Impairment(delay="100ms", jitter="10ms", distribution="normal"),
        rand32=script(0, 1, 2, 3),
        clock=lambda: NOW,
        table=table,
    )
    assert [emu.decide(PACKET).send_at for _ in range(4)] == [
        NOW + 90 * MS, NOW + 100 * MS, NOW + 110 * MS, NOW + 80 * MS,
    ]  # fmt: skip


def test_a_negative_delay_sends_at_once() -> None:
    emu = Emulation(
        Impairment(delay="10ms", jitter="10ms", distribution="pareto"),
        rand32=script(0),
        clock=lambda: NOW,
        table=(-16384,),
    )
    assert emu.decide(PACKET) == Fate(NOW)


def test_jitter_spread_from_a_seeded_source_is_uniform_around_the_delay() -> None:
    rng = random.Random(7)
    emu = emulation(lambda: rng.getrandbits(32), delay="50ms", jitter="10ms")
    delays = [emu.decide(PACKET).send_at - NOW for _ in range(20000)]  # type: ignore[operator]
    assert 40 * MS <= min(delays) < 40.1 * MS
    assert 59.9 * MS < max(delays) < 60 * MS
    assert abs(statistics.mean(delays) - 50 * MS) < 0.2 * MS
    assert abs(statistics.pstdev(delays) - 10 * MS / 3**0.5) < 0.1 * MS  # a uniform's sd: width / sqrt(12)


def test_loss_drops_when_the_draw_is_at_most_the_probability() -> None:
    assert emulation([p("5%")], loss="5%").decide(PACKET).dropped
    assert emulation([p("5%") + 1], loss="5%").decide(PACKET) == Fate(NOW)


def test_loss_correlation_leans_on_the_last_draw() -> None:
    rho = p("75%")
    # the first number seeds the correlated state; each draw mixes value and last
    emu = emulation([UINT32_MAX, 0, 0], loss="60%", loss_correlation="75%")
    first = (0 * ((1 << 32) - (rho + 1)) + UINT32_MAX * (rho + 1)) >> 32
    second = (0 * ((1 << 32) - (rho + 1)) + first * (rho + 1)) >> 32
    assert first > p("60%") and second <= p("60%")
    assert [emu.decide(PACKET).dropped for _ in range(2)] == [False, True]


def test_correlated_losses_come_in_bursts() -> None:
    def longest_burst(correlation: str | None) -> float:
        rng = random.Random(3)
        settings = {"loss": "50%"} | ({"loss_correlation": correlation} if correlation else {})
        emu = emulation(lambda: rng.getrandbits(32), **settings)
        lost = [emu.decide(PACKET).dropped for _ in range(20000)]
        bursts, run = [], 0
        for drop in lost:
            run = run + 1 if drop else 0
            bursts.append(run)
        return max(bursts)

    assert longest_burst("90%") > 2 * longest_burst(None)


def test_a_strong_correlation_lowers_a_small_loss_as_in_netem() -> None:
    # netem's correlated draws cluster around the middle of the range, so a 10% loss
    # with 90% correlation loses far fewer than 10% (why netem grew the Gilbert-Elliott model)
    rng = random.Random(3)
    emu = emulation(lambda: rng.getrandbits(32), loss="10%", loss_correlation="90%")
    assert sum(emu.decide(PACKET).dropped for _ in range(20000)) < 200


def test_correlated_source_without_rho_passes_draws_through() -> None:
    source = script(5, 6)
    state = Correlated(0, source)
    assert (state.draw(source), state.draw(source)) == (5, 6)


def test_duplicate_sends_a_copy() -> None:
    assert emulation([0], delay="10ms", duplicate="1%").decide(PACKET) == Fate(NOW + 10 * MS, duplicate=True)
    assert emulation([p("1%") + 1], delay="10ms", duplicate="1%").decide(PACKET) == Fate(NOW + 10 * MS)


def test_a_duplicate_is_not_duplicated_again() -> None:
    assert emulation([], delay="10ms", duplicate="100%").decide(PACKET, is_duplicate=True) == Fate(NOW + 10 * MS)


def test_a_duplicated_packet_that_is_lost_is_still_sent_once() -> None:
    # netem: duplicate counts 2, loss takes one away
    assert emulation([0, 0], duplicate="50%", loss="50%", delay="1ms").decide(PACKET) == Fate(NOW + MS)


def test_corruption_flips_one_bit_after_the_ipv4_header() -> None:
    fate = emulation([0, 7, 13], corrupt="1%").decide(PACKET)
    assert fate == Fate(NOW, corrupt=(20 + 7 % 12, 13 % 8))
    data = corrupted(PACKET, (27, 5))
    assert data[27] == 0b100000 and data[:27] + data[28:] == PACKET[:27] + PACKET[28:]


def test_corruption_skips_ipv4_options_and_the_ipv6_header() -> None:
    with_options = bytes([0x46]) + bytes(31)  # IHL 6: a 24-byte header
    assert emulation([0, 0, 0], corrupt="1%").decide(with_options).corrupt == (24, 0)
    ipv6 = bytes([0x60]) + bytes(49)
    assert emulation([0, 3, 0], corrupt="1%").decide(ipv6).corrupt == (43, 0)


def test_a_packet_over_the_limit_is_dropped() -> None:
    emu = emulation(delay="10ms", limit=3)
    assert emu.decide(PACKET, held=2) == Fate(NOW + 10 * MS)
    assert emu.decide(PACKET, held=3).dropped


def test_the_default_limit_is_netems_1000() -> None:
    assert emulation(delay="10ms").limit == 1000


def test_reorder_without_gap_sends_that_share_at_once() -> None:
    emu = emulation([p("25%"), p("25%") + 1], delay="10ms", reorder="25%")
    assert emu.decide(PACKET) == Fate(NOW, reordered=True)
    assert emu.decide(PACKET) == Fate(NOW + 10 * MS)


def test_reorder_with_gap_delays_gap_minus_one_packets_between_candidates() -> None:
    # gap 3: packets 1 and 2 are delayed without a draw, packet 3 may jump ahead;
    # a candidate that is not reordered leaves the next packet a candidate too
    emu = emulation([UINT32_MAX, 0], delay="10ms", reorder="25%", gap=3)
    fates = [emu.decide(PACKET) for _ in range(6)]
    assert [f.reordered for f in fates[:4]] == [False, False, False, True]
    assert fates[4:] == [Fate(NOW + 10 * MS)] * 2  # counter 0 and 1 after the reordered one


def test_reorder_gap_5_as_in_tc_netem_man_page() -> None:
    # "reorder 25% 50% gap 5": with reorder 100% every 5th packet is sent at once
    emu = emulation([0, 0], delay="10ms", reorder="100%", gap=5)
    assert [emu.decide(PACKET).reordered for _ in range(10)] == [False] * 4 + [True] + [False] * 4 + [True]


def test_load_table_reads_tcs_dist_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TC_LIB_DIR", raising=False)
    (tmp_path / "normal.dist").write_text("# a comment\n -3 -1 0\n 1 3\n")
    assert load_table("normal", [str(tmp_path)]) == (-3, -1, 0, 1, 3)
    with pytest.raises(FileNotFoundError, match=r"pareto\.dist"):
        load_table("pareto", [str(tmp_path)])
