"""LinkImpairment through the recorder: exact tc/iptables lines, the netem probe, changes."""

from __future__ import annotations

import pytest

import netns_kit
from netns_kit import Command, Impairment, LinkImpairment, Recorder, Result, Topology, UnsupportedError, VethPair
from netns_kit.capability import NETEM_PROBE

NO_NETEM = "Error: Specified qdisc kind is unknown.\n"


def kernel(netem: bool):
    """A recorder handler answering the netem probe like a kernel with or without netem."""

    def handler(command: Command) -> Result | None:
        if command == NETEM_PROBE and not netem:
            return Result(command, 2, "", NO_NETEM)
        return None

    return handler


def veth() -> VethPair:
    return VethPair("a-eth", "b-eth", netns="a", peer_netns="b")


def test_both_ends_get_a_root_netem_qdisc_and_teardown_deletes_them() -> None:
    rec = Recorder()
    for impairment in LinkImpairment.on(veth(), {"delay": "200ms", "loss": "5%"}):
        impairment.create(rec)
    assert rec.lines == [
        "tc -n a qdisc add dev a-eth root netem delay 200ms loss 5%",
        "tc -n b qdisc add dev b-eth root netem delay 200ms loss 5%",
    ]
    assert [c.line for c in rec.undo_commands()] == [
        "tc -n b qdisc del dev b-eth root",
        "tc -n a qdisc del dev a-eth root",
    ]


def test_one_end_only() -> None:
    (name,) = LinkImpairment.on(veth(), Impairment(rate="10mbit"), end="name")
    (peer,) = LinkImpairment.on(veth(), Impairment(rate="10mbit"), end="peer")
    assert (name.dev, name.netns, name.peer, name.peer_netns) == ("a-eth", "a", "b-eth", "b")
    assert (peer.dev, peer.netns, peer.peer, peer.peer_netns) == ("b-eth", "b", "a-eth", "a")
    with pytest.raises(netns_kit.ValidationError, match=r"LinkImpairment\.end"):
        LinkImpairment.on(veth(), {"rate": "1mbit"}, end="left")


def test_a_rate_limit_is_tbf_and_never_probes_for_netem() -> None:
    rec = Recorder(kernel(netem=False))
    LinkImpairment("a-eth", {"rate": "10mbit"}, netns="a").create(rec)
    assert rec.lines == ["tc -n a qdisc add dev a-eth root tbf rate 10mbit burst 16384b latency 100ms"]
    assert NETEM_PROBE not in rec.queries


def test_without_netem_a_netem_setting_raises_naming_what_is_missing_before_any_change() -> None:
    rec = Recorder(kernel(netem=False))
    with pytest.raises(UnsupportedError) as info:
        LinkImpairment("a-eth", {"delay": "200ms", "jitter": "10ms", "rate": "1mbit"}, netns="a").create(rec)
    message = str(info.value)
    assert info.value.feature == "netem qdisc"
    assert "delay=200ms, jitter=10ms" in message
    assert "CONFIG_NET_SCH_NETEM" in message
    assert "Specified qdisc kind is unknown" in message
    assert "rate limits work without it" in message
    assert rec.commands == []


def test_without_netem_plain_loss_drops_on_the_peers_ingress_with_tagged_rules() -> None:
    rec = Recorder(kernel(netem=False))
    (impairment,) = LinkImpairment.on(veth(), {"loss": "5%", "rate": "10mbit"}, end="name")
    impairment.create(rec)
    match = "-i b-eth -m statistic --mode random --probability 0.05 -m comment --comment netns_kit:dry-run -j DROP"
    assert rec.lines == [
        "tc -n a qdisc add dev a-eth root tbf rate 10mbit burst 16384b latency 100ms",
        f"ip netns exec b iptables -w -t raw -I PREROUTING {match}",
        f"ip netns exec b ip6tables -w -t raw -I PREROUTING {match}",
    ]
    impairment.delete(rec)
    assert rec.lines[3:] == [
        f"ip netns exec b ip6tables -w -t raw -D PREROUTING {match}",
        f"ip netns exec b iptables -w -t raw -D PREROUTING {match}",
        "tc -n a qdisc del dev a-eth root",
    ]


def test_correlated_loss_is_not_faked_without_netem() -> None:
    rec = Recorder(kernel(netem=False))
    with pytest.raises(UnsupportedError, match="loss=5%"):
        LinkImpairment.on(veth(), {"loss": "5%", "loss_correlation": "25%"})[0].create(rec)


def test_loss_via_iptables_needs_the_peer_end() -> None:
    with pytest.raises(netns_kit.ValidationError, match=r"LinkImpairment\.peer"):
        LinkImpairment("a-eth", {"loss": "5%", "loss_via": "iptables"}, netns="a").create(Recorder())


