"""A building process for the crash tests, run as a child: it is killed, terminated or
interrupted by the test while it works in an attached sandbox.

Usage: python -m tests.stress.child MODE HOLDER_PID [ARG]

``loop``          build and tear down the soak topology (as ``with``) over and over
``with SECONDS``  ``with topology:`` then sleep SECONDS inside the block, then leave it
``handler``       like ``with 30``, but with a SIGTERM handler of the program's own
``count``         build and tear down once; print ``build N`` and ``teardown M``: how many
                  processes that change something each starts (batched: one per batch)
``pause PHASE K`` ``with topology:`` that stops before the (K+1)-th such process of PHASE
                  (``build`` or ``teardown``; ``up``: inside the block), prints ``paused``
                  and goes on at a line on stdin: a signal sent then lands right there

Each phase is printed on stdout (``building``, ``up``, ``down``) as it starts.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

from netns_kit import Topology
from netns_kit.executors.sandbox import Sandbox
from tests.integration.crash_child import topology


def say(word: str) -> None:
    print(word, flush=True)


def built(box: Sandbox) -> Topology:
    topo = topology()
    topo.executor = box
    return topo


class Pausing(Sandbox):
    """Counts the processes that change something; pauses before the (at+1)-th while armed."""

    count = 0
    at = -1
    armed = False

    def pause(self) -> None:
        say("paused")
        sys.stdin.readline()

    def _tick(self) -> None:
        if self.armed and self.count == self.at:
            self.armed = False
            self.pause()
        self.count += 1

    def _run_one(self, command, input, timeout):  # type: ignore[no-untyped-def]
        if command.mutating:  # a change run on its own
            self._tick()
        return super()._run_one(command, input, timeout)

    def _execute_batch(self, process, input):  # type: ignore[no-untyped-def]
        self._tick()
        return super()._execute_batch(process, input)


def main() -> None:
    mode, pid = sys.argv[1], int(sys.argv[2])
    if mode in ("count", "pause"):
        paused = Pausing.attach(pid)
        paused.parallel = 1  # batched, one batch at a time: each pause is in the main thread
        phase, paused.at = (sys.argv[3], int(sys.argv[4])) if mode == "pause" else ("", -1)
        paused.armed = phase == "build"
        say("building")
        with built(paused):
            built_by = paused.count
            say("up")
            if phase == "up":
                paused.pause()
            paused.count, paused.armed = 0, phase == "teardown"
            say("leaving")
        say("down")
        if mode == "count":
            say(f"build {built_by}")
            say(f"teardown {paused.count}")
        return
    box = Sandbox.attach(pid)
    if mode == "loop":
        while True:
            say("building")
            with built(box):
                say("up")
            say("down")
    elif mode == "with":
        say("building")
        with built(box):
            say("up")
            time.sleep(float(sys.argv[3]))
            say("leaving")
        say("down")
    elif mode == "handler":
        stop = []

        def mine(signum: int, frame: FrameType | None) -> None:
            say("my handler")
            stop.append(signum)

        signal.signal(signal.SIGTERM, mine)
        say("building")
        with built(box):
            say("up")
            deadline = time.monotonic() + 30
            while not stop and time.monotonic() < deadline:
                time.sleep(0.01)
            say("leaving")
        say("down")
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
