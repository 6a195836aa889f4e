"""Issue 2: namespaces, veth pairs and bridges for real, in the sandbox."""

from __future__ import annotations

import itertools

import pytest

import netns_kit
from netns_kit import (
    AlreadyExistsError,
    Bridge,
    CommandError,
    Host,
    Namespace,
    NotFoundError,
    Route,
    VethPair,
    change,
)
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.topology import scenarios

from .helpers import request, serve
from .traffic import GENEROUS, assert_unanswered


def test_seed001_pipe_pings_both_ways(sb: Sandbox) -> None:
    with scenarios.seed001_pipe() as topo:
        topo["red"].wait_reachable("192.168.1.2")
        topo["blue"].wait_reachable("192.168.1.1")
        # no one has .99: its address never resolves, so no ping can be answered, however long one waits
        red = topo["red"]
        assert_unanswered(red, "192.168.1.99", control=lambda: red.ping("192.168.1.2", timeout=GENEROUS))
        (neighbour,) = red.run(["ip", "-j", "neigh", "show", "192.168.1.99"]).json()
        assert neighbour["state"] in (["FAILED"], ["INCOMPLETE"]), neighbour


def test_seed001_bridge_all_pairs_and_the_bridge_address(sb: Sandbox) -> None:
    addresses = {"red": "192.168.1.1", "blue": "192.168.1.2", "green": "192.168.1.3"}
    with scenarios.seed001_bridge() as topo:
        topo.wait_ready()
        for a, b in itertools.permutations(addresses, 2):
            topo[a].wait_reachable(addresses[b])
        for name, address in addresses.items():
            topo[name].wait_reachable("192.168.1.254")
            Host().wait_reachable(address)
        routes = topo["red"].routes(4)
        assert {"dst": "default", "gateway": "192.168.1.254", "dev": "red-veth", "flags": []} in routes
        ports = Bridge("v-net-0").ports()
        assert sorted(ports) == ["veth-blue", "veth-green", "veth-red"]


def test_seed002_namespace_and_host_end(sb: Sandbox) -> None:
    with scenarios.seed002_host() as topo:
        topo["ns1"].wait_reachable("10.0.0.2")
        Host().wait_reachable("10.0.0.1")
        host_links = {link["ifname"]: link for link in Host().links()}
        assert host_links["veth-host"]["ifalias"] == sb.owner.tag


def test_two_namespaces_with_the_same_address_do_not_interfere(sb: Sandbox) -> None:
    """Seed 004's question: what if two namespaces use the same address? Each pipe is its own world."""
    topo = netns_kit.Topology()
    for side in ("a", "b"):
        topo.add(
            Namespace(f"{side}1"),
            Namespace(f"{side}2"),
            VethPair(
                f"{side}-1",
                f"{side}-2",
                netns=f"{side}1",
                peer_netns=f"{side}2",
                addresses="10.0.0.1/24",
                peer_addresses="10.0.0.2/24",
            ),
        )
    with topo:
        serve(topo["a1"], 80, "server-a")
        serve(topo["b1"], 80, "server-b")
        assert request(topo["a2"], "10.0.0.1", 80) == "server-a 10.0.0.2 hello"
        assert request(topo["b2"], "10.0.0.1", 80) == "server-b 10.0.0.2 hello"


def test_ipv6_addresses_ping_without_waiting_for_dad(sb: Sandbox) -> None:
    topo = netns_kit.Topology(
        [
            Namespace("v6a"),
            Namespace("v6b"),
            VethPair(
                "v6-a",
                "v6-b",
                netns="v6a",
                peer_netns="v6b",
                addresses=["fd00:1::1/64", "10.1.0.1/24"],
                peer_addresses=["fd00:1::2/64", "10.1.0.2/24"],
            ),
        ],
        wait=True,
    )
    with topo:
        topo["v6a"].wait_reachable("fd00:1::2")
        assert topo["v6b"].ping("fd00:1::1")
        infos = [i for link in topo["v6a"].addresses() for i in link.get("addr_info", ())]
        assert any(i["local"] == "fd00:1::1" and i.get("nodad") for i in infos)


def test_popen_server_answers_a_tcp_client_in_another_namespace(sb: Sandbox) -> None:
    with scenarios.seed001_pipe() as topo:
        server = serve(topo["blue"], 8000, "blue")
        assert request(topo["red"], "192.168.1.2", 8000) == "blue 192.168.1.1 hello"
        assert server.is_alive()
    assert not server.is_alive()


def test_namespace_delete_stops_processes_it_did_not_start_itself(sb: Sandbox) -> None:
    ns = Namespace("busy").create()
    stray = sb.popen(netns_kit.Command(("sleep", "600"), netns="busy"))
    netns_kit.executors.base.wait_until(lambda: ns.pids() == [stray.pid], timeout=10, what="sleep to enter busy")
    ns.delete()
    assert stray.wait(5) != 0
    assert not ns.exists()


def test_teardown_frees_names_for_immediate_reuse(sb: Sandbox) -> None:
    for _ in range(3):
        with scenarios.seed001_bridge() as topo:
            topo["red"].wait_reachable("192.168.1.3")


def test_state_after_teardown_equals_state_before(sb: Sandbox) -> None:
    before = state.snapshot()
    with scenarios.seed001_bridge():
        during = state.snapshot()
    assert state.diff(before, during)
    assert state.diff(before, state.snapshot()) == []


