"""The checks of a whole topology, made before anything runs.

Each resource is valid on its own (its fields are checked when it is made);
what can only be wrong between them is checked here: names given twice, a
namespace or a bridge no resource makes, two interfaces of one namespace on
overlapping subnets, a gateway on no subnet of its namespace. Then each
resource's own :meth:`~netns_kit.lifecycle.resource.Resource.check_topology`
runs (the firewall's: chains, bridges, a port forward's destination). The
interfaces are those the resources declare
(:class:`~netns_kit.lifecycle.interfaces.Interfaces`).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from netns_kit.errors import ValidationError
from netns_kit.lifecycle.interfaces import Interface, Interfaces, Whole
from netns_kit.lifecycle.resource import Resource
from netns_kit.resources.namespace import Namespace
from netns_kit.resources.route import Route


def check(topology: Whole, resources: Sequence[Resource]) -> None:
    """Raise :class:`ValidationError` for what cannot work as a whole (``resources``: those
    of ``topology``, in the order given)."""
    namespaces = [r.name for r in resources if isinstance(r, Namespace)]
    _no_duplicates("Namespace.name", namespaces)
    index = Interfaces.of(topology)
    links = [f"{i.name} (in {i.netns or 'the host'})" for i in index.interfaces if i.made]
    _no_duplicates("interface name", links)
    known = set(namespaces)
    for resource in resources:
        for attr in ("netns", "peer_netns"):
            value = getattr(resource, attr, None)
            if value is not None and value not in known and not resource.adopt:
                raise ValidationError(
                    f"{type(resource).__name__}.{attr}",
                    value,
                    f"is not a namespace of this topology (have: {sorted(known) or 'none'}); "
                    "add Namespace(name, adopt=True) to use one made elsewhere",
                )
    for interface in index.interfaces:
        if interface.master is not None and interface.master not in index.bridges.get(interface.netns, ()):
            raise ValidationError(
                interface.master_field or f"{interface.name}.master",
                interface.master,
                f"is not a bridge of this topology in {interface.netns or 'the host'}",
            )
    _no_overlaps(index.by_namespace)
    _check_gateways(resources, index)
    for resource in resources:
        resource.check_topology(topology)


def _check_gateways(resources: Sequence[Resource], index: Interfaces) -> None:
    for route in resources:
        if not isinstance(route, Route) or route.via is None or route.onlink:
            continue
        networks = [a.network for _, a in index.by_namespace.get(route.netns, ())]
        if route.netns is None and not networks:
            continue  # the host may have addresses of its own
        if not any(route.via in net for net in networks):
            raise ValidationError(
                "Route.via",
                str(route.via),
                f"is not on a subnet of {route.netns or 'the host'} "
                f"(its subnets: {sorted(map(str, networks)) or 'none'}); use onlink=True if meant",
            )


def _no_duplicates(field: str, values: list[str]) -> None:
    for value, count in Counter(values).items():
        if count > 1:
            raise ValidationError(field, value, f"appears {count} times in one topology; names must be unique")


@attrs.frozen
class _Placed:
    """An address on an interface (``dev``), given in ``field``."""

    dev: str
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    field: str

    @property
    def subnet(self) -> bool:
        """Whether it makes a subnet others can overlap: a host address (/32, /128) makes
        none, and link-local subnets (169.254/16, fe80::/64) are each link's own."""
        net = self.address.network
        return net.prefixlen < net.max_prefixlen and not net.is_link_local


def _no_overlaps(by_namespace: dict[str | None, list[tuple[Interface, Any]]]) -> None:
    """Two interfaces of one namespace on overlapping subnets are refused (which would a
    packet to the overlap leave by? the kernel picks one route, the other interface goes
    deaf), and so is one address twice on one interface (``ip addr add`` fails half-way)."""
    for netns, addresses in by_namespace.items():
        where = netns or "the host"
        seen: list[_Placed] = []
        for new in (_Placed(i.name, a, i.addresses_field) for i, a in addresses):
            for old in seen:
                if old.address.version != new.address.version:
                    continue
                if old.dev == new.dev:
                    if old.address.ip == new.address.ip:
                        rule = f"is on {new.dev} in {where} already (as {old.address}); an interface holds it once"
                        raise ValidationError(new.field, str(new.address), rule)
                elif old.subnet and new.subnet and old.address.network.overlaps(new.address.network):
                    rule = (
                        f"overlaps {old.address.network} of {old.dev} in {where}; two interfaces of one "
                        "namespace need subnets that do not overlap (a host address, /32 or /128, may go anywhere)"
                    )
                    raise ValidationError(new.field, str(new.address), rule)
            seen.append(new)
