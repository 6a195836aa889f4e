"""``netns-kit demo``: seed 001 built for real in a sandbox, checked with traffic, torn down."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from functools import partial
from typing import TextIO

from . import scenarios, state
from .executor import use
from .namespace import Host, _Place
from .sandbox import Sandbox


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def check(self, what: str, ok: Callable[[], bool]) -> None:
        started = time.monotonic()
        try:
            passed = ok()
        except Exception as error:
            passed, what = False, f"{what} ({error})"
        mark = "ok  " if passed else "FAIL"
        self.say(f"  [{mark}] {what}  ({(time.monotonic() - started) * 1000:.0f} ms)")
        self.failures += not passed


def run(out: TextIO) -> int:
    """Run the demo; returns the exit code (0: every check passed)."""
    report = _Report(out)
    topo = scenarios.seed001_bridge()
    topo.wait = True
    report.say("netns_kit demo: seed 001, three namespaces on bridge v-net-0, built in a sandbox\n")
    report.say("The equivalent shell script (netns-kit plan):\n")
    plan = topo.plan()
    report.say("    " + plan.script().rstrip().replace("\n", "\n    "))
    report.say()
    with Sandbox() as sandbox, use(sandbox):
        kind = "rootless (user namespace)" if sandbox.rootless else "as root"
        report.say(f"Sandbox holder pid {sandbox.pid}, {kind}; nothing touches this machine's network.")
        before = state.snapshot(sandbox)
        started = time.monotonic()
        with topo:
            report.say(f"Built {len(plan.commands)} commands in {time.monotonic() - started:.2f} s. Checks:")
            names = scenarios.SEED001_NAMESPACES
            addresses = {name: f"192.168.1.{i}" for i, name in enumerate(names, start=1)}
            for a, b in itertools.permutations(names, 2):
                report.check(f"{a} -> {b} ({addresses[b]})", partial(_reach, topo[a], addresses[b]))
            for name in names:
                report.check(f"{name} -> host (192.168.1.254)", partial(_reach, topo[name], "192.168.1.254"))
                report.check(f"host -> {name} ({addresses[name]})", partial(_reach, Host(), addresses[name]))
        after = state.snapshot(sandbox)
        problems = state.diff(before, after)
        report.check("torn down: state equals the state before", lambda: not problems)
        for problem in problems:
            report.say(f"    {problem}")
    report.say()
    report.say("All checks passed." if not report.failures else f"{report.failures} check(s) FAILED.")
    return 1 if report.failures else 0


def _reach(place: _Place, address: str) -> bool:
    place.wait_reachable(address, timeout=5.0)
    return True
