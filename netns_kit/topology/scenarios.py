"""The seed documents' topologies, as netns_kit values (used by the demo and the tests)."""

from __future__ import annotations

from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.portforward import PortForward
from netns_kit.lifecycle.resource import Resource
from netns_kit.resources.link import Bridge, VethPair
from netns_kit.resources.namespace import Namespace
from netns_kit.resources.route import Route
from netns_kit.topology.topology import Topology

SEED001_NAMESPACES = ("red", "blue", "green")

#: "the outside" of the seed-001 story: a namespace behind the host's uplink eth0
OUTSIDE = "outside"
#: the host's address on its uplink, and the outside server's (documentation range)
HOST_OUTSIDE_ADDRESS = "203.0.113.1"
OUTSIDE_ADDRESS = "203.0.113.2"


def _pipe(subnet: str) -> Topology:
    """red and blue joined by one veth pair, at .1 and .2 of ``subnet`` (a /24 prefix)."""
    return Topology(
        [
            Namespace("red"),
            Namespace("blue"),
            VethPair(
                "veth-red",
                "veth-blue",
                netns="red",
                peer_netns="blue",
                addresses=f"{subnet}.1/24",
                peer_addresses=f"{subnet}.2/24",
            ),
        ]
    )


def seed001_pipe() -> Topology:
    """Seed 001, "veth pairs as a network pipe": red and blue joined by one veth pair."""
    return _pipe("192.168.1")


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
    return _pipe("192.168.15")


def seed001_nat() -> Topology:
    """Seed 001 in full: the bridge topology, plus MASQUERADE of 192.168.1.0/24 out of
    ``eth0`` and the port forward of the host's 8080 to red's port 80."""
    topo = seed001_bridge()
    topo.add(
        NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0"),
        PortForward(8080, "192.168.1.1", 80, bridge="v-net-0"),
    )
    return topo


def outside() -> list[Resource]:
    """ "The outside" of seed 001 made real: a namespace ``outside`` at 203.0.113.2
    behind the host's uplink ``eth0`` (203.0.113.1), documentation addresses."""
    return [
        Namespace(OUTSIDE),
        VethPair(
            "eth0",
            "wan0",
            peer_netns=OUTSIDE,
            addresses=f"{HOST_OUTSIDE_ADDRESS}/24",
            peer_addresses=f"{OUTSIDE_ADDRESS}/24",
        ),
    ]


def seed001_story() -> Topology:
    """The whole seed-001 story: :func:`seed001_nat` plus :func:`outside`."""
    return seed001_nat().add(*outside())


#: W(N)'s bridge subnet (a /16 holds the benchmark's largest N) and the bridge's address
WORKLOAD_SUBNET = "10.200.0.0/16"
WORKLOAD_GATEWAY = "10.200.255.254"


def workload_address(i: int) -> str:
    """The address of namespace ``i`` of W(N)."""
    return f"10.200.{i // 250}.{i % 250 + 1}"


def workload(n: int, *, prefix: str = "w", addrgenmode: str | None = None) -> Topology:
    """W(N), the benchmark's workload: N namespaces ``w0``... each with a veth to bridge
    ``br0`` (an address, lo up, a default route via the bridge), one MASQUERADE + FORWARD
    + ip_forward for the subnet, and one port forward (host port 10000+i to port 80) each.
    ``addrgenmode`` goes to every veth (``"none"``: no IPv6 link-local chatter)."""
    resources: list[Resource] = [Bridge("br0", addresses=f"{WORKLOAD_GATEWAY}/16")]
    for i in range(n):
        name = f"{prefix}{i}"
        resources += [
            Namespace(name),
            VethPair(
                f"{prefix}h{i}",
                "eth0",
                peer_netns=name,
                bridge="br0",
                peer_addresses=f"{workload_address(i)}/16",
                addrgenmode=addrgenmode,
            ),
            Route("default", via=WORKLOAD_GATEWAY, netns=name),
        ]
    resources.append(NatRule(WORKLOAD_SUBNET, bridge="br0"))
    resources += [PortForward(10000 + i, workload_address(i), 80, bridge="br0") for i in range(n)]
    return Topology(resources)
