"""What a resource declares instead of being recognised by its class: its rank in a
topology, its interfaces, and that it holds others (a whole teardown deletes it at once).

Each test uses a resource kind defined here, outside netns_kit: it takes part only
through what it declares.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

from netns_kit import Bridge, Command, Namespace, NatRule, PortForward, Recorder, Resource, Result, Route, Topology
from netns_kit.command import change
from netns_kit.errors import ValidationError
from netns_kit.executors.base import Executor
from netns_kit.lifecycle.interfaces import Interface, Interfaces
from netns_kit.lifecycle.journal import Journal
from netns_kit.lifecycle.resource import RANK_LAST
from netns_kit.lifecycle.undoable import Undoable
from netns_kit.resources.files import addresses_by_namespace
from netns_kit.topology import picture
from netns_kit.validate import IPInterface, to_interfaces

from .fakes import BatchingHost

# -- rank ------------------------------------------------------------------------------


@attrs.frozen
class Tunnel(Resource):
    """Made right after the namespaces, with the bridges (rank 1)."""

    rank: ClassVar[int] = 1

    name: str

    def plan(self, executor: Executor) -> list[Command]:
        return [
            change("ip", "tunnel", "add", self.name, "mode", "gre", undo=Command(("ip", "tunnel", "del", self.name)))
        ]


@attrs.frozen
class Note(Resource):
    """Declares no rank: after every built-in kind."""

    text: str

    def plan(self, executor: Executor) -> list[Command]:
        return [change("logger", self.text)]


def test_a_kind_defined_elsewhere_is_ordered_by_the_rank_it_declares() -> None:
    route = Route("10.9.0.0/24", dev="gre1")
    topo = Topology([Note("hi"), route, Tunnel("gre1"), Bridge("br0"), Namespace("red")])
    assert [type(r).__name__ for r in topo.ordered()] == ["Namespace", "Tunnel", "Bridge", "Route", "Note"]
    lines = topo.plan().lines
    assert lines.index("ip tunnel add gre1 mode gre") < lines.index("ip link add name br0 type bridge")
    assert lines.index("ip link add name br0 type bridge") < lines.index("ip route add 10.9.0.0/24 dev gre1")
    assert lines[-1] == "logger hi"
    assert (Note.rank, Resource.rank) == (RANK_LAST, RANK_LAST)
    assert [Namespace.rank, Bridge.rank, Route.rank, NatRule.rank, PortForward.rank] == [0, 1, 4, 5, 6]


# -- interfaces ------------------------------------------------------------------------


@attrs.frozen
class Tun(Resource):
    """A tun device: an interface made outside the built-in kinds, with addresses."""

    rank: ClassVar[int] = 2  # with the veths: before the rules that name it

    name: str
    addresses: tuple[IPInterface, ...] = attrs.field(default=(), converter=to_interfaces)
    netns: str | None = None
    kind: str = "tun"

    def plan(self, executor: Executor) -> list[Command]:
        undo = Command(("ip", "tuntap", "del", "dev", self.name, "mode", "tun"), netns=self.netns)
        return [change("ip", "tuntap", "add", "dev", self.name, "mode", "tun", netns=self.netns, undo=undo)]

    def interfaces(self) -> tuple[Interface, ...]:
        return (Interface(self.name, self.netns, self.addresses, kind=self.kind, addresses_field="Tun.addresses"),)


class RealHost(Recorder):
    """A real run (not a dry-run) on a host whose only links are ``lo`` and ``eth0``."""

    dry_run = False

    def __init__(self) -> None:
        super().__init__(self.answer)

    def answer(self, command: Command) -> str | Result | None:
        if command.argv == ("ip", "-j", "link", "show"):
            return json.dumps([{"ifname": "lo"}, {"ifname": "eth0"}])
        if command.argv[0] == "iptables" and "-V" in command.argv:
            return Result(command, 1)
        return None


def test_a_nat_rule_out_of_an_interface_a_custom_resource_makes_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    Topology([Tun("tun0", "10.8.0.1/24"), NatRule("10.1.0.0/24", out_interface="tun0")]).up(RealHost()).down()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == []
    # the same rule out of an interface nothing makes is warned about: the check looks
    Topology([Tun("tun1"), NatRule("10.1.0.0/24", out_interface="tun0")]).up(RealHost()).down()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.split(" (")[0] for w in warnings] == ["NatRule.out_interface 'tun0' is no interface of the host now"]


def test_the_firewall_checks_see_the_bridges_and_addresses_a_custom_resource_declares() -> None:
    Topology([Tun("vbr0", "10.8.0.1/24", kind="bridge"), NatRule("10.8.0.0/24", bridge="vbr0")])
    with pytest.raises(ValidationError, match=r"NatRule\.bridge: 'vbr0' is not a bridge of this topology"):
        Topology([Tun("vbr0", "10.8.0.1/24"), NatRule("10.8.0.0/24", bridge="vbr0")])
    Topology([Tun("tun0", "10.8.0.2/24"), PortForward(8080, "10.8.0.2")])
    with pytest.raises(ValidationError, match=r"PortForward\.to: '10\.8\.0\.3' is not an address of any interface"):
        Topology([Tun("tun0", "10.8.0.2/24"), PortForward(8080, "10.8.0.3")])


def test_the_topology_checks_overlaps_on_interfaces_a_custom_resource_declares() -> None:
    with pytest.raises(ValidationError, match=r"Tun.addresses: '10.8.0.9/16' overlaps 10.8.0.0/24 of br0"):
        Topology([Bridge("br0", addresses="10.8.0.1/24"), Tun("tun0", "10.8.0.9/16")])
    with pytest.raises(ValidationError, match=r"interface name: 'br0 \(in the host\)' appears 2 times"):
        Topology([Bridge("br0"), Tun("br0")])


def test_one_index_serves_the_hosts_files_and_the_picture() -> None:
    resources = [Namespace("red"), Tun("tun0", "10.8.0.2/24", netns="red"), PortForward(8080, "10.8.0.2")]
    index = Interfaces.build(resources)
    assert [i.name for i in index.interfaces] == ["tun0"]
    assert index.made == {"red": {"tun0"}}
    assert addresses_by_namespace(resources) == {"red": [index.interfaces[0].addresses[0].ip]}
    pic = picture.picture(Topology(resources))
    labels = {n.id: n.label for n in pic.nodes}
    assert ("red", "tun0 (tun)\n10.8.0.2/24") in {(n.place, n.label) for n in pic.nodes}
    assert any(e.label == "DNAT" and labels[e.b].startswith("tun0") for e in pic.edges)


# -- holding others ----------------------------------------------------------------------


@attrs.frozen
class Jail(Resource):
    """A place that holds others, like a namespace: deleting it takes along what is inside."""

    holds_others: ClassVar[bool] = True
    emptied: ClassVar[list[list[str]]] = []

    name: str

    def plan(self, executor: Executor) -> list[Command]:
        return [change("jail", "add", self.name, undo=Command(("jail", "rm", self.name)))]

    def held_name(self) -> str:
        return self.name

    def delete_whole(self) -> list[Command]:
        return [Command(("jail", "rm", "--all", self.name), missing_ok=True)]

    @classmethod
    def empty(cls, executor: Executor, holders: Sequence[Undoable]) -> None:
        cls.emptied.append([h.held_name() for h in holders])


def test_a_whole_teardown_deletes_what_declares_it_holds_others_at_once(tmp_path: Path) -> None:
    host = BatchingHost(tmp_path)
    journal = Journal(host)
    journal.apply_all(
        [
            Jail("j1"),
            Jail("j2"),
            Route("10.9.0.0/24", dev="eth0", netns="j1"),  # inside j1: goes along with it
            Tunnel("gre1"),  # outside: undone
        ]
    )
    host.clear()
    Jail.emptied.clear()
    journal.close()
    assert Jail.emptied == [["j1", "j2"]]  # both at once, before they go
    # the route in j1 is not undone (it goes with j1); the tunnel outside is, after them
    assert host.lines == ["jail rm --all j1", "jail rm --all j2", "ip tunnel del gre1"]