def test_preexisting_objects_with_other_names_are_untouched(sb: Sandbox) -> None:
    host = Host()
    host.run(["ip", "netns", "add", "decoy"], mutating=True)
    host.run(["ip", "link", "add", "name", "decoy-br", "type", "bridge"], mutating=True)
    host.run(
        ["ip", "link", "add", "name", "decoy-a", "type", "veth", "peer", "name", "decoy-b", "netns", "decoy"],
        mutating=True,
    )
    try:
        before = state.snapshot()
        with scenarios.seed001_bridge():
            pass
        assert state.diff(before, state.snapshot()) == []
        assert Namespace("decoy").exists()
    finally:
        host.run(["ip", "link", "del", "dev", "decoy-a"], mutating=True)
        host.run(["ip", "link", "del", "dev", "decoy-br"], mutating=True)
        host.run(["ip", "netns", "del", "decoy"], mutating=True)


def test_creating_over_an_existing_name_fails_and_adopt_uses_it(sb: Sandbox) -> None:
    with Namespace("taken"):
        with pytest.raises(AlreadyExistsError) as info:
            Namespace("taken").create()
        assert info.value.argv == ("ip", "netns", "add", "taken")
        assert "File exists" in info.value.stderr
        with Namespace("taken", adopt=True) as adopted:
            assert adopted.adopted
        assert Namespace("taken").exists()
    assert not Namespace("taken").exists()


def test_a_topology_adopts_an_existing_bridge_and_leaves_it_there(sb: Sandbox) -> None:
    host = Host()
    host.run(["ip", "link", "add", "name", "mine-br", "type", "bridge"], mutating=True)
    try:
        resources = [
            Bridge("mine-br", addresses="10.77.0.254/24", adopt=True),
            Namespace("ad"),
            VethPair("ad-h", "eth0", peer_netns="ad", bridge="mine-br", peer_addresses="10.77.0.1/24"),
        ]
        with pytest.raises(AlreadyExistsError):  # without adopt, the name is taken
            netns_kit.Topology([Bridge("mine-br"), *resources[1:]]).up()
        with netns_kit.Topology(resources) as topo:
            bridge = topo.of_type(Bridge)[0]
            assert bridge.adopted
            assert bridge.ports() == ["ad-h"]
            assert not any(a["local"] == "10.77.0.254" for a in host_addresses("mine-br"))  # used as it is
        assert not bridge.adopted
        assert Bridge("mine-br").exists()
        assert Bridge("mine-br").ports() == []
        assert not Namespace("ad").exists()
    finally:
        host.run(["ip", "link", "del", "dev", "mine-br"], mutating=True)


def host_addresses(dev: str) -> list[dict[str, str]]:
    links = Host().run(["ip", "-j", "addr", "show", "dev", dev]).json()
    return [info for link in links for info in link.get("addr_info", ())]


def test_addrgenmode_none_leaves_links_without_link_local_and_quiet(sb: Sandbox) -> None:
    def topology(mode: str | None) -> netns_kit.Topology:
        return netns_kit.Topology(
            [
                Bridge("ag-br", addrgenmode=mode),
                Namespace("ag1"),
                Namespace("ag2"),
                *(
                    VethPair(
                        f"ag-h{i}",
                        "eth0",
                        peer_netns=f"ag{i}",
                        bridge="ag-br",
                        peer_addresses=[f"10.78.0.{i}/24", f"fd00:78::{i}/64"],
                        addrgenmode=mode,
                    )
                    for i in (1, 2)
                ),
            ],
            wait=True,
        )

    def link_local(ns: Namespace) -> list[str]:
        return [i["local"] for link in ns.addresses() for i in link.get("addr_info", ()) if i.get("scope") == "link"]

    with topology(None) as topo:  # the kernel's default: a link-local address on each end
        topo["ag1"].wait_reachable("10.78.0.2")
        assert link_local(topo["ag1"])
    with topology("none") as topo:
        assert topo["ag1"].ping("10.78.0.2")
        topo["ag1"].wait_reachable("fd00:78::2")  # static IPv6 addresses still work
        assert link_local(topo["ag1"]) == link_local(topo["ag2"]) == []
        assert not [a for a in host_addresses("ag-br") if a.get("scope") == "link"]
        modes = {
            link["ifname"]: link.get("inet6_addr_gen_mode")
            for link in Host().run(["ip", "-d", "-j", "link", "show"]).json()
            if link["ifname"].startswith("ag-")
        }
        assert modes == {"ag-br": "none", "ag-h1": "none", "ag-h2": "none"}


def test_failed_command_carries_argv_code_and_stderr(sb: Sandbox) -> None:
    with pytest.raises(NotFoundError) as info:
        Host().run(["ip", "link", "set", "dev", "no-such-dev", "up"])
    assert info.value.returncode == 1
    assert 'Cannot find device "no-such-dev"' in info.value.stderr
    with pytest.raises(CommandError):
        sb.run(change("ip", "route", "add", "default", "via", "10.99.99.99"))


def test_failure_half_way_rolls_back_for_real(sb: Sandbox) -> None:
    before = state.snapshot()
    topo = scenarios.seed001_bridge()
    topo.add(Route("10.50.0.0/16", via="192.168.1.77", netns="red", onlink=True, dev="no-such-dev"))
    with pytest.raises(NotFoundError):
        topo.up()
    assert state.diff(before, state.snapshot()) == []


def test_sysctl_get_and_set_in_a_namespace(sb: Sandbox) -> None:
    with Namespace("sys") as ns:
        assert ns.sysctl("net.ipv4.ip_forward") == "0"
        assert ns.set_sysctl("net.ipv4.ip_forward", 1) == "0"
        assert ns.sysctl("net.ipv4.ip_forward") == "1"
