"""The emulator's loop with a fake queue and clock: which verdicts go out, in which order."""

from __future__ import annotations

from collections.abc import Callable

from netns_kit import Impairment
from netns_kit.linkemu import cli
from netns_kit.linkemu.fate import Emulation
from netns_kit.linkemu.loop import DUP_MARK, Emulator
from netns_kit.linkemu.nfq import Packet

MS = 1_000_000
PACKET = bytes([0x45]) + bytes(27)


class FakeQueue:
    def __init__(self) -> None:
        self.verdicts: list[tuple[int, bool, bytes | None]] = []

    def fileno(self) -> int:  # pragma: no cover - the loop's select is not run here
        return -1

    def receive(self) -> list[Packet]:  # pragma: no cover
        return []

    def verdict(self, packet_id: int, accept: bool = True, payload: bytes | None = None) -> None:
        self.verdicts.append((packet_id, accept, payload))


class FakeDuplicator:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, int]] = []

    def send(self, packet: bytes, ifindex: int) -> None:
        self.sent.append((packet, ifindex))

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def emulator(rand: list[int], **settings: object) -> tuple[Emulator, FakeQueue, FakeDuplicator, Clock]:
    values = iter(rand)
    rand32: Callable[[], int] = lambda: next(values)  # noqa: E731
    clock = Clock()
    queue, dup = FakeQueue(), FakeDuplicator()
    emulation = Emulation(Impairment(**settings), rand32=rand32, clock=clock)  # type: ignore[arg-type]
    emu = Emulator(queue, emulation, duplicator=dup, clock=clock)  # type: ignore[arg-type]
    return emu, queue, dup, clock


def test_packets_are_released_when_their_delay_is_over() -> None:
    emu, queue, _, clock = emulator([], delay="10ms")
    emu.handle(Packet(1, 0, PACKET))
    clock.now = 5 * MS
    emu.handle(Packet(2, 0, PACKET))
    clock.now = 10 * MS - 1
    emu.release_due()
    assert queue.verdicts == []
    clock.now = 10 * MS
    emu.release_due()
    assert queue.verdicts == [(1, True, None)]
    clock.now = 15 * MS
    emu.release_due()
    assert queue.verdicts == [(1, True, None), (2, True, None)]


def test_a_reordered_packet_overtakes_the_held_ones() -> None:
    emu, queue, _, _ = emulator([0], delay="10ms", reorder="100%", gap=2)
    emu.handle(Packet(1, 0, PACKET))  # delayed (inside the gap)
    emu.handle(Packet(2, 0, PACKET))  # reordered: sent at once
    assert queue.verdicts == [(2, True, None)]
    assert emu.stats.reordered == 1


def test_a_lost_packet_gets_a_drop_verdict() -> None:
    emu, queue, _, _ = emulator([0], loss="5%")
    emu.handle(Packet(1, 0, PACKET))
    assert queue.verdicts == [(1, False, None)]


def test_a_duplicate_is_sent_through_the_device_and_the_copy_is_not_duplicated() -> None:
    emu, queue, dup, clock = emulator([0], delay="10ms", duplicate="50%")
    emu.handle(Packet(1, 0, PACKET, outdev=4))
    assert dup.sent == [(PACKET, 4)]
    emu.handle(Packet(2, 0, PACKET, mark=DUP_MARK, outdev=4))  # the copy: no draw, no second copy
    clock.now = 10 * MS
    emu.release_due()
    assert queue.verdicts == [(1, True, None), (2, True, None)] and len(dup.sent) == 1


def test_a_corrupted_packet_is_released_with_its_new_bytes() -> None:
    emu, queue, _, _ = emulator([0, 0, 3], corrupt="1%")
    emu.handle(Packet(1, 0, PACKET))
    flipped = bytearray(PACKET)
    flipped[20] ^= 1 << 3
    assert queue.verdicts == [(1, True, bytes(flipped))]


def test_a_stop_releases_everything_held_at_once() -> None:
    emu, queue, _, _ = emulator([], delay="1s")
    for n in (1, 2, 3):
        emu.handle(Packet(n, 0, PACKET))
    emu.release_all()
    assert queue.verdicts == [(1, True, None), (2, True, None), (3, True, None)]


def test_stats_report_lateness_percentiles() -> None:
    emu, _, _, clock = emulator([], delay="10ms")
    emu.handle(Packet(1, 0, PACKET))
    clock.now = 12 * MS
    emu.release_due()
    assert "released=1" in emu.stats.line() and "late_ms_p50=2.000" in emu.stats.line()


def test_cli_options_make_the_same_impairment() -> None:
    args = cli.parser().parse_args(
        ["--queue", "3", "--delay", "100ms", "--jitter", "10ms", "--distribution", "uniform",
         "--delay-correlation", "25%", "--loss", "5%", "--reorder", "25%", "--gap", "5", "--limit", "50"]
    )  # fmt: skip
    assert cli.impairment(args) == Impairment(
        delay="100ms", jitter="10ms", delay_correlation="25%", loss="5%", reorder="25%", gap=5, limit=50
    )


def test_cli_refuses_bad_settings_by_name(capsys: object) -> None:
    assert cli.main(["--queue", "3", "--reorder", "5%"]) == 2
    assert cli.main(["--queue", "70000", "--delay", "1ms"]) == 2


def test_stop_finds_the_queue_option_in_either_spelling() -> None:
    assert cli.option(["python3", "-m", "netns_kit.linkemu", "--queue", "7"], "--queue") == "7"
    assert cli.option(["python3", "-m", "netns_kit.linkemu", "--queue=8"], "--queue") == "8"
    assert cli.option(["--queue"], "--queue") is None


def test_background_start_reads_the_ready_line_or_gives_up_after_its_timeout() -> None:
    import os

    read_end, write_end = os.pipe()
    os.write(write_end, b"linkemu: queue 3 ready\n")
    os.close(write_end)
    assert cli._read_until_closed(read_end, 1.0) == "linkemu: queue 3 ready\n"
    read_end, write_end = os.pipe()
    assert cli._read_until_closed(read_end, 0.05) is None  # the writer never closes
    os.close(write_end)
