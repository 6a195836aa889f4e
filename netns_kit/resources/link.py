"""Links: veth pairs and bridges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs

from netns_kit.command import Command, change, query
from netns_kit.errors import ValidationError
from netns_kit.executors.base import Executor
from netns_kit.lifecycle.interfaces import Interface
from netns_kit.lifecycle.resource import Resource
from netns_kit.validate import (
    IPInterface,
    distinct_addresses,
    ifname,
    to_interfaces,
    to_name,
    valid_addrgenmode,
    valid_bool,
    valid_ifname,
    valid_interfaces,
    valid_mac,
    valid_mtu,
    valid_optional_ifname,
    valid_optional_netns,
)


def address_commands(dev: str, netns: str | None, addresses: Sequence[IPInterface], *, nodad: bool) -> list[Command]:
    """``ip addr add`` for each address (IPv6 without the DAD wait when ``nodad``)."""
    commands = []
    for address in addresses:
        extra = ("nodad",) if nodad and address.version == 6 else ()
        commands.append(change("ip", "addr", "add", str(address), "dev", dev, *extra, netns=netns))
    return commands


def set_command(
    dev: str,
    netns: str | None,
    tag: str,
    *,
    mtu: int | None = None,
    mac: str | None = None,
    master: str | None = None,
    up: bool = True,
) -> Command:
    """One ``ip link set`` with everything a new link needs: tag, MTU, MAC, master, up."""
    argv: list[str] = ["ip", "link", "set", "dev", dev, "alias", tag]
    if mtu is not None:
        argv += ["mtu", str(mtu)]
    if mac is not None:
        argv += ["address", mac]
    if master is not None:
        argv += ["master", master]
    if up:
        argv.append("up")
    return change(*argv, netns=netns)


def addrgenmode_commands(dev: str, netns: str | None, mode: str | None) -> list[Command]:
    """``ip link set dev DEV addrgenmode MODE``, before the link goes up.

    A command of its own: in the same ``ip link set`` as ``up``, the kernel
    takes the link up first, and a link that is ready at once (a bridge)
    has its link-local address before the mode changes.
    """
    return [] if mode is None else [change("ip", "link", "set", "dev", dev, "addrgenmode", mode, netns=netns)]


def link_exists(executor: Executor, name: str, netns: str | None) -> bool:
    result = executor.run(query("ip", "-j", "link", "show", "dev", name, netns=netns), check=False)
    return result.ok and bool(result.json())


@attrs.frozen
class VethPair(Resource):
    """A veth pair: a virtual cable with one end ``name`` and the other ``peer``.

    Each end may live in a namespace (``netns``, ``peer_netns``; ``None`` is
    the host) and is created directly there, never moved (moving costs ~16 ms
    in the kernel and may clash with names on the host). ``bridge`` attaches
    the ``name`` end to a bridge in its namespace. IPv6 addresses skip the
    DAD wait (``nodad``) unless told otherwise. ``addrgenmode`` (both ends)
    is iproute2's: ``"none"`` gives the ends no IPv6 link-local address, so
    they send no duplicate-address probes, router solicitations or MLD
    reports, which a bridge floods to every other port (W(500): ~2.4 s of
    the kernel's softirq time). Deleting either end removes both.
    """

    rank: ClassVar[int] = 2

    name: str = attrs.field(validator=valid_ifname)
    peer: str = attrs.field(validator=valid_ifname)
    netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    peer_netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    addresses: tuple[IPInterface, ...] = attrs.field(default=(), converter=to_interfaces, validator=valid_interfaces)
    peer_addresses: tuple[IPInterface, ...] = attrs.field(
        default=(), converter=to_interfaces, validator=valid_interfaces
    )
    mtu: int | None = attrs.field(default=None, validator=valid_mtu)
    mac: str | None = attrs.field(default=None, validator=valid_mac)
    peer_mac: str | None = attrs.field(default=None, validator=valid_mac)
    bridge: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_ifname)
    up: bool = attrs.field(default=True, validator=valid_bool)
    nodad: bool = attrs.field(default=True, validator=valid_bool)
    addrgenmode: str | None = attrs.field(default=None, validator=valid_addrgenmode)

    def __attrs_post_init__(self) -> None:
        if self.name == self.peer and self.netns == self.peer_netns:
            raise ValidationError("VethPair.peer", self.peer, "must differ from name when both ends share a namespace")
        distinct_addresses("VethPair.addresses", self.addresses)
        distinct_addresses("VethPair.peer_addresses", self.peer_addresses, other=self.addresses)

    @property
    def ends(self) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
        """``((name, netns), (peer, peer_netns))``."""
        return (self.name, self.netns), (self.peer, self.peer_netns)

    def interfaces(self) -> tuple[Interface, ...]:
        """Its two ends: ``name`` (put on ``bridge`` when given) and ``peer``."""
        return (
            Interface(
                self.name,
                self.netns,
                self.addresses,
                kind="veth",
                master=self.bridge,
                peer=(self.peer, self.peer_netns),
                addresses_field="VethPair.addresses",
                master_field="VethPair.bridge",
            ),
            Interface(
                self.peer,
                self.peer_netns,
                self.peer_addresses,
                kind="veth",
                peer=(self.name, self.netns),
                addresses_field="VethPair.peer_addresses",
            ),
        )

    def _creator(self) -> tuple[str, str | None, str, str | None]:
        """Create from the host side when one end is on the host (the host has no name)."""
        if self.netns is not None and self.peer_netns is None:
            return self.peer, None, self.name, self.netns
        return self.name, self.netns, self.peer, self.peer_netns

    def plan(self, executor: Executor) -> list[Command]:
        tag = executor.owner.tag
        first, first_ns, second, second_ns = self._creator()
        add = ["ip", "link", "add", "name", first, "type", "veth", "peer", "name", second]
        if second_ns is not None and second_ns != first_ns:
            add += ["netns", second_ns]
        undo = Command(("ip", "link", "del", "dev", first), netns=first_ns)
        return [
            change(*add, netns=first_ns, undo=undo),
            *addrgenmode_commands(self.name, self.netns, self.addrgenmode),
            set_command(self.name, self.netns, tag, mtu=self.mtu, mac=self.mac, master=self.bridge, up=self.up),
            *addrgenmode_commands(self.peer, self.peer_netns, self.addrgenmode),
            set_command(self.peer, self.peer_netns, tag, mtu=self.mtu, mac=self.peer_mac, up=self.up),
            *address_commands(self.name, self.netns, self.addresses, nodad=self.nodad),
            *address_commands(self.peer, self.peer_netns, self.peer_addresses, nodad=self.nodad),
        ]

    def exists(self, executor: Executor | None = None) -> bool:
        return link_exists(self._executor(executor), self.name, self.netns)

    def vanishes_with(self, doomed: frozenset[str]) -> tuple[tuple[str | None, str], ...] | None:
        """A veth pair goes with the namespace of either end; the other end then goes too."""
        if not ({self.netns, self.peer_netns} & doomed):
            return None
        return tuple((ns, name) for name, ns in self.ends if ns not in doomed)


@attrs.frozen
class Bridge(Resource):
    """A Linux bridge (a virtual switch), optionally in a namespace, with addresses.

    ``addrgenmode`` as for :class:`VethPair` (the bridge's own link-local address).
    """

    rank: ClassVar[int] = 1

    name: str = attrs.field(validator=valid_ifname)
    netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    addresses: tuple[IPInterface, ...] = attrs.field(default=(), converter=to_interfaces, validator=valid_interfaces)
    stp: bool = attrs.field(default=False, validator=valid_bool)
    mtu: int | None = attrs.field(default=None, validator=valid_mtu)
    mac: str | None = attrs.field(default=None, validator=valid_mac)
    up: bool = attrs.field(default=True, validator=valid_bool)
    nodad: bool = attrs.field(default=True, validator=valid_bool)
    addrgenmode: str | None = attrs.field(default=None, validator=valid_addrgenmode)

    def __attrs_post_init__(self) -> None:
        distinct_addresses("Bridge.addresses", self.addresses)

    def interfaces(self) -> tuple[Interface, ...]:
        return (Interface(self.name, self.netns, self.addresses, kind="bridge", addresses_field="Bridge.addresses"),)

    def plan(self, executor: Executor) -> list[Command]:
        add = ["ip", "link", "add", "name", self.name, "type", "bridge"]
        if self.stp:
            add += ["stp_state", "1"]
        return [
            change(*add, netns=self.netns, undo=Command(("ip", "link", "del", "dev", self.name), netns=self.netns)),
            *addrgenmode_commands(self.name, self.netns, self.addrgenmode),
            set_command(self.name, self.netns, executor.owner.tag, mtu=self.mtu, mac=self.mac, up=self.up),
            *address_commands(self.name, self.netns, self.addresses, nodad=self.nodad),
        ]

    def exists(self, executor: Executor | None = None) -> bool:
        return link_exists(self._executor(executor), self.name, self.netns)

    def vanishes_with(self, doomed: frozenset[str]) -> tuple[tuple[str | None, str], ...] | None:
        return () if self.netns in doomed else None

    def quiet_plan(self, done: Sequence[Command]) -> list[Command]:
        """Set down first: a bridge floods its ports' multicast (the IPv6 chatter of
        links that just came up) to every other port until it is gone."""
        if not done:  # adopted, or nothing of it was made: not ours to touch
            return []
        return [Command(("ip", "link", "set", "dev", self.name, "down"), self.netns, missing_ok=True)]

    def attach(self, port: Any, executor: Executor | None = None) -> None:
        """Make ``port`` (an interface in the bridge's namespace) a port of this bridge."""
        port = valid_port_name(port)
        self._executor(executor).run(
            change(
                "ip",
                "link",
                "set",
                "dev",
                port,
                "master",
                self.name,
                netns=self.netns,
                undo=Command(("ip", "link", "set", "dev", port, "nomaster"), netns=self.netns),
            )
        )

    def detach(self, port: Any, executor: Executor | None = None) -> None:
        """Take ``port`` off this bridge."""
        port = valid_port_name(port)
        self._executor(executor).run(change("ip", "link", "set", "dev", port, "nomaster", netns=self.netns))

    def ports(self, executor: Executor | None = None) -> list[str]:
        """Names of the interfaces attached to this bridge."""
        result = self._executor(executor).run(query("ip", "-j", "link", "show", "master", self.name, netns=self.netns))
        return [link["ifname"] for link in result.json()]


def valid_port_name(port: Any) -> str:
    return ifname("Bridge.port", to_name(port))
