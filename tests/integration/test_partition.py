"""A partition cuts all traffic between its two sides, IPv4 and IPv6, link-local included, and
nobody else's; healed, the firewalls are exactly as before.

"Blocked" is shown by the partition's own DROP rules counting the packets (never by a short
timeout): each side first proves the path up, then every try during the partition must
land in the rule of the family it was sent in.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netns_kit import Bridge, Namespace, Partition, Topology, VethPair
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.resources.namespace import _Place

from .traffic import assert_dropped

#: how long a path may take to come up (IPv6 link-local addresses wait out DAD first)
UP = 10.0


def link_local(place: _Place, dev: str) -> str:
    """The IPv6 link-local address of ``dev``, as ``fe80::...``."""
    (link,) = place.run(["ip", "-j", "-6", "addr", "show", "dev", dev, "scope", "link"]).json()
    (info,) = link["addr_info"]
    return str(info["local"])


def firewall(place: _Place) -> dict[str, str]:
    """Every rule of the filter table, both families, as ``-S`` says them (no counters)."""
    return {tool: place.run([tool, "-w", "-t", "filter", "-S"]).stdout for tool in ("iptables", "ip6tables")}


def drops(place: _Place, tool: str, source: str) -> int:
    """Packets the partition's rule for ``source`` in ``place`` has dropped (``-S -v`` counters)."""
    listed = place.run([tool, "-w", "-t", "filter", "-S", "INPUT", "-v"]).stdout
    prefix = "/32" if tool == "iptables" else "/128"
    rules = [line.split() for line in listed.splitlines() if f" -s {source}{prefix} " in line and " DROP" in line]
    assert len(rules) == 1, f"no single partition rule for {source} in {place}: {listed}"
    words = rules[0]
    return int(words[words.index("-c") + 1])


def cut_both_ways(src: _Place, dst: _Place, *, address: str, source: str, tool: str, tries: int = 3) -> None:
    """``src``'s pings to ``address`` go unanswered, and ``dst``'s rule for ``source`` (``src``'s
    address in that family, made with the partition) has dropped them: blocked, not slow."""
    assert_dropped(src, address, by=[src, dst], tries=tries)
    assert drops(dst, tool, source) >= tries


@pytest.fixture
def pipe(sb: Sandbox) -> Iterator[Topology]:
    """a and b on one veth, IPv4 only (as most topologies): IPv6 runs on the link all the same."""
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    with Topology([Namespace("a"), Namespace("b"), veth], wait=True) as topo:
        yield topo


def test_a_partition_cuts_ipv4_and_ipv6_link_local_and_healing_restores_both(sb: Sandbox, pipe: Topology) -> None:
    a, b = pipe["a"], pipe["b"]
    a6, b6 = link_local(a, "a-eth"), link_local(b, "b-eth")
    paths = [  # (from, to, address, source address seen by the receiver, tool)
        (a, b, "10.8.0.2", "10.8.0.1", "iptables"),
        (b, a, "10.8.0.1", "10.8.0.2", "iptables"),
        (a, b, f"{b6}%a-eth", a6, "ip6tables"),
        (b, a, f"{a6}%b-eth", b6, "ip6tables"),
    ]
    for src, _, address, _, _ in paths:  # every path is up before the cut
        src.wait_reachable(address, timeout=UP)
    before, rules_before = state.snapshot(sb), {"a": firewall(a), "b": firewall(b)}

    cut = Partition("a", "b").create()
    for src, dst, address, source, tool in paths:
        cut_both_ways(src, dst, address=address, source=source, tool=tool)

    cut.heal()
    assert {"a": firewall(a), "b": firewall(b)} == rules_before
    assert state.diff(before, state.snapshot(sb)) == []  # iptables-save and ip6tables-save too
    for src, _, address, _, _ in paths:
        src.wait_reachable(address, timeout=UP)


def test_a_partition_on_a_bridge_leaves_a_third_namespace_talking_to_both_in_ipv6(sb: Sandbox) -> None:
    topo = Topology([Bridge("nk-br0")], wait=True)
    for number, name in enumerate(("red", "blue", "green"), start=1):
        topo.add(
            Namespace(name),
            VethPair(f"br-{name}", "eth0", peer_netns=name, bridge="nk-br0", peer_addresses=f"10.9.0.{number}/24"),
        )
    with topo:
        red, blue, green = topo["red"], topo["blue"], topo["green"]
        red6, blue6, green6 = (link_local(ns, "eth0") for ns in (red, blue, green))
        for src, address in ((red, blue6), (blue, red6), (green, red6), (green, blue6), (red, green6)):
            src.wait_reachable(f"{address}%eth0", timeout=UP)
        with Partition("red", "blue"):
            cut_both_ways(red, blue, address=f"{blue6}%eth0", source=red6, tool="ip6tables")
            cut_both_ways(blue, red, address=f"{red6}%eth0", source=blue6, tool="ip6tables")
            cut_both_ways(red, blue, address="10.9.0.2", source="10.9.0.1", tool="iptables")
            for src, address in ((green, f"{red6}%eth0"), (green, f"{blue6}%eth0"), (red, f"{green6}%eth0")):
                assert src.ping(address, timeout=UP), f"{address} no longer answers {src}"
            assert green.ping("10.9.0.1", timeout=UP) and green.ping("10.9.0.2", timeout=UP)
        red.wait_reachable(f"{blue6}%eth0", timeout=UP)
