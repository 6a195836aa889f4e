"""Bad NAT and port-forward input raises ValidationError naming the field, before any command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import netns_kit
from netns_kit import Bridge, Namespace, NatRule, Owner, PortForward, Recorder, Topology, ValidationError, VethPair

CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("bad CIDR", lambda: NatRule("192.168.1.0/33", bridge="br0"), "NatRule.source"),
    ("CIDR with host bits", lambda: NatRule("192.168.1.1/24", bridge="br0"), "NatRule.source"),
    ("not an address", lambda: NatRule("red", bridge="br0"), "NatRule.source"),
    ("loopback source", lambda: NatRule("127.0.0.0/8", bridge="br0"), "NatRule.source"),
    ("bare masquerade", lambda: NatRule("10.0.0.0/24"), "NatRule.out_interface"),
    ("out is the bridge", lambda: NatRule("10.0.0.0/24", out_interface="br0", bridge="br0"), "NatRule.out_interface"),
    ("bad out interface", lambda: NatRule("10.0.0.0/24", out_interface="e" * 16), "NatRule.out_interface"),
    ("bad netns", lambda: NatRule("10.0.0.0/24", bridge="br0", netns="a/b"), "NatRule.netns"),
    ("forward as string", lambda: NatRule("10.0.0.0/24", bridge="br0", forward="yes"), "NatRule.forward"),
    ("port 0", lambda: PortForward(0, "10.0.0.2"), "PortForward.port"),
    ("port 65536", lambda: PortForward(65536, "10.0.0.2"), "PortForward.port"),
    ("port as string", lambda: PortForward("80", "10.0.0.2"), "PortForward.port"),
    ("port as float", lambda: PortForward(80.0, "10.0.0.2"), "PortForward.port"),
    ("port as bool", lambda: PortForward(True, "10.0.0.2"), "PortForward.port"),
    ("to_port 0", lambda: PortForward(80, "10.0.0.2", 0), "PortForward.to_port"),
    ("to_port 65536", lambda: PortForward(80, "10.0.0.2", 65536), "PortForward.to_port"),
    ("to_port as string", lambda: PortForward(80, "10.0.0.2", "80"), "PortForward.to_port"),
    ("unknown protocol", lambda: PortForward(80, "10.0.0.2", protocol="icmp"), "PortForward.protocol"),
    ("protocol in capitals", lambda: PortForward(80, "10.0.0.2", protocol="TCP"), "PortForward.protocol"),
    ("destination with prefix", lambda: PortForward(80, "10.0.0.2/24"), "PortForward.to"),
    ("loopback destination", lambda: PortForward(80, "127.0.0.1"), "PortForward.to"),
    ("address family mix", lambda: PortForward(80, "10.0.0.2", address="fd00::1"), "PortForward.address"),
    ("loopback address", lambda: PortForward(80, "10.0.0.2", address="127.0.0.1"), "PortForward.address"),
    ("localhost without bridge", lambda: PortForward(80, "10.0.0.2", localhost=True), "PortForward.bridge"),
    ("localhost on IPv6", lambda: PortForward(80, "fd00::2", bridge="b", localhost=True), "PortForward.localhost"),
    ("hairpin without port", lambda: PortForward(80, "10.0.0.2", hairpin=True), "PortForward.bridge_port"),
    ("hairpin as string", lambda: PortForward(80, "10.0.0.2", hairpin="on"), "PortForward.hairpin"),
    ("chain tag too long", lambda: PortForward(80, "10.0.0.2", name="x" * 17), "PortForward.name"),
    ("chain tag with space", lambda: NatRule("10.0.0.0/24", bridge="b", name="a b"), "NatRule.name"),
    ("owner tag too long", lambda: PortForward(80, "10.0.0.2", executor=Recorder(owner=Owner("x" * 65))), "Owner.id"),
]


@pytest.mark.parametrize(("what", "build", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_values_are_rejected_naming_the_field(what: str, build: Callable[[], Any], field: str) -> None:
    recorder = Recorder()
    with netns_kit.use(recorder), pytest.raises(ValidationError) as info:
        build().create()
    assert info.value.field == field
    assert recorder.commands == [] and recorder.queries == []


def _lan(*extra: Any) -> Topology:
    return Topology(
        [
            Namespace("red"),
            Bridge("br0", addresses="10.0.0.254/24"),
            VethPair("veth-red", "red-veth", peer_netns="red", bridge="br0", peer_addresses="10.0.0.1/24"),
            *extra,
        ]
    )


TOPOLOGY_CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("forward to an address nobody has", lambda: _lan(PortForward(80, "10.0.0.9")), "PortForward.to"),
    ("forward via unknown bridge", lambda: _lan(PortForward(80, "10.0.0.1", bridge="br9")), "PortForward.bridge"),
    ("nat via unknown bridge", lambda: _lan(NatRule("10.0.0.0/24", bridge="br9")), "NatRule.bridge"),
    (
        "hairpin port not on the bridge",
        lambda: _lan(PortForward(80, "10.0.0.1", bridge="br0", bridge_port="red-veth", hairpin=True)),
        "PortForward.bridge_port",
    ),
    (
        "the same forward twice",
        lambda: _lan(PortForward(80, "10.0.0.1"), PortForward(80, "10.0.0.1")),
        "PortForward.name",
    ),
    (
        "two rules with one chain name",
        lambda: _lan(
            NatRule("10.0.0.0/24", bridge="br0", name="lan"), NatRule("10.1.0.0/24", bridge="br0", name="lan")
        ),
        "NatRule.name",
    ),
    ("nat in an unknown namespace", lambda: _lan(NatRule("10.0.0.0/24", bridge="br0", netns="r2")), "NatRule.netns"),
]


@pytest.mark.parametrize(("what", "build", "field"), TOPOLOGY_CASES, ids=[c[0] for c in TOPOLOGY_CASES])
def test_topology_rejects_firewall_rules_that_cannot_work(what: str, build: Callable[[], Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.field == field


def test_a_forward_to_a_namespace_of_the_topology_is_accepted() -> None:
    topo = _lan(
        NatRule("10.0.0.0/24", out_interface="eth0", bridge="br0"),
        PortForward(80, "10.0.0.1", bridge="br0", bridge_port="veth-red", hairpin=True),
        PortForward(53, "10.0.0.1", protocol="udp"),
    )
    assert [type(r).__name__ for r in topo.ordered()][-3:] == ["NatRule", "PortForward", "PortForward"]
