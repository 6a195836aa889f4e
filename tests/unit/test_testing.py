"""netns_kit.testing and netns_kit.ops.leakcheck without privileges (recorder, fakes)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

import netns_kit
from netns_kit import Command, Namespace, Owner, Recorder, Resource, Topology, ValidationError, change, testing
from netns_kit.executors.sandbox import Sandbox
from netns_kit.lifecycle.journal import Journal
from netns_kit.lifecycle.ledger import Ledger
from netns_kit.ops import leakcheck
from netns_kit.testing import Factory, assert_golden, assert_plan, environment_problem, unique_name
from netns_kit.validate import ifname, netns_name

# -- unique names --------------------------------------------------------------


def test_unique_name_is_prefix_token_counter_and_fits_an_interface_name() -> None:
    name = unique_name("red")
    assert re.fullmatch(r"red-[0-9a-z]+-[0-9a-z]+", name)
    assert ifname("x", name) == netns_name("x", name) == name
    assert len(name.encode()) <= 15


def test_unique_name_shortens_a_long_prefix_to_fit_15_bytes() -> None:
    name = unique_name("a-very-long-prefix")
    assert len(name.encode()) == 15
    assert name.startswith("a-very")


def test_unique_name_never_repeats_in_a_process() -> None:
    names = [unique_name("x") for _ in range(20000)]
    assert len(set(names)) == len(names)
    assert all(len(n.encode()) <= 15 for n in names)


def test_unique_name_differs_in_a_forked_child() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: names after the fork
        os.write(write, json.dumps([unique_name("x") for _ in range(100)]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(json.loads(pipe.read()))
    os.waitpid(pid, 0)
    parent = {unique_name("x") for _ in range(100)}
    assert len(child) == 100 and not child & parent
    assert {n.split("-")[1] for n in child} != {n.split("-")[1] for n in parent}


def test_unique_name_rejects_a_prefix_no_interface_name_may_have() -> None:
    with pytest.raises(ValidationError, match=r"unique_name.prefix: 'bad name' has characters outside"):
        unique_name("bad name")


# -- golden files -----------------------------------------------------------------


def pipe() -> Topology:
    return Topology([Namespace("red"), Namespace("blue")])


def test_assert_plan_passes_on_the_same_script(tmp_path: Path) -> None:
    golden = tmp_path / "pipe.sh"
    golden.write_text(pipe().plan().script())
    assert_plan(pipe(), golden, update=False)
    assert_plan(pipe().plan(), golden, update=False)


def test_assert_plan_fails_with_a_diff(tmp_path: Path) -> None:
    golden = tmp_path / "pipe.sh"
    golden.write_text(pipe().plan().script().replace("blue", "green"))
    with pytest.raises(AssertionError) as info:
        assert_plan(pipe(), golden, update=False)
    assert f"differs from golden file {golden}" in str(info.value)
    lines = str(info.value).splitlines()
    assert "-ip netns add green" in lines and "+ip netns add blue" in lines


def test_assert_plan_says_how_to_create_a_missing_golden_file(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="does not exist: run with NETNS_KIT_UPDATE_GOLDEN=1"):
        assert_plan(pipe(), tmp_path / "missing.sh", update=False)


def test_assert_plan_rewrites_on_request_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = tmp_path / "sub" / "pipe.sh"
    assert_plan(pipe(), golden, update=True)
    assert golden.read_text() == pipe().plan().script()
    monkeypatch.setenv(testing.UPDATE_ENV, "1")
    assert_plan(pipe(), golden, teardown=True)
    assert golden.read_text() == pipe().plan().teardown_script()
    assert golden.read_text().splitlines()[-1] == "ip netns del red"


def test_assert_golden_ignores_the_netns_kit_version_in_the_header(tmp_path: Path) -> None:
    golden = tmp_path / "pipe.sh"
    text = pipe().plan().script()
    golden.write_text(text.replace(f"netns_kit {netns_kit.__version__}", "netns_kit 0.0.1"))
    assert_golden(text, golden, update=False)


# -- the factory ------------------------------------------------------------------


def test_factory_brings_resources_up_and_down_last_first() -> None:
    recorder = Recorder()
    with Factory(recorder) as make:
        first = make.create(Namespace("first"))
        topo = make(Namespace("red"), Namespace("blue"))
        assert topo.is_up and first.name == "first"
        assert recorder.lines[0] == "ip netns add first"
        recorder.clear()
    deleted = [c.argv[-1] for c in recorder.commands if c.argv[:3] == ("ip", "netns", "del")]
    assert deleted == ["blue", "red", "first"]


def test_factory_takes_one_topology_and_refuses_a_mix() -> None:
    topo = pipe()
    with Factory(Recorder()) as make:
        assert make(topo) is topo and topo.is_up
        with pytest.raises(ValidationError, match="must be one Topology or only resources"):
            make(pipe(), Namespace("x"))
    assert not topo.is_up


@attrs.frozen
class Brittle(Resource):
    message: str = "teardown broke"

    def plan(self, executor: Any) -> list[Command]:
        return [change("true")]

    def undo(self, executor: Any, done: Any, *, complete: bool) -> None:
        raise RuntimeError(self.message)


def test_factory_goes_on_tearing_down_after_an_error_and_raises_the_first() -> None:
    recorder = Recorder()
    make = Factory(recorder)
    make.create(Namespace("first"))
    make.create(Brittle(message="second broke"))
    make.create(Brittle(message="third broke"))
    recorder.clear()
    with pytest.raises(netns_kit.NetnsKitError, match="third broke") as info:
        make.close()
    assert any("second broke" in note for note in info.value.__notes__)
    assert recorder.lines[-1] == "ip netns del first"


def test_factory_namespace_and_pair_have_unique_names_and_addresses() -> None:
    recorder = Recorder()
    with Factory(recorder) as make:
        ns = make.namespace()
        pair = make.pair()
    assert ns.name.startswith("ns-") and ns.executor is recorder
    assert pair.a.name.startswith("a-") and pair.b.name.startswith("b-")
    assert (pair.a_address, pair.b_address) == ("10.0.0.1", "10.0.0.2")
    assert f"ip -n {pair.a.name} link add name eth0 type veth peer name eth0 netns {pair.b.name}" in recorder.lines


def test_wait_reachable_returns_at_once_in_a_dry_run() -> None:
    recorder = Recorder()
    testing.wait_reachable(Namespace("red", executor=recorder), "10.0.0.2")
    testing.wait_reachable(Namespace("red", executor=recorder), "10.0.0.2", port=80)
    assert recorder.commands == recorder.queries == []


# -- the environment probe ---------------------------------------------------------


def _probes(**fields):
    from netns_kit.ops.doctor import Probes

    base = {"which": lambda name: "/bin/x", "euid": lambda: 0, "userns_works": lambda: (True, "")}
    return Probes(**{**base, **fields})


def test_probe_gives_doctors_reason_for_missing_programs() -> None:
    probes = _probes(which=lambda name: None if name in ("ip", "unshare") else "/bin/x")
    problem = environment_problem(probes=probes, start=False)
    assert problem is not None
    assert "iproute2 (ip): missing: ip (fix: apt-get install iproute2" in problem
    assert "util-linux (nsenter, unshare): missing: unshare" in problem


def test_probe_gives_doctors_reason_for_refused_user_namespaces() -> None:
    probes = _probes(
        euid=lambda: 1000,
        read=lambda path: "0" if path == "/proc/sys/user/max_user_namespaces" else None,
    )
    problem = environment_problem(probes=probes, start=False)
    assert problem is not None
    assert problem.startswith("privileges: not root, and user namespaces are refused: user.max_user_namespaces is 0")
    assert "sysctl -w user.max_user_namespaces=15000" in problem


def test_probe_needs_root_for_the_machines_own_network() -> None:
    probes = _probes(euid=lambda: 1000)
    assert environment_problem(probes=probes, start=False) is None
    assert environment_problem(probes=probes, sandbox=False) == (
        "not root (euid 1000): only root may change this machine's own network"
    )


def test_probe_reports_a_sandbox_that_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Sandbox, *, detached: bool = False) -> Sandbox:
        raise netns_kit.SandboxError("the sandbox did not start: nope")

    monkeypatch.setattr(Sandbox, "start", refuse)
    assert environment_problem(probes=_probes()) == "the sandbox did not start: nope"
    assert environment_problem(probes=_probes(), start=False) is None


# -- leak descriptions ---------------------------------------------------------------


def place(**extra: Any) -> dict[str, Any]:
    return {"links": [], "addresses": [], "routes": [], "sysctl": {}, "iptables-save": {}, "ip6tables-save": {}} | extra


def test_describe_lists_new_and_vanished_namespaces_by_name() -> None:
    before = {"netns": ["old"], "<host>": place(), "old": place()}
    after = {"netns": ["new"], "<host>": place(), "new": place(links=[("lo",)])}
    assert leakcheck.describe(before, after) == ["namespace new", "namespace old is gone"]


def test_describe_shows_a_rule_in_a_table_that_did_not_exist_as_one_line() -> None:
    rules = {"nat": [":PREROUTING ACCEPT", ":POSTROUTING ACCEPT", "-A POSTROUTING -s 10.0.0.0/24 -j MASQUERADE"]}
    before = {"netns": ["red"], "<host>": place(), "red": place()}
    after = {"netns": ["red"], "<host>": place(), "red": place(**{"iptables-save": rules})}
    assert leakcheck.describe(before, after) == [
        "namespace red, iptables-save nat: new '-A POSTROUTING -s 10.0.0.0/24 -j MASQUERADE'"
    ]
    assert leakcheck.describe(after, after) == []


def test_owned_finds_what_this_owner_has_not_undone_without_entering_namespaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = "netns_kit:dry-run"
    checking: list[Command] = []

    def handler(command: Command) -> Any:
        if checking:
            checking.append(command)
        if command.argv == ("iptables-save",):
            return f'*nat\n-A POSTROUTING -m comment --comment "{tag}" -j MASQUERADE\n-A POSTROUTING -j X\nCOMMIT\n'
        if command.argv == ("ip", "-j", "link", "show"):
            return json.dumps([{"ifname": "v-mine", "ifalias": tag}, {"ifname": "eth0"}])
        return None

    class Ledgered(Recorder):
        @property
        def ledger_dir(self) -> Path:
            return tmp_path

    recorder = Ledgered(handler)
    Journal(recorder).apply(Namespace("kept"))
    undone = Journal(recorder)
    undone.apply(Namespace("undone"))
    undone.close()
    theirs = change("ip", "netns", "add", "theirs", undo=Command(("ip", "netns", "del", "theirs")))
    Ledger(tmp_path, Owner("1.2")).intend([theirs])
    monkeypatch.setattr(leakcheck.binaries, "which", lambda name, path=None: "/bin/x")
    checking.append(Command(("start",)))
    found = leakcheck.owned(recorder)
    assert [c.netns for c in checking] == [None] * len(checking), "entered a namespace"
    assert found == {
        "ip netns add kept (not undone)",
        "the host, link v-mine",
        f'the host, iptables-save: -A POSTROUTING -m comment --comment "{tag}" -j MASQUERADE',
    }
