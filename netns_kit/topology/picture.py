"""The topology picture: namespaces, bridges, links and NAT as Mermaid or Graphviz dot.

Both are drawn from the same :class:`Picture` (boxes for the host and each
namespace, interfaces inside, veth pairs and bridge ports as edges), which is
built from a :class:`~netns_kit.topology.topology.Topology`; nothing runs.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

import attrs

from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.portforward import PortForward
from netns_kit.lifecycle.interfaces import Interface, Interfaces
from netns_kit.lifecycle.resource import Resource
from netns_kit.resources.namespace import Namespace
from netns_kit.resources.route import Route
from netns_kit.topology.topology import Topology

HOST = "host"


@attrs.frozen
class Node:
    id: str
    label: str
    place: str | None  # namespace name, None: the host
    shape: str  # "interface", "bridge", "rule", "outside"


@attrs.frozen
class Edge:
    a: str
    b: str
    label: str = ""
    style: str = "solid"  # "solid": a cable, "dashed": a port/membership, "dotted": NAT


@attrs.define
class Picture:
    places: list[str | None] = attrs.field(factory=lambda: [None])
    nodes: list[Node] = attrs.field(factory=list)
    edges: list[Edge] = attrs.field(factory=list)
    notes: dict[str | None, list[str]] = attrs.field(factory=dict)
    addresses: dict[tuple[str, str | None], list[str]] = attrs.field(factory=dict)

    def node(self, label: str, place: str | None, shape: str, key: Any) -> str:
        node_id = f"n{len(self.nodes) + 1}"
        self._ids[key] = node_id
        self.nodes.append(Node(node_id, label, place, shape))
        if place not in self.places:
            self.places.append(place)
        return node_id

    _ids: dict[Any, str] = attrs.field(factory=dict, init=False)

    def find(self, key: Any) -> str | None:
        return self._ids.get(key)


def picture(topology: Topology) -> Picture:
    """The picture of ``topology``, in creation order."""
    pic = Picture()
    resources = topology.ordered()
    held = Interfaces.build(resources).held
    addresses = pic.addresses = {key: [str(a) for a in on] for key, on in held.items()}
    for resource in resources:
        interfaces = resource.interfaces()
        if interfaces:
            _interfaces(pic, interfaces)
        elif isinstance(resource, Namespace):
            if resource.name not in pic.places:
                pic.places.append(resource.name)
        elif isinstance(resource, Route):
            via = f" via {resource.via}" if resource.via is not None else ""
            dev = f" dev {resource.dev}" if resource.dev else ""
            pic.notes.setdefault(resource.netns, []).append(f"route {resource.destination}{via}{dev}")
        elif isinstance(resource, NatRule):
            _nat(pic, resource)
        elif isinstance(resource, PortForward):
            _forward(pic, resource, addresses)
        else:
            _other(pic, resource)
    return pic


def _interfaces(pic: Picture, interfaces: tuple[Interface, ...]) -> None:
    """The interfaces of one resource (a bridge, a veth pair's ends, an existing one given
    addresses), the cables between them and their bridge ports."""
    for interface in interfaces:
        if interface.made:
            label = _label(interface.name, pic.addresses.get(interface.key, ()), interface.kind)
            pic.node(label, interface.netns, "bridge" if interface.kind == "bridge" else "interface", interface.key)
        elif pic.find(interface.key) is None:  # addresses on one made elsewhere: drawn once
            label = _label(interface.name, [str(a) for a in interface.addresses], interface.kind)
            pic.node(label, interface.netns, "interface", interface.key)
    cables: set[frozenset[tuple[str, str | None]]] = set()
    for interface in interfaces:
        node = pic.find(interface.key)
        peer = pic.find(interface.peer) if interface.peer else None
        if node is not None and peer is not None and interface.peer is not None:
            cable = frozenset((interface.key, interface.peer))
            if cable not in cables:
                cables.add(cable)
                pic.edges.append(Edge(node, peer, f"{interface.kind} pair"))
        bridge = pic.find((interface.master, interface.netns)) if interface.master else None
        if node is not None and bridge is not None:
            pic.edges.append(Edge(node, bridge, "port", "dashed"))


def _addresses_in(pic: Picture, netns: str | None) -> dict[tuple[str, str | None], list[str]]:
    return {key: held for key, held in pic.addresses.items() if key[1] == netns}


def _nat(pic: Picture, rule: NatRule) -> None:
    """MASQUERADE: the subnet's bridge -> the rule -> the interface it leaves by (or "outside")."""
    out = f"out of {rule.out_interface}" if rule.out_interface else f"not out of {rule.bridge}"
    node = pic.node(f"NAT: MASQUERADE\n{rule.source}\n{out}", rule.netns, "rule", id(rule))
    for (name, netns), held in _addresses_in(pic, rule.netns).items():
        if any(ipaddress.ip_interface(a).ip in rule.source for a in held) and (inside := pic.find((name, netns))):
            pic.edges.append(Edge(inside, node, "NAT", "dotted"))
    exit_ = pic.find((rule.out_interface, rule.netns)) if rule.out_interface else None
    if exit_ is None:
        exit_ = pic.find("outside") or pic.node("the outside", rule.netns, "outside", "outside")
        label = rule.out_interface or "any other interface"
    else:
        label = ""
    pic.edges.append(Edge(node, exit_, label, "dotted"))


