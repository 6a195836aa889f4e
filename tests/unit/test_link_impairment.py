"""LinkImpairment through the recorder: exact tc/iptables lines, the netem probe, changes."""

from __future__ import annotations

import pytest

import netns_kit
from netns_kit import (
    Command,
    Impairment,
    LinkImpairment,
    Recorder,
    Result,
    Topology,
    UnsupportedError,
    VethPair,
)
from netns_kit.executors.capability import NETEM_PROBE
from netns_kit.linkemu import plan, probe
from netns_kit.linkemu.plan import default_queue

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


def test_without_netem_a_netem_setting_asked_of_netem_raises_naming_what_is_missing_before_any_change() -> None:
    rec = Recorder(kernel(netem=False))
    settings = {"delay": "200ms", "jitter": "10ms", "rate": "1mbit", "via": "netem"}
    with pytest.raises(UnsupportedError) as info:
        LinkImpairment("a-eth", settings, netns="a").create(rec)
    message = str(info.value)
    assert info.value.feature == "netem qdisc"
    assert "delay=200ms, jitter=10ms" in message
    assert "CONFIG_NET_SCH_NETEM" in message
    assert "Specified qdisc kind is unknown" in message
    assert "rate limits work without it" in message
    assert "via='userspace'" in message
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


def test_correlated_loss_without_netem_goes_to_the_emulator_not_to_iptables() -> None:
    rec = Recorder(kernel(netem=False))
    LinkImpairment.on(veth(), {"loss": "5%", "loss_correlation": "25%"})[0].create(rec)
    assert rec.commands[0].argv[1:] == (
        "-m", "netns_kit.linkemu", "--queue", str(default_queue("a-eth")), "--dev", "a-eth",
        "--loss", "5%", "--loss-correlation", "25%", "--owner", "netns_kit:dry-run", "--background",
    )  # fmt: skip
    assert not [c for c in rec.commands if "raw" in c.argv]


def test_without_netem_the_emulator_starts_before_its_queue_rules_and_stops_after_them() -> None:
    rec = Recorder(kernel(netem=False))
    (impairment,) = LinkImpairment.on(veth(), {"delay": "100ms", "jitter": "10ms", "loss": "5%", "rate": "10mbit"},
                                      end="name", queue=7)  # fmt: skip
    impairment.create(rec)
    python = plan.PYTHON
    rule = "POSTROUTING -o a-eth -m comment --comment netns_kit:dry-run -j NFQUEUE --queue-num 7"
    assert rec.lines == [
        "tc -n a qdisc add dev a-eth root tbf rate 10mbit burst 16384b latency 100ms",
        f"ip netns exec a {python} -m netns_kit.linkemu --queue 7 --dev a-eth --delay 100ms --jitter 10ms "
        "--loss 5% --owner netns_kit:dry-run --background",
        f"ip netns exec a iptables -w -t mangle -I {rule}",
        f"ip netns exec a ip6tables -w -t mangle -I {rule}",
    ]
    assert [c.line for c in rec.undo_commands()] == [
        f"ip netns exec a ip6tables -w -t mangle -D {rule}",
        f"ip netns exec a iptables -w -t mangle -D {rule}",
        f"ip netns exec a {python} -m netns_kit.linkemu --stop --queue 7 --owner netns_kit:dry-run",
        "tc -n a qdisc del dev a-eth root",
    ]


def test_via_userspace_uses_the_emulator_even_with_netem_and_never_probes() -> None:
    rec = Recorder()
    LinkImpairment("a-eth", {"delay": "20ms", "via": "userspace"}, netns="a", queue=3).create(rec)
    assert [c.argv[0] for c in rec.commands] == [plan.PYTHON, "iptables", "ip6tables"]
    assert NETEM_PROBE not in rec.queries


def test_emulator_loss_can_still_go_to_iptables_when_asked() -> None:
    rec = Recorder(kernel(netem=False))
    LinkImpairment.on(veth(), {"delay": "20ms", "loss": "5%", "loss_via": "iptables"}, end="name")[0].create(rec)
    assert "--loss" not in rec.commands[0].argv
    assert [c.argv[3:6] for c in rec.commands[3:]] == [("raw", "-I", "PREROUTING")] * 2


def test_a_queue_number_is_checked() -> None:
    with pytest.raises(netns_kit.ValidationError, match=r"LinkImpairment\.queue"):
        LinkImpairment("a-eth", {"delay": "1ms"}, queue=70000)
    assert LinkImpairment("a-eth", {"delay": "1ms"}).queue_num == default_queue("a-eth")
    assert 1000 <= default_queue("a-eth") < 65000 and default_queue("a-eth") != default_queue("b-eth")


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


def kernel_without(netem: bool, nfqueue: bool):
    def handler(command: Command) -> Result | None:
        if command == NETEM_PROBE and not netem:
            return Result(command, 2, "", NO_NETEM)
        if command == probe.PROBE and not nfqueue:
            return Result(command, 1, "", "linkemu: binding an NFQUEUE failed: [Errno 93] Protocol not supported\n")
        return None

    return handler


