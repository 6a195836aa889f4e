"""Issue 8 for real, in the sandbox, on any kernel: rate limits, loss without netem,
partitions, supervised processes, per-namespace files, and teardown of all of it."""

from __future__ import annotations

import shlex
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import netns_kit
from netns_kit import (
    Impairment,
    LinkDown,
    LinkImpairment,
    Namespace,
    NetnsFile,
    NetnsKitError,
    Partition,
    Topology,
    VethPair,
    hosts_files,
)
from netns_kit.executors import process
from netns_kit.executors.capability import has_netem
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.topology import scenarios

from .helpers import PY, firewall_backend, our_chains, request, serve
from .traffic import GENEROUS, assert_dropped, binomial_bound, bulk_mbit, dropped, ping_loss, start_sink


def pipe(*extra: netns_kit.Resource) -> Topology:
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    return Topology([Namespace("a"), Namespace("b"), veth, *extra], wait=True)


def raw_rules(netns: str) -> list[list[str]]:
    """The rules of the raw table in ``netns``, each split like a shell would."""
    out = Namespace(netns).run(["iptables-save", "-t", "raw"]).stdout
    return [shlex.split(line) for line in out.splitlines() if line.startswith("-A")]


def veth_of(topo: Topology) -> VethPair:
    return topo.of_type(VethPair)[0]


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    yield
    left = process.running()
    process.stop_all()
    assert not left, f"processes left running after the test: {left}"


# -- rate limits (tbf: no netem needed) ------------------------------------------


def test_a_rate_limit_caps_bulk_throughput_and_a_change_lifts_it(sb: Sandbox) -> None:
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    (limit,) = LinkImpairment.on(veth, {"rate": "8mbit"}, end="name")
    with Topology([Namespace("a"), Namespace("b"), veth, limit], wait=True) as topo:
        assert limit.qdisc()["kind"] == "tbf"
        assert limit.qdisc()["options"]["rate"] == 1_000_000  # bytes/s, read back from the kernel
        start_sink(topo["b"], 9000)
        slow = bulk_mbit(topo["a"], "10.8.0.2", 9000, 1_500_000)
        # tbf never lets more through than the rate (+ one burst); a loaded machine can only be slower
        assert 0.3 * 8 <= slow <= 1.2 * 8, slow
        limit.change({"rate": "40mbit"})
        assert limit.qdisc()["options"]["rate"] == 5_000_000
        fast = bulk_mbit(topo["a"], "10.8.0.2", 9000, 3_000_000)
        assert 1.5 * 8 <= fast <= 1.2 * 40, (slow, fast)


def test_removing_an_impairment_leaves_the_link_with_its_default_qdisc(sb: Sandbox) -> None:
    with pipe() as topo:
        (limit,) = LinkImpairment.on(veth_of(topo), Impairment(rate="1mbit"), end="peer")
        limit.create()
        assert limit.qdisc()["kind"] == "tbf"
        assert Namespace("b").run(["tc", "-j", "qdisc", "show", "dev", "b-eth"]).json()[0]["kind"] == "tbf"
        limit.delete()
        assert limit.qdisc() is None
        topo["a"].wait_reachable("10.8.0.2")


# -- loss without netem: random drops on the receiving end ---------------------------
# (iptables: a statistic rule in the raw table; nft: numgen in a raw-priority prerouting chain
# of the owner's table; NETNS_KIT_FIREWALL picks which)


def loss_rules(topo: Topology, lossy: LinkImpairment, netns: str) -> dict[str, list[str]]:
    """The loss fallback's chains in the owner's nft table of ``netns`` (``lossy.loss_chain``)."""
    chains = our_chains(topo[netns])
    return {name: lines for name, lines in chains.items() if name.startswith(lossy.loss_chain)}


