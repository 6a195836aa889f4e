"""Crash: a child builds a topology in a shared sandbox and is SIGKILLed after step k;
`netns-kit cleanup` then leaves nothing of it, while decoys made by hand without our tag
survive, and a second cleanup does nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Command
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state

from .cli import netns_kit
from .crash_child import topology

CHILD = Path(__file__).with_name("crash_child.py")
STEPS = len(topology().plan().commands)
# after nothing, after the first steps, in the middle of each kind of resource, at the end
KS = sorted({0, 1, 2, 3, 5, 8, 13, 20, STEPS - 2, STEPS - 1, STEPS})

DECOYS = [
    ("ip", "netns", "add", "decoy"),
    ("ip", "link", "add", "name", "decoy-br", "type", "bridge"),
    ("iptables", "-w", "-A", "FORWARD", "-s", "198.51.100.7/32", "-j", "ACCEPT"),
    ("iptables", "-w", "-N", "NK-decoy"),  # our prefix, but never tagged nor in a ledger
    ("iptables", "-w", "-A", "NK-decoy", "-s", "198.51.100.8/32", "-j", "ACCEPT"),
]
UNDO_DECOYS = [
    ("iptables", "-w", "-D", "NK-decoy", "-s", "198.51.100.8/32", "-j", "ACCEPT"),
    ("iptables", "-w", "-X", "NK-decoy"),
    ("iptables", "-w", "-D", "FORWARD", "-s", "198.51.100.7/32", "-j", "ACCEPT"),
    ("ip", "link", "del", "dev", "decoy-br"),
    ("ip", "netns", "del", "decoy"),
]


@pytest.fixture
def decoys(sb: Sandbox) -> Iterator[None]:
    for argv in DECOYS:
        sb.run(Command(argv))
    yield
    for argv in UNDO_DECOYS:
        sb.run(Command(argv))


def crash_after(sandbox: Sandbox, k: int) -> None:
    child = subprocess.run(
        [sys.executable, str(CHILD), str(sandbox.pid), str(k)], capture_output=True, timeout=120, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()


def test_the_topology_has_many_steps() -> None:
    assert STEPS >= 25
    assert len(KS) >= 10


@pytest.mark.parametrize("k", KS)
def test_cleanup_after_sigkill_at_step_k_leaves_nothing_but_the_decoys(sb: Sandbox, decoys: None, k: int) -> None:
    with_decoys = state.snapshot(sb)
    crash_after(sb, k)
    if k > 0:
        assert state.diff(with_decoys, state.snapshot(sb)), "the child should have left something behind"
        status = netns_kit("status", "--attach", str(sb.pid))
        assert "[dead] its process is gone" in status.stdout

    first = netns_kit("cleanup", "--attach", str(sb.pid))
    assert first.returncode == 0, first.stdout + first.stderr
    assert state.diff(with_decoys, state.snapshot(sb)) == []
    if k > 0:
        assert "cleanup: removed" in first.stdout
        assert "removed:" in first.stdout
    assert "FAILED" not in first.stdout

    second = netns_kit("cleanup", "--attach", str(sb.pid))
    assert second.returncode == 0
    assert second.stdout == f"cleanup: nothing to clean up in sandbox holder {sb.pid} (no owner is gone)\n"
    assert state.diff(with_decoys, state.snapshot(sb)) == []


def test_processes_left_in_a_namespace_are_stopped(sb: Sandbox) -> None:
    before = state.snapshot(sb)
    crash_after(sb, STEPS)
    sleeper = sb.popen(Command(("sleep", "600"), netns="red"))
    assert sleeper.is_alive()
    result = netns_kit("cleanup", "--attach", str(sb.pid))
    assert result.returncode == 0, result.stderr
    sleeper.wait(10)
    assert state.diff(before, state.snapshot(sb)) == []


def test_killed_with_a_creation_in_flight_a_same_name_object_is_left_and_reported(sb: Sandbox) -> None:
    """Between `ip link add` and its ok mark the ledger cannot tell ours from one that was
    there before: the untagged bridge is reported, never removed."""
    before = state.snapshot(sb)
    sb.run(Command(("ip", "link", "add", "name", "v-net-0", "type", "bridge")))  # "was there before"
    # a ledger left with `ip link add name v-net-0 ...` in flight: make one like the child's
    child = subprocess.run(
        [sys.executable, "-c", _IN_FLIGHT, str(sb.pid)], capture_output=True, timeout=120, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    result = netns_kit("cleanup", "--attach", str(sb.pid))
    assert result.returncode == 0, result.stderr
    assert "left alone: v-net-0 (bridge in the host): has no tag" in result.stdout
    assert [
        link["ifname"] for link in sb.run(Command(("ip", "-j", "link", "show", "v-net-0"), mutating=False)).json()
    ] == ["v-net-0"]
    sb.run(Command(("ip", "link", "del", "dev", "v-net-0")))
    assert state.diff(before, state.snapshot(sb)) == []


_IN_FLIGHT = """
import os, signal, sys
from netns_kit import Bridge, Topology
from netns_kit.lifecycle.journal import Journal
from netns_kit.executors.sandbox import Sandbox

box = Sandbox.attach(int(sys.argv[1]))
journal = Journal(box)
commands = Bridge("v-net-0").plan(box)
journal.ledger.intend(commands)  # written ahead, then killed before anything is marked
os.kill(os.getpid(), signal.SIGKILL)
"""
