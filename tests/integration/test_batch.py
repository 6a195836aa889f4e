"""Batching changes nothing observable: same state, same errors, same rollback, names reusable.

Each test runs a topology through the batching Sandbox executor and through
an unbatched one (one process per command, in plan order) on the same
sandbox, and compares what the kernel holds afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import netns_kit
from netns_kit import CommandError, Route, Sandbox, Topology
from netns_kit.errors import AlreadyExistsError
from netns_kit.executors.base import wait_until
from netns_kit.ops import state
from netns_kit.topology import scenarios


def _dual_stack() -> Topology:
    """IPv4 and IPv6 (ip -6 batches, ip6tables-restore), localhost and hairpin forwards
    (route_localnet, the raw table, a bridge port flag)."""
    from netns_kit import Bridge, Namespace, NatRule, PortForward, Route, VethPair

    return Topology(
        [
            Bridge("v-net-0", addresses=["192.168.1.254/24", "fd00:1::fe/64"]),
            Namespace("red"),
            VethPair(
                "veth-red",
                "red-veth",
                peer_netns="red",
                bridge="v-net-0",
                peer_addresses=["192.168.1.1/24", "fd00:1::1/64"],
            ),
            Route("default", via="192.168.1.254", netns="red"),
            Route("default6", via="fd00:1::fe", netns="red"),
            NatRule("192.168.1.0/24", bridge="v-net-0"),
            NatRule("fd00:1::/64", bridge="v-net-0"),
            PortForward(8080, "192.168.1.1", 80, bridge="v-net-0", localhost=True),
            PortForward(8081, "192.168.1.1", 81, bridge="v-net-0", bridge_port="veth-red", hairpin=True),
            PortForward(8080, "fd00:1::1", 80, protocol="udp", bridge="v-net-0"),
        ]
    )


EXAMPLES: dict[str, Callable[[], Topology]] = {
    "dual stack, localhost, hairpin": _dual_stack,
    "seed001_pipe": scenarios.seed001_pipe,
    "seed001_bridge": scenarios.seed001_bridge,
    "seed002_host": scenarios.seed002_host,
    "seed004_pipe": scenarios.seed004_pipe,
    "seed001_story": scenarios.seed001_story,
    "W(20)": lambda: scenarios.workload(20),
}


@pytest.fixture
def both(sb: Sandbox) -> dict[str, Sandbox]:
    """The batching sandbox executor and an unbatched one on the same sandbox."""
    assert sb.batch
    return {"batched": sb, "unbatched": Sandbox.attach(sb.pid, rootless=sb.rootless, batch=False)}


def _up_state(topo: Topology, executor: Sandbox) -> dict[str, Any]:
    topo.up(executor)
    try:
        return state.snapshot(executor)
    finally:
        topo.down()


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_batched_run_leaves_the_same_state_as_an_unbatched_run(name: str, both: dict[str, Sandbox]) -> None:
    before = state.snapshot(both["batched"])
    batched = _up_state(EXAMPLES[name](), both["batched"])
    assert state.diff(before, state.snapshot(both["batched"])) == []
    unbatched = _up_state(EXAMPLES[name](), both["unbatched"])
    assert state.diff(unbatched, batched) == []
    assert batched != before  # it did build something


def test_teardown_leaves_names_reusable_at_once(sb: Sandbox) -> None:
    before = state.snapshot(sb, firewall=False)
    for _ in range(3):  # build, tear down, build again with the same names: no "File exists"
        topo = scenarios.workload(20).up(sb)
        assert len(netns_kit.Host(sb).links()) > 20
        topo.down()
        assert state.diff(before, state.snapshot(sb, firewall=False)) == []


def test_teardown_stops_processes_left_in_namespaces(sb: Sandbox) -> None:
    topo = scenarios.workload(3).up(sb)
    ours = topo["w1"].popen(["sleep", "300"])
    stray = sb.popen(netns_kit.Command(("sleep", "301"), netns="w2"))
    expected = {"w1": [ours.pid], "w2": [stray.pid]}
    wait_until(lambda: sb.netns_pids(["w1", "w2"]) == expected, timeout=10, what="the sleeps to enter w1 and w2")
    topo.down()
    assert not ours.is_alive() and not stray.is_alive()
    assert sb.run(netns_kit.query("ip", "netns", "list")).stdout.strip() == ""
    stray.stop(1)


def test_a_namespace_batch_starts_inside_it_without_nsenter(sb: Sandbox, mocker: Any) -> None:
    """As root, a thread enters the namespace, starts ``ip -batch`` and comes back;
    rootless, entering is refused (the sandbox's user namespace) and nsenter does it."""
    import threading

    from netns_kit import Namespace
    from netns_kit.executors import spawn

    inside = spawn.start_inside
    calls = mocker.patch.object(spawn, "start_inside", side_effect=inside)
    with Namespace("nk-direct", executor=sb):
        path = sb.netns_path("nk-direct")
        calls.reset_mock()
        process = netns_kit.Command(("ip", "-batch", "-"), netns="nk-direct")
        seen: list[Any] = []

        def in_a_worker() -> None:  # as a batch step runs: on a worker thread
            seen.append(sb._execute_batch(process, "addr add 10.9.9.9/32 dev lo\n"))
            seen.append(os.stat("/proc/thread-self/ns/net").st_ino)

        worker = threading.Thread(target=in_a_worker)
        worker.start()
        worker.join()
        assert seen[0][0] == 0, seen[0]
        # the address landed in the namespace, and the thread is back where it was
        addresses = sb.run(netns_kit.query("ip", "-j", "addr", "show", "dev", "lo", netns="nk-direct")).json()
        assert "10.9.9.9" in [a["local"] for a in addresses[0]["addr_info"]]
        assert seen[1] == os.stat("/proc/self/ns/net").st_ino
        if sb.rootless:
            assert sb.enter_directly is False and calls.call_count <= 1  # refused, if tried at all
            with pytest.raises(spawn.NotEntered):
                spawn.run(["true"], netns=path)
        else:
            assert sb.enter_directly is True and calls.call_count == 1
            # the process started inside: its network namespace is the namespace's file
            found = spawn.run(["readlink", "/proc/self/ns/net"], netns=path)
            assert found[1].strip() == f"net:[{os.stat(path).st_ino}]"
            assert os.stat("/proc/self/ns/net").st_ino != os.stat(path).st_ino


# -- a failure in the middle of a batch --------------------------------------------


def _failure(topo: Topology, executor: Sandbox) -> CommandError:
    with pytest.raises(CommandError) as info:
        topo.up(executor)
    return info.value


def _inject_host_link(executor: Sandbox) -> Iterator[None]:
    """A link called wh3 already on the host: W(6)'s 4th veth fails in the host's ip batch."""
    host = netns_kit.Host(executor)
    host.run(["ip", "link", "add", "name", "wh3", "type", "bridge"], mutating=True)
    yield
    host.run(["ip", "link", "del", "dev", "wh3"], mutating=True)


def _inject_chain(executor: Sandbox) -> Iterator[None]:
    """The chain of W(6)'s 3rd port forward already exists: its iptables-restore block fails."""
    chain = scenarios.workload(6).of_type(netns_kit.PortForward)[2].chain("OUT")
    host = netns_kit.Host(executor)
    host.run(["iptables", "-w", "-t", "nat", "-N", chain], mutating=True)
    yield
    host.run(["iptables", "-w", "-t", "nat", "-X", chain], mutating=True)


def _second_default_route(topo: Topology) -> Topology:
    """A second default route in w2 (through another gateway on its subnet): w2's ip batch
    fails half-way ("File exists"). (An address added again is refused before anything runs.)"""
    return topo.add(Route("default", via="10.200.0.250", netns="w2"))


CASES: dict[str, tuple[Callable[[Sandbox], Iterator[None]] | None, Callable[[Topology], Topology]]] = {
    "host ip batch": (_inject_host_link, lambda t: t),
    "namespace ip batch": (None, _second_default_route),
    "iptables-restore": (_inject_chain, lambda t: t),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failure_in_a_batch_gives_the_same_error_and_rollback_as_unbatched(case: str, both: dict[str, Sandbox]) -> None:
    inject, change = CASES[case]
    errors = {}
    for mode, executor in both.items():
        setup = inject(executor) if inject else iter([None])
        next(setup)
        before = state.snapshot(executor)
        errors[mode] = _failure(change(scenarios.workload(6)), executor)
        assert state.diff(before, state.snapshot(executor)) == [], f"{mode} rollback left something"
        next(setup, None)
    batched, unbatched = errors["batched"], errors["unbatched"]
    assert type(batched) is type(unbatched)
    assert isinstance(batched, AlreadyExistsError)
    assert batched.argv == unbatched.argv
    assert not getattr(batched, "cleanup_errors", [])


@attrs.frozen
class _Unparsable(netns_kit.Resource):
    """A bridge given an address ip cannot parse (a /33) and set up after it: ip exits
    on that line without naming it (no ``Command failed -:N``)."""

    netns: str | None = None

    def plan(self, executor: netns_kit.Executor) -> list[netns_kit.Command]:
        dev = "nk-unparsed"
        gone = netns_kit.Command(("ip", "link", "del", "dev", dev), netns=self.netns)
        return [
            netns_kit.change("ip", "link", "add", "name", dev, "type", "bridge", netns=self.netns, undo=gone),
            netns_kit.change("ip", "addr", "add", "192.168.50.1/33", "dev", dev, netns=self.netns),
            netns_kit.change("ip", "link", "set", "dev", dev, "up", netns=self.netns),
        ]


@pytest.mark.parametrize("netns", [None, "w2"], ids=["host ip batch", "namespace ip batch"])
def test_a_line_ip_cannot_parse_raises_that_commands_error_batched_or_not(
    netns: str | None, both: dict[str, Sandbox]
) -> None:
    errors = {}
    for mode, executor in both.items():
        before = state.snapshot(executor)
        topo = scenarios.workload(6).add(_Unparsable(netns=netns))
        errors[mode] = _failure(topo, executor)
        assert state.diff(before, state.snapshot(executor)) == [], f"{mode} rollback left something"
    batched, unbatched = errors["batched"], errors["unbatched"]
    bad = netns_kit.Command(("ip", "addr", "add", "192.168.50.1/33", "dev", "nk-unparsed"), netns=netns)
    assert batched.argv == unbatched.argv == bad.full_argv
    assert (type(batched), batched.returncode, batched.stderr) == (
        type(unbatched),
        unbatched.returncode,
        unbatched.stderr,
    )
    assert '"192.168.50.1/33"' in batched.stderr
    assert not getattr(batched, "cleanup_errors", [])


# -- both iptables backends ------------------------------------------------------


@pytest.fixture(params=["nft", "legacy"])
def backend_sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    """A fresh sandbox whose ``iptables*`` are the nf_tables or the legacy ones (by PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("iptables", "ip6tables"):
        for suffix in ("", "-restore", "-save"):
            (bin_dir / f"{tool}{suffix}").symlink_to(f"/usr/sbin/{tool}-{request.param}{suffix}")
    bin_dir.chmod(0o755)
    tmp_path.chmod(0o755)
    with Sandbox() as box:
        box.env = {"PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}
        version = box.run(netns_kit.query("iptables", "-V")).stdout
        assert ("nf_tables" in version) == (request.param == "nft"), version
        yield box


def _rules(executor: Sandbox) -> dict[str, list[str]]:
    """``iptables -S`` of the tables we use (``iptables-save`` cannot list legacy tables rootless)."""
    listed = {}
    for table in ("nat", "filter", "raw"):
        text = executor.run(netns_kit.query("iptables", "-w", "-t", table, "-S")).stdout
        listed[table] = [state._untag(line) or line for line in text.splitlines()]
    return listed


def _up_rules(topo: Topology, executor: Sandbox) -> dict[str, list[str]]:
    topo.up(executor)
    try:
        return _rules(executor)
    finally:
        topo.down()


def test_restore_batches_work_on_both_backends(backend_sandbox: Sandbox) -> None:
    box = backend_sandbox
    unbatched = Sandbox.attach(box.pid, rootless=box.rootless, batch=False)
    unbatched.env = box.env
    before = state.snapshot(box)
    rules_before = _rules(box)
    batched_rules = _up_rules(scenarios.seed001_story(), box)
    assert [sum("-j NK-" in line for line in batched_rules[t]) for t in ("nat", "filter")] == [3, 2]
    assert state.diff(before, state.snapshot(box)) == []
    assert _rules(box) == rules_before
    assert _up_rules(scenarios.seed001_story(), unbatched) == batched_rules
    # a block that fails is replayed one by one: the precise error, and nothing left behind
    errors = []
    for executor in (box, unbatched):
        gen = _inject_chain(executor)
        next(gen)
        errors.append(_failure(scenarios.workload(6), executor))
        next(gen, None)
        assert state.diff(before, state.snapshot(executor)) == []
        assert _rules(executor) == rules_before
    assert [type(e) for e in errors] == [AlreadyExistsError] * 2
    assert errors[0].argv == errors[1].argv
