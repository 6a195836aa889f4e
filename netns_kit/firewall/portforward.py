"""PortForward: a port of the host answered by a service inside a namespace.

Seed 001 does it with two bare rules::

    iptables -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 192.168.1.1:80
    iptables -A FORWARD -p tcp -d 192.168.1.1 --dport 80 -j ACCEPT

``PortForward(8080, "192.168.1.1", 80, bridge="v-net-0")`` does the same in
own chains, tagged and scoped to the host's own addresses, also from OUTPUT
(so the host itself can use the port), with the return path accepted.
Two opt-ins, off by default because each widens what can reach what:

* ``localhost=True``: ``127.0.0.1:PORT`` on the host reaches the service too.
  It needs ``route_localnet=1`` on the bridge (only there, never
  ``conf.all``), which lets the bridge's side send packets to 127/8 of the
  host; a guard in the raw table drops exactly those.
* ``hairpin=True``: the namespace reaches its own service through the
  forwarded port (MASQUERADE of its own traffic plus ``hairpin on`` on its
  bridge port, ``bridge_port``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from netns_kit.command import Command, change, query
from netns_kit.errors import ValidationError
from netns_kit.executors.base import Executor
from netns_kit.firewall.base import Firewall
from netns_kit.firewall.iptables import LOOPBACK, Chain, Hook, Rule
from netns_kit.lifecycle import sysctl
from netns_kit.lifecycle.interfaces import Interfaces, Whole
from netns_kit.validate import (
    IPAddress,
    parse_address,
    to_address,
    to_name,
    valid_bool,
    valid_optional_address,
    valid_optional_ifname,
    valid_port,
)

PROTOCOLS = ("tcp", "udp")


def _valid_to(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    parse_address(f"PortForward.{attribute.name}", value)


def _valid_optional_port(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        valid_port(instance, attribute, value)


def _valid_protocol(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in PROTOCOLS:
        raise ValidationError("PortForward.protocol", value, f"must be one of {list(PROTOCOLS)}")


@attrs.frozen
class PortForward(Firewall):
    """Forward ``port`` of the host (``netns``) to ``to:to_port`` (``to_port`` defaults to ``port``).

    Scope: packets addressed to one of the host's own addresses (``-m addrtype
    --dst-type LOCAL``, 127/8 excluded), or to ``address`` when given, and,
    from outside, arriving on ``in_interface`` when given. ``bridge`` is the
    bridge ``to`` lives behind (it narrows the FORWARD accepts and is needed
    for ``localhost``); ``bridge_port`` is the destination's port on it
    (needed for ``hairpin``).
    """

    KIND = "PF"
    rank: ClassVar[int] = 6
    #: ``fib`` for the local-address match of its DNAT (:data:`netns_kit.firewall.nftchoice.FEATURES`)
    needs: ClassVar[tuple[str, ...]] = ("nat", "forward", "fib")

    port: int = attrs.field(validator=valid_port)
    to: IPAddress = attrs.field(converter=to_address, validator=_valid_to)
    to_port: int | None = attrs.field(default=None, validator=_valid_optional_port)
    protocol: str = attrs.field(default="tcp", validator=_valid_protocol)
    address: IPAddress | None = attrs.field(default=None, converter=to_address, validator=valid_optional_address)
    in_interface: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_ifname)
    bridge: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_ifname)
    bridge_port: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_ifname)
    localhost: bool = attrs.field(default=False, validator=valid_bool)
    hairpin: bool = attrs.field(default=False, validator=valid_bool)

    def __attrs_post_init__(self) -> None:
        if self.to.is_unspecified or self.to.is_multicast or self.to.is_loopback:
            raise ValidationError("PortForward.to", str(self.to), "must be a unicast address of a namespace")
        if self.address is not None:
            if self.address.version != self.to.version:
                rule = f"must be IPv{self.to.version} like the destination {self.to}"
                raise ValidationError("PortForward.address", str(self.address), rule)
            if self.address.is_loopback or self.address.is_unspecified:
                rule = "must be one of the host's own addresses; use localhost=True for 127.0.0.1"
                raise ValidationError("PortForward.address", str(self.address), rule)
        if self.localhost and self.to.version == 6:
            rule = "works for IPv4 only: IPv6 has no route_localnet, so ::1 cannot be forwarded"
            raise ValidationError("PortForward.localhost", True, rule)
        if self.localhost and self.bridge is None:
            raise ValidationError("PortForward.bridge", None, "must be given for localhost=True (route_localnet)")
        if self.hairpin and self.bridge_port is None:
            rule = "must be given for hairpin=True (the destination's port on the bridge gets 'hairpin on')"
            raise ValidationError("PortForward.bridge_port", None, rule)

    @property
    def version(self) -> int:
        return self.to.version

    @property
    def destination(self) -> str:
        """``ADDRESS:PORT`` as ``--to-destination`` wants it (``[ADDRESS]:PORT`` for IPv6)."""
        port = self.to_port or self.port
        return f"[{self.to}]:{port}" if self.version == 6 else f"{self.to}:{port}"

    def _match(self, port: int, which: str = "--dport") -> tuple[str, ...]:
        return ("-p", self.protocol, "-m", self.protocol, which, str(port))

    def _local(self) -> tuple[str, ...]:
        if self.address is not None:
            return ("-d", str(self.address))
        return ("!", "-d", LOOPBACK[self.version], "-m", "addrtype", "--dst-type", "LOCAL")

    def chains(self) -> list[Chain]:
        v, to, to_port = self.version, str(self.to), self.to_port or self.port
        dnat = ("-j", "DNAT", "--to-destination", self.destination)
        inbound = ("-i", self.in_interface) if self.in_interface else ()
        pre = (Rule((*inbound, *self._local(), *self._match(self.port)), dnat),)
        out = [Rule((*self._local(), *self._match(self.port)), dnat)]
        if self.localhost:
            out.append(Rule(("-d", LOOPBACK[4], *self._match(self.port)), dnat))
        chains = [
            Chain(v, "nat", self.chain("PRE"), pre, (Hook("PREROUTING"),)),
            Chain(v, "nat", self.chain("OUT"), tuple(out), (Hook("OUTPUT"),)),
        ]
        post = []
        if self.localhost:
            assert self.bridge is not None
            matches = ("-s", LOOPBACK[4], "-d", to, "-o", self.bridge, *self._match(to_port))
            post.append(Rule(matches, ("-j", "MASQUERADE")))
        if self.hairpin:
            post.append(Rule(("-s", to, "-d", to, *self._match(to_port)), ("-j", "MASQUERADE")))
        if post:
            chains.append(Chain(v, "nat", self.chain("POST"), tuple(post), (Hook("POSTROUTING"),)))
        if self.forward:
            toward = ("-o", self.bridge) if self.bridge else ()
            back = ("-i", self.bridge) if self.bridge else ()
            dnatted = ("-m", "conntrack", "--ctstate", "DNAT")
            established = ("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED")
            rules = (
                Rule(("-d", to, *toward, *self._match(to_port), *dnatted), ("-j", "ACCEPT")),
                Rule(("-s", to, *back, *self._match(to_port, "--sport"), *established), ("-j", "ACCEPT")),
            )
            chains.append(Chain(v, "filter", self.chain("FWD"), rules, (Hook("FORWARD", first=True),)))
        if self.localhost:
            assert self.bridge is not None
            guard = Rule(("-i", self.bridge, "-d", LOOPBACK[4]), ("-j", "DROP"))
            chains.append(Chain(v, "raw", self.chain("RAW"), (guard,), (Hook("PREROUTING", first=True),)))
        return chains

    def named_bridges(self) -> dict[str, str]:
        return {"PortForward.bridge": self.bridge} if self.bridge else {}

    def named_interfaces(self) -> dict[str, str]:
        return {"PortForward.in_interface": self.in_interface} if self.in_interface else {}

    def extra(self, executor: Executor) -> list[Command]:
        claims = self._state.claims
        commands = sysctl.plan_set(executor, sysctl.forwarding_key(self.version), "1", self.netns, claims=claims)
        if self.localhost:
            assert self.bridge is not None
            key = sysctl.interface_key("ipv4", self.bridge, "route_localnet")
            default = sysctl.interface_key("ipv4", "default", "route_localnet")
            commands += sysctl.plan_set(executor, key, "1", self.netns, default=default, claims=claims)
        if self.hairpin and not self._hairpin_on(executor):
            assert self.bridge_port is not None
            argv = ("ip", "link", "set", "dev", self.bridge_port, "type", "bridge_slave", "hairpin")
            undo = Command((*argv, "off"), netns=self.netns)
            commands.append(change(*argv, "on", netns=self.netns, undo=undo))
        return commands

    def _hairpin_on(self, executor: Executor) -> bool:
        assert self.bridge_port is not None
        show = query("ip", "-j", "-d", "link", "show", "dev", self.bridge_port, netns=self.netns)
        result = executor.run(show, check=False)
        links = result.json() if result.ok else []
        return any(link.get("linkinfo", {}).get("info_slave_data", {}).get("hairpin") for link in links)

    def check_topology(self, topology: Whole) -> None:
        """Also: ``to`` is an address the topology gives an interface; ``bridge_port`` one
        of its veth ends (on ``bridge``, when given)."""
        super().check_topology(topology)
        index = Interfaces.of(topology)
        if self.to not in index.addresses:
            raise ValidationError(
                "PortForward.to",
                str(self.to),
                "is not an address of any interface in this topology; give it to a namespace first",
            )
        if self.bridge_port is not None:
            ports = index.ports.get(self.netns, {})
            if self.bridge_port not in ports or (self.bridge and ports[self.bridge_port] != self.bridge):
                where = f"bridge {self.bridge}" if self.bridge else "a bridge"
                raise ValidationError(
                    "PortForward.bridge_port",
                    self.bridge_port,
                    f"is not a veth end on {where} in {self.netns or 'the host'} in this topology",
                )
