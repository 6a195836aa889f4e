"""A partition cuts all traffic between its two sides, IPv4 and IPv6, link-local included, and
nobody else's; healed, the firewalls are exactly as before. On both firewall backends: iptables
rules at the top of INPUT, or (nft) base chains of the owner's table at the input hook.

"Blocked" is shown by the partition's own DROP rules counting the packets (never by a short
timeout): each side first proves the path up, then every try during the partition must
land in the rule of the family it was sent in (iptables' counters, or nft's ``counter``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from netns_kit import Bridge, Namespace, Partition, Topology, VethPair
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft, nftread
from netns_kit.ops import state
from netns_kit.resources.namespace import _Place

from .helpers import request, serve
from .traffic import GENEROUS

#: how long a path may take to come up (IPv6 link-local addresses wait out DAD first)
UP = 10.0
BACKENDS = ["iptables", "nft"]


def link_local(place: _Place, dev: str) -> str:
    """The IPv6 link-local address of ``dev``, as ``fe80::...``."""
    (link,) = place.run(["ip", "-j", "-6", "addr", "show", "dev", dev, "scope", "link"]).json()
    (info,) = link["addr_info"]
    return str(info["local"])


def firewall(place: _Place) -> dict[str, str]:
    """Every rule of the filter table, both families, as ``-S`` says them (no counters)."""
    return {tool: place.run([tool, "-w", "-t", "filter", "-S"]).stdout for tool in ("iptables", "ip6tables")}


def our_tables(place: _Place) -> list[nftread.Ruleset]:
    """Our nft tables in ``place``, whole (``nft -j``)."""
    executor, netns = place._executor(), place._where()
    tables = nftread.list_tables(executor, netns)
    return [nftread.list_table(executor, t.family, t.name, netns) for t in tables if nft.owner_of(t.name) is not None]


def our_chains(place: _Place) -> list[str]:
    """The chains of our nft tables in ``place``."""
    return [chain.name for ruleset in our_tables(place) for chain in ruleset.chains]


def _saddr(rule: nftread.Rule) -> str | None:
    for statement in rule.expr:
        match = statement.get("match", {}) if isinstance(statement, dict) else {}
        if match.get("left", {}).get("payload", {}).get("field") == "saddr":
            return str(match["right"])
    return None


def drops(place: _Place, backend: str, source: str) -> int:
    """Packets the partition's rule for ``source`` in ``place`` has dropped (``-S -v`` counters,
    or the rule's nft ``counter``)."""
    v6 = ":" in source
    if backend == "nft":
        rules = [r for t in our_tables(place) for r in t.rules if _saddr(r) == source and "drop" in r.verdicts]
        assert len(rules) == 1, f"no single partition rule for {source} in {place}: {rules}"
        assert rules[0].chain.endswith("-IN-6" if v6 else "-IN")
        (counter,) = [s["counter"] for s in rules[0].expr if isinstance(s, dict) and "counter" in s]
        return int(counter["packets"])
    tool = "ip6tables" if v6 else "iptables"
    listed = place.run([tool, "-w", "-t", "filter", "-S", "INPUT", "-v"]).stdout
    prefix = "/128" if v6 else "/32"
    rules = [line.split() for line in listed.splitlines() if f" -s {source}{prefix} " in line and " DROP" in line]
    assert len(rules) == 1, f"no single partition rule for {source} in {place}: {listed}"
    words = rules[0]
    return int(words[words.index("-c") + 1])


def cut_both_ways(
    src: _Place, dst: _Place, *, address: str, source: str, backend: str, port: int | None = None, tries: int = 3
) -> None:
    """``src``'s pings (or TCP requests to ``port``) to ``address`` go unanswered, and ``dst``'s
    rule for ``source`` (``src``'s address in that family, made with the partition) has dropped
    them: blocked, not slow."""
    before = drops(dst, backend, source)
    for _ in range(tries):
        if port is None:
            assert not src.ping(address, timeout=0.5), f"{address} answered {src}'s ping"
        else:
            answer = request(src, address, port, timeout=0.5, attempts=1)
            assert answer is None, f"{address}:{port} answered {src}: {answer!r}"
    deadline = time.monotonic() + GENEROUS
    while (rose := drops(dst, backend, source) - before) < tries and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rose >= tries, f"{tries} tries at {address} went unanswered, but {dst}'s rule dropped only {rose}"


