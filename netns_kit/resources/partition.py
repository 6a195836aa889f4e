"""Partitions: cut two namespaces off from each other, and heal them.

::

    with Partition("red", "blue"):      # red and blue hear nothing from each other
        ...
    # healed

    cut = LinkDown("veth-red", netns="red").create()   # the cable pulled
    cut.heal()                                          # plugged back in

:class:`Partition` drops, in each namespace, what arrives from the other's
addresses (tagged iptables and ip6tables rules at the top of INPUT): both
sides see silence and time out, as across a real partition, and nobody else
is affected. The sides are namespaces, which may meet on a veth, on a bridge
or through routers, so a packet is told by who sent it, its source address,
not by the interface or MAC it came in by (those carry others' traffic too).
Every address of the other side counts, in both families, link-local ones
included: an IPv4 topology still speaks IPv6 on each link (``ping
fe80::...%eth0``), and a link-local address only ever arrives from its own
link. Dropping on the way in, not on the way out, matters: a packet
dropped in OUTPUT fails the sender's ``send()`` with EPERM at once, which no
real network does. :class:`LinkDown` takes an interface down instead: the
kernel then drops the routes through it, and the sender gets "Network is
unreachable" -- what a pulled cable does.

With ``backend="nft"`` (or a topology's ``firewall="nft"``) the drops of each
namespace are ONE nft transaction on the owner's table instead: a base chain
per family at ``hook input priority filter`` (``NK-PART-<hash>-IN``, ``-IN-6``),
healed by deleting those chains (:mod:`netns_kit.firewall.droprule`). A drop
in any base chain is final, so it holds whatever other tables accept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import attrs

from netns_kit.command import Command, change, query
from netns_kit.errors import NetnsKitError, ValidationError
from netns_kit.executors.base import Executor
from netns_kit.firewall.backend import valid_backend
from netns_kit.firewall.droprule import Drops, TableHold, chain_name, let_go, tables_held
from netns_kit.lifecycle.interfaces import Whole
from netns_kit.lifecycle.resource import Resource, _State
from netns_kit.resources.link import VethPair
from netns_kit.resources.namespace import Namespace
from netns_kit.validate import (
    IPAddress,
    field_name,
    parse_address,
    to_name,
    valid_ifname,
    valid_netns,
    valid_optional_netns,
)


def _to_addresses(value: Any) -> Any:
    if value is None or isinstance(value, tuple):
        return value
    return (value,) if isinstance(value, str) else tuple(value)


def _unscoped(address: IPAddress) -> IPAddress:
    """``fe80::1%eth0`` as ``fe80::1``: iptables matches an address without its interface."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def _valid_addresses(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    field = field_name(instance, attribute)
    if not value:
        raise ValidationError(field, value, "must hold at least one address (or be None: read them from the namespace)")
    for item in value:
        parse_address(field, item)


#: what a partition asks of the nft backend: nft itself (no NAT, nothing forwarded)
NEEDS: tuple[str, ...] = ()


@attrs.define
class _PartitionState(_State):
    #: on nft: its hold on the owner's table, by namespace (the last holder deletes it)
    holds: dict[str | None, TableHold] = attrs.field(factory=dict)


