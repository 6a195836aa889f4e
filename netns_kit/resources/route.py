"""Routes and standalone addresses."""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

import attrs

from netns_kit import shape
from netns_kit.command import Command, change, query
from netns_kit.errors import ValidationError
from netns_kit.executors.base import Executor
from netns_kit.lifecycle.interfaces import Interface
from netns_kit.lifecycle.resource import Resource
from netns_kit.resources.link import address_commands
from netns_kit.validate import (
    IPAddress,
    IPInterface,
    IPNetwork,
    parse_network,
    to_address,
    to_interfaces,
    to_name,
    valid_bool,
    valid_ifname,
    valid_interfaces,
    valid_optional_address,
    valid_optional_ifname,
    valid_optional_netns,
)


def _to_destination(value: Any) -> Any:
    if value in ("default", "default6"):
        return value
    try:
        return ipaddress.ip_network(value, strict=True) if isinstance(value, str) else value
    except ValueError:
        return value


def _valid_destination(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ("default", "default6"):
        parse_network("Route.destination", value)


def _valid_metric(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32):
        raise ValidationError("Route.metric", value, "must be an int from 0 to 4294967295")


def _address(add: Command) -> str:
    """The address an ``ip addr add ADDRESS dev DEV`` adds."""
    read = shape.ip(add.argv)
    if read is None or not read.args:
        raise ValueError(f"not an ip addr add: {add.line}")
    return read.args[0]


@attrs.frozen
class Route(Resource):
    """A route in a namespace's main table: ``default`` or a network, via a gateway and/or a device.

    ``Route("default", via="192.168.1.254", netns="red")`` is seed 001's
    ``ip netns exec red ip route add default via 192.168.1.254``. Use
    ``"default6"`` (or an IPv6 ``via``) for the IPv6 default route.
    """

    rank: ClassVar[int] = 4

    destination: str | IPNetwork = attrs.field(converter=_to_destination, validator=_valid_destination)
    via: IPAddress | None = attrs.field(default=None, converter=to_address, validator=valid_optional_address)
    dev: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_ifname)
    netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    metric: int | None = attrs.field(default=None, validator=_valid_metric)
    onlink: bool = attrs.field(default=False, validator=valid_bool)

    def __attrs_post_init__(self) -> None:
        if self.via is None and self.dev is None:
            raise ValidationError("Route.via", None, "or Route.dev must be given (where does the route go?)")
        network = isinstance(self.destination, ipaddress.IPv4Network | ipaddress.IPv6Network)
        if network and self.via is not None and self.destination.version != self.via.version:  # type: ignore[union-attr]
            rule = f"must be IPv{self.version} like the destination"
            raise ValidationError("Route.via", str(self.via), rule)
        if self.destination == "default6" and self.via is not None and self.via.version != 6:
            raise ValidationError("Route.via", str(self.via), "must be IPv6 for default6")

    @property
    def version(self) -> int:
        if self.destination == "default6":
            return 6
        if self.destination == "default":
            return self.via.version if self.via is not None else 4
        assert not isinstance(self.destination, str)
        return self.destination.version

    def _spec(self) -> list[str]:
        dest = "default" if self.destination in ("default", "default6") else str(self.destination)
        spec = [dest]
        if self.via is not None:
            spec += ["via", str(self.via)]
        if self.dev is not None:
            spec += ["dev", self.dev]
        if self.metric is not None:
            spec += ["metric", str(self.metric)]
        if self.onlink:
            spec.append("onlink")
        return spec

    def _ip(self) -> list[str]:
        return ["ip", "-6"] if self.version == 6 else ["ip"]

    def plan(self, executor: Executor) -> list[Command]:
        spec = self._spec()
        undo = Command((*self._ip(), "route", "del", *spec), netns=self.netns)
        return [change(*self._ip(), "route", "add", *spec, netns=self.netns, undo=undo)]

    def vanishes_with(self, doomed: frozenset[str]) -> tuple[tuple[str | None, str], ...] | None:
        return () if self.netns in doomed else None

    def exists(self, executor: Executor | None = None) -> bool:
        dest = self._spec()[0]
        argv = [*self._ip(), "-j", "route", "show", "table", "main"]
        argv += ["default"] if dest == "default" else ["exact", dest]
        result = self._executor(executor).run(query(*argv, netns=self.netns), check=False)
        if not result.ok:
            return False
        gateway = str(self.via) if self.via is not None else None
        return any(
            (gateway is None or r.get("gateway") == gateway) and (self.dev is None or r.get("dev") == self.dev)
            for r in result.json()
        )


@attrs.frozen
class Address(Resource):
    """Addresses on an existing interface (``ip addr add``), removed again on delete."""

    rank: ClassVar[int] = 3

    dev: str = attrs.field(validator=valid_ifname)
    addresses: tuple[IPInterface, ...] = attrs.field(converter=to_interfaces, validator=valid_interfaces)
    netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    nodad: bool = attrs.field(default=True, validator=valid_bool)

    def interfaces(self) -> tuple[Interface, ...]:
        """The interface it puts addresses on (made elsewhere)."""
        return (
            Interface(
                self.dev, self.netns, self.addresses, kind="existing", made=False, addresses_field="Address.addresses"
            ),
        )

    def plan(self, executor: Executor) -> list[Command]:
        return [
            attrs.evolve(c, undo=(Command(("ip", "addr", "del", _address(c), "dev", self.dev), netns=self.netns),))
            for c in address_commands(self.dev, self.netns, self.addresses, nodad=self.nodad)
        ]

    def vanishes_with(self, doomed: frozenset[str]) -> tuple[tuple[str | None, str], ...] | None:
        return () if self.netns in doomed else None

    def exists(self, executor: Executor | None = None) -> bool:
        result = self._executor(executor).run(
            query("ip", "-j", "addr", "show", "dev", self.dev, netns=self.netns), check=False
        )
        have = {
            f"{info['local']}/{info['prefixlen']}"
            for link in (result.json() if result.ok else [])
            for info in link.get("addr_info", [])
        }
        return all(str(a) in have for a in self.addresses)
