"""Seed 001's NAT and port forwards through ``Topology(firewall=...)`` on both backends, in the
sandbox: real TCP and UDP traffic, the rules read back (``nft -j`` for nft, ``iptables-save``
for iptables), and nothing of ours left after down."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from netns_kit import NatRule, PortForward, Topology
from netns_kit.command import Command, query
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft, nftread
from netns_kit.ops import state
from netns_kit.topology import scenarios

from .cli import netns_kit
from .helpers import request, serve

OUT = scenarios.OUTSIDE_ADDRESS
HOST_OUT = scenarios.HOST_OUTSIDE_ADDRESS
RED = "192.168.1.1"


def _ours(sb: Sandbox) -> list[str]:
    """Our nft tables and iptables chains in the sandbox's host namespace."""
    tables = [t.name for t in nftread.list_tables(sb) if t.name.startswith(nft.TABLE_PREFIX)]
    saved = sb.run(query("iptables-save")).stdout
    return tables + [line for line in saved.splitlines() if line.startswith(":NK-")]


def _topology(backend: str) -> Topology:
    seed = scenarios.seed001_bridge().add(*scenarios.outside())
    rules = [
        NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0"),
        PortForward(8080, RED, 80, bridge="v-net-0"),
        PortForward(8081, RED, 81, protocol="udp", bridge="v-net-0"),
    ]
    return Topology([*seed.resources, *rules], firewall=backend, wait=True)


@pytest.mark.parametrize("backend", ["iptables", "nft"])
def test_seed001_nat_and_forwards_carry_tcp_and_udp_then_leave_nothing(sb: Sandbox, backend: str) -> None:
    assert _ours(sb) == []
    before = state.snapshot(sb)
    topo = _topology(backend)
    with topo:
        red, outside = topo["red"], topo[scenarios.OUTSIDE]
        serve(outside, 9000, "outside")
        serve(red, 80, "red")
        serve(red, 81, "red", udp=True)
        assert request(red, OUT, 9000) == f"outside {HOST_OUT} hello"  # masqueraded
        assert request(outside, HOST_OUT, 8080) == f"red {OUT} hello"
        assert request(outside, HOST_OUT, 8081, udp=True) == f"red {OUT} hello"
        name = nft.table_name(sb.owner)
        tables = [(t.family, t.name) for t in nftread.list_tables(sb) if t.name.startswith(nft.TABLE_PREFIX)]
        saved = sb.run(query("iptables-save")).stdout
        if backend == "nft":
            assert tables == [("inet", name)] and ":NK-" not in saved
            assert "inet netns_kit_*" in state.snapshot(sb)["<host>"]["nft"]  # the leak checks see it
            rules = nftread.list_table(sb, "inet", name).tagged(sb.owner.tag)
            assert len(rules) == 3 + 2 * 4  # NAT: masquerade + 2 accepts; each forward: 2 DNAT + 2 accepts
        else:
            assert tables == [] and saved.count(":NK-") == 2 + 2 * 3
    assert _ours(sb) == []
    assert state.diff(before, state.snapshot(sb)) == []


_KILLED_WHEN_UP = """
import os, signal, sys
from netns_kit import Topology
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft
from netns_kit.firewall.base import Firewall
from netns_kit.topology import scenarios

box = Sandbox.attach(int(sys.argv[1]))
if sys.argv[2] == "topology":
    Topology(scenarios.seed001_nat().resources, firewall="nft").up(box)
else:  # rules without a ledger: only the table's name says whose they are
    chains = [c for f in scenarios.seed001_nat().of_type(Firewall) for c in f.chains()]
    box.run(nft.Table.of(box.owner).add(chains, box.owner.tag).command())
os.kill(os.getpid(), signal.SIGKILL)
"""
DECOY_TABLES = ("inet decoy", "inet netns_kit_decoy", "ip netns_kit_")


@pytest.mark.parametrize("how", ["topology", "table"])
def test_cleanup_after_sigkill_deletes_the_dead_owners_table_and_no_decoy(sb: Sandbox, how: str) -> None:
    for table in DECOY_TABLES:
        sb.run(Command(("nft", "add", "table", *table.split())))
    before = state.snapshot(sb)
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_WHEN_UP, str(sb.pid), how], capture_output=True, timeout=120, check=False
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    left = [t for t in nftread.list_tables(sb) if t.owner is not None and t.owner.pid is not None]
    assert len(left) == 1 and nftread.list_table(sb, "inet", left[0].name).tagged(
        f"netns_kit:{left[0].name.removeprefix(nft.TABLE_PREFIX)}"
    )
    result = netns_kit("cleanup", "--attach", str(sb.pid))
    assert result.returncode == 0, result.stdout + result.stderr
    if how == "table":  # else the ledger's undo got there first
        assert f"removed: nft table inet {left[0].name} (in the host)" in result.stdout
    assert "FAILED" not in result.stdout
    assert state.diff(before, state.snapshot(sb)) == []
    assert {f"{t.family} {t.name}" for t in nftread.list_tables(sb)} >= set(DECOY_TABLES)
    for table in DECOY_TABLES:
        sb.run(Command(("nft", "delete", "table", *table.split())))