@attrs.frozen
class Partition(Resource):
    """Drop all traffic between namespaces ``a`` and ``b``, both ways, until healed.

    The addresses to drop are read from each namespace when the partition is
    made: every address but loopback, IPv4 and IPv6, link-local ones included
    (each once). Given as ``a_addresses``/``b_addresses`` instead (a dry-run
    needs them given), they are exactly those: list the link-local ones too
    (``fe80::...``, with or without ``%dev``) to cut IPv6 on the link, or
    give the links ``addrgenmode="none"`` (no IPv6 link-local at all). An
    address added after the partition is made is not cut.
    """

    a: str = attrs.field(converter=to_name, validator=valid_netns)
    b: str = attrs.field(converter=to_name, validator=valid_netns)
    a_addresses: tuple[IPAddress, ...] | None = attrs.field(
        default=None, converter=_to_addresses, validator=_valid_addresses
    )
    b_addresses: tuple[IPAddress, ...] | None = attrs.field(
        default=None, converter=_to_addresses, validator=_valid_addresses
    )
    #: ``"iptables"``, ``"nft"`` or ``"auto"`` (None: the topology's ``firewall=``, else the default)
    backend: str | None = attrs.field(default=None, validator=valid_backend, kw_only=True)
    _state: _PartitionState = attrs.field(factory=_PartitionState, init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.a == self.b:
            raise ValidationError(
                "Partition.b", self.b, "must differ from a (a namespace cannot be cut off from itself)"
            )

    def addresses(self, netns: str, executor: Executor) -> list[IPAddress]:
        """The addresses others reach ``netns`` by (given, else read with ``ip -j addr``)."""
        given = self.a_addresses if netns == self.a else self.b_addresses
        if given is not None:
            return list(dict.fromkeys(_unscoped(parse_address("Partition.addresses", a)) for a in given))
        data = executor.run(query("ip", "-j", "addr", "show", netns=netns)).json()
        found: dict[IPAddress, None] = {}  # in the order read, each once
        for link in data:
            for info in link.get("addr_info", ()):
                address = _unscoped(parse_address("addr_info", info["local"]))
                if not address.is_loopback:
                    found[address] = None
        if not found:
            raise NetnsKitError(
                f"namespace {netns} has no address to partition it by; give "
                f"Partition({'a' if netns == self.a else 'b'}_addresses=...) (a dry-run must)"
            )
        return list(found)

    def heal(self, executor: Executor | None = None) -> None:
        """End the partition (the same as :meth:`delete`)."""
        self.delete(executor)

    def check_topology(self, topology: Whole) -> None:
        """A side whose namespace ``topology`` makes needs its addresses given: a topology
        plans everything before it runs anything, when there is nothing to read them from."""
        made = {r.name for r in topology.resources if isinstance(r, Namespace) and not r.adopt}
        for side, given in (("a", self.a_addresses), ("b", self.b_addresses)):
            netns = getattr(self, side)
            if given is None and netns in made:
                raise ValidationError(
                    f"Partition.{side}_addresses",
                    None,
                    f"must be given when the topology makes namespace {netns} (a topology plans before it "
                    "makes anything, so they cannot be read then); or create the Partition once it is up",
                )

    @property
    def chain(self) -> str:
        """The own chain of its drops on nft (``NK-PART-<hash of the spec>-IN``, ``...-IN-6``)."""
        given = [None if g is None else tuple(map(str, g)) for g in (self.a_addresses, self.b_addresses)]
        return chain_name("PART", (self.a, self.b, *given), "IN")

    def drops(self, executor: Executor) -> list[Drops]:
        """In ``a``, drop what comes from ``b``'s addresses; in ``b``, from ``a``'s."""
        out = []
        for here, there in ((self.a, self.b), (self.b, self.a)):
            rules = tuple((address.version, ("-s", str(address))) for address in self.addresses(there, executor))
            out.append(Drops(self.chain, rules, here))
        return out

    def plan(self, executor: Executor) -> list[Command]:
        holds = self._state.holds
        return [c for drops in self.drops(executor) for c in drops.plan(self.backend, executor, NEEDS, holds)]

    def undo(self, executor: Executor, done: Sequence[Command], *, complete: bool) -> None:
        undo = self.undo_plan(done)
        if undo:
            executor.run_all(undo)

    def undo_plan(self, done: Sequence[Command]) -> list[Command] | None:
        """Its drops removed, then (nft) the owner's table in each namespace where it was the
        last to use it."""
        return [u.tolerant() for c in reversed(done) for u in c.undo] + let_go(self._state.holds, bool(done))

    def undo_record(self, done: Sequence[Command]) -> list[Command] | None:
        """For another process taking the whole topology down: its drops removed, then (nft)
        the owner's table in each of its namespaces (in one the topology deletes, nothing
        is left to do; in one it adopted, the whole owner is going)."""
        return [u for c in reversed(done) for u in c.undo] + (tables_held(self._state.holds) if done else [])

    def exists(self, executor: Executor | None = None) -> bool:
        executor = self._executor(executor)
        return all(drops.present(self.backend, executor, NEEDS) for drops in self.drops(executor))


@attrs.frozen
class LinkDown(Resource):
    """Take interface ``dev`` (in ``netns``) down until healed; for a veth both ends lose carrier."""

    dev: str = attrs.field(validator=valid_ifname)
    netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)

    @classmethod
    def of(cls, veth: VethPair, **kwargs: Any) -> LinkDown:
        """Pull ``veth``'s cable: down on its ``name`` end."""
        return cls(veth.name, netns=veth.netns, **kwargs)

    def heal(self, executor: Executor | None = None) -> None:
        """Bring the link back up (the same as :meth:`delete`)."""
        self.delete(executor)

    def plan(self, executor: Executor) -> list[Command]:
        up = Command(("ip", "link", "set", "dev", self.dev, "up"), netns=self.netns)
        return [change("ip", "link", "set", "dev", self.dev, "down", netns=self.netns, undo=up)]

    def exists(self, executor: Executor | None = None) -> bool:
        result = self._executor(executor).run(query("ip", "-j", "link", "show", "dev", self.dev, netns=self.netns))
        return any("UP" not in link.get("flags", ()) for link in result.json())
