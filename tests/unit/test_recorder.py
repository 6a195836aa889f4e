"""The dry-run: recorded scripts, golden files, and no process ever started."""

from __future__ import annotations

import subprocess

import pytest
from pytest_mock import MockerFixture

import netns_kit
from netns_kit import Namespace, Recorder, Result, VethPair
from netns_kit.errors import AlreadyExistsError, NetnsKitError
from netns_kit.topology import scenarios


@pytest.mark.parametrize("name", ["seed001_pipe", "seed001_bridge", "seed002_host", "seed004_pipe"])
def test_seed_scenario_scripts_match_golden_files(name: str, golden) -> None:
    plan = getattr(scenarios, name)().plan()
    golden(f"{name}.up.sh", plan.script())
    golden(f"{name}.down.sh", plan.teardown_script())


def test_seed001_pipe_script_does_what_the_seed_does() -> None:
    """The seed's 12 commands, as netns_kit prints them (peer created in place, not moved)."""
    lines = scenarios.seed001_pipe().plan().lines
    assert lines == [
        "ip netns add red",
        "ip -n red link set dev lo alias netns_kit:dry-run up",
        "ip netns add blue",
        "ip -n blue link set dev lo alias netns_kit:dry-run up",
        "ip -n red link add name veth-red type veth peer name veth-blue netns blue",
        "ip -n red link set dev veth-red alias netns_kit:dry-run up",
        "ip -n blue link set dev veth-blue alias netns_kit:dry-run up",
        "ip -n red addr add 192.168.1.1/24 dev veth-red",
        "ip -n blue addr add 192.168.1.2/24 dev veth-blue",
    ]


def test_script_is_runnable_sh_with_set_eu() -> None:
    script = scenarios.seed001_pipe().plan().script()
    assert script.startswith("#!/bin/sh\n")
    assert "\nset -eu\n" in script


def test_a_dry_run_never_starts_a_process(mocker: MockerFixture) -> None:
    import sh

    boom = mocker.Mock(side_effect=AssertionError("a process was started"))
    mocker.patch.object(sh, "Command", boom)
    mocker.patch.object(subprocess, "Popen", boom)
    mocker.patch("os.fork", boom)
    mocker.patch("os.posix_spawn", boom)
    recorder = Recorder()
    with netns_kit.use(recorder):
        topo = scenarios.seed001_bridge()
        topo.up()
        topo["red"].links()
        topo["red"].wait_reachable("192.168.1.2")
        topo.down()
    assert recorder.commands
    boom.assert_not_called()


def test_popen_under_a_recorder_refuses_clearly() -> None:
    with netns_kit.use(Recorder()), pytest.raises(NetnsKitError, match="starts no process"):
        Namespace("red").popen(["sleep", "1"])


def test_handler_answers_queries_and_can_inject_failures() -> None:
    def handler(command):
        if command.argv[:3] == ("ip", "netns", "add"):
            return Result(command, 1, "", 'Cannot create namespace file "/run/netns/red": File exists')
        return None

    recorder = Recorder(handler)
    with pytest.raises(AlreadyExistsError):
        Namespace("red", executor=recorder).create()
    assert recorder.commands == []


def test_teardown_script_is_the_inverse_in_reverse_order() -> None:
    recorder = Recorder()
    with netns_kit.use(recorder):
        Namespace("a").create()
        VethPair("x", "y", peer_netns="a").create()
    assert recorder.teardown_script().splitlines()[3:] == ["ip link del dev x", "ip netns del a"]


def test_recorder_and_real_executor_get_the_same_command_objects(mocker: MockerFixture, tmp_path) -> None:
    seen: list = []
    real = netns_kit.ShExecutor(batch=False)
    mocker.patch.object(netns_kit.ShExecutor, "ledger_dir", new_callable=mocker.PropertyMock, return_value=tmp_path)
    mocker.patch.object(real, "_execute", side_effect=lambda argv, **kw: (seen.append(argv), (0, "", ""))[1])
    real.owner = netns_kit.Owner.dry_run()
    scenarios.seed001_pipe().up(real)
    recorder = scenarios.seed001_pipe().plan()
    # first, for the write-ahead ledger: which of the names it creates are free now
    assert tuple(seen[0]) == ("ip", "-j", "netns", "list")
    assert [tuple(a) for a in seen[1:]] == [c.full_argv for c in recorder.commands]


def test_batching_executor_gets_the_same_commands_as_the_recorder(mocker: MockerFixture, tmp_path) -> None:
    given: list = []
    written: list = []
    real = netns_kit.ShExecutor(parallel=1)  # one at a time: a fixed order to compare
    mocker.patch.object(netns_kit.ShExecutor, "ledger_dir", new_callable=mocker.PropertyMock, return_value=tmp_path)
    answer = lambda argv, **kw: (0, "0\n" if "sysctl" in argv else "", "")  # noqa: E731 (a fresh kernel)
    mocker.patch.object(real, "_execute", side_effect=answer)
    attempt, run = real.attempt, real.run
    mocker.patch.object(
        real, "attempt", side_effect=lambda commands, **kw: (given.extend(commands), attempt(commands, **kw))[1]
    )
    mocker.patch.object(
        real, "run", side_effect=lambda c, **kw: (written.extend([c] if c.mutating else []), run(c, **kw))[1]
    )
    real.owner = netns_kit.Owner.dry_run()
    scenarios.seed001_nat().up(real)
    planned = scenarios.seed001_nat().plan().commands
    # the same Command values; the forwarding switch is written when it is claimed,
    # under the claims lock (netns_kit.lifecycle.sysctl), the rest as the batches run
    (switch,) = [c for c in planned if c.argv[0] == "sysctl"]
    assert written == [switch]
    assert given == [c for c in planned if c is not switch]
    started = [
        " ".join(call.args[0]) + (f" (in {call.kwargs['netns']})" if call.kwargs.get("netns") else "")
        for call in real._execute.call_args_list
    ]
    # while planning: the iptables backend, the switch's prior value, the switch written
    # and read back everywhere (conf/all, conf/default, each interface); then, for the
    # write-ahead ledger, which of the names it creates are free now
    assert started[:6] == [
        "iptables -V",
        "sysctl -n net.ipv4.ip_forward",
        "sysctl -q -w net.ipv4.ip_forward=1",
        "ip -4 -j netconf show",
        "ip -j netns list",
        "ip -j link show",
    ]
    # one ip batch for the host and one per namespace, one iptables-restore for every rule: 5, not 40
    assert started[6:] == [
        "ip -batch -",
        # started inside each namespace by a thread that entered it: no nsenter, and not
        # `ip -n`, which would also copy the mount table each time
        "ip -batch - (in /run/netns/red)",
        "ip -batch - (in /run/netns/blue)",
        "ip -batch - (in /run/netns/green)",
        "iptables-restore --noflush -w",
    ]
