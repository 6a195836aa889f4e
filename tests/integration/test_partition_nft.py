"""The nft backend's partitions and loss fallback beyond test_partition's traffic: the loss
fallback's share of dropped pings, a heal that leaves the NAT chains of the same table alone,
and a killed owner's partition chains removed by cleanup. State read back with ``nft -j``."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from netns_kit import LinkImpairment, Namespace, NatRule, Partition, Topology, VethPair
from netns_kit.command import Command
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft, nftread
from netns_kit.ops import state
from netns_kit.owner import Owner
from netns_kit.resources.namespace import _Place

from .cli import netns_kit
from .test_partition import UP, cut_both_ways, our_chains, our_tables
from .traffic import binomial_bound, ping_loss


def pipe(*extra: object, firewall: str | None = None) -> Topology:
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    return Topology([Namespace("a"), Namespace("b"), veth, *extra], wait=True, firewall=firewall)  # type: ignore[list-item]


def _numgen(rule: nftread.Rule) -> tuple[int, int] | None:
    """``(mod, N)`` of a rule's ``numgen random mod MOD < N``."""
    for statement in rule.expr:
        match = statement.get("match", {}) if isinstance(statement, dict) else {}
        numgen = match.get("left", {}).get("numgen") if isinstance(match.get("left"), dict) else None
        if numgen and numgen.get("mode") == "random" and match.get("op") == "<":
            return int(numgen["mod"]), int(match["right"])
    return None


def test_the_loss_fallback_on_nft_drops_a_share_within_a_binomial_bound(sb: Sandbox) -> None:
    with pipe() as topo:
        a, b = topo["a"], topo["b"]
        a.wait_reachable("10.8.0.2", timeout=UP)
        veth = topo.of_type(VethPair)[0]
        (lossy,) = LinkImpairment.on(veth, {"loss": "20%", "loss_via": "iptables"}, end="name", backend="nft")
        with lossy:
            assert lossy.loss_drops()
            assert our_chains(a) == [] and sorted(our_chains(b)) == [lossy.loss_chain, f"{lossy.loss_chain}-6"]
            (table,) = our_tables(b)
            for chain in table.chains:
                assert (chain.type, chain.hook, chain.prio) == ("filter", "prerouting", -300)  # raw
            rules = table.tagged(sb.owner.tag)
            assert [(_numgen(r), "drop" in r.verdicts) for r in rules] == [((1_000_000, 200_000), True)] * 2
            assert "statistic" not in b.run(["iptables-save", "-t", "raw"]).stdout
            sent, received = ping_loss(a, "10.8.0.2", count=600)
            low, high = binomial_bound(0.2, sent)
            assert low <= 1 - received / sent <= high, (sent, received)
            lossy.change({"loss": "50%", "loss_via": "iptables"})
            (table,) = our_tables(b)
            assert [_numgen(r) for r in table.tagged(sb.owner.tag)] == [(1_000_000, 500_000)] * 2
        assert not lossy.loss_drops() and our_tables(b) == []  # its chains, and the table it alone used
        sent, received = ping_loss(a, "10.8.0.2", count=100)
        assert received == sent


def test_a_heal_while_up_leaves_the_nat_chains_of_the_same_table(sb: Sandbox) -> None:
    nat = NatRule("10.8.0.0/24", out_interface="a-eth", netns="a")
    cut = Partition("a", "b", a_addresses="10.8.0.1", b_addresses="10.8.0.2")  # a topology plans before it runs
    with pipe(nat, cut, firewall="nft") as topo:
        a, b = topo["a"], topo["b"]
        (cut,) = topo.of_type(Partition)
        (nat,) = topo.of_type(NatRule)
        assert cut.backend == nat.backend == "nft"  # given by the topology
        assert cut.exists()
        nat_chains = sorted(c.name for c in nat.chains())
        assert sorted(our_chains(a)) == sorted([*nat_chains, cut.chain])  # IPv4 addresses given: no -6
        cut_both_ways(a, b, address="10.8.0.2", source="10.8.0.1", backend="nft")
        cut.heal()
        assert sorted(our_chains(a)) == nat_chains and our_tables(b) == []  # b: it was the last user
        (table,) = our_tables(a)
        assert len(table.tagged(sb.owner.tag)) == 3  # the masquerade and its two accepts
        a.wait_reachable("10.8.0.2", timeout=UP)
        b.wait_reachable("10.8.0.1", timeout=UP)
    # down undid the healed partition again (nothing there: no error), then the rest
    assert [t for t in nftread.list_tables(sb) if nft.owner_of(t.name)] == []


