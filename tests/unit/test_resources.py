"""Exact command lines for every resource operation, through the recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

import netns_kit
from netns_kit import Address, Bridge, Namespace, Recorder, Result, Route, VethPair, query

TAG = "netns_kit:dry-run"


@pytest.fixture
def rec() -> Recorder:
    recorder = Recorder()
    with netns_kit.use(recorder):
        yield recorder


def test_namespace_create_adds_it_tags_lo_and_brings_it_up(rec: Recorder) -> None:
    Namespace("red").create()
    assert rec.lines == ["ip netns add red", f"ip -n red link set dev lo alias {TAG} up"]


def test_namespace_delete_stops_processes_deletes_veths_then_namespace() -> None:
    answers = {
        ("ip", "netns", "pids", "red"): "",
        ("ip", "-j", "link", "show", "type", "veth"): '[{"ifname": "veth-red"}]',
    }
    rec = Recorder(lambda c: answers.get(c.argv))
    Namespace("red", executor=rec).create().delete()
    assert rec.lines[2:] == ["ip -n red link del dev veth-red", "ip netns del red"]
    assert [q.line for q in rec.queries] == [
        "ip netns pids red",
        "ip -n red -j link show type veth",
    ]


def test_namespace_delete_is_idempotent() -> None:
    missing = Result(query("ip"), 1, "", 'Cannot remove namespace file "/run/netns/red": No such file or directory')
    rec = Recorder(lambda c: missing if c.argv[:3] == ("ip", "netns", "del") else None)
    Namespace("red", executor=rec).delete()
    Namespace("red", executor=rec).delete()


def test_veth_between_two_namespaces_is_created_in_place(rec: Recorder) -> None:
    VethPair(
        "veth-red",
        "veth-blue",
        netns="red",
        peer_netns="blue",
        addresses="192.168.1.1/24",
        peer_addresses="192.168.1.2/24",
    ).create()
    assert rec.lines == [
        "ip -n red link add name veth-red type veth peer name veth-blue netns blue",
        f"ip -n red link set dev veth-red alias {TAG} up",
        f"ip -n blue link set dev veth-blue alias {TAG} up",
        "ip -n red addr add 192.168.1.1/24 dev veth-red",
        "ip -n blue addr add 192.168.1.2/24 dev veth-blue",
    ]
    assert [c.line for c in rec.undo_commands()] == ["ip -n red link del dev veth-red"]


def test_veth_with_one_end_on_the_host_is_created_from_the_host(rec: Recorder) -> None:
    VethPair("veth-ns1", "veth-host", netns="ns1", addresses="10.0.0.1/24", peer_addresses="10.0.0.2/24").create()
    assert rec.lines[0] == "ip link add name veth-host type veth peer name veth-ns1 netns ns1"
    assert rec.lines[3:] == ["ip -n ns1 addr add 10.0.0.1/24 dev veth-ns1", "ip addr add 10.0.0.2/24 dev veth-host"]


def test_veth_options_mtu_mac_bridge_ipv6_nodad(rec: Recorder) -> None:
    VethPair(
        "vh",
        "vp",
        peer_netns="x",
        bridge="br0",
        mtu=1400,
        mac="02:00:00:00:00:01",
        peer_mac="02:00:00:00:00:02",
        peer_addresses=["10.0.0.2/24", "fd00::2/64"],
    ).create()
    assert rec.lines == [
        "ip link add name vh type veth peer name vp netns x",
        f"ip link set dev vh alias {TAG} mtu 1400 address 02:00:00:00:00:01 master br0 up",
        f"ip -n x link set dev vp alias {TAG} mtu 1400 address 02:00:00:00:00:02 up",
        "ip -n x addr add 10.0.0.2/24 dev vp",
        "ip -n x addr add fd00::2/64 dev vp nodad",
    ]


def test_addrgenmode_is_set_on_each_end_before_it_goes_up(rec: Recorder) -> None:
    Bridge("br0", addrgenmode="none").create()
    VethPair("vh", "vp", peer_netns="x", bridge="br0", addrgenmode="random").create()
    assert rec.lines == [
        "ip link add name br0 type bridge",
        "ip link set dev br0 addrgenmode none",
        f"ip link set dev br0 alias {TAG} up",
        "ip link add name vh type veth peer name vp netns x",
        "ip link set dev vh addrgenmode random",
        f"ip link set dev vh alias {TAG} master br0 up",
        "ip -n x link set dev vp addrgenmode random",
        f"ip -n x link set dev vp alias {TAG} up",
    ]


def test_a_topology_adopts_what_is_there_and_creates_the_rest() -> None:
    rec = Recorder(lambda c: '[{"ifname": "br0"}]' if c.argv[:3] == ("ip", "-j", "link") and not c.netns else None)
    bridge = Bridge("br0", addresses="10.0.0.254/24", adopt=True)
    with netns_kit.Topology([bridge, Namespace("red", adopt=True)], executor=rec):
        assert bridge.adopted
        assert rec.lines == ["ip netns add red", f"ip -n red link set dev lo alias {TAG} up"]
    assert not bridge.adopted
    assert rec.lines[2:] == ["ip netns del red"]


def test_veth_in_one_namespace_needs_no_peer_netns(rec: Recorder) -> None:
    VethPair("a", "b", netns="x", peer_netns="x", up=False, nodad=False, addresses="fd00::1/64").create()
    assert rec.lines == [
        "ip -n x link add name a type veth peer name b",
        f"ip -n x link set dev a alias {TAG}",
        f"ip -n x link set dev b alias {TAG}",
        "ip -n x addr add fd00::1/64 dev a",
    ]


def test_bridge_create_and_delete(rec: Recorder) -> None:
    bridge = Bridge("v-net-0", addresses="192.168.1.254/24", stp=True).create()
    bridge.delete()
    assert rec.lines == [
        "ip link add name v-net-0 type bridge stp_state 1",
        f"ip link set dev v-net-0 alias {TAG} up",
        "ip addr add 192.168.1.254/24 dev v-net-0",
        "ip link del dev v-net-0",
    ]


def test_bridge_in_a_namespace_attach_detach_ports(rec: Recorder) -> None:
    bridge = Bridge("br0", netns="router")
    bridge.attach("eth1")
    bridge.detach(VethPair("eth1", "peer1"))
    assert rec.lines == ["ip -n router link set dev eth1 master br0", "ip -n router link set dev eth1 nomaster"]
    bridge.ports()
    assert rec.queries[-1].line == "ip -n router -j link show master br0"


def test_routes_default_network_ipv6_metric_onlink(rec: Recorder) -> None:
    Route("default", via="192.168.1.254", netns="red").create()
    Route("192.168.1.0/24", via="192.168.1.254", netns="blue").create()
    Route("default6", via="fd00::fe", netns="red").create()
    Route("10.9.0.0/16", dev="eth0", metric=10, via="10.0.0.1", onlink=True).create()
    assert rec.lines == [
        "ip -n red route add default via 192.168.1.254",
        "ip -n blue route add 192.168.1.0/24 via 192.168.1.254",
        "ip -n red -6 route add default via fd00::fe",
        "ip route add 10.9.0.0/16 via 10.0.0.1 dev eth0 metric 10 onlink",
    ]
    assert rec.undo_commands()[0].line == "ip route del 10.9.0.0/16 via 10.0.0.1 dev eth0 metric 10 onlink"


def test_address_on_an_existing_interface_is_removed_again(rec: Recorder) -> None:
    Address("eth0", ["203.0.113.1/24", "2001:db8::1/64"]).create().delete()
    assert rec.lines == [
        "ip addr add 203.0.113.1/24 dev eth0",
        "ip addr add 2001:db8::1/64 dev eth0 nodad",
        "ip addr del 2001:db8::1/64 dev eth0",
        "ip addr del 203.0.113.1/24 dev eth0",
    ]


def test_resources_accept_resource_objects_for_names() -> None:
    red, bridge = Namespace("red"), Bridge("br0")
    assert VethPair("a", "b", peer_netns=red, bridge=bridge) == VethPair("a", "b", peer_netns="red", bridge="br0")


def test_existing_object_is_adopted_and_never_deleted() -> None:
    rec = Recorder(lambda c: '[{"name": "red"}]' if c.argv == ("ip", "-j", "netns", "list") else None)
    ns = Namespace("red", adopt=True, executor=rec)
    with ns:
        assert ns.adopted
    assert rec.commands == []


def test_adopt_creates_what_is_missing() -> None:
    rec = Recorder()
    with Bridge("br0", adopt=True, executor=rec) as bridge:
        assert not bridge.adopted
    assert rec.lines[0] == "ip link add name br0 type bridge"
    assert rec.lines[-1] == "ip link del dev br0"


def test_per_object_executor_wins_over_use() -> None:
    mine, other = Recorder(), Recorder()
    with netns_kit.use(other):
        Namespace("red", executor=mine).create()
    assert mine.lines and not other.lines


def test_namespace_reads_state_as_data() -> None:
    rec = Recorder(lambda c: '[{"ifname": "lo"}]' if "link" in c.argv else None)
    ns = Namespace("red", executor=rec)
    assert ns.links() == [{"ifname": "lo"}]
    ns.addresses()
    ns.routes()
    assert ns.sysctl("net.ipv4.ip_forward") == "0"
    assert [q.line for q in rec.queries] == [
        "ip -n red -j -d link show",
        "ip -n red -j addr show",
        "ip -n red -j -4 route show table main",
        "ip -n red -j -6 route show table main",
        "ip netns exec red sysctl -n net.ipv4.ip_forward",
    ]


# -- delete() of an object this value did not create: planning its undo writes nothing ---------
@pytest.mark.parametrize(
    "resource",
    [
        netns_kit.NatRule("10.1.0.0/24", bridge="br1"),
        netns_kit.PortForward(8080, "10.1.0.2", 80, bridge="br1", localhost=True),
    ],
    ids=["NatRule", "PortForward"],
)
def test_delete_of_a_firewall_never_created_writes_no_sysctl_and_files_no_claim(
    tmp_path: Path, resource: netns_kit.Resource
) -> None:
    from .fakes import FakeHost

    host = FakeHost(tmp_path, **{"net.ipv4.conf.br1.route_localnet": "0"})
    resource.delete(host)
    assert [c.line for c in host.commands if c.argv[:2] == ("sysctl", "-q")] == []
    assert host.values["net.ipv4.ip_forward"] == "0"
    assert list(tmp_path.iterdir()) == []
    # the rules it would have made are still looked for and removed
    assert any(c.argv[0] == "iptables" and "-D" in c.argv for c in host.commands)


def test_delete_of_a_firewall_never_created_leaves_the_claims_of_others_alone(tmp_path: Path) -> None:
    from .fakes import FakeHost

    host = FakeHost(tmp_path)
    made = netns_kit.NatRule("10.1.0.0/24", bridge="br1").create(host)
    netns_kit.NatRule("10.2.0.0/24", bridge="br2").delete(host)
    assert host.values["net.ipv4.ip_forward"] == "1"
    made.delete(host)
    assert host.values["net.ipv4.ip_forward"] == "0"
    assert host.writes() == ["net.ipv4.ip_forward=1", "net.ipv4.ip_forward=0"]
