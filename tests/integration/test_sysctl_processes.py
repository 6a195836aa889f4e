"""ip_forward relied on by several processes at once, in ONE sandbox (their shared "host").

Each process is a separate Python process, as pytest-xdist workers or parallel CI
jobs are. Whatever order their claims and releases take, forwarding must be on,
everywhere (``conf/all``, ``conf/default`` and every interface), while anyone relies
on it, and back to the value found before once the last one is gone.

The workers are this module run as a program::

    python -m tests.integration.test_sysctl_processes HOLDER_PID WORKER ITERATIONS GO_FILE
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from netns_kit import Bridge, Command, NatRule, Topology, query
from netns_kit.executors.base import Executor
from netns_kit.executors.sandbox import Sandbox

ROOT = Path(__file__).parents[2]
PROCESSES = 8
ITERATIONS = 30


def forwarding(executor: Executor, family: str = "-4") -> dict[str, bool]:
    """``{interface or all/default: forwarding}`` in the sandbox's host."""
    found = executor.run(query("ip", family, "-j", "netconf", "show")).json()
    return {entry["interface"]: bool(entry["forwarding"]) for entry in found}


def claims_left(box: Sandbox) -> list[str] | None:
    """What is kept under /run/netns_kit/sysctl; None when not even the directory is there."""
    directory = box.root_path("/run/netns_kit/sysctl")
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")) if directory.exists() else None


# -- the worker ------------------------------------------------------------------------
def work(box: Sandbox, worker: int, iterations: int) -> dict[str, Any]:
    """Claim and release ip_forward ``iterations`` times (a bridge with a NAT rule, up and
    down); after each up, forwarding must be on for ``all``, ``default`` and the bridge."""
    problems: list[str] = []
    for i in range(iterations):
        bridge = f"cl{worker}-{i}"
        topo = Topology(
            [
                Bridge(bridge, addresses=f"10.{100 + worker}.{i}.1/24"),
                NatRule(f"10.{100 + worker}.{i}.0/24", bridge=bridge),
            ]
        )
        try:
            topo.up(box)
            try:
                seen = forwarding(box)
                off = [name for name in ("all", "default", bridge) if not seen.get(name)]
                if off:
                    problems.append(f"iteration {i}: forwarding off on {off} while relied on")
            finally:
                topo.down()
        except Exception as error:  # reported to the test, none hidden
            problems.append(f"iteration {i}: {type(error).__name__}: {error}")
    return {"worker": worker, "problems": problems}


def hold(box: Sandbox, n: int) -> None:
    """Bring a NAT topology up, say so, wait for a line on stdin, take it down, say so."""
    bridge = f"hold{n}"
    topo = Topology([Bridge(bridge, addresses=f"10.200.{n}.1/24"), NatRule(f"10.200.{n}.0/24", bridge=bridge)])
    topo.up(box)
    print("up", flush=True)
    sys.stdin.readline()
    topo.down()
    print("down", flush=True)


def main() -> None:
    if sys.argv[1] == "--hold":
        hold(Sandbox.attach(int(sys.argv[2])), int(sys.argv[3]))
        return
    box = Sandbox.attach(int(sys.argv[1]))
    worker, iterations, go = int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.005)
    print(json.dumps(work(box, worker, iterations)), flush=True)


# -- the tests ---------------------------------------------------------------------------
@pytest.fixture
def box() -> Any:
    with Sandbox() as sandbox:
        # interfaces that exist before anyone claims: each write of ip_forward must reach them
        sandbox.run(Command(("ip", "link", "add", "name", "pre-a", "type", "veth", "peer", "name", "pre-b")))
        sandbox.run(Command(("ip", "link", "add", "name", "pre-br", "type", "bridge")))
        yield sandbox


def test_many_processes_claiming_and_releasing_ip_forward_leave_it_consistent_and_restored(
    box: Sandbox, tmp_path: Path
) -> None:
    before = forwarding(box)
    assert set(before.values()) == {False}, before
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.test_sysctl_processes",
                str(box.pid),
                str(w),
                str(ITERATIONS),
                str(go),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    time.sleep(1.0)  # let them import and wait
    go.touch()
    problems = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        problems += json.loads(out.strip().splitlines()[-1])["problems"]
    assert problems == []
    after = forwarding(box)
    assert after == before  # all, default, lo, pre-a, pre-b, pre-br: every one back to off
    assert box.run(query("sysctl", "-n", "net.ipv4.ip_forward")).stdout.strip() == "0"
    assert claims_left(box) is None  # no claim, no prior, no empty directory


class Holder:
    """A process that holds a NAT topology (so a claim on ip_forward) until told to let go."""

    def __init__(self, box: Sandbox, n: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.test_sysctl_processes", "--hold", str(box.pid), str(n)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line == "up\n", line + self.process.communicate(timeout=60)[1]

    def down(self) -> None:
        out, err = self.process.communicate("\n", timeout=60)
        assert self.process.returncode == 0 and out == "down\n", err


def on_everywhere(box: Sandbox) -> bool:
    """Forwarding on for ``all``, ``default`` and every interface."""
    return all(forwarding(box).values())


@pytest.mark.parametrize("prior", ["0", "1"])
def test_the_first_process_to_leave_keeps_forwarding_on_for_the_other_and_the_last_restores_it(
    box: Sandbox, prior: str
) -> None:
    box.run(Command(("sysctl", "-q", "-w", f"net.ipv4.ip_forward={prior}")))
    before = forwarding(box)
    a = Holder(box, 1)
    b = Holder(box, 2)
    assert on_everywhere(box)
    a.down()
    assert on_everywhere(box)  # B still relies on it
    assert box.run(query("sysctl", "-n", "net.ipv4.ip_forward")).stdout.strip() == "1"
    b.down()
    assert box.run(query("sysctl", "-n", "net.ipv4.ip_forward")).stdout.strip() == prior
    assert forwarding(box) == before
    assert claims_left(box) is None


if __name__ == "__main__":
    main()