_KILLED_WITH_A_PARTITION = """
import os, signal, sys
from netns_kit import Partition
from netns_kit.executors.sandbox import Sandbox

box = Sandbox.attach(int(sys.argv[1]))
cut = Partition(sys.argv[3], sys.argv[4], backend="nft")
if sys.argv[2] == "ledger":
    cut.create(box)
else:  # no journal, so no ledger: only the tables' names say whose the drops are
    box.run_all(cut.plan(box))
print(box.owner.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

#: two namespaces made by hand (not netns_kit's: no tag), joined by a veth
BY_HAND = [
    "ip netns add x",
    "ip netns add y",
    "ip link add x-eth netns x type veth peer name y-eth netns y",
    "ip -n x addr add 10.7.0.1/24 dev x-eth",
    "ip -n y addr add 10.7.0.2/24 dev y-eth",
    "ip -n x link set x-eth up",
    "ip -n y link set y-eth up",
]


@contextlib.contextmanager
def _namespaces(sb: Sandbox, whose: str) -> Iterator[tuple[_Place, _Place]]:
    if whose == "ledger":  # a living owner's (this test's topology)
        with pipe() as topo:
            yield topo["a"], topo["b"]
        return
    for line in BY_HAND:
        sb.run(Command(tuple(line.split())))
    try:
        yield Namespace("x"), Namespace("y")
    finally:
        for name in ("x", "y"):
            sb.run(Command(("ip", "netns", "del", name)))


@pytest.mark.parametrize("how", ["ledger", "no ledger"])
def test_cleanup_removes_a_killed_owners_partition_from_namespaces_it_did_not_make(sb: Sandbox, how: str) -> None:
    """The namespaces are another owner's (alive) or no owner's, so cleanup leaves them standing
    and deletes the dead owner's tables in them: found by the dead owner's ledger (whose undo
    empties them first), or, in namespaces netns_kit did not make, by the tables' names alone."""
    with _namespaces(sb, how) as (a, b):
        address = "10.8.0.2" if how == "ledger" else "10.7.0.2"
        a.wait_reachable(address, timeout=UP)
        before = state.snapshot(sb)
        names = [str(a._where()), str(b._where())]
        child = subprocess.run(
            [sys.executable, "-c", _KILLED_WITH_A_PARTITION, str(sb.pid), how, *names],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()
        dead = child.stdout.decode().strip()
        for place in (a, b):
            (table,) = our_tables(place)
            assert table.tables[0].name == nft.TABLE_PREFIX + dead
            assert len(table.chains) == 2 and table.tagged(f"netns_kit:{dead}")
        assert not a.ping(address, timeout=0.5)  # still cut
        result = netns_kit("cleanup", "--attach", str(sb.pid))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "FAILED" not in result.stdout
        for netns in names:
            assert f"removed: nft table inet {nft.TABLE_PREFIX}{dead} (in {netns})" in result.stdout
        assert our_tables(a) == our_tables(b) == []
        a.wait_reachable(address, timeout=UP)
        assert state.diff(before, state.snapshot(sb)) == []


def _cut_and_lossy() -> Topology:
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    return Topology(
        [
            Namespace("a"),
            Namespace("b"),
            veth,
            *LinkImpairment.on(veth, {"loss": "2%", "loss_via": "iptables"}),
            Partition("a", "b", a_addresses=["10.8.0.1", "fd00::1"], b_addresses="10.8.0.2"),
        ],
        firewall="nft",
    )


def test_the_printed_nft_script_makes_the_same_state_as_the_library_and_its_teardown_none(sb: Sandbox) -> None:
    plan = _cut_and_lossy().plan()
    assert "hook input priority filter" in plan.script() and "iptables" not in plan.script()
    with Sandbox(owner=Owner.dry_run()) as by_library:
        empty = state.snapshot(by_library)
        topo = _cut_and_lossy().up(by_library)
        library_state = state.snapshot(by_library)
        topo.down()
        assert state.diff(empty, state.snapshot(by_library)) == []
    for netns in ("a", "b"):  # the drops are there, in the owner's table
        assert "inet netns_kit_*" in library_state[netns]["nft"]
    with Sandbox() as by_script:
        by_script.run_script(plan.script())
        assert state.diff(library_state, state.snapshot(by_script)) == []
        by_script.run_script(plan.teardown_script())
        assert state.diff(empty, state.snapshot(by_script)) == []
