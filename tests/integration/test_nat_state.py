"""After delete, the firewall and the touched sysctls are exactly as before; untagged
rules in the same chains survive; a router namespace works like the host; the
other iptables backend is reported."""

from __future__ import annotations

import logging

import pytest

from netns_kit import Bridge, Host, Namespace, NatRule, PortForward, Route, Topology, VethPair
from netns_kit.errors import CommandError
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft, nftread
from netns_kit.firewall.iptables import check_backend
from netns_kit.ops import state
from netns_kit.topology import scenarios

from .helpers import our_rules, request, saved_rules, serve, untagged_rules_are_not_ours

#: untagged rules a user (or Docker) had before, in every built-in chain we jump from,
#: and how iptables-save shows them
DECOYS = [
    (
        ("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/16", "-o", "eth9", "-j", "MASQUERADE"),
        "-A POSTROUTING -s 10.99.0.0/16 -o eth9 -j MASQUERADE",
    ),
    (
        (
            "iptables",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-p",
            "tcp",
            "--dport",
            "9999",
            "-j",
            "DNAT",
            "--to",
            "10.99.0.1",
        ),
        "-A PREROUTING -p tcp -m tcp --dport 9999 -j DNAT --to-destination 10.99.0.1",
    ),
    (
        ("iptables", "-t", "nat", "-A", "OUTPUT", "-d", "10.99.0.7", "-j", "RETURN"),
        "-A OUTPUT -d 10.99.0.7/32 -j RETURN",
    ),
    (
        ("iptables", "-t", "filter", "-A", "FORWARD", "-s", "10.99.0.0/16", "-j", "DROP"),
        "-A FORWARD -s 10.99.0.0/16 -j DROP",
    ),
    (
        ("iptables", "-t", "raw", "-A", "PREROUTING", "-s", "10.99.0.0/16", "-j", "DROP"),
        "-A PREROUTING -s 10.99.0.0/16 -j DROP",
    ),
    (
        ("ip6tables", "-t", "nat", "-A", "POSTROUTING", "-s", "fd99::/64", "-j", "MASQUERADE"),
        "-A POSTROUTING -s fd99::/64 -j MASQUERADE",
    ),
    (
        ("ip6tables", "-t", "filter", "-A", "FORWARD", "-s", "fd99::/64", "-j", "DROP"),
        "-A FORWARD -s fd99::/64 -j DROP",
    ),
]
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.v-net-0.route_localnet",
    "net.ipv4.conf.all.route_localnet",
)


def _firewall(host: Host) -> dict[str, object]:
    return {
        **saved_rules(host),  # iptables-save, ip6tables-save and the nft tables
        "sysctl": {key: host.sysctl(key) for key in SYSCTLS},
        "hairpin": host.run(["ip", "-j", "-d", "link", "show", "dev", "veth-red"]).json()[0]["linkinfo"][
            "info_slave_data"
        ]["hairpin"],
    }


@pytest.mark.parametrize("ip_forward", ["0", "1"])
def test_delete_restores_rules_and_sysctls_and_keeps_untagged_rules(sb: Sandbox, ip_forward: str) -> None:
    host = Host()
    prior = host.set_sysctl("net.ipv4.ip_forward", ip_forward)
    for argv, _ in DECOYS:
        host.run([argv[0], "-w", *argv[1:]], mutating=True)
    try:
        with scenarios.seed001_bridge().add(*scenarios.outside()) as topo:
            before = _firewall(host)
            rules = [
                NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0"),
                NatRule("fd00:1::/64", out_interface="eth0", bridge="v-net-0"),
                PortForward(
                    8080, "192.168.1.1", 80, bridge="v-net-0", bridge_port="veth-red", localhost=True, hairpin=True
                ),
                PortForward(5353, "192.168.1.2", protocol="udp", in_interface="eth0"),
                PortForward(8080, "fd00:1::1", 80, bridge="v-net-0"),
            ]
            for rule in rules:
                rule.create()
            during = _firewall(host)
            assert during != before
            assert during["sysctl"]["net.ipv4.conf.v-net-0.route_localnet"] == "1"
            assert during["sysctl"]["net.ipv4.ip_forward"] == "1"
            assert during["hairpin"] is True
            _assert_only_tagged_rules_were_added(host)
            serve(topo["red"], 80, "red")
            assert request(topo[scenarios.OUTSIDE], "203.0.113.1", 8080) == "red 203.0.113.2 hello"
            for rule in reversed(rules):
                rule.delete()
            assert _firewall(host) == before
            for rule in rules:  # a second delete does nothing and fails nothing
                rule.delete()
            assert _firewall(host) == before
        saved = host.run(["iptables-save"]).stdout.splitlines() + host.run(["ip6tables-save"]).stdout.splitlines()
        for _, line in DECOYS:
            assert line in saved
    finally:
        for argv, _ in DECOYS:
            host.run([argv[0], "-w", *argv[1:3], "-D", *argv[4:]], mutating=True)
        host.set_sysctl("net.ipv4.ip_forward", prior)


