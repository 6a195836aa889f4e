"""Seed 001's NAT and port forwards through ``Topology(firewall=...)`` on both backends, in the
sandbox: real TCP and UDP traffic, the rules read back (``nft -j`` for nft, ``iptables-save``
for iptables), and nothing of ours left after down."""

from __future__ import annotations

import pytest

from netns_kit import NatRule, PortForward, Topology
from netns_kit.command import query
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft, nftread
from netns_kit.ops import state
from netns_kit.topology import scenarios

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
