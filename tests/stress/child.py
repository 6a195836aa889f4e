"""A building process for the crash tests, run as a child: it is killed, terminated or
interrupted by the test while it works in an attached sandbox.

Usage: python -m tests.stress.child MODE HOLDER_PID [ARG]

``loop``          build and tear down the soak topology (as ``with``) over and over
``with SECONDS``  ``with topology:`` then sleep SECONDS inside the block, then leave it
``handler``       like ``with 30``, but with a SIGTERM handler of the program's own

Each phase is printed on stdout (``building``, ``up``, ``down``) as it starts.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType

from netns_kit import Topology
from netns_kit.sandbox import Sandbox
from tests.integration.crash_child import topology


def say(word: str) -> None:
    print(word, flush=True)


def built(box: Sandbox) -> Topology:
    topo = topology()
    topo.executor = box
    return topo


def main() -> None:
    mode, pid = sys.argv[1], int(sys.argv[2])
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
