"""Crashes: the building process is SIGKILLed after every step and at random moments,
then ``netns-kit cleanup`` leaves nothing of it while untagged decoys survive, and a
second cleanup does nothing; SIGTERM and Ctrl-C at random moments tear down cleanly by
themselves (no cleanup needed), each landing for sure at a random step of the build, while
up or at a random step of the teardown (held until it is complete); the builder is
SIGKILLed before each process of a batched build, then cleanup leaves nothing; a SIGTERM
handler of the program's own is left alone.

    pytest tests/stress/test_crashes.py --stress full
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from tests.integration.cli import netns_kit
from tests.integration.crash_child import topology

from .conftest import ledgers

ROOT = Path(__file__).parents[2]
CRASH_CHILD = ROOT / "tests" / "integration" / "crash_child.py"
STEPS = len(topology().plan().commands)


def child(mode: str, sandbox: Sandbox, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.stress.child", mode, str(sandbox.pid), *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a program started in a terminal
    )


def wait_for(process: subprocess.Popen[str], word: str, timeout: float = 60) -> None:
    """Read the child's phases until ``word`` (the child is then in that phase)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the child ended before {word!r}: {process.wait()} {process.stderr.read()}")  # type: ignore[union-attr]
        if line.strip() == word:
            return
    raise AssertionError(f"no {word!r} from the child within {timeout} s")


def cleanup_twice(sandbox: Sandbox, expected: dict[str, Any]) -> tuple[str, list[str]]:
    """Run ``netns-kit cleanup`` twice; return the first one's output and what is left."""
    first = netns_kit("cleanup", "--attach", str(sandbox.pid))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "FAILED" not in first.stdout, first.stdout
    left = state.diff(expected, state.snapshot(sandbox))
    second = netns_kit("cleanup", "--attach", str(sandbox.pid))
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout == f"cleanup: nothing to clean up in sandbox holder {sandbox.pid} (no owner is gone)\n"
    assert state.diff(expected, state.snapshot(sandbox)) == left, "the second cleanup changed something"
    return first.stdout, left


def spread(count: int) -> list[int]:
    """``count`` values of k spread over 0..STEPS (every one for 0)."""
    if count <= 0 or count > STEPS:
        return list(range(STEPS + 1))
    return sorted({round(i * STEPS / max(count - 1, 1)) for i in range(count)})


