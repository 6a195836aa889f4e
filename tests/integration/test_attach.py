"""Someone else's namespace (a process started with ``unshare --net``) attached into a
topology: veths, addresses and a route wired into it, traffic both ways, and then, by
``down`` or by a cleanup after its owner was killed, left exactly as found."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netns_kit import Command, Namespace, Route, Topology, VethPair
from netns_kit.executors.process import Process
from netns_kit.executors.sandbox import Sandbox

from .cli import netns_kit


def topology(pid: int) -> Topology:
    return Topology(
        [
            Namespace.attach("c1", pid=pid),
            VethPair("v-c1", "eth1", peer_netns="c1", addresses="10.9.0.1/24", peer_addresses="10.9.0.2/24"),
            Route("10.99.0.0/24", via="10.9.0.1", netns="c1"),
        ]
    )


@pytest.fixture
def other(sb: Sandbox) -> Iterator[Process]:
    """A process in a network namespace of its own, not made by netns_kit."""
    process = sb.popen(Command(("unshare", "--net", "sleep", "600")))
    deadline = time.monotonic() + 10
    while links(sb, process.pid) == links(sb, None) and time.monotonic() < deadline:
        time.sleep(0.02)  # until unshare has made its namespace
    yield process
    process.stop()  # by its PID: the one process this test started


def links(sb: Sandbox, pid: int | None) -> list[dict[str, Any]]:
    """``ip -j link show`` in the namespace of ``pid`` (None: the sandbox's host)."""
    enter = ("nsenter", f"--target={pid}", "--net") if pid is not None else ()
    data: list[dict[str, Any]] = sb.run(Command((*enter, "ip", "-j", "link", "show"), mutating=False)).json()
    return data


def names(sb: Sandbox) -> list[str]:
    return [entry["name"] for entry in sb.run(Command(("ip", "-j", "netns", "list"), mutating=False)).json()]


def test_wired_into_with_traffic_then_down_leaves_it_as_found(sb: Sandbox, other: Process) -> None:
    before = links(sb, other.pid)
    assert [link["ifname"] for link in before] == ["lo"]
    up = topology(other.pid).up(sb)
    c1 = up["c1"]
    assert isinstance(c1, Namespace)
    # the topology's name reaches the process's own namespace
    assert [link["ifname"] for link in links(sb, other.pid)] == ["lo", "eth1"]
    assert [r["dst"] for r in c1.routes(4) if r.get("gateway") == "10.9.0.1"] == ["10.99.0.0/24"]
    c1.wait_reachable("10.9.0.1")
    assert sb.run(Command(("ping", "-n", "-q", "-c", "1", "-W", "1", "10.9.0.2"), mutating=False)).ok
    assert c1.ping("10.9.0.1")
    up.down()
    assert other.is_alive()
    assert links(sb, other.pid) == before
    assert "c1" not in names(sb)
    assert "v-c1" not in [link["ifname"] for link in links(sb, None)]


CHILD = """
import os, signal, sys
sys.path.insert(0, sys.argv[3])
from netns_kit.executors.sandbox import Sandbox
from tests.integration.test_attach import topology
topology(int(sys.argv[2])).up(Sandbox.attach(int(sys.argv[1])))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_its_owner_killed_cleanup_removes_only_what_was_added(sb: Sandbox, other: Process) -> None:
    before = links(sb, other.pid)
    host_before = links(sb, None)
    here = str(Path(__file__).parents[2])
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(sb.pid), str(other.pid), here], capture_output=True, timeout=120, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert [link["ifname"] for link in links(sb, other.pid)] == ["lo", "eth1"]
    assert "c1" in names(sb)
    status = netns_kit("status", "--attach", str(sb.pid))
    assert f"attached namespaces (1):\n    c1 (pid {other.pid}: only the name is ours)" in status.stdout
    (entry,) = json.loads(netns_kit("status", "--attach", str(sb.pid), "--json").stdout)["owners"]
    assert entry["attached"] == [{"name": "c1", "pid": other.pid}]
    cleanup = netns_kit("cleanup", "--attach", str(sb.pid))
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert cleanup.stdout.splitlines()[-2] == "removed: ip netns del c1"  # the name last
    assert "FAILED" not in cleanup.stdout
    assert other.is_alive()
    assert links(sb, other.pid) == before
    assert links(sb, None) == host_before
    assert "c1" not in names(sb)