def test_loss_without_netem_shows_in_a_ping_run_within_a_binomial_bound(sb: Sandbox) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable("10.8.0.2")
        (lossy,) = LinkImpairment.on(veth_of(topo), {"loss": "20%", "loss_via": "iptables"}, end="name")
        with lossy:
            if firewall_backend(topo["b"]) == "nft":
                hook = "type filter hook prerouting priority raw; policy accept;"
                drop = f'iifname "b-eth" numgen random mod 1000000 < 200000 counter drop comment "{sb.owner.tag}"'
                assert loss_rules(topo, lossy, "b") == {
                    lossy.loss_chain: [hook, f"meta nfproto ipv4 {drop}"],
                    f"{lossy.loss_chain}-6": [hook, f"meta nfproto ipv6 {drop}"],
                }
                assert not [r for r in raw_rules("b") if "statistic" in r]  # nothing of it in iptables
            else:
                (rule,) = [r for r in raw_rules("b") if "statistic" in r]
                assert rule[rule.index("--probability") + 1].startswith(("0.2", "0.19999"))
                assert rule[-4:] == ["--comment", sb.owner.tag, "-j", "DROP"]
            assert lossy.loss_drops()
            before = dropped(topo["b"], families=[4])
            sent, received = ping_loss(topo["a"], "10.8.0.2", count=600)
            low, high = binomial_bound(0.2, sent)
            assert low <= 1 - received / sent <= high, (sent, received)
            # every echo request lost was dropped by the loss fallback on b (the replies go unimpaired)
            assert dropped(topo["b"], families=[4]) - before == sent - received
        sent, received = ping_loss(topo["a"], "10.8.0.2", count=100)
        assert received == sent


def test_auto_loss_follows_the_kernel_and_netem_settings_fail_clearly_without_netem(sb: Sandbox) -> None:
    with pipe() as topo:
        (lossy,) = LinkImpairment.on(veth_of(topo), {"loss": "5%"}, end="name")
        with lossy:
            raw = Namespace("b").run(["iptables-save", "-t", "raw"]).stdout
            kind = (lossy.qdisc() or {}).get("kind")
            if has_netem(sb):
                assert kind == "netem" and "statistic" not in raw and not loss_rules(topo, lossy, "b")
            elif firewall_backend(topo["b"]) == "nft":
                assert kind is None and "statistic" not in raw
                assert sorted(loss_rules(topo, lossy, "b")) == [lossy.loss_chain, f"{lossy.loss_chain}-6"]
                assert lossy.loss_drops()
            else:
                assert kind is None and "statistic" in raw
        if not has_netem(sb):
            # asked of netem (via="auto" would use the userspace emulator: tests/integration/test_linkemu.py)
            settings = {"delay": "200ms", "loss": "5%", "via": "netem"}
            (delayed,) = LinkImpairment.on(veth_of(topo), settings, end="name")
            with pytest.raises(netns_kit.UnsupportedError, match="delay=200ms, loss=5%"):
                delayed.create()
            assert delayed.qdisc() is None


# -- partitions ------------------------------------------------------------------


def test_a_partition_stops_a_tcp_exchange_both_ways_and_healing_restores_it(sb: Sandbox) -> None:
    with pipe() as topo:
        serve(topo["b"], 8000, "b")
        serve(topo["a"], 8001, "a")
        assert request(topo["a"], "10.8.0.2", 8000) == "b 10.8.0.1 hello"
        cut = Partition("a", "b").create()
        assert_dropped(topo["a"], "10.8.0.2", 8000, by=(topo["a"], topo["b"]))
        assert_dropped(topo["b"], "10.8.0.1", 8001, by=(topo["a"], topo["b"]))
        filters = Namespace("a").run(["iptables-save", "-t", "filter"]).stdout
        if firewall_backend(topo["a"]) == "nft":
            assert our_chains(topo["a"])[cut.chain] == [
                "type filter hook input priority filter; policy accept;",
                f'ip saddr 10.8.0.2 counter drop comment "{sb.owner.tag}"',
            ]
            assert "DROP" not in filters  # nothing of it in iptables
        else:
            assert f'-A INPUT -s 10.8.0.2/32 -m comment --comment "{sb.owner.tag}" -j DROP' in filters
        cut.heal()
        if firewall_backend(topo["a"]) == "nft":
            assert cut.chain not in our_chains(topo["a"])
        assert request(topo["a"], "10.8.0.2", 8000) == "b 10.8.0.1 hello"
        assert request(topo["b"], "10.8.0.1", 8001) == "a 10.8.0.2 hello"