def _assert_only_tagged_rules_were_added(host: Host) -> None:
    """Every rule in an NK- chain or jumping to one carries our tag; the decoys carry none
    (on nft: every rule in the owner's table carries the owner's tag)."""
    untagged_rules_are_not_ours(host)


def test_rules_in_a_router_namespace_nat_and_forward_there(sb: Sandbox) -> None:
    """lan (10.1.0.2) -- router -- wan (198.51.100.2): NAT and forward live in ``router``."""
    topo = Topology(
        [
            Namespace("lan"),
            Namespace("router"),
            Namespace("wan"),
            VethPair(
                "r-lan", "lan0", netns="router", peer_netns="lan", addresses="10.1.0.1/24", peer_addresses="10.1.0.2/24"
            ),
            VethPair(
                "r-wan",
                "wan0",
                netns="router",
                peer_netns="wan",
                addresses="198.51.100.1/24",
                peer_addresses="198.51.100.2/24",
            ),
            Route("default", via="10.1.0.1", netns="lan"),
            NatRule("10.1.0.0/24", out_interface="r-wan", netns="router"),
            PortForward(8080, "10.1.0.2", 80, netns="router", in_interface="r-wan"),
        ],
        wait=True,
    )
    host_before = state.snapshot(sb)["<host>"]
    with topo:
        serve(topo["wan"], 9000, "wan")
        serve(topo["lan"], 80, "lan")
        assert request(topo["lan"], "198.51.100.2", 9000) == "wan 198.51.100.1 hello"
        assert request(topo["wan"], "198.51.100.1", 8080) == "lan 198.51.100.2 hello"
        assert topo["router"].sysctl("net.ipv4.ip_forward") == "1"
        assert any(chain.startswith("NK-NAT-") for chain, _ in our_rules(topo["router"]))
        # nothing of it on the sandbox's host
        assert state.snapshot(sb)["<host>"] == host_before


def test_rules_held_by_the_other_backend_are_reported(fresh_sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    """iptables' own check (so the NatRule says backend="iptables", whatever the default)."""
    import netns_kit

    with netns_kit.use(fresh_sandbox):
        host = Host()
        # whichever backend `iptables` is here (--netns-iptables picks it), rules in the other one
        other = {"nf_tables": "legacy", "legacy": "nft"}[check_backend(fresh_sandbox).name]
        host.run([f"iptables-{other}", "-w", "-P", "FORWARD", "DROP"], mutating=True)
        with pytest.raises(CommandError) as info:
            check_backend(fresh_sandbox)
        assert f"iptables-{other} tables present" in info.value.hint
        assert "filter FORWARD policy DROP" in info.value.hint
        with (
            caplog.at_level(logging.WARNING, logger="netns_kit"),
            Bridge("br0"),
            NatRule("10.0.0.0/24", bridge="br0", backend="iptables"),
        ):
            pass
        assert any("filter FORWARD policy DROP" in r.getMessage() for r in caplog.records)


def test_on_nft_the_owners_table_stays_while_a_rule_uses_it_and_goes_with_the_last(sb: Sandbox) -> None:
    """A topology's NAT and a port forward made on its own share the owner's table: the
    topology going down leaves the forward working, and the forward's delete takes the table."""
    name = nft.table_name(sb.owner)

    def chains() -> set[str] | None:
        """The chains of the owner's table in the sandbox's host (None: no table)."""
        if name not in [t.name for t in nftread.list_tables(sb)]:
            return None
        return {c.name for c in nftread.list_table(sb, "inet", name).chains}

    assert chains() is None
    world = scenarios.seed001_bridge().add(*scenarios.outside())
    world.wait = True
    with world:
        red, outside = world["red"], world[scenarios.OUTSIDE]
        serve(outside, 9000, "outside")
        serve(red, 80, "red")
        nat = Topology([NatRule("192.168.1.0/24", out_interface="eth0")], firewall="nft").up()
        forward = PortForward(8080, "192.168.1.1", 80, bridge="v-net-0", backend="nft").create()
        forward_chains = {n for c in forward.chains() for n, _, _ in nft.chain_names(c, False)}
        try:
            assert request(red, scenarios.OUTSIDE_ADDRESS, 9000) == f"outside {scenarios.HOST_OUTSIDE_ADDRESS} hello"
            assert request(outside, scenarios.HOST_OUTSIDE_ADDRESS, 8080) == f"red {scenarios.OUTSIDE_ADDRESS} hello"
            nat.down()
            assert chains() == forward_chains
            assert request(outside, scenarios.HOST_OUTSIDE_ADDRESS, 8080) == f"red {scenarios.OUTSIDE_ADDRESS} hello"
        finally:
            nat.down()
            forward.delete()
        assert chains() is None
