"""Processes still running inside a namespace at teardown are stopped (even ones that
ignore SIGTERM, even ones netns_kit did not start), and no veth outlives its topology:
right after ``down()`` returns, not after some settling time.

    pytest tests/stress/test_teardown_processes.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from netns_kit import Command
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.topology import scenarios

#: ignores SIGTERM: only SIGKILL stops it
STUBBORN = ("sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")


def veths(sandbox: Sandbox) -> list[str]:
    shown = sandbox.run(Command(("ip", "-j", "link", "show", "type", "veth"), mutating=False)).json()
    return sorted(link["ifname"] for link in shown)


def test_processes_left_in_namespaces_are_stopped_and_no_veth_lingers(
    sb: Sandbox, sizes: dict[str, int], figures: Callable[[str], None]
) -> None:
    before = state.snapshot(sb)
    rounds = max(1, sizes["cycles"])
    stopped = 0
    for _ in range(rounds):
        topo = scenarios.seed001_nat()
        topo.up(sb)
        started = [
            topo["red"].popen(["sleep", "600"]),  # tracked by its namespace
            sb.popen(Command(("sleep", "600"), netns="blue")),  # not tracked: found by `ip netns pids`
            sb.popen(Command(STUBBORN, netns="green")),  # ignores SIGTERM
            sb.popen(Command(("sh", "-c", "sleep 600 & sleep 600 & wait"), netns="red")),  # a process tree
        ]
        assert all(p.is_alive() for p in started)
        assert len(veths(sb)) == 3  # the host ends of the three pairs
        inside = {ns: topo[ns].pids(sb) for ns in scenarios.SEED001_NAMESPACES}
        assert all(inside.values()), inside
        topo.down()
        # at once: no veth end in the host, no process of any namespace left
        assert veths(sb) == []
        deadline = time.monotonic() + 10
        while any(p.is_alive() for p in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(p.is_alive() for p in started)
        for pids in inside.values():
            for pid in pids:
                assert _gone(pid), f"process {pid} survived the teardown"
        stopped += sum(len(p) for p in inside.values())
        assert state.diff(before, state.snapshot(sb)) == []
    figures(f"{rounds} teardowns with processes inside: {stopped} processes stopped, 0 left, 0 veths after down()")


def _gone(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent to reap it (it runs no more)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
