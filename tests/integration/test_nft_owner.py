"""The owner flag wired in (:class:`~netns_kit.firewall.nftheld.Held`): seed 001's NAT and port
forwards built by ``Topology(firewall="nft")`` through the held executor, in the sandbox's own
"host" namespace (one the topology does not create). Real TCP and UDP traffic passes; a SIGKILL
of the process that built it takes the table away with no cleanup of any kind (the kernel does
it); a normal down leaves the host as it was; a table made by hand survives both.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Host, NatRule, PortForward, Topology
from netns_kit.command import Command, query
from netns_kit.executors.base import use, wait_until
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft, nftread
from netns_kit.firewall.nftheld import Held
from netns_kit.ops import state
from netns_kit.resources.namespace import Namespace
from netns_kit.topology import scenarios

from .helpers import request, serve
from .traffic import assert_unanswered

OUT = scenarios.OUTSIDE_ADDRESS
HOST_OUT = scenarios.HOST_OUTSIDE_ADDRESS
RED = "192.168.1.1"
DECOYS = [("inet", "docker-bridges"), ("ip", "netns_kit")]

#: builds the topology through Held in the sandbox's host; prints its pid and the holder's; waits
CHILD = """
import os, sys
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall.nftheld import Held
from tests.integration import test_nft_owner

executor = Held(Sandbox.attach(int(sys.argv[1])))
test_nft_owner.topology().up(executor)
print(os.getpid(), *executor.holders().values(), flush=True)
sys.stdin.read()  # until killed
"""


def topology() -> Topology:
    seed = scenarios.seed001_bridge().add(*scenarios.outside())
    rules = [
        NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0"),
        PortForward(8080, RED, 80, bridge="v-net-0"),
        PortForward(8081, RED, 81, protocol="udp", bridge="v-net-0"),
    ]
    return Topology([*seed.resources, *rules], firewall="nft", wait=True)


@pytest.fixture
def box(fresh_sandbox: Sandbox) -> Iterator[Sandbox]:
    """A sandbox of this test's own (the killed child leaves its namespaces there), with a
    table made by hand that must survive."""
    with use(fresh_sandbox):
        fresh_sandbox.run(Command(("nft", "-f", "-"), stdin="".join(f"add table {f} {n}\n" for f, n in DECOYS)))
        yield fresh_sandbox


def _gone(pid: int) -> bool:
    """Exited (a zombie its new parent has not reaped yet counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


def _tables(sb: Sandbox) -> list[tuple[str, str]]:
    return sorted((t.family, t.name) for t in nftread.list_tables(sb))


def _traffic_passes() -> None:
    red, outside = Namespace("red"), Namespace(scenarios.OUTSIDE)
    serve(outside, 9000, "outside")
    serve(red, 80, "red")
    serve(red, 81, "red", udp=True)
    assert request(red, OUT, 9000) == f"outside {HOST_OUT} hello"  # masqueraded
    assert request(outside, HOST_OUT, 8080) == f"red {OUT} hello"  # forwarded, TCP
    assert request(outside, HOST_OUT, 8081, udp=True) == f"red {OUT} hello"  # and UDP


def test_sigkill_of_the_builder_takes_its_table_with_no_cleanup_and_leaves_the_decoys(box: Sandbox) -> None:
    root = Path(__file__).parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(box.pid)],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, child.communicate(timeout=30)[1]
        pid, holder = (int(word) for word in line.split())
        name = f"{nft.TABLE_PREFIX}{pid}."
        (ours,) = [t for t in _tables(box) if t[1].startswith(name)]
        assert _tables(box) == sorted([*DECOYS, ours])
        assert "flags owner" in box.run(query("nft", "list", "table", *ours)).stdout
        _traffic_passes()
        # while it lives, nobody else may change its table
        refused = box.run(Command(("nft", "delete", "table", *ours)), check=False)
        assert refused.returncode == 1 and "Operation not permitted" in refused.stderr
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    # no cleanup of any kind: nft -i read end-of-file, exited, and the kernel deleted the table
    wait_until(lambda: _gone(holder), timeout=10, what=f"the holder {holder} to exit")
    wait_until(lambda: _tables(box) == sorted(DECOYS), timeout=10, what=f"the kernel to delete {ours[1]}")
    # the port forward is gone with it; the namespaces the child made are not (cleanup's job)
    outside = Namespace(scenarios.OUTSIDE)
    assert_unanswered(outside, HOST_OUT, 8080, control=lambda: request(Host(), OUT, 9000) is not None)
    names = {n["name"] for n in box.run(query("ip", "-j", "netns", "list")).json()}
    assert {"red", "blue", "green", scenarios.OUTSIDE} <= names


def test_up_and_down_through_held_leave_the_host_as_it_was(box: Sandbox) -> None:
    before = state.snapshot(box)
    topo = topology()
    with Held(box) as executor, use(executor):
        topo.up()
        try:
            (holder,) = executor.holders().values()
            name = nft.table_name(box.owner)
            assert _tables(box) == sorted([*DECOYS, ("inet", name)])
            listing = box.run(query("nft", "list", "table", "inet", name)).stdout
            assert "flags owner" in listing
            rules = nftread.list_table(box, "inet", name).tagged(box.owner.tag)
            assert len(rules) == 3 + 2 * 4  # NAT: masquerade + 2 accepts; each forward: 2 DNAT + 2 accepts
            _traffic_passes()
        finally:
            topo.down()
        # down deleted the table through its holder, which then stopped
        assert executor.holders() == {}
        wait_until(lambda: _gone(holder), timeout=10, what=f"the holder {holder} to exit")
    assert _tables(box) == sorted(DECOYS)
    assert state.diff(before, state.snapshot(box)) == []
