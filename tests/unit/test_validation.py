"""Bad input raises ValidationError naming field, value and rule, before any command exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import netns_kit
from netns_kit import Address, Bridge, Namespace, Recorder, Route, ValidationError, VethPair
from netns_kit.topology.topology import Topology

BAD_IFNAMES = [
    ("a" * 16, "at most 15 bytes"),
    ("", "must not be empty"),
    (".", "characters outside"),  # '.' alone passes the charset; reserved check below
    ("a/b", "characters outside"),
    ("a:b", "characters outside"),
    ("a b", "characters outside"),
    ("$(id)", "characters outside"),
    ("a;rm", "characters outside"),
    ("-x", "starts with '-'"),
    ("vé", "characters outside"),
    ("all", "reserved"),
    ("default", "reserved"),
    ("lo", "reserved"),
    ("..", "reserved"),
]


@pytest.mark.parametrize(("name", "rule"), BAD_IFNAMES)
def test_bad_interface_names_are_rejected(name: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        VethPair(name, "ok-peer")
    assert info.value.field == "VethPair.name"
    assert info.value.value == name
    if name != ".":
        assert rule in str(info.value)


def test_a_15_byte_name_is_fine() -> None:
    assert VethPair("a" * 15, "b").name == "a" * 15


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a b", "-n", "$(id)", "x" * 65, "ré"])
def test_bad_namespace_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        Namespace(name)
    assert info.value.field == "Namespace.name"


CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("bad address", lambda: VethPair("a", "b", addresses="10.0.0.1"), "VethPair.addresses"),
    ("prefix 33", lambda: VethPair("a", "b", addresses="10.0.0.1/33"), "VethPair.addresses"),
    ("not an address", lambda: Bridge("br0", addresses="nonsense/24"), "Bridge.addresses"),
    ("mtu too small", lambda: VethPair("a", "b", mtu=10), "VethPair.mtu"),
    ("mtu as string", lambda: VethPair("a", "b", mtu="1500"), "VethPair.mtu"),
    ("bad mac", lambda: VethPair("a", "b", mac="zz"), "VethPair.mac"),
    ("multicast mac", lambda: VethPair("a", "b", mac="01:00:00:00:00:01"), "VethPair.mac"),
    ("same end twice", lambda: VethPair("a", "a"), "VethPair.peer"),
    (
        "one address on both ends",
        lambda: VethPair("a", "b", addresses="10.0.0.1/24", peer_addresses="10.0.0.1/24"),
        "VethPair.peer_addresses",
    ),
    (
        "one address on both ends, other prefix",
        lambda: VethPair("a", "b", addresses=["10.0.0.1/24", "fd00::1/64"], peer_addresses="fd00::1/80"),
        "VethPair.peer_addresses",
    ),
    (
        "one address twice on one end",
        lambda: VethPair("a", "b", addresses=["10.0.0.1/24", "10.0.0.1/16"]),
        "VethPair.addresses",
    ),
    ("one address twice on a bridge", lambda: Bridge("br0", addresses=["fd00::1/64"] * 2), "Bridge.addresses"),
    ("bad bridge name", lambda: VethPair("a", "b", bridge="x" * 16), "VethPair.bridge"),
    ("bad peer netns", lambda: VethPair("a", "b", peer_netns="a/b"), "VethPair.peer_netns"),
    ("route without target", lambda: Route("10.0.0.0/24"), "Route.via"),
    ("route host bits set", lambda: Route("10.0.0.1/24", dev="eth0"), "Route.destination"),
    ("route family mix", lambda: Route("10.0.0.0/24", via="fd00::1"), "Route.via"),
    ("route bad gateway", lambda: Route("default", via="300.1.1.1"), "Route.via"),
    ("stp as string", lambda: Bridge("br0", stp="yes"), "Bridge.stp"),
    ("unknown addrgenmode", lambda: VethPair("a", "b", addrgenmode="off"), "VethPair.addrgenmode"),
    ("addrgenmode needing a secret", lambda: Bridge("br0", addrgenmode="stable_secret"), "Bridge.addrgenmode"),
]


@pytest.mark.parametrize(("what", "build", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_values_are_rejected_naming_the_field(what: str, build: Callable[[], Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


TOPOLOGY_CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("duplicate namespace", lambda: Topology([Namespace("a"), Namespace("a")]), "Namespace.name"),
    ("duplicate interface", lambda: Topology([Bridge("br0"), Bridge("br0")]), "interface name"),
    ("unknown namespace", lambda: Topology([VethPair("a", "b", peer_netns="nowhere")]), "VethPair.peer_netns"),
    ("unknown bridge", lambda: Topology([VethPair("a", "b", bridge="br9")]), "VethPair.bridge"),
    (
        "overlapping bridges",
        lambda: Topology([Bridge("br0", addresses="10.0.0.1/24"), Bridge("br1", addresses="10.0.0.129/25")]),
        "Bridge.addresses",
    ),
    (
        "overlapping subnets of two veth ends in one namespace",
        lambda: Topology(
            [
                Namespace("red"),
                VethPair("h1", "r1", peer_netns="red", peer_addresses="10.0.0.1/24"),
                VethPair("h2", "r2", peer_netns="red", peer_addresses="10.0.0.129/25"),
            ]
        ),
        "VethPair.peer_addresses",
    ),
    (
        "overlapping subnets of a bridge and a veth on the host",
        lambda: Topology(
            [
                Namespace("red"),
                Bridge("br0", addresses="10.0.0.254/24"),
                VethPair("h1", "r1", peer_netns="red", addresses="10.0.0.9/16"),
            ]
        ),
        "VethPair.addresses",
    ),
    (
        "both ends of a veth in one namespace on one subnet",
        lambda: Topology([VethPair("v0", "v1", addresses="10.0.0.1/24", peer_addresses="10.0.0.2/24")]),
        "VethPair.peer_addresses",
    ),
    (
        "an address added to another interface on an overlapping IPv6 subnet",
        lambda: Topology(
            [
                Namespace("red"),
                VethPair("h1", "r1", peer_netns="red", peer_addresses="fd00:1::1/64"),
                VethPair("h2", "r2", peer_netns="red"),
                Address("r2", "fd00:1::2/48", netns="red"),
            ]
        ),
        "Address.addresses",
    ),
    (
        "an address added again to the interface that has it",
        lambda: Topology(
            [
                Namespace("red"),
                VethPair("h1", "r1", peer_netns="red", peer_addresses="10.0.0.1/24"),
                Address("r1", "10.0.0.1/24", netns="red"),
            ]
        ),
        "Address.addresses",
    ),
    (
        "gateway not on link",
        lambda: Topology(
            [
                Namespace("red"),
                VethPair("a", "b", peer_netns="red", peer_addresses="10.0.0.1/24"),
                Route("default", via="10.9.0.1", netns="red"),
            ]
        ),
        "Route.via",
    ),
]


@pytest.mark.parametrize(("what", "build", "field"), TOPOLOGY_CASES, ids=[c[0] for c in TOPOLOGY_CASES])
def test_topology_rejects_what_cannot_work_as_a_whole(what: str, build: Callable[[], Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert info.value.field == field


def test_an_overlap_says_which_interface_and_namespace_hold_the_other_subnet() -> None:
    with pytest.raises(ValidationError) as info:
        Topology(
            [
                Namespace("red"),
                VethPair("h1", "r1", peer_netns="red", peer_addresses="10.0.0.1/24"),
                VethPair("h2", "r2", peer_netns="red", peer_addresses="10.0.0.129/25"),
            ]
        )
    assert info.value.value == "10.0.0.129/25"
    assert "overlaps 10.0.0.0/24 of r1 in red" in str(info.value)


def test_the_same_subnet_in_other_namespaces_or_on_one_interface_is_fine() -> None:
    Topology(
        [
            Namespace("a"),
            Namespace("b"),
            # a pipe: one subnet, one end in each namespace
            VethPair(
                "a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.0.0.1/24", peer_addresses="10.0.0.2/24"
            ),
            # a second address on the same interface, and a host address (/32, /128) on another
            Address("a-eth", "10.0.0.3/24", netns="a"),
            VethPair("a-2", "b-2", netns="a", peer_netns="b", addresses=["10.0.0.9/32", "fd00::9/128"]),
            # link-local subnets are per link
            Address("b-eth", "fe80::1/64", netns="b"),
            Address("b-2", "fe80::2/64", netns="b"),
            # the same subnet on the host as in the namespaces
            Bridge("br0", addresses="10.0.0.254/24"),
        ]
    )


def test_rejected_input_runs_no_command() -> None:
    recorder = Recorder()
    with netns_kit.use(recorder), pytest.raises(ValidationError):
        Topology([Namespace("ok"), VethPair("a", "b", peer_netns="ok", addresses="10.0.0.1/33")]).up()
    assert recorder.commands == [] and recorder.queries == []