def test_without_netem_or_nfqueue_the_error_names_both_before_any_change() -> None:
    rec = Recorder(kernel_without(netem=False, nfqueue=False))
    with pytest.raises(UnsupportedError) as info:
        LinkImpairment.on(veth(), {"delay": "100ms", "rate": "1mbit"})[0].create(rec)
    message = str(info.value)
    assert info.value.feature == "NFQUEUE"
    assert "delay=100ms" in message and "CONFIG_NETFILTER_NETLINK_QUEUE" in message
    assert "Protocol not supported" in message and "netem is missing too" in message
    assert rec.commands == []


def test_the_nfqueue_probe_runs_once_per_executor_in_a_throwaway_namespace() -> None:
    rec = Recorder(kernel_without(netem=False, nfqueue=True))
    for impairment in LinkImpairment.on(veth(), {"delay": "10ms"}):
        impairment.create(rec)
    assert probe.PROBE.argv == ("unshare", "--net", plan.PYTHON, "-m", "netns_kit.linkemu", "--probe")
    assert rec.queries.count(probe.PROBE) == 1


def test_doctor_backend_says_what_auto_uses_and_why() -> None:
    assert probe.backend(Recorder())[0] == "netem"
    which, why = probe.backend(Recorder(kernel_without(netem=False, nfqueue=True)))
    assert which == "userspace" and "no netem qdisc" in why and "emulator" in why
    which, why = probe.backend(Recorder(kernel_without(netem=False, nfqueue=False)))
    assert which == "none" and "Protocol not supported" in why


def test_change_restarts_the_emulator_with_the_new_settings_and_teardown_stops_it() -> None:
    rec = Recorder(kernel(netem=False))
    (impairment,) = LinkImpairment.on(veth(), {"delay": "10ms"}, end="name", queue=5)
    impairment.create(rec)
    del rec.commands[:]
    impairment.change({"delay": "20ms", "loss": "1%"}, rec)
    lines = [c.line.replace(plan.PYTHON, "PY") for c in rec.commands]
    rule = "POSTROUTING -o a-eth -m comment --comment netns_kit:dry-run -j NFQUEUE --queue-num 5"
    assert lines == [  # the queue rules stay: between the two emulators the queue drops (fail-closed)
        "ip netns exec a PY -m netns_kit.linkemu --stop --queue 5 --owner netns_kit:dry-run",
        "ip netns exec a PY -m netns_kit.linkemu --queue 5 --dev a-eth --delay 20ms --loss 1% "
        "--owner netns_kit:dry-run --background",
    ]
    del rec.commands[:]
    impairment.change({"rate": "1mbit"}, rec)
    lines = [c.line.replace(plan.PYTHON, "PY") for c in rec.commands]
    assert lines == [
        "tc -n a qdisc replace dev a-eth root tbf rate 1mbit burst 16384b latency 100ms",
        f"ip netns exec a ip6tables -w -t mangle -D {rule}",
        f"ip netns exec a iptables -w -t mangle -D {rule}",
        "ip netns exec a PY -m netns_kit.linkemu --stop --queue 5 --owner netns_kit:dry-run",
    ]
    del rec.commands[:]
    impairment.change({"delay": "5ms"}, rec)
    del rec.commands[:]
    impairment.delete(rec)
    assert [c.argv[-5:] for c in rec.commands][-1] == ("--stop", "--queue", "5", "--owner", "netns_kit:dry-run")
    assert len(rec.commands) == 3  # the two rules and the emulator: the change deleted the tbf qdisc


def test_a_topology_file_takes_via_and_queue() -> None:
    from netns_kit.topology.tomlfile import loads

    text = (
        '[[namespaces]]\nname = "red"\n[[impairments]]\ndev = "veth-red"\nnetns = "red"\nqueue = 7\n'
        'impairment = { delay = "100ms", via = "userspace" }\n'
    )
    (impairment,) = [r for r in loads(text).topology.resources if isinstance(r, LinkImpairment)]
    assert (impairment.queue, impairment.impairment.via) == (7, "userspace")
    rec = Recorder()
    impairment.create(rec)
    assert rec.commands[0].argv[1:5] == ("-m", "netns_kit.linkemu", "--queue", "7")


def test_emulator_alive_asks_the_emulator_of_that_queue_in_its_namespace() -> None:
    asked: list[Command] = []

    def handler(command: Command) -> Result | None:
        if "--status" in command.argv:
            asked.append(command)
            return Result(command, 1, "linkemu: queue 4: not served\n", "")
        return None

    assert not LinkImpairment("a-eth", {"delay": "1ms"}, netns="a", queue=4).emulator_alive(Recorder(handler))
    assert [(c.argv[1:], c.netns) for c in asked] == [(("-m", "netns_kit.linkemu", "--status", "--queue", "4"), "a")]
    assert LinkImpairment("a-eth", {"delay": "1ms"}, netns="a", queue=4).emulator_alive(Recorder())
