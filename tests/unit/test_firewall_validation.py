"""Bad NAT and port-forward input raises ValidationError naming the field, before any command."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

import netns_kit
from netns_kit import (
    Bridge,
    Command,
    Namespace,
    NatRule,
    Owner,
    PortForward,
    Recorder,
    Result,
    Topology,
    ValidationError,
    VethPair,
)

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


# -- an interface a rule names by -o / -i that is not there ----------------------------


class RealHost(Recorder):
    """A real run (not a dry-run) on a host whose links are ``links`` (per namespace)."""

    dry_run = False

    def __init__(self, **links: list[str]) -> None:
        super().__init__(self.answer)
        self.links = links
        self.looked_after: list[int] = []  # how many changes were made when links were looked at

    def answer(self, command: Command) -> str | Result | None:
        if command.argv == ("ip", "-j", "link", "show"):
            self.looked_after.append(len(self.commands))
            names = self.links.get(command.netns or "host")
            if names is None:
                return Result(command, 1, "", f'Cannot open network namespace "{command.netns}"\n')
            return json.dumps([{"ifname": name} for name in names])
        if command.argv[0] == "iptables" and "-V" in command.argv:
            return Result(command, 1)
        return None


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "netns_kit"]


def test_a_nat_out_interface_missing_at_creation_is_warned_about_and_the_rule_made(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = RealHost(host=["lo", "eth0", "docker0"])
    NatRule("10.0.0.0/24", out_interface="wan9").create(host)
    (warning,) = _warnings(caplog)
    assert warning.startswith(
        "NatRule.out_interface 'wan9' is no interface of the host now (it has: docker0, eth0, lo)"
    )
    assert "a VPN's tun0" in warning
    assert any("-o wan9" in line for line in host.lines)  # made all the same: it may appear later


def test_an_out_interface_that_is_there_or_that_the_topology_makes_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    NatRule("10.0.0.0/24", out_interface="eth0").create(RealHost(host=["lo", "eth0"]))
    router = RealHost()  # "router" does not exist yet: the topology makes it, and r-wan in it
    Topology(
        [
            Namespace("router"),
            Namespace("wan"),
            VethPair("r-wan", "wan0", netns="router", peer_netns="wan", addresses="198.51.100.1/24"),
            NatRule("10.1.0.0/24", out_interface="r-wan", netns="router"),
        ]
    ).up(router)
    assert _warnings(caplog) == []
    assert ("ip", "-j", "link", "show") not in [q.argv for q in router.queries]


def test_a_topology_warns_once_per_missing_interface_before_anything_runs(caplog: pytest.LogCaptureFixture) -> None:
    host = RealHost(host=["lo", "eth0"])
    topo = Topology(
        [
            Namespace("router"),
            Namespace("lan"),
            VethPair("r-lan", "lan0", netns="router", peer_netns="lan", addresses="10.1.0.1/24"),
            NatRule("10.1.0.0/24", out_interface="eht0"),  # a typo, on the host
            PortForward(8080, "10.1.0.1", in_interface="eht0"),
            NatRule("10.2.0.0/24", out_interface="wan0", netns="router"),  # not made in router
        ]
    )
    topo.up(host)
    warnings = _warnings(caplog)
    assert [w.split(" (")[0] for w in warnings] == [
        "NatRule.out_interface, PortForward.in_interface 'eht0' is no interface of the host now",
        "NatRule.out_interface 'wan0' is no interface of router now",
    ]
    assert "(it has: eth0, lo)" in warnings[0] and "(it has: lo, r-lan)" in warnings[1]
    # one look at the host, before any change; router is new: it will hold what the topology makes
    assert host.looked_after == [0]
    topo.down()


def test_a_dry_run_never_looks_for_interfaces(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    NatRule("10.0.0.0/24", out_interface="wan9").create(rec)
    Topology([Namespace("r"), NatRule("10.1.0.0/24", out_interface="x0", netns="r")]).plan()
    assert _warnings(caplog) == []
    assert [q for q in rec.queries if q.argv[:3] == ("ip", "-j", "link")] == []
