"""Concurrency: many processes building their own topologies at once in ONE shared
sandbox, and many processes racing to create the same namespace.

One sandbox is shared by all workers on purpose: that is where they can collide (one
host namespace for their bridges, uplinks and NAT rules, one iptables rule set and its
xtables lock, one /run/netns, one ip_forward). Sandboxes of their own would share
nothing and prove nothing about collisions. Each worker is a separate process, as
pytest-xdist workers or parallel CI jobs are.

    pytest tests/stress/test_concurrency.py --stress full     # 16 workers x 10 cycles, 20 racers
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import netns_kit
from netns_kit import Command
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state

from .conftest import ledgers

ROOT = Path(__file__).parents[2]
LOCK_ERRORS = ("xtables lock", "Another app is currently holding", "Resource temporarily unavailable")


def start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.stress.worker", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_workers_building_their_own_topologies_at_once_never_collide_or_leak(
    sb: Sandbox, sizes: dict[str, int], figures: Callable[[str], None], tmp_path: Path
) -> None:
    workers, cycles = sizes["workers"], sizes["cycles"]
    before = state.snapshot(sb)
    go = tmp_path / "go"
    processes = [start([str(sb.pid), str(w), str(cycles), str(go)]) for w in range(workers)]
    time.sleep(1.0)  # let them all import and wait at the barrier
    began = time.monotonic()
    go.touch()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=1800)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.monotonic() - began
    errors = [e | {"worker": r["worker"]} for r in results for e in r["errors"]]
    kinds = Counter(e["type"] for e in errors)
    collisions = kinds["AlreadyExistsError"]
    lock_errors = sum(any(s in e["text"] for s in LOCK_ERRORS) for e in errors)
    left = state.diff(before, state.snapshot(sb))
    cycle_times = [t for r in results for t in r["seconds"]]
    figures(
        f"{workers} workers x {cycles} cycles at once in one sandbox: {sum(r['ok'] for r in results)}/"
        f"{workers * cycles} cycles ok, {collisions} name collisions, {lock_errors} xtables lock errors, "
        f"{len(errors)} errors in all {dict(kinds)}, {len(left)} leaks; {elapsed:.1f} s wall, "
        f"{sum(cycle_times) / len(cycle_times):.2f} s per cycle (max {max(cycle_times):.2f} s)"
    )
    assert errors == [], "\n".join(json.dumps(e) for e in errors[:10])
    assert left == []
    assert ledgers(sb) == []


def test_of_processes_creating_the_same_namespace_at_once_exactly_one_succeeds(
    sb: Sandbox, sizes: dict[str, int], figures: Callable[[str], None], tmp_path: Path
) -> None:
    racers = sizes["racers"]
    go = tmp_path / "go"
    processes = [start(["--race", str(sb.pid), "contested", str(go)]) for _ in range(racers)]
    time.sleep(1.0)
    go.touch()
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        answers.append(out.strip())
    try:
        winners = [a for a in answers if a == "ok"]
        losers = [a for a in answers if a.startswith("AlreadyExistsError: ")]
        figures(
            f"{racers} processes creating namespace 'contested' at once: {len(winners)} succeeded, "
            f"{len(losers)} got AlreadyExistsError, {racers - len(winners) - len(losers)} anything else"
        )
        assert len(winners) == 1, answers
        assert len(losers) == racers - 1, answers
        names = [e["name"] for e in sb.run(Command(("ip", "-j", "netns", "list"), mutating=False)).json()]
        assert names.count("contested") == 1
    finally:
        # the winner exited holding it: cleanup of owners that are gone takes it, and its ledger
        report = netns_kit.cleanup(sb)
        sb.run(Command(("ip", "netns", "del", "contested"), missing_ok=True))
    assert report.errors == []
    assert report.removed == ["namespace contested"]
    assert ledgers(sb) == []  # the winner's, removed with what it made; the losers' rolled back
