"""NatRule and PortForward with real TCP and UDP traffic, in the sandbox.

"The outside" is a namespace behind the sandbox host's uplink ``eth0``
(203.0.113.1 on the host, 203.0.113.2 outside); seed 001's red, blue and green
sit on bridge v-net-0 (192.168.1.0/24, the host at .254).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import netns_kit
from netns_kit import Host, NatRule, PortForward, Topology
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import backend, nft
from netns_kit.topology import scenarios

from .helpers import firewall_backend, request, serve
from .traffic import assert_dropped, assert_unanswered

OUT = scenarios.OUTSIDE_ADDRESS
HOST_OUT = scenarios.HOST_OUTSIDE_ADDRESS
GATEWAY = "192.168.1.254"
RED = "192.168.1.1"


@pytest.fixture
def world(sb: Sandbox) -> Iterator[Topology]:
    """Seed 001's bridge, red/blue/green with default routes, and the outside; no firewall."""
    topo = scenarios.seed001_bridge().add(*scenarios.outside())
    topo.wait = True
    with topo:
        yield topo


def test_masquerade_lets_red_reach_the_outside_as_the_host(world: Topology) -> None:
    red, outside = world["red"], world[scenarios.OUTSIDE]
    serve(outside, 9000, "outside")

    def control() -> bool:  # the outside server answers the host, which is on its link
        return request(Host(), OUT, 9000) == f"outside {HOST_OUT} hello"

    assert_unanswered(red, OUT, 9000, control=control)  # before any NatRule
    with NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0"):
        # the server sees the host's outside address: proof of MASQUERADE
        assert request(red, OUT, 9000) == f"outside {HOST_OUT} hello"
        assert request(world["green"], OUT, 9000) == f"outside {HOST_OUT} hello"
    assert_unanswered(red, OUT, 9000, control=control)  # the NatRule is gone


def test_masquerade_with_only_the_bridge_given(world: Topology) -> None:
    serve(world[scenarios.OUTSIDE], 9000, "outside")
    with NatRule("192.168.1.0/24", bridge="v-net-0"):
        assert request(world["blue"], OUT, 9000) == f"outside {HOST_OUT} hello"


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_outside_client_reaches_red_through_host_port_8080(world: Topology, protocol: str) -> None:
    udp = protocol == "udp"
    red, outside = world["red"], world[scenarios.OUTSIDE]
    serve(red, 80, "red", udp=udp)

    def control() -> bool:  # red's server answers blue, on its bridge
        return request(world["blue"], RED, 80, udp=udp) == "red 192.168.1.2 hello"

    assert_unanswered(outside, HOST_OUT, 8080, udp=udp, control=control)
    with PortForward(8080, RED, 80, protocol=protocol, bridge="v-net-0"):
        assert request(outside, HOST_OUT, 8080, udp=udp) == f"red {OUT} hello"
    assert_unanswered(outside, HOST_OUT, 8080, udp=udp, control=control)


def test_forward_scoped_by_inbound_interface_and_address(world: Topology) -> None:
    serve(world["red"], 80, "red")
    outside = world[scenarios.OUTSIDE]
    with PortForward(8080, RED, 80, in_interface="eth0", address=HOST_OUT, bridge="v-net-0"):
        assert request(outside, HOST_OUT, 8080) == f"red {OUT} hello"
        # not from the bridge side: blue's packets do not arrive on eth0
        assert_unanswered(
            world["blue"], HOST_OUT, 8080, control=lambda: request(outside, HOST_OUT, 8080) == f"red {OUT} hello"
        )
    with PortForward(8080, RED, 80, address=GATEWAY, bridge="v-net-0"):
        # scoped to 192.168.1.254: the host's outside address is not forwarded
        assert_unanswered(
            outside, HOST_OUT, 8080, control=lambda: request(Host(), GATEWAY, 8080) == f"red {GATEWAY} hello"
        )


def test_the_host_itself_reaches_the_forwarded_port(world: Topology) -> None:
    serve(world["red"], 80, "red")
    with PortForward(8080, RED, 80, bridge="v-net-0"):
        assert request(Host(), HOST_OUT, 8080) == f"red {HOST_OUT} hello"
        assert request(Host(), GATEWAY, 8080) == f"red {GATEWAY} hello"


