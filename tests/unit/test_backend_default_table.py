"""The owner's nft table outlives no firewall that uses it and none outlives it: firewalls made
on their own (``create()``, ``with``) and topologies' owner tables hold it, and the last to let
go deletes it (exact commands through the Recorder)."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit.command import Command
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall import backend, nft
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.portforward import PortForward
from netns_kit.lifecycle.resource import Resource
from netns_kit.owner import Owner
from netns_kit.topology import scenarios
from netns_kit.topology.topology import Topology

TABLE = nft.Table.of(Owner.dry_run())
DELETE = TABLE.delete().text


def _nat(subnet: str = "10.0.0.0/24", backend: str | None = None, netns: str | None = None) -> NatRule:
    return NatRule(subnet, out_interface="eth0", backend=backend, netns=netns)


def _deletes(commands: Sequence[Command]) -> list[str | None]:
    """Where the table is deleted: the namespace of each such command."""
    return [c.netns for c in commands if c.stdin == DELETE]


def test_one_rule_on_its_own_deletes_the_table_after_its_chains() -> None:
    rec = Recorder(firewall="nft")
    nat = _nat().create(rec)
    assert _deletes(rec.commands) == []
    nat.delete()
    assert [c.stdin for c in rec.commands if c.argv[0] == "nft"][-2:] == [TABLE.remove(nat.chains()).text, DELETE]
    nat.delete()  # a second delete deletes nothing more
    assert _deletes(rec.commands) == [None]


def test_the_last_of_two_rules_deletes_the_table() -> None:
    rec = Recorder(firewall="nft")
    first, second = _nat().create(rec), _nat("10.0.1.0/24").create(rec)
    first.delete()
    assert _deletes(rec.commands) == []
    second.delete()
    assert _deletes(rec.commands) == [None]


def test_each_namespace_has_its_own_table() -> None:
    rec = Recorder(firewall="nft")
    host, red = _nat().create(rec), _nat(netns="red").create(rec)
    red.delete()
    assert _deletes(rec.commands) == ["red"]
    host.delete()
    assert _deletes(rec.commands) == ["red", None]


def test_a_rule_on_iptables_holds_no_table() -> None:
    rec = Recorder()
    nat = _nat().create(rec)
    nat.delete()
    assert not any(c.argv[0] == "nft" for c in rec.commands)


def _seed001() -> Topology:
    return Topology(scenarios.seed001_nat().resources)


def test_a_topology_going_down_keeps_the_table_a_rule_made_on_its_own_still_uses() -> None:
    rec = Recorder(firewall="nft")
    topo = _seed001().up(rec)
    mine = _nat("10.9.0.0/24").create(rec)
    topo.down()
    assert _deletes(rec.commands) == []
    mine.delete()
    assert _deletes(rec.commands) == [None]


def test_a_rule_on_its_own_leaves_the_table_of_a_topology_that_is_up() -> None:
    rec = Recorder(firewall="nft")
    mine = _nat("10.9.0.0/24").create(rec)
    topo = _seed001().up(rec)
    mine.delete()
    assert _deletes(rec.commands) == []
    topo.down()
    assert _deletes(rec.commands) == [None]
    _assert_deleted_after_every_chain(rec.commands)


def test_a_topology_alone_deletes_its_table_last() -> None:
    rec = Recorder(firewall="nft")
    topo = _seed001().up(rec)
    topo.down()
    assert _deletes(rec.commands) == [None]
    _assert_deleted_after_every_chain(rec.commands)


def _assert_deleted_after_every_chain(commands: Sequence[Command]) -> None:
    texts = [c.stdin or "" for c in commands]
    assert texts.index(DELETE) > max(i for i, text in enumerate(texts) if "delete chain" in text)


def test_the_printed_teardown_of_a_topology_deletes_the_table() -> None:
    script = Topology(scenarios.seed001_nat().resources, firewall="nft").plan().teardown_script()
    assert script.index(f"delete table inet {TABLE.name}") > script.rindex("delete chain")


def test_a_rule_that_is_no_firewall_of_its_own_holds_nothing() -> None:
    """A rule deleted by an equal value that did not create it takes its chains away (as before),
    but the table stays for the value that made it."""
    rec = Recorder(firewall="nft")
    made = _nat().create(rec)
    other: Resource = attrs.evolve(made)
    other.delete(rec)
    assert _deletes(rec.commands) == []
    made.delete()
    assert _deletes(rec.commands) == [None]


def test_a_forward_and_a_rule_share_the_table() -> None:
    rec = Recorder(firewall="nft")
    nat, forward = _nat().create(rec), PortForward(8080, "10.0.0.1", 80).create(rec)
    nat.delete()
    assert _deletes(rec.commands) == []
    forward.delete()
    assert _deletes(rec.commands) == [None]


class _Cut:
    """A holder in two namespaces (as a partition between them would be)."""

    backend = None
    adopted = False
    netns = None

    def __init__(self) -> None:
        self._state = _Cut.State()

    class State:
        pass


def test_a_holder_in_two_namespaces_lets_go_of_each() -> None:
    rec = Recorder(firewall="nft")
    cut = _Cut()
    backend.hold(cut, rec, ("nft",), ["a", "b"])
    nat = _nat(netns="a").create(rec)
    assert [c.netns for c in backend.let_go(cut)] == ["b"]
    assert [c.netns for c in backend.let_go(cut)] == ["b"]  # asked again: the same (a dropped plan)
    nat.delete()
    assert _deletes(rec.commands) == ["a"]


def test_a_holder_on_iptables_holds_nothing() -> None:
    cut = _Cut()
    backend.hold(cut, Recorder(), ("nat",), ["a"])
    assert backend.let_go(cut) == []


def test_an_undo_planned_then_dropped_still_deletes_the_table() -> None:
    # a whole teardown plans every undo first and, when one resource cannot be planned,
    # drops that plan and undoes one resource at a time: the table's delete must not be lost
    rec = Recorder(firewall="nft")
    nat = _nat().create(rec)
    done = [c for c in rec.commands if c.undo]
    planned = nat.undo_plan(done)
    assert planned is not None and _deletes(planned) == [None]
    assert _deletes(nat.undo_plan(done) or []) == [None]  # planned again: the same
    nat.create(rec)  # held again: a fresh let-go
    assert _deletes(nat.undo_plan(done) or []) == [None]
