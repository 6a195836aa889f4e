"""Bad input: each case is rejected with a ValidationError naming the field, before any
command runs (no command, no query, the sandbox's state unchanged), and the same case in
a topology file gives an error naming the key.

    pytest tests/stress/test_bad_input.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest

import netns_kit
from netns_kit import (
    Bridge,
    Namespace,
    NatRule,
    PortForward,
    Recorder,
    Route,
    Topology,
    ValidationError,
    VethPair,
)
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.owner import Owner
from netns_kit.topology.tomlfile import TopologyFileError, loads

#: a valid file every TOML case adds to (one more entry, or one key changed)
BASE = """
[[namespaces]]
name = "red"

[[bridges]]
name = "br0"
addresses = "10.0.0.254/24"

[[veths]]
name = "veth-red"
peer = "eth0"
peer_netns = "red"
bridge = "br0"
peer_addresses = "10.0.0.1/24"
"""


def toml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def base_topology(*more: Any) -> Topology:
    return Topology(
        [
            Namespace("red"),
            Bridge("br0", addresses="10.0.0.254/24"),
            VethPair("veth-red", "eth0", peer_netns="red", bridge="br0", peer_addresses="10.0.0.1/24"),
            *more,
        ]
    )


@attrs.frozen
class Case:
    id: str
    build: Callable[[], Any]  # raises ValidationError
    field: str  # ValidationError.field
    entry: str  # TOML added to BASE
    key: str  # TopologyFileError.key


def bad_ifname(name: str, label: str) -> Case:
    return Case(
        f"interface name {label}",
        lambda: VethPair(name, "p1"),
        "VethPair.name",
        f"[[veths]]\nname = {toml(name)}\npeer = 'p1'\n",
        "veths[1].name",
    )


def bad_netns(name: str, label: str) -> Case:
    return Case(
        f"namespace name {label}",
        lambda: Namespace(name),
        "Namespace.name",
        f"[[namespaces]]\nname = {toml(name)}\n",
        "namespaces[1].name",
    )


def forward(port: Any, to: str = "10.0.0.1", **extra: Any) -> Callable[[], Any]:
    return lambda: base_topology(PortForward(port, to, 80, bridge="br0", **extra))


def forward_entry(port: Any, to: str = "10.0.0.1", **extra: Any) -> str:
    lines = [f"port = {toml(port)}", f"to = {toml(to)}", "to_port = 80", "bridge = 'br0'"]
    lines += [f"{k} = {toml(v)}" for k, v in extra.items()]
    return "[[port_forwards]]\n" + "\n".join(lines) + "\n"


CASES = [
    bad_ifname("a" * 16, "of 16 bytes"),
    bad_ifname("é" * 8, "of 16 bytes in UTF-8"),
    bad_ifname("", "empty"),
    bad_ifname(".", "'.'"),
    bad_ifname("..", "'..'"),
    bad_ifname("a/b", "with '/'"),
    bad_ifname("a:b", "with ':'"),
    bad_ifname("a b", "with a space"),
    bad_ifname("$(id)", "'$(id)'"),
    bad_ifname("a;rm", "'a;rm'"),
    bad_ifname("-x", "with a leading '-'"),
    bad_ifname("vé", "non-ASCII"),
    bad_ifname("all", "'all'"),
    bad_ifname("default", "'default'"),
    bad_ifname("lo", "'lo'"),
    bad_netns("", "empty"),
    bad_netns("..", "'..'"),
    bad_netns("a/b", "with '/'"),
    bad_netns("-n", "with a leading '-'"),
    bad_netns("$(id)", "'$(id)'"),
    bad_netns("x" * 65, "of 65 bytes"),
    bad_netns("rouge-é", "non-ASCII"),
    Case(
        "duplicate namespace",
        lambda: base_topology(Namespace("red")),
        "Namespace.name",
        "[[namespaces]]\nname = 'red'\n",
        "namespaces[1].name",
    ),
    Case(
        "duplicate interface",
        lambda: base_topology(Bridge("br0")),
        "interface name",
        "[[bridges]]\nname = 'br0'\n",
        "bridges[1].name",
    ),
    Case(
        "prefix /33",
        lambda: Bridge("br1", addresses="10.1.0.1/33"),
        "Bridge.addresses",
        "[[bridges]]\nname = 'br1'\naddresses = '10.1.0.1/33'\n",
        "bridges[1].addresses",
    ),
    Case(
        "address that is its subnet",
        lambda: Bridge("br1", addresses="10.1.0.0/24"),
        "Bridge.addresses",
        "[[bridges]]\nname = 'br1'\naddresses = '10.1.0.0/24'\n",
        "bridges[1].addresses",
    ),
    Case(
        "address that is its subnet's broadcast",
        lambda: VethPair("v1", "p1", addresses="10.1.0.255/24"),
        "VethPair.addresses",
        "[[veths]]\nname = 'v1'\npeer = 'p1'\naddresses = '10.1.0.255/24'\n",
        "veths[1].addresses",
    ),
    Case(
        "gateway not on link",
        lambda: base_topology(Route("default", via="10.9.0.1", netns="red")),
        "Route.via",
        "[[routes]]\ndestination = 'default'\nvia = '10.9.0.1'\nnetns = 'red'\n",
        "routes[0].via",
    ),
    Case(
        "overlapping bridge subnets",
        lambda: base_topology(Bridge("br1", addresses="10.0.0.129/25")),
        "Bridge.addresses",
        "[[bridges]]\nname = 'br1'\naddresses = '10.0.0.129/25'\n",
        "bridges[1].addresses",
    ),
    Case("port 0", forward(0), "PortForward.port", forward_entry(0), "port_forwards[0].port"),
    Case("port 65536", forward(65536), "PortForward.port", forward_entry(65536), "port_forwards[0].port"),
    Case("port '80'", forward("80"), "PortForward.port", forward_entry("80"), "port_forwards[0].port"),
    Case(
        "unknown protocol",
        forward(8080, protocol="sctp"),
        "PortForward.protocol",
        forward_entry(8080, protocol="sctp"),
        "port_forwards[0].protocol",
    ),
    Case(
        "forward to an address no namespace has",
        forward(8080, "10.0.0.99"),
        "PortForward.to",
        forward_entry(8080, "10.0.0.99"),
        "port_forwards[0].to",
    ),
    Case(
        "localhost forwarding without its opt-in",
        forward(8080, address="127.0.0.1"),
        "PortForward.address",
        forward_entry(8080, address="127.0.0.1"),
        "port_forwards[0].address",
    ),
    Case(
        "chain name too long",
        lambda: NatRule("10.0.0.0/24", bridge="br0", name="x" * 17),
        "NatRule.name",
        "[[nat_rules]]\nsource = '10.0.0.0/24'\nbridge = 'br0'\nname = 'xxxxxxxxxxxxxxxxx'\n",
        "nat_rules[0].name",
    ),
    Case(
        "tag too long",
        lambda: Owner("x" * 65),
        "Owner.id",
        "[topology]\nname = '" + "x" * 59 + "'\n",
        "topology.name",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_rejected_naming_the_field_before_any_command(case: Case) -> None:
    recorder = Recorder()
    with netns_kit.use(recorder), pytest.raises(ValidationError) as info:
        topology = case.build()
        topology.up()  # never reached: the value itself is refused
    assert info.value.field == case.field
    assert str(info.value).startswith(f"{case.field}: ")
    assert recorder.commands == [] and recorder.queries == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_in_a_topology_file_names_the_key(case: Case) -> None:
    loads(BASE)  # the base is fine
    with pytest.raises(TopologyFileError) as info:
        loads(BASE + "\n" + case.entry, source="net.toml")
    assert info.value.key == case.key, str(info.value)
    assert str(info.value).startswith(f"net.toml: {case.key}: ")


def test_bad_input_leaves_the_sandbox_as_it_was(sb: Sandbox, figures: Callable[[str], None]) -> None:
    before = state.snapshot(sb)
    for case in CASES:
        with pytest.raises(ValidationError):
            case.build().up(sb)
    assert state.diff(before, state.snapshot(sb)) == []
    figures(f"{len(CASES)} bad inputs: {len(CASES)} rejected before any command, in Python and in topology files")