def _forward(pic: Picture, forward: PortForward, addresses: dict[tuple[str, str | None], list[str]]) -> None:
    """A port forward: the rule -> the interface that holds the destination address."""
    scope = f" on {forward.address}" if forward.address else ""
    scope += f" from {forward.in_interface}" if forward.in_interface else ""
    extra = [word for word, on in (("localhost", forward.localhost), ("hairpin", forward.hairpin)) if on]
    label = f"port forward {forward.protocol}/{forward.port}{scope}\n-> {forward.destination}"
    if extra:
        label += "\n" + ", ".join(extra)
    node = pic.node(label, forward.netns, "rule", id(forward))
    outside = pic.find("outside") or pic.node("the outside", forward.netns, "outside", "outside")
    pic.edges.append(Edge(outside, node, f"{forward.protocol}/{forward.port}", "dotted"))
    for (name, netns), held in addresses.items():
        if any(a.split("/")[0] == str(forward.to) for a in held):
            target = pic.find((name, netns))
            if target is not None:
                pic.edges.append(Edge(node, target, "DNAT", "dotted"))


def _other(pic: Picture, resource: Resource) -> None:
    """NAT rules, port forwards and any other kind: a rule node in its namespace."""
    netns = getattr(resource, "netns", None)
    fields = [
        f"{a.name}={_value(getattr(resource, a.name))}"
        for a in attrs.fields(type(resource))
        if a.init
        and a.name not in ("executor", "adopt", "netns")
        and getattr(resource, a.name) not in (None, (), False)
    ]
    label = type(resource).__name__ + "\n" + "\n".join(fields)
    pic.node(label, netns, "rule", id(resource))


def _value(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _label(name: str, addresses: Iterable[str], kind: str) -> str:
    return "\n".join([f"{name} ({kind})", *addresses])


def _occupied(pic: Picture, place: str | None) -> bool:
    return any(n.place == place and n.shape != "outside" for n in pic.nodes) or bool(pic.notes.get(place))


def _place_title(place: str | None) -> str:
    return HOST if place is None else f"netns {place}"


def mermaid(topology: Topology) -> str:
    """A Mermaid ``flowchart`` (renders on GitHub, GitLab, in many editors)."""
    pic = picture(topology)
    out = ["flowchart LR"]
    for index, place in enumerate(pic.places):
        if place is None and not _occupied(pic, None):
            continue
        out.append(f'  subgraph p{index}["{_mm(_place_title(place))}"]')
        for node in pic.nodes:
            if node.place == place and node.shape != "outside":
                out.append(f"    {node.id}{_mm_shape(node)}")
        for number, note in enumerate(pic.notes.get(place, ()), start=1):
            out.append(f'    p{index}r{number}>"{_mm(note)}"]')
        if not _occupied(pic, place):
            out.append(f'    p{index}e["(empty)"]')
        out.append("  end")
    out += [f"  {node.id}{_mm_shape(node)}" for node in pic.nodes if node.shape == "outside"]
    arrows = {"solid": "---", "dashed": "-.-", "dotted": "-.->"}
    for edge in pic.edges:
        label = f'|"{_mm(edge.label)}"|' if edge.label else ""
        out.append(f"  {edge.a} {arrows[edge.style]}{label} {edge.b}")
    return "\n".join(out) + "\n"


def _mm(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")


def _mm_shape(node: Node) -> str:
    text = _mm(node.label)
    return {
        "bridge": f'[["{text}"]]',
        "interface": f'("{text}")',
        "rule": f'{{{{"{text}"}}}}',
        "outside": f'(("{text}"))',
    }.get(node.shape, f'["{text}"]')


def dot(topology: Topology) -> str:
    """A Graphviz digraph (``dot -Tsvg``)."""
    pic = picture(topology)
    out = ["graph topology {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    shapes = {"bridge": "box3d", "interface": "ellipse", "rule": "hexagon", "outside": "doublecircle"}
    for index, place in enumerate(pic.places):
        if place is None and not _occupied(pic, None):
            continue
        out.append(f"  subgraph cluster_{index} {{")
        out.append(f"    label={_dq(_place_title(place))};")
        for node in pic.nodes:
            if node.place == place and node.shape != "outside":
                out.append(f"    {node.id} [label={_dq(node.label)}, shape={shapes[node.shape]}];")
        notes = pic.notes.get(place, ())
        if notes:
            out.append(f"    p{index}_routes [label={_dq(chr(10).join(notes))}, shape=note];")
        if not _occupied(pic, place):
            out.append(f'    p{index}_empty [label="(empty)", shape=plaintext];')
        out.append("  }")
    out += [f"  {n.id} [label={_dq(n.label)}, shape={shapes[n.shape]}];" for n in pic.nodes if n.shape == "outside"]
    for edge in pic.edges:
        attrs_ = [f"style={edge.style}"] + ([f"label={_dq(edge.label)}"] if edge.label else [])
        out.append(f"  {edge.a} -- {edge.b} [{', '.join(attrs_)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _dq(text: str) -> str:
    """A dot string literal (JSON escaping is valid dot escaping for these labels)."""
    return json.dumps(text).replace("\\n", "\\n")
