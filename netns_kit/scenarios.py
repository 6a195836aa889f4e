"""The seed documents' topologies, as netns_kit values (used by the demo and the tests)."""

from __future__ import annotations

from .link import Bridge, VethPair
from .namespace import Namespace
from .route import Route
from .topology import Topology

SEED001_NAMESPACES = ("red", "blue", "green")


def seed001_pipe() -> Topology:
    """Seed 001, "veth pairs as a network pipe": red and blue joined by one veth pair."""
    return Topology(
        [
            Namespace("red"),
            Namespace("blue"),
            VethPair(
                "veth-red",
                "veth-blue",
                netns="red",
                peer_netns="blue",
                addresses="192.168.1.1/24",
                peer_addresses="192.168.1.2/24",
            ),
        ]
    )


def seed001_bridge() -> Topology:
    """Seed 001, "connecting multiple namespaces": red, blue and green on bridge v-net-0,
    the host at 192.168.1.254 and default routes through it."""
    topo = Topology([Bridge("v-net-0", addresses="192.168.1.254/24")])
    for number, name in enumerate(SEED001_NAMESPACES, start=1):
        topo.add(
            Namespace(name),
            VethPair(
                f"veth-{name}",
                f"{name}-veth",
                peer_netns=name,
                bridge="v-net-0",
                peer_addresses=f"192.168.1.{number}/24",
            ),
            Route("default", via="192.168.1.254", netns=name),
        )
    return topo


def seed002_host() -> Topology:
    """Seed 002, "isolating a network": ns1 at 10.0.0.1 and the host's veth-host at 10.0.0.2."""
    return Topology(
        [
            Namespace("ns1"),
            VethPair("veth-ns1", "veth-host", netns="ns1", addresses="10.0.0.1/24", peer_addresses="10.0.0.2/24"),
        ]
    )


def seed004_pipe() -> Topology:
    """Seed 004: red and blue joined by a pipe on 192.168.15.0/24."""
    return Topology(
        [
            Namespace("red"),
            Namespace("blue"),
            VethPair(
                "veth-red",
                "veth-blue",
                netns="red",
                peer_netns="blue",
                addresses="192.168.15.1/24",
                peer_addresses="192.168.15.2/24",
            ),
        ]
    )