def test_localhost_is_forwarded_only_when_opted_in(world: Topology, sb: Sandbox) -> None:
    serve(world["red"], 80, "red")
    with PortForward(8080, RED, 80, bridge="v-net-0"):
        assert_unanswered(
            Host(), "127.0.0.1", 8080, control=lambda: request(Host(), HOST_OUT, 8080) == f"red {HOST_OUT} hello"
        )
        assert Host().sysctl("net.ipv4.conf.v-net-0.route_localnet") == "0"
    with PortForward(8080, RED, 80, bridge="v-net-0", localhost=True):
        assert Host().sysctl("net.ipv4.conf.v-net-0.route_localnet") == "1"
        assert Host().sysctl("net.ipv4.conf.all.route_localnet") == "0"
        assert request(Host(), "127.0.0.1", 8080) == f"red {GATEWAY} hello"
    assert Host().sysctl("net.ipv4.conf.v-net-0.route_localnet") == "0"


def test_hairpin_works_only_when_opted_in(world: Topology) -> None:
    red = world["red"]
    serve(red, 80, "red")
    with PortForward(8080, RED, 80, bridge="v-net-0"):
        # red's request comes back to red through the bridge port it left by: not without hairpin
        assert_unanswered(red, GATEWAY, 8080, control=lambda: request(Host(), GATEWAY, 8080) == f"red {GATEWAY} hello")
    with PortForward(8080, RED, 80, bridge="v-net-0", bridge_port="veth-red", hairpin=True):
        assert _hairpin(world) is True
        assert request(red, GATEWAY, 8080) == f"red {GATEWAY} hello"
        assert request(red, HOST_OUT, 8080) == f"red {GATEWAY} hello"
    assert _hairpin(world) is False


def _hairpin(world: Topology) -> bool:
    (link,) = Host().run(["ip", "-j", "-d", "link", "show", "dev", "veth-red"]).json()
    return bool(link["linkinfo"]["info_slave_data"]["hairpin"])


def test_forwarding_works_under_a_forward_policy_of_drop_and_leaves_it(world: Topology, sb: Sandbox) -> None:
    """On iptables our accepts land in FORWARD itself, before its policy. On nft they are in our
    own table, and an accept there cannot override a drop elsewhere (docs: nat.rst, the one
    trap): the packets are dropped by FORWARD's policy, and ``auto`` takes iptables here."""
    host = Host()
    red, outside = world["red"], world[scenarios.OUTSIDE]
    serve(outside, 9000, "outside")
    serve(red, 80, "red")
    host.run(["iptables", "-w", "-P", "FORWARD", "DROP"], mutating=True)
    try:
        with (
            NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0"),
            PortForward(8080, RED, 80, bridge="v-net-0"),
        ):
            if firewall_backend(host) == "iptables":
                assert request(red, OUT, 9000) == f"outside {HOST_OUT} hello"
                assert request(outside, HOST_OUT, 8080) == f"red {OUT} hello"
            else:
                assert_dropped(red, OUT, 9000, by=[host])
                assert_dropped(outside, HOST_OUT, 8080, by=[host])
                assert backend.choice("auto", sb, None, NatRule.needs).backend == "iptables"
        assert ":FORWARD DROP" in host.run(["iptables-save", "-t", "filter"]).stdout
    finally:
        host.run(["iptables", "-w", "-P", "FORWARD", "ACCEPT"], mutating=True)


# -- IPv6 --------------------------------------------------------------------------


@pytest.fixture
def world6(sb: Sandbox) -> Iterator[Topology]:
    """The same world with ULA inside (fd00:1::/64) and a documentation prefix outside."""
    from netns_kit import Bridge, Namespace, Route, VethPair

    topo = Topology(
        [
            Bridge("v-net-0", addresses=["192.168.1.254/24", "fd00:1::fe/64"]),
            Namespace("red"),
            VethPair("veth-red", "red-veth", peer_netns="red", bridge="v-net-0", peer_addresses=["fd00:1::1/64"]),
            Route("default6", via="fd00:1::fe", netns="red"),
            Namespace(scenarios.OUTSIDE),
            VethPair(
                "eth0",
                "wan0",
                peer_netns=scenarios.OUTSIDE,
                addresses="2001:db8::1/64",
                peer_addresses="2001:db8::2/64",
            ),
        ],
        wait=True,
    )
    with topo:
        yield topo


