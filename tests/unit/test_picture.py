"""The topology picture, as Mermaid and as dot, from the same description."""

from __future__ import annotations

from netns_kit import Address, Bridge, Namespace, Topology, VethPair
from netns_kit.topology import picture, scenarios


def test_seed001_bridge_as_mermaid(golden) -> None:  # type: ignore[no-untyped-def]
    golden("seed001_bridge.mmd", picture.mermaid(scenarios.seed001_bridge()))


def test_seed001_bridge_as_dot(golden) -> None:  # type: ignore[no-untyped-def]
    golden("seed001_bridge.dot", picture.dot(scenarios.seed001_bridge()))


def test_seed001_nat_as_mermaid(golden) -> None:  # type: ignore[no-untyped-def]
    golden("seed001_nat.mmd", picture.mermaid(scenarios.seed001_nat()))


def test_nat_and_port_forward_are_drawn_toward_the_outside() -> None:
    pic = picture.picture(scenarios.seed001_nat())
    labels = {n.id: n.label for n in pic.nodes}
    nat = next(i for i, label in labels.items() if label.startswith("NAT: MASQUERADE"))
    forward = next(i for i, label in labels.items() if label.startswith("port forward tcp/8080"))
    outside = next(i for i, label in labels.items() if label == "the outside")
    edges = {(labels[e.a].split(" ")[0], labels[e.b].split(" ")[0], e.label) for e in pic.edges}
    assert ("v-net-0", "NAT:", "NAT") in edges
    assert (labels[nat].split(" ")[0], "the", "eth0") in edges
    assert ("port", "red-veth", "DNAT") in edges
    assert any(e.a == outside and e.b == forward and e.label == "tcp/8080" for e in pic.edges)


def test_every_namespace_is_a_box_with_its_interfaces() -> None:
    pic = picture.picture(scenarios.seed001_bridge())
    assert pic.places == [None, "red", "blue", "green"]
    inside = {(n.place, n.label.split(" ")[0]) for n in pic.nodes}
    assert ("red", "red-veth") in inside and (None, "veth-red") in inside and (None, "v-net-0") in inside
    assert [e.label for e in pic.edges].count("veth pair") == 3
    assert [e.label for e in pic.edges].count("port") == 3
    assert pic.notes["red"] == ["route default via 192.168.1.254"]


def test_an_empty_namespace_still_shows_and_an_empty_host_does_not() -> None:
    text = picture.mermaid(Topology([Namespace("lonely")]))
    assert 'subgraph p1["netns lonely"]' in text and '["(empty)"]' in text
    assert '"host"' not in text


def test_an_existing_interface_given_addresses_is_drawn() -> None:
    topo = Topology([Bridge("br0"), VethPair("a", "b", bridge="br0"), Address("eth0", "203.0.113.1/24")])
    text = picture.dot(topo)
    assert '"eth0 (existing)\\n203.0.113.1/24"' in text


def test_labels_are_escaped() -> None:
    assert picture._mm('say "hi"\nthere') == "say #quot;hi#quot;<br/>there"
    assert picture._dq('say "hi"\nthere') == '"say \\"hi\\"\\nthere"'