def test_sigkill_after_every_step_then_cleanup_leaves_only_the_decoys(
    sb: Sandbox, decoys: dict[str, Any], sizes: dict[str, int], figures: Callable[[str], None]
) -> None:
    ks = spread(sizes["kill_steps"])
    removed = 0
    for k in ks:
        killed = subprocess.run(
            [sys.executable, str(CRASH_CHILD), str(sb.pid), str(k)], capture_output=True, timeout=120, check=False
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
        if k > 0:
            assert state.diff(decoys, state.snapshot(sb)), f"k={k}: the child should have left something"
        out, left = cleanup_twice(sb, decoys)
        assert left == [], f"SIGKILL after step {k}: left {left}\n{out}"
        removed += out.count("removed: ")
        assert ledgers(sb) == []
    figures(
        f"SIGKILL after {len(ks)} of the {STEPS + 1} steps (0..{STEPS}): 0 leftovers after cleanup in {len(ks)}/"
        f"{len(ks)}, decoys intact, second cleanup a no-op; {removed} objects removed in all"
    )


def test_sigkill_at_random_moments_then_cleanup_leaves_only_the_decoys(
    sb: Sandbox, decoys: dict[str, Any], sizes: dict[str, int], rng: random.Random, figures: Callable[[str], None]
) -> None:
    # how long one build and teardown takes here, so that kills land all over it
    timing = child("loop", sb)
    wait_for(timing, "building")
    start = time.monotonic()
    wait_for(timing, "down")
    cycle = time.monotonic() - start
    os.killpg(timing.pid, signal.SIGKILL)
    timing.wait()
    netns_kit("cleanup", "--attach", str(sb.pid))
    phases: Counter[str] = Counter()
    for _ in range(sizes["kill_random"]):
        process = child("loop", sb)
        wait_for(process, "building")
        time.sleep(rng.uniform(0, cycle * 1.2))
        os.kill(process.pid, signal.SIGKILL)  # the building process only, not a command it runs
        out, _ = process.communicate(timeout=30)
        phases[(out.split() or ["building"])[-1]] += 1
        report, left = cleanup_twice(sb, decoys)
        # a creation in flight at the kill is proven ours by the ledger, which noted
        # the name was free just before: nothing is left, nothing needs a human
        assert left == [], f"left {left}\n{report}"
        assert ledgers(sb) == []
    figures(
        f"{sizes['kill_random']} SIGKILLs at random moments of a {cycle:.2f} s build+teardown "
        f"(last phase seen: {dict(phases)}): 0 leftovers after cleanup in all {sizes['kill_random']}; decoys intact"
    )


def counts(sb: Sandbox) -> dict[str, int]:
    """How many processes that change something the child starts to build and to tear
    down (batched: one per batch), from one run of it."""
    process = child("count", sb)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    found = dict(line.split() for line in out.splitlines() if line.startswith(("build ", "teardown ")))
    return {"build": int(found["build"]), "teardown": int(found["teardown"]), "up": 1}


PHASES = ("build", "up", "teardown")


def _signal_landing_for_sure(
    sb: Sandbox, count: int, rng: random.Random, signum: int, expected: int
) -> tuple[Counter[str], int]:
    """Send ``signum`` ``count`` times (at least once in each phase) at a random step of a
    random phase, while the child is paused there: it lands there every time. Each one
    must end the child with ``expected`` and leave the state as it was, with no ledger."""
    before = state.snapshot(sb)
    steps = counts(sb)
    assert steps["build"] >= 3 and steps["teardown"] >= 3, steps
    phases: Counter[str] = Counter()
    held = 0
    for i in range(max(count, len(PHASES))):
        phase = PHASES[i] if i < len(PHASES) else rng.choice(PHASES)
        k = rng.randrange(steps[phase])
        process = child("pause", sb, phase, str(k))
        wait_for(process, "paused")
        if signum == signal.SIGINT:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
        else:
            os.kill(process.pid, signum)
        seen = ""
        if phase == "teardown":
            # held until the teardown is complete: it says so, then goes on when told
            assert process.stderr is not None and process.stdin is not None
            while "received while undoing" not in seen:
                line = process.stderr.readline()
                assert line, f"{phase} step {k}: the child ended without holding the signal: {seen}"
                seen += line
            held += 1
            process.stdin.write("\n")
            process.stdin.flush()
        out, err = process.communicate(timeout=60)
        phases[phase] += 1
        where = f"signal in {phase} before step {k}"
        assert process.returncode == expected, f"{where}: exit {process.returncode}\n{out}{seen}{err}"
        assert state.diff(before, state.snapshot(sb)) == [], f"{where} left this: {seen}{err}"
        assert ledgers(sb) == [], f"{where} left a ledger"
    return phases, held


def test_sigterm_at_random_steps_tears_down_by_itself(
    sb: Sandbox, sizes: dict[str, int], rng: random.Random, figures: Callable[[str], None]
) -> None:
    # 143: torn down (or rolled back) and exited as terminated, every time
    phases, held = _signal_landing_for_sure(sb, sizes["term_random"], rng, signal.SIGTERM, 143)
    figures(
        f"{sum(phases.values())} SIGTERMs, each landing at a random step of a random phase "
        f"({dict(phases)}; {held} held until the teardown was complete): exit 143 and state after == before "
        "every time, no cleanup run, no ledger left"
    )


def test_ctrl_c_at_random_steps_tears_down_by_itself(
    sb: Sandbox, sizes: dict[str, int], rng: random.Random, figures: Callable[[str], None]
) -> None:
    # -2: KeyboardInterrupt unwound the block (or the rollback), and Python exits by SIGINT
    phases, held = _signal_landing_for_sure(sb, sizes["int_random"], rng, signal.SIGINT, -signal.SIGINT)
    figures(
        f"{sum(phases.values())} Ctrl-Cs (SIGINT to the process group), each landing at a random step of a "
        f"random phase ({dict(phases)}; {held} held until the teardown was complete): state after == before "
        "every time, no cleanup run, no ledger left"
    )


def test_sigkill_after_step_k_with_batching_then_cleanup_leaves_only_the_decoys(
    sb: Sandbox, decoys: dict[str, Any], sizes: dict[str, int], figures: Callable[[str], None]
) -> None:
    # batched, a step is one process (ip -batch, iptables-restore) of many commands: the
    # builder is killed just before its (k+1)-th, with k over all of them
    steps = counts(sb)["build"]
    ks = sorted({round(i * steps / max(sizes["kill_steps"] - 1, 1)) for i in range(sizes["kill_steps"])})
    if sizes["kill_steps"] <= 0 or sizes["kill_steps"] > steps:
        ks = list(range(steps + 1))
    removed = 0
    for k in ks:
        process = child("pause", sb, "build", str(k))
        if k < steps:
            wait_for(process, "paused")
            os.kill(process.pid, signal.SIGKILL)
        else:
            wait_for(process, "up")  # every step done: killed holding it all
            os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        if k > 0:
            assert state.diff(decoys, state.snapshot(sb)), f"k={k}: the child should have left something"
        out, left = cleanup_twice(sb, decoys)
        assert left == [], f"SIGKILL (batched) before step {k + 1}: left {left}\n{out}"
        removed += out.count("removed: ")
        assert ledgers(sb) == []
    figures(
        f"batched build of {steps} processes, SIGKILL before each of {len(ks)} of them: 0 leftovers after "
        f"cleanup every time, decoys intact, second cleanup a no-op; {removed} objects removed in all"
    )


def test_a_sigterm_handler_of_the_program_is_left_alone(sb: Sandbox) -> None:
    before = state.snapshot(sb)
    process = child("handler", sb)
    wait_for(process, "up")
    os.kill(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.splitlines() == ["my handler", "leaving", "down"]
    assert state.diff(before, state.snapshot(sb)) == []