@pytest.fixture
def pipe(sb: Sandbox) -> Iterator[Topology]:
    """a and b on one veth, IPv4 only (as most topologies): IPv6 runs on the link all the same."""
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    with Topology([Namespace("a"), Namespace("b"), veth], wait=True) as topo:
        yield topo


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_partition_cuts_ipv4_and_ipv6_link_local_and_healing_restores_both(
    sb: Sandbox, pipe: Topology, backend: str
) -> None:
    a, b = pipe["a"], pipe["b"]
    a6, b6 = link_local(a, "a-eth"), link_local(b, "b-eth")
    paths = [  # (from, to, address, source address seen by the receiver)
        (a, b, "10.8.0.2", "10.8.0.1"),
        (b, a, "10.8.0.1", "10.8.0.2"),
        (a, b, f"{b6}%a-eth", a6),
        (b, a, f"{a6}%b-eth", b6),
    ]
    for src, _, address, _ in paths:  # every path is up before the cut
        src.wait_reachable(address, timeout=UP)
    before, rules_before = state.snapshot(sb), {"a": firewall(a), "b": firewall(b)}

    cut = Partition("a", "b", backend=backend).create()
    assert cut.exists()
    if backend == "nft":  # the drops are in our table, none in iptables
        assert {"a": firewall(a), "b": firewall(b)} == rules_before
        for place in (a, b):
            assert sorted(our_chains(place)) == [cut.chain, f"{cut.chain}-6"]
            (chain,) = [c for t in our_tables(place) for c in t.chains if c.name == cut.chain]
            assert (chain.type, chain.hook, chain.prio, chain.policy) == ("filter", "input", 0, "accept")
    else:
        assert our_chains(a) == our_chains(b) == []
    for src, dst, address, source in paths:
        cut_both_ways(src, dst, address=address, source=source, backend=backend)

    cut.heal()
    assert not cut.exists()
    assert {"a": firewall(a), "b": firewall(b)} == rules_before
    assert our_chains(a) == our_chains(b) == []
    # iptables-save and ip6tables-save too; nft: the owner's table, which the partition was the
    # last to use, is gone too
    assert state.diff(before, state.snapshot(sb)) == []
    assert our_tables(a) == our_tables(b) == []
    for src, _, address, _ in paths:
        src.wait_reachable(address, timeout=UP)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_partition_cuts_tcp_both_ways_and_heal_lets_it_through(sb: Sandbox, pipe: Topology, backend: str) -> None:
    a, b = pipe["a"], pipe["b"]
    serve(a, 7001, "a")
    serve(b, 7002, "b")
    assert request(a, "10.8.0.2", 7002) == "b 10.8.0.1 hello"
    assert request(b, "10.8.0.1", 7001) == "a 10.8.0.2 hello"
    with Partition("a", "b", backend=backend):
        cut_both_ways(a, b, address="10.8.0.2", source="10.8.0.1", backend=backend, port=7002)
        cut_both_ways(b, a, address="10.8.0.1", source="10.8.0.2", backend=backend, port=7001)
    assert our_chains(a) == our_chains(b) == []
    assert request(a, "10.8.0.2", 7002) == "b 10.8.0.1 hello"
    assert request(b, "10.8.0.1", 7001) == "a 10.8.0.2 hello"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_partition_on_a_bridge_leaves_a_third_namespace_talking_to_both_in_ipv6(sb: Sandbox, backend: str) -> None:
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
        with Partition("red", "blue", backend=backend):
            cut_both_ways(red, blue, address=f"{blue6}%eth0", source=red6, backend=backend)
            cut_both_ways(blue, red, address=f"{red6}%eth0", source=blue6, backend=backend)
            cut_both_ways(red, blue, address="10.9.0.2", source="10.9.0.1", backend=backend)
            for src, address in ((green, f"{red6}%eth0"), (green, f"{blue6}%eth0"), (red, f"{green6}%eth0")):
                assert src.ping(address, timeout=UP), f"{address} no longer answers {src}"
            assert green.ping("10.9.0.1", timeout=UP) and green.ping("10.9.0.2", timeout=UP)
            assert our_chains(green) == []
        red.wait_reachable(f"{blue6}%eth0", timeout=UP)
