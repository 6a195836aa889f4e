"""The emulator's one thread: read queued packets, hold each until its time, release it.

A heap of ``(send_at, n, packet id, payload)`` and ``select`` with a timeout
to the earliest deadline, in microseconds (asyncio would round it up to whole
milliseconds). Duplicates are sent as copies through a raw IP socket bound
to the same device, marked with :data:`DUP_MARK`: the copy passes the same
queue rule, and is then recognized by its mark and given a fate of its own
without being duplicated again (netem enqueues its clone the same way).
"""

from __future__ import annotations

import gc
import heapq
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from netns_kit.linkemu.fate import Emulation, corrupted
from netns_kit.linkemu.nfq import Packet

#: the firewall mark on duplicates sent back through the queue
DUP_MARK = 0x6E6B6475  # "nkdu"
SO_BINDTOIFINDEX = 62
#: how often the device is looked up (gone: the emulator exits)
WATCH_INTERVAL = 1.0


class Queue(Protocol):
    def fileno(self) -> int: ...
    def receive(self) -> list[Packet]: ...
    def verdict(self, packet_id: int, accept: bool = True, payload: bytes | None = None) -> None: ...


class Duplicator:
    """Sends copies of IP packets out through a device, marked :data:`DUP_MARK`."""

    def __init__(self) -> None:
        self._socks: dict[tuple[int, int], socket.socket] = {}

    def send(self, packet: bytes, ifindex: int) -> None:
        version = packet[0] >> 4
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        sock = self._socks.get((family, ifindex))
        if sock is None:
            sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, DUP_MARK)
            if ifindex:
                sock.setsockopt(socket.SOL_SOCKET, SO_BINDTOIFINDEX, ifindex)
            sock.setblocking(False)
            self._socks[(family, ifindex)] = sock
        if version == 4:
            destination: tuple[str, int] | tuple[str, int, int, int] = (socket.inet_ntop(family, packet[16:20]), 0)
        else:
            destination = (socket.inet_ntop(family, packet[24:40]), 0, 0, ifindex)
        try:
            sock.sendto(packet, destination)
        except OSError:
            pass  # a copy that cannot be sent is a duplicate that did not happen

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()


class Stats:
    def __init__(self) -> None:
        self.received = self.dropped = self.duplicated = self.corrupted = self.reordered = self.released = 0
        self.late_us: list[int] = []

    def line(self) -> str:
        late = sorted(self.late_us)

        def pct(q: float) -> str:
            return f"{late[min(len(late) - 1, int(q * len(late)))] / 1000:.3f}" if late else "-"

        return (
            f"received={self.received} released={self.released} dropped={self.dropped} "
            f"duplicated={self.duplicated} corrupted={self.corrupted} reordered={self.reordered} "
            f"late_ms_p50={pct(0.5)} p90={pct(0.9)} p99={pct(0.99)} max={late[-1] / 1000 if late else '-'}"
        )


class Emulator:
    """Runs one :class:`Emulation` on one queue until stopped (SIGTERM, SIGINT) or its device goes."""

    def __init__(
        self,
        queue: Queue,
        emulation: Emulation,
        *,
        duplicator: Duplicator | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
        dev: str | None = None,
    ) -> None:
        self.queue = queue
        self.emulation = emulation
        self.duplicator = duplicator or Duplicator()
        self.clock = clock
        self.dev = dev
        self.held: list[tuple[int, int, int, bytes | None]] = []
        self.stats = Stats()
        self._n = 0
        self._stop = False

    def stop(self, *_: object) -> None:
        self._stop = True

    def handle(self, packet: Packet) -> None:
        self.stats.received += 1
        fate = self.emulation.decide(packet.payload, is_duplicate=packet.mark == DUP_MARK, held=len(self.held))
        if fate.send_at is None:
            self.stats.dropped += 1
            self.queue.verdict(packet.id, accept=False)
            return
        if fate.duplicate:
            self.stats.duplicated += 1
            self.duplicator.send(packet.payload, packet.outdev)
        payload = None
        if fate.corrupt is not None:
            self.stats.corrupted += 1
            payload = corrupted(packet.payload, fate.corrupt)
        self.stats.reordered += fate.reordered
        if fate.send_at <= self.clock():
            self._release(fate.send_at, packet.id, payload)
        else:
            self._n += 1
            heapq.heappush(self.held, (fate.send_at, self._n, packet.id, payload))

    def _release(self, due: int, packet_id: int, payload: bytes | None) -> None:
        self.queue.verdict(packet_id, True, payload)
        self.stats.released += 1
        if len(self.stats.late_us) < 1_000_000:
            self.stats.late_us.append(max(0, self.clock() - due) // 1000)

    def release_due(self) -> None:
        now = self.clock()
        while self.held and self.held[0][0] <= now:
            due, _, packet_id, payload = heapq.heappop(self.held)
            self._release(due, packet_id, payload)

    def release_all(self) -> None:
        """Send every packet still held, now (on a clean stop: nothing in flight is lost)."""
        while self.held:
            _, _, packet_id, payload = heapq.heappop(self.held)
            self.queue.verdict(packet_id, True, payload)
            self.stats.released += 1

    def _device_gone(self) -> bool:
        if self.dev is None:
            return False
        try:
            socket.if_nametoindex(self.dev)
        except OSError:
            return True
        return False

    def run(self, *, ready: Callable[[], None] | None = None, log: TextIO = sys.stderr) -> int:
        """Serve until stopped; returns the exit code (0: stopped, 3: the device is gone)."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop)
        code = 0
        queue_fd = self.queue.fileno()
        gc.freeze()  # what exists now is never collected: fewer, shorter pauses in the loop
        try:
            if ready is not None:
                ready()
            next_watch = time.monotonic() + WATCH_INTERVAL
            while not self._stop:
                timeout = WATCH_INTERVAL
                if self.held:
                    timeout = min(timeout, max(0, self.held[0][0] - self.clock()) / 1e9)
                readable, _, _ = select.select([queue_fd, wake_r], [], [], timeout)
                if queue_fd in readable:
                    for packet in self.queue.receive():
                        self.handle(packet)
                self.release_due()
                if time.monotonic() >= next_watch:
                    next_watch = time.monotonic() + WATCH_INTERVAL
                    if self._device_gone():
                        print(f"linkemu: device {self.dev} is gone: exiting", file=log, flush=True)
                        code = 3
                        break
        finally:
            self.release_all()
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            self.duplicator.close()
            print(f"linkemu: stopped: {self.stats.line()}", file=log, flush=True)
        return code