def test_loss_via_iptables_is_used_even_with_netem_when_asked() -> None:
    rec = Recorder()
    LinkImpairment.on(veth(), {"loss": "1%", "loss_via": "iptables"}, end="peer")[0].create(rec)
    assert [c.argv[:6] for c in rec.commands] == [("iptables", "-w", "-t", "raw", "-I", "PREROUTING")] + [
        ("ip6tables", "-w", "-t", "raw", "-I", "PREROUTING")
    ]
    assert {c.netns for c in rec.commands} == {"a"}


def test_the_netem_probe_runs_once_per_executor_in_a_throwaway_namespace() -> None:
    rec = Recorder(kernel(netem=True))
    for impairment in LinkImpairment.on(veth(), {"delay": "1ms"}):
        impairment.create(rec)
    assert rec.queries.count(NETEM_PROBE) == 1
    assert NETEM_PROBE.line == "unshare --net tc qdisc add dev lo root netem delay 1ms"
    assert not NETEM_PROBE.mutating


def test_change_replaces_the_qdisc_in_place_and_teardown_removes_the_new_one() -> None:
    rec = Recorder()
    impairment = LinkImpairment("a-eth", {"rate": "10mbit"}, netns="a", peer="b-eth", peer_netns="b").create(rec)
    impairment.change({"delay": "50ms", "rate": "5mbit"}, rec)
    impairment.change(Impairment(rate="1mbit"), rec)
    assert rec.lines[1:] == [
        "tc -n a qdisc replace dev a-eth root netem delay 50ms rate 5mbit",
        "tc -n a qdisc replace dev a-eth root tbf rate 1mbit burst 16384b latency 100ms",
    ]
    assert impairment.current == Impairment(rate="1mbit")
    impairment.delete(rec)
    assert rec.lines[3:] == ["tc -n a qdisc del dev a-eth root"]


def test_change_swaps_iptables_loss_rules_and_clear_removes_everything() -> None:
    rec = Recorder(kernel(netem=False))
    impairment = LinkImpairment.on(veth(), {"loss": "5%"}, end="name")[0].create(rec)
    impairment.change({"loss": "20%", "rate": "1mbit"}, rec)
    lines = rec.lines[2:]
    assert lines[0] == "tc -n a qdisc replace dev a-eth root tbf rate 1mbit burst 16384b latency 100ms"
    assert [line.split(" -m ")[0] for line in lines[1:]] == [
        "ip netns exec b ip6tables -w -t raw -D PREROUTING -i b-eth",
        "ip netns exec b iptables -w -t raw -D PREROUTING -i b-eth",
        "ip netns exec b iptables -w -t raw -I PREROUTING -i b-eth",
        "ip netns exec b ip6tables -w -t raw -I PREROUTING -i b-eth",
    ]
    assert "--probability 0.2 " in lines[3]
    impairment.clear(rec)
    cleared = rec.lines[7:]
    assert cleared[0] == "tc -n a qdisc del dev a-eth root"
    assert [line.split(" -m ")[0] for line in cleared[1:]] == [
        "ip netns exec b ip6tables -w -t raw -D PREROUTING -i b-eth",
        "ip netns exec b iptables -w -t raw -D PREROUTING -i b-eth",
    ]
    count = len(rec.commands)
    impairment.delete(rec)
    assert len(rec.commands) == count


def test_an_impairment_needs_at_least_one_setting() -> None:
    with pytest.raises(netns_kit.ValidationError, match="at least one setting"):
        LinkImpairment("a-eth", Impairment(), netns="a")
    with pytest.raises(netns_kit.ValidationError, match=r"LinkImpairment\.impairment"):
        LinkImpairment("a-eth", "200ms", netns="a")  # type: ignore[arg-type]


def test_in_a_topology_impairments_come_after_the_links_and_go_before_them() -> None:
    pair = veth()
    topo = Topology(
        [netns_kit.Namespace("a"), netns_kit.Namespace("b"), pair, *LinkImpairment.on(pair, {"rate": "1mbit"})]
    )
    plan = topo.plan()
    assert plan.lines[-2:] == [
        "tc -n a qdisc add dev a-eth root tbf rate 1mbit burst 16384b latency 100ms",
        "tc -n b qdisc add dev b-eth root tbf rate 1mbit burst 16384b latency 100ms",
    ]
    assert plan.teardown_script().splitlines()[3:5] == [
        "tc -n b qdisc del dev b-eth root",
        "tc -n a qdisc del dev a-eth root",
    ]


def test_missing_qdisc_on_delete_counts_as_already_gone() -> None:
    def handler(command: Command) -> Result | None:
        if command.argv[:3] == ("tc", "qdisc", "del"):
            return Result(command, 2, "", "Error: Cannot delete qdisc with handle of zero.\n")
        return None

    rec = Recorder(handler)
    impairment = LinkImpairment("a-eth", {"rate": "1mbit"}, netns="a").create(rec)
    impairment.delete(rec)  # no error: missing_ok
