"""An owner SIGKILLed at any moment of starting or using a sandbox leaves no process behind.

Each child starts a sandbox (attached, or detached until kept) and is SIGKILLed
after a random delay: half of them from their start (before, during or after the
holder's start), half once the holder runs with a process inside. Every process
the children start carries a mark in its environment; afterwards no process with
that mark may be left (the holder, anything it ran, anything run inside).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KILLS = 12

CHILD = """
    import sys, time
    from netns_kit import Command
    from netns_kit.executors.sandbox import Sandbox

    box = Sandbox().start(detached=sys.argv[1] == "detached", keep_later=True)
    box.popen(Command(("sleep", "1000")))
    print("started", flush=True)
    time.sleep(1000)
"""


def marked(mark: bytes) -> list[int]:
    """The processes whose environment holds ``mark``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if mark in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("mode", ["attached", "detached"])
def test_owners_killed_at_random_moments_leave_no_process(mode: str) -> None:
    seed = random.randrange(2**32)
    print(f"random seed {seed}")
    rng = random.Random(seed)
    run = uuid.uuid4().hex
    mark = f"NETNS_KIT_TEST_RUN={run}"
    env = {**os.environ, "NETNS_KIT_TEST_RUN": run}
    delays: list[str] = []
    try:
        for _ in range(KILLS):
            owner = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(CHILD), mode],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert owner.stdout is not None
            after_start = len(delays) % 2 == 1
            if after_start:
                assert owner.stdout.readline() == "started\n", f"the child failed (exit code {owner.wait()})"
            delay = rng.uniform(0.0, 0.1 if after_start else 0.4)
            delays.append(f"{'started+' if after_start else ''}{delay:.2f}")
            time.sleep(delay)
            owner.kill()
            assert owner.wait() == -signal.SIGKILL, "the child ended by itself: it failed"
            owner.stdout.close()
        deadline = time.monotonic() + 30
        while marked(mark.encode()) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = marked(mark.encode())
        assert left == [], f"left running after SIGKILLs at {delays} s: {left}"
    finally:
        for pid in marked(mark.encode()):
            os.kill(pid, signal.SIGKILL)
