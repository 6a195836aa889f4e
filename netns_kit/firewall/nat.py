"""NatRule: a subnet reaches the outside through the namespace it is routed by.

Seed 001 does it with one bare rule::

    iptables -t nat -A POSTROUTING -s 192.168.1.0/24 -o eth0 -j MASQUERADE

``NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0")`` does the
same in an own chain, tagged, plus what the seed leaves to luck: forwarding
turned on (and restored), and FORWARD accepts limited to that bridge and
subnet and the established return path, so it works under a FORWARD policy
of DROP without changing the policy.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from netns_kit.command import Command
from netns_kit.errors import ValidationError
from netns_kit.executors.base import Executor
from netns_kit.firewall.base import Firewall, public_network
from netns_kit.firewall.iptables import Chain, Hook, Rule
from netns_kit.lifecycle import sysctl
from netns_kit.validate import IPNetwork, to_name, to_network, valid_network, valid_optional_ifname


@attrs.frozen
class NatRule(Firewall):
    """Masquerade ``source`` (a subnet) when it leaves through ``out_interface``.

    Scoped, never a bare MASQUERADE: ``-s SOURCE -o OUT_INTERFACE``, or
    ``-s SOURCE ! -o BRIDGE`` when only the ``bridge`` the subnet lives on is
    given. An ``out_interface`` that is not there when the rule is made is
    warned about, not refused: the rule matches it by name and acts once it
    appears (see :func:`~netns_kit.firewall.base.look_for_interfaces`). Turns on
    ``net.ipv4.ip_forward`` (``net.ipv6.conf.all.forwarding`` for an IPv6
    subnet) in ``netns`` and restores the prior value on delete.
    ``forward=False`` leaves the FORWARD chain alone.
    """

    KIND = "NAT"
    rank: ClassVar[int] = 5

    source: IPNetwork = attrs.field(converter=to_network, validator=valid_network)
    out_interface: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_ifname)
    bridge: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_ifname)

    def __attrs_post_init__(self) -> None:
        public_network("NatRule.source", self.source)
        if self.out_interface is None and self.bridge is None:
            raise ValidationError(
                "NatRule.out_interface",
                None,
                "or NatRule.bridge must be given: a MASQUERADE is scoped by where the traffic leaves",
            )
        if self.out_interface is not None and self.out_interface == self.bridge:
            raise ValidationError("NatRule.out_interface", self.out_interface, "must differ from the bridge")

    @property
    def version(self) -> int:
        return self.source.version

    def _out(self) -> tuple[str, ...]:
        if self.out_interface is not None:
            return ("-o", self.out_interface)
        assert self.bridge is not None
        return ("!", "-o", self.bridge)

    def chains(self) -> list[Chain]:
        source = str(self.source)
        masquerade = Rule(("-s", source, *self._out()), ("-j", "MASQUERADE"))
        chains = [Chain(self.version, "nat", self.chain("POST"), (masquerade,), (Hook("POSTROUTING"),))]
        if self.forward:
            inbound = ("-i", self.bridge) if self.bridge else ()
            outbound = ("-o", self.bridge) if self.bridge else ()
            back_in = ("-i", self.out_interface) if self.out_interface else ()
            rules = (
                Rule(("-s", source, *inbound, *self._out()), ("-j", "ACCEPT")),
                Rule(
                    ("-d", source, *back_in, *outbound, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"),
                    ("-j", "ACCEPT"),
                ),
            )
            chains.append(Chain(self.version, "filter", self.chain("FWD"), rules, (Hook("FORWARD", first=True),)))
        return chains

    def named_bridges(self) -> dict[str, str]:
        return {"NatRule.bridge": self.bridge} if self.bridge else {}

    def named_interfaces(self) -> dict[str, str]:
        return {"NatRule.out_interface": self.out_interface} if self.out_interface else {}

    def extra(self, executor: Executor) -> list[Command]:
        key = sysctl.forwarding_key(self.version)
        return sysctl.plan_set(executor, key, "1", self.netns, claims=self._state.claims)