def test_partitioned_during_a_block_only_and_others_still_talk(sb: Sandbox) -> None:
    with scenarios.seed001_bridge() as topo:
        serve(topo["blue"], 8000, "blue")
        topo["red"].wait_reachable("192.168.1.2")
        with Partition("red", "blue"):
            assert_dropped(topo["red"], "192.168.1.2", 8000, by=(topo["red"], topo["blue"]))
            assert request(topo["green"], "192.168.1.2", 8000) == "blue 192.168.1.3 hello"
        assert request(topo["red"], "192.168.1.2", 8000) == "blue 192.168.1.1 hello"


def test_a_pulled_cable_stops_traffic_until_plugged_back_in(sb: Sandbox) -> None:
    with pipe() as topo:
        serve(topo["b"], 8000, "b")
        assert request(topo["a"], "10.8.0.2", 8000) == "b 10.8.0.1 hello"
        with LinkDown.of(veth_of(topo)):
            # a's end is down, so a has no route to b left and b's end has no carrier: nothing can pass,
            # however long one waits (the request fails at once: "Network is unreachable")
            assert "UP" not in topo["a"].links()[-1]["flags"]
            route = topo["a"].run(["ip", "route", "get", "10.8.0.2"], check=False)
            assert "Network is unreachable" in route.stderr, route
            assert "LOWER_UP" not in topo["b"].links()[-1]["flags"]  # no carrier
            assert request(topo["a"], "10.8.0.2", 8000, timeout=GENEROUS, attempts=1) is None
        topo.wait_ready()
        assert request(topo["a"], "10.8.0.2", 8000) == "b 10.8.0.1 hello"


# -- supervised processes and per-namespace files -----------------------------------

NAMED_SERVER = """
import os, socket, sys
s = socket.socket()
s.bind(("0.0.0.0", 8080))
s.listen(4)
print("listening in", os.getcwd(), flush=True)
while True:
    c, _ = s.accept()
    c.recv(64)
    c.sendall(f"{os.environ['GREETING']} from {socket.gethostname()} in {os.getcwd()}".encode())
    c.close()
"""

BY_NAME = """
import socket, sys
print(socket.gethostbyname(sys.argv[1]))
c = socket.create_connection((sys.argv[1], 8080), timeout=5)
c.sendall(b"hi")
print(c.recv(256).decode())
"""


def test_a_server_is_reachable_by_name_through_the_per_namespace_hosts_file(sb: Sandbox, tmp_path: Path) -> None:
    if not sb.has_etc_netns:
        pytest.fail("this sandbox has no writable /etc/netns (the overlay on /etc failed)")
    topo = scenarios.seed001_bridge()
    topo.add(*hosts_files(topo))
    log = tmp_path / "server.log"
    with topo:
        server = topo["blue"].popen(
            [PY, "-c", NAMED_SERVER], env={"GREETING": "hello"}, cwd=tmp_path, stdout=log, port=8080
        )
        answer = topo["red"].run([PY, "-c", BY_NAME, "blue"]).stdout.splitlines()
        assert answer[0] == "192.168.1.2"
        assert answer[1].startswith("hello from ") and answer[1].endswith(f" in {tmp_path}")
        assert log.read_text() == f"listening in {tmp_path}\n" == server.stdout
        assert topo["green"].run(["getent", "hosts", "red"]).stdout.split() == ["192.168.1.1", "red"]
        assert sb.root_path("/etc/netns/blue/hosts").read_text() == topo.of_type(NetnsFile)[1].content
    assert not server.is_alive()
    assert not sb.root_path("/etc/netns/blue").exists()


def test_resolv_conf_is_per_namespace(sb: Sandbox) -> None:
    with Namespace("dns") as ns, NetnsFile.resolv_conf("dns", ["10.9.9.53"], search=["test.internal"]):
        assert ns.run(["cat", "/etc/resolv.conf"]).stdout == "nameserver 10.9.9.53\nsearch test.internal\n"
    assert not sb.root_path("/etc/netns/dns").exists()