def test_ipv6_masquerade_lets_red_reach_the_outside_as_the_host(world6: Topology) -> None:
    red, outside = world6["red"], world6[scenarios.OUTSIDE]
    serve(outside, 9000, "outside", bind="::")
    assert_unanswered(
        red, "2001:db8::2", 9000, control=lambda: request(Host(), "2001:db8::2", 9000) == "outside 2001:db8::1 hello"
    )
    with NatRule("fd00:1::/64", out_interface="eth0", bridge="v-net-0"):
        assert Host().sysctl("net.ipv6.conf.all.forwarding") == "1"
        assert request(red, "2001:db8::2", 9000) == "outside 2001:db8::1 hello"
    assert Host().sysctl("net.ipv6.conf.all.forwarding") == "0"


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_ipv6_outside_client_reaches_red_through_host_port_8080(world6: Topology, protocol: str) -> None:
    udp = protocol == "udp"
    red, outside = world6["red"], world6[scenarios.OUTSIDE]
    serve(red, 80, "red", bind="::", udp=udp)
    assert_unanswered(
        outside,
        "2001:db8::1",
        8080,
        udp=udp,
        control=lambda: request(Host(), "fd00:1::1", 80, udp=udp) == "red fd00:1::fe hello",
    )
    with PortForward(8080, "fd00:1::1", 80, protocol=protocol, bridge="v-net-0"):
        assert request(outside, "2001:db8::1", 8080, udp=udp) == "red 2001:db8::2 hello"
        assert request(Host(), "2001:db8::1", 8080, udp=udp) == "red 2001:db8::1 hello"


def test_localhost_guard_drops_packets_to_127_from_the_bridge(world: Topology) -> None:
    """route_localnet=1 on v-net-0 would let a namespace on the bridge reach the host's
    127.0.0.1 services; the raw-table guard drops exactly those packets."""
    blue = world["blue"]
    server = serve(Host(), 9999, "secret", bind="127.0.0.1")
    # make blue send to 127.0.0.1 through the bridge, as an attacker on the link could
    blue.run(["ip", "addr", "del", "127.0.0.1/8", "dev", "lo"], mutating=True)
    blue.run(["ip", "route", "add", "127.0.0.1/32", "via", GATEWAY], mutating=True)
    blue.set_sysctl("net.ipv4.conf.blue-veth.route_localnet", 1)
    forward = PortForward(8080, RED, 80, bridge="v-net-0", localhost=True).create()
    try:
        try:
            if firewall_backend(Host()) == "iptables":
                assert_dropped(blue, "127.0.0.1", 9999, by=[Host()])
                tag = netns_kit.current().owner.tag
                jump = ["PREROUTING", "-m", "comment", "--comment", tag, "-j", forward.chain("RAW")]
                Host().run(["iptables", "-w", "-t", "raw", "-D", *jump], mutating=True)
            else:  # nft's drop counts nothing: unanswered while the host answers itself, then the guard goes
                assert_unanswered(
                    blue,
                    "127.0.0.1",
                    9999,
                    control=lambda: request(Host(), "127.0.0.1", 9999) == "secret 127.0.0.1 hello",
                )
                owned = backend.table(netns_kit.current(), None, None, forward.needs)
                where = [nft.families(4, owned.split), owned.name]
                Host().run(["nft", "flush", "chain", *where, forward.chain("RAW")], mutating=True)
            # without the guard the host's loopback service answers blue: the guard is what protects it
            assert request(blue, "127.0.0.1", 9999) == "secret 192.168.1.2 hello"
        finally:
            forward.delete()  # the jump (the rule) removed by hand is skipped (-C first; nft flushes), the rest goes
        # route_localnet=1 on v-net-0 went with the guard: 127.0.0.1 from the bridge is a martian again
        assert Host().sysctl("net.ipv4.conf.v-net-0.route_localnet") == "0"
        assert_unanswered(
            blue, "127.0.0.1", 9999, control=lambda: request(Host(), "127.0.0.1", 9999) == "secret 127.0.0.1 hello"
        )
    finally:
        server.stop()
