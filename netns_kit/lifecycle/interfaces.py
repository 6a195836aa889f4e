"""What resources bring to a network: their interfaces, declared, and one index of them.

Each resource says which interfaces it makes or puts addresses on
(:meth:`~netns_kit.lifecycle.resource.Resource.interfaces`, a tuple of
:class:`Interface`). :class:`Interfaces` gathers them from any collection of
resources, once: the topology's checks (names, subnets, gateways, bridges),
the firewall's checks (a port forward's destination, a hairpin's bridge port,
the interfaces a rule names), ``hosts_files`` and the picture all read this one
index, so a resource kind defined elsewhere takes part by declaring its interfaces.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Protocol

import attrs

from netns_kit.validate import IPAddress, IPInterface


@attrs.frozen
class Interface:
    """One interface a resource makes (or puts addresses on), as the checks see it."""

    #: its name
    name: str
    #: the namespace it lives in (None: the executor's host)
    netns: str | None = None
    #: the addresses the resource puts on it
    addresses: tuple[IPInterface, ...] = ()
    #: what it is: ``"bridge"`` takes ports; others (``"veth"``, ``"existing"`` ...) are shown as such
    kind: str = "link"
    #: the resource creates it (False: it only puts addresses on one made elsewhere)
    made: bool = True
    #: the bridge it is made a port of, in its namespace (None: none)
    master: str | None = None
    #: the other end of its cable, ``(name, netns)`` (a veth's peer), or None
    peer: tuple[str, str | None] | None = None
    #: the field holding ``addresses``, for messages (``"VethPair.peer_addresses"``)
    addresses_field: str = ""
    #: the field naming ``master``, for messages (``"VethPair.bridge"``); "" when the
    #: resource cannot put this interface on a bridge (it is no bridge port then)
    master_field: str = ""

    @property
    def key(self) -> tuple[str, str | None]:
        """``(name, netns)``: what identifies it."""
        return (self.name, self.netns)


class Declares(Protocol):
    """What the index needs of a resource (every :class:`~netns_kit.lifecycle.resource.Resource`)."""

    def interfaces(self) -> tuple[Interface, ...]: ...


class Whole(Protocol):
    """Many resources checked as one (a :class:`~netns_kit.topology.topology.Topology`):
    what :meth:`~netns_kit.lifecycle.resource.Resource.check_topology` is given."""

    @property
    def resources(self) -> Sequence[Declares]: ...


@attrs.define
class Interfaces:
    """Every interface of some resources, in the order given, looked up by what the checks need.

    Built once (:meth:`build`, :meth:`of`); every lookup is a dict.
    """

    #: (the resource, the interface), in the order of the resources
    declared: list[tuple[Declares, Interface]] = attrs.field(factory=list)
    #: the names of the interfaces made, by namespace
    made: dict[str | None, set[str]] = attrs.field(factory=dict)
    #: the names of the bridges made, by namespace
    bridges: dict[str | None, set[str]] = attrs.field(factory=dict)
    #: what a resource can make a bridge's port, by namespace: ``{name: its bridge or None}``
    ports: dict[str | None, dict[str, str | None]] = attrs.field(factory=dict)
    #: every address put on an interface -> the namespace it lives in
    addresses: dict[IPAddress, str | None] = attrs.field(factory=dict)
    #: every address put on an interface, by namespace, in the order given
    by_namespace: dict[str | None, list[tuple[Interface, IPInterface]]] = attrs.field(factory=dict)
    #: the addresses on each interface: ``(name, netns)`` -> addresses, in the order given
    held: dict[tuple[str, str | None], list[IPInterface]] = attrs.field(factory=dict)

    @classmethod
    def build(cls, resources: Iterable[Declares]) -> Interfaces:
        """The index of ``resources`` (nothing runs, nothing is read from the system)."""
        index = cls()
        for resource in resources:
            for interface in resource.interfaces():
                index._add(resource, interface)
        return index

    def _add(self, resource: Declares, interface: Interface) -> None:
        self.declared.append((resource, interface))
        netns = interface.netns
        if interface.made:
            self.made.setdefault(netns, set()).add(interface.name)
            if interface.kind == "bridge":
                self.bridges.setdefault(netns, set()).add(interface.name)
        if interface.master_field:
            self.ports.setdefault(netns, {})[interface.name] = interface.master
        self.addresses.update((a.ip, netns) for a in interface.addresses)
        self.by_namespace.setdefault(netns, []).extend((interface, a) for a in interface.addresses)
        self.held.setdefault(interface.key, []).extend(interface.addresses)

    @classmethod
    def of(cls, whole: Whole) -> Interfaces:
        """The index of ``whole`` as it is now (its resources are only ever appended), built once
        per change: checking N port forwards against it is O(N), not O(N²)."""
        resources = whole.resources
        key = (len(resources), id(resources[-1]) if resources else None)
        cached = _cache.get(whole)
        if cached is not None and cached[0] == key:
            return cached[1]
        index = cls.build(resources)
        _cache[whole] = (key, index)
        return index

    @property
    def interfaces(self) -> list[Interface]:
        """Every interface, in the order given."""
        return [interface for _, interface in self.declared]


_cache: weakref.WeakKeyDictionary[Whole, tuple[tuple[int, int | None], Interfaces]] = weakref.WeakKeyDictionary()