def test_stop_sends_sigterm_then_sigkill_to_the_process_and_its_children(sb: Sandbox) -> None:
    stubborn = "trap '' TERM; sleep 600 & sleep 600 & echo started; wait"
    with Namespace("proc") as ns:
        proc = ns.popen(["sh", "-c", stubborn])
        netns_kit.executors.base.wait_until(lambda: len(ns.pids()) == 3, timeout=5, what="three processes")
        code = proc.stop(timeout=0.3)
        assert code == -signal.SIGKILL
        assert ns.pids() == []
        polite = ns.popen(["sleep", "600"])
        assert polite.stop(timeout=5) == -signal.SIGTERM


def test_a_server_that_dies_before_listening_raises_with_its_output(sb: Sandbox) -> None:
    with Namespace("proc") as ns:
        with pytest.raises(NetnsKitError, match=r"exited with code 3 before listening on port 8080(.|\n)*boom"):
            ns.popen(
                [PY, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                port=8080,
            )
        with pytest.raises(netns_kit.TimeoutError, match="nothing listened on port 8081 in namespace proc"):
            ns.popen(["sleep", "600"], port=8081, timeout=0.3)
        assert ns.pids() == []


def test_teardown_stops_every_process_and_removes_every_qdisc_rule_and_file(sb: Sandbox) -> None:
    before = state.snapshot()
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    topo = Topology([Namespace("a"), Namespace("b"), veth])
    topo.add(*LinkImpairment.on(veth, {"rate": "50mbit", "loss": "1%", "loss_via": "iptables"}), *hosts_files(topo))
    with topo:
        servers = [serve(topo["b"], 8000, "b"), topo["a"].popen(["sleep", "600"])]
        during = state.snapshot()
        assert during["a"]["qdiscs"] == [("a-eth", "tbf", "root")]
        assert during["b"]["qdiscs"] == [("b-eth", "tbf", "root")]
        assert {"/etc/netns/a/hosts", "/etc/netns/b/hosts"} <= set(during["etc_netns"])
        if firewall_backend(topo["a"]) == "nft":
            # the owner's table(s): "inet netns_kit_*" (ids masked), or "ip ..." and "ip6 ..." split
            lines = [line for name, table in during["a"]["nft"].items() if "netns_kit_" in name for line in table]
            assert any("numgen random" in line for line in lines), during["a"]["nft"]
        else:
            assert any("statistic" in rule for rule in during["a"]["iptables-save"]["raw"])
        assert len(process.running()) == 2
    assert [p for p in servers if p.is_alive()] == []
    assert process.running() == []
    assert state.diff(before, state.snapshot()) == []


def emulation_topology() -> Topology:
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    topo = Topology([Namespace("a"), Namespace("b"), veth])
    topo.add(
        *LinkImpairment.on(veth, {"rate": "10mbit", "loss": "2%", "loss_via": "iptables"}),
        *hosts_files(topo),
        NetnsFile.resolv_conf("a", ["10.8.0.53"]),
        Partition("a", "b", a_addresses="10.8.0.1", b_addresses="10.8.0.2"),
    )
    return topo


def test_the_dry_run_script_builds_the_same_qdiscs_rules_and_files_as_the_library() -> None:
    plan = emulation_topology().plan()
    assert "<<'EOF'" in plan.script()
    with Sandbox(owner=netns_kit.Owner.dry_run()) as by_library:
        empty = state.snapshot(by_library)
        topo = emulation_topology().up(by_library)
        library_state = state.snapshot(by_library)
        topo.down()
        assert state.diff(empty, state.snapshot(by_library)) == []
    assert library_state["etc_netns"] == [
        "/etc/netns/a",
        "/etc/netns/a/hosts",
        "/etc/netns/a/resolv.conf",
        "/etc/netns/b",
        "/etc/netns/b/hosts",
    ]
    with Sandbox() as by_script:
        by_script.run_script(plan.script())
        assert state.diff(library_state, state.snapshot(by_script)) == []
        assert by_script.root_path("/etc/netns/a/resolv.conf").read_text() == "nameserver 10.8.0.53\n"
        by_script.run_script(plan.teardown_script())
        assert state.diff(empty, state.snapshot(by_script)) == []
