"""The plugin where namespaces cannot be made (skip, or fail on request), on a shared
network (``--netns-host``) and under pytest-xdist.

Runs on a shared network happen inside a sandbox of the test's own: pytest is
started there through ``nsenter``, so its "machine" is the sandbox.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import netns_kit
import netns_kit.ops.doctor
from netns_kit import Command
from netns_kit.executors import binaries
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.ops.leakcheck import describe
from netns_kit.pytest_plugin import REQUIRE_ENV

NEEDS_NAMESPACES = """
def test_needs_namespaces(netns_namespace):
    assert netns_namespace.exists()

def test_a_dry_run_needs_nothing(netns_recorder):
    assert netns_recorder.commands == []
"""

_FIX = "(Debian/Ubuntu; or your distribution's package)"
MISSING = (
    f"iproute2 (ip): missing: ip (fix: apt-get install iproute2  {_FIX}); "
    f"util-linux (nsenter, unshare): missing: nsenter, unshare (fix: apt-get install util-linux  {_FIX}); "
    f"procps (sysctl, kill): missing: sysctl, kill (fix: apt-get install procps  {_FIX})"
)
APPARMOR = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
NO_USERNS = (
    "privileges: not root, and user namespaces are refused: Ubuntu's AppArmor restricts unprivileged user "
    "namespaces (kernel.apparmor_restrict_unprivileged_userns=1) (fix: sysctl -w "
    "kernel.apparmor_restrict_unprivileged_userns=0 (until reboot; persist it in /etc/sysctl.d/), or give the "
    "test runner an AppArmor profile that allows 'userns'; or run as root)"
)
REFUSED = "the sandbox did not start: unshare: unshare failed: Operation not permitted"


def break_environment(how: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> str:
    """Make real namespaces impossible in this process; return the reason the plugin must give."""
    if how == "missing programs":
        monkeypatch.setenv("PATH", str(pytester.mkdir("empty-bin")))
        monkeypatch.setattr(binaries, "SYSTEM_DIRS", ())  # not in /usr/sbin, /sbin either
        return MISSING
    if how == "no user namespaces":
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
        monkeypatch.setattr(netns_kit.ops.doctor, "_read", lambda path: "1" if path == APPARMOR else None)
        return NO_USERNS

    def refuse(self: Sandbox, *, detached: bool = False) -> Sandbox:
        raise netns_kit.SandboxError(REFUSED)

    monkeypatch.setattr(Sandbox, "start", refuse)
    return REFUSED


HOW = ["missing programs", "no user namespaces", "sandbox refuses to start"]


@pytest.mark.parametrize("how", HOW)
def test_fixtures_skip_with_the_exact_reason(
    how: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    reason = break_environment(how, pytester, monkeypatch)
    pytester.makepyfile(NEEDS_NAMESPACES)
    passed, skipped, failed = pytester.inline_run().listoutcomes()
    assert [r.head_line for r in passed] == ["test_a_dry_run_needs_nothing"]
    assert failed == []
    assert len(skipped) == 1
    assert isinstance(skipped[0].longrepr, tuple)
    assert skipped[0].longrepr[2] == (
        f"Skipped: netns_kit cannot make real namespaces here: {reason} "
        f"(--netns-require or {REQUIRE_ENV}=1 to fail instead)"
    )


@pytest.mark.parametrize("asked_by", ["--netns-require", REQUIRE_ENV, "ini netns_require"])
@pytest.mark.parametrize("how", HOW)
def test_fixtures_fail_instead_when_asked(
    how: str, asked_by: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    args = []
    if asked_by == REQUIRE_ENV:
        monkeypatch.setenv(REQUIRE_ENV, "1")
    elif asked_by.startswith("ini"):
        pytester.makeini("[pytest]\nnetns_require = true\n")
    else:
        args.append(asked_by)
    reason = break_environment(how, pytester, monkeypatch)
    pytester.makepyfile(NEEDS_NAMESPACES)
    passed, skipped, failed = pytester.inline_run(*args).listoutcomes()
    assert (len(passed), len(skipped), len(failed)) == (1, 0, 1)
    assert failed[0].when == "setup"
    assert str(failed[0].longrepr).endswith(f"netns_kit cannot make real namespaces here: {reason}")


def test_netns_host_refuses_a_user_who_is_not_root(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    pytester.makepyfile(NEEDS_NAMESPACES)
    passed, skipped, failed = pytester.inline_run("--netns-host").listoutcomes()
    assert (len(passed), len(skipped), len(failed)) == (1, 0, 1)
    assert str(failed[0].longrepr) == (
        "--netns-host: not root (euid 1000): only root may change this machine's own network; "
        "drop --netns-host to use a rootless sandbox"
    )


def pytest_in(sandbox: Sandbox, pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in ``pytester.path`` with the sandbox as its machine.

    (``env -C``: entering the sandbox's mount namespace moves a process to ``/``.)
    """
    path = pytester.path
    pytest_argv = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={path / 'tmp'}")
    return pytester.run(*sandbox.argv_for(Command(("env", "-C", str(path), *pytest_argv, *args, str(path)))))


SHARED_LEAKS = """
from netns_kit import Host, Namespace

def test_leaks_a_namespace(netns_executor):
    assert netns_executor.prefix == ()  # no sandbox: this machine (here, the outer test's sandbox)
    Namespace("leaky").create()

def test_leaks_a_tagged_iptables_rule(netns_executor):
    tag = netns_executor.owner.tag
    Host().run(["iptables", "-w", "-A", "INPUT", "-s", "10.9.9.9", "-m", "comment", "--comment", tag, "-j", "DROP"],
               mutating=True)

def test_clean(netns_pair):
    netns_pair.a.wait_reachable(netns_pair.b_address)
"""


def test_netns_host_checks_leaks_by_owner_tag(pytester: pytest.Pytester, netns_fresh_sandbox: Sandbox) -> None:
    pytester.makepyfile(SHARED_LEAKS)
    result = pytest_in(netns_fresh_sandbox, pytester, "--netns-host")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*the test left this behind:", "*  ip netns add leaky (not undone)"])
    result.stdout.fnmatch_lines(
        ['*  the host, iptables-save: -A INPUT -s 10.9.9.9/32 -m comment --comment "netns_kit:*" -j DROP']
    )


HELD = """
from netns_kit import Host, NatRule
from netns_kit.firewall.nftheld import Held

def test_the_machines_nft_tables_are_held(netns_executor):
    # this machine's own network outlives the run: the kernel deletes the table if it is killed
    assert isinstance(netns_executor, Held)
    with NatRule("10.7.0.0/24", out_interface="eth7", backend="nft"):
        listing = Host().run(["nft", "list", "table", "inet", "netns_kit_" + netns_executor.owner.id]).stdout
        assert "flags owner" in listing
    assert "netns_kit_" not in Host().run(["nft", "list", "tables"]).stdout
"""


def test_netns_host_holds_the_nft_tables_it_makes(pytester: pytest.Pytester, netns_fresh_sandbox: Sandbox) -> None:
    pytester.makepyfile(HELD)
    result = pytest_in(netns_fresh_sandbox, pytester, "--netns-host")
    result.assert_outcomes(passed=1)


MANY = """
import json, os, pathlib
import pytest
from netns_kit import Namespace

@pytest.mark.parametrize("i", range(32))
def test_many_namespaces(i, netns_factory, netns_namespace, netns_pair):
    names = [netns_namespace.name, netns_pair.a.name, netns_pair.b.name]
    names += [netns_factory.namespace().name for _ in range(2)]
    netns_pair.a.wait_reachable(netns_pair.b_address)
    assert all(Namespace(name).exists() for name in names)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
    (pathlib.Path(os.environ["NAMES_DIR"]) / f"{i}.json").write_text(json.dumps([worker, names]))
"""


@pytest.mark.parametrize("mode", ["--netns-host", "--netns-sandbox-scope=session"])
def test_xdist_workers_make_many_namespaces_without_collisions_or_leaks(
    mode: str, pytester: pytest.Pytester, netns_fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --netns-host the four workers share one network (the sandbox): names must not collide."""
    names_dir = pytester.mkdir("names")
    monkeypatch.setenv("NAMES_DIR", str(names_dir))
    pytester.makepyfile(MANY)
    empty = state.snapshot(netns_fresh_sandbox)
    result = pytest_in(netns_fresh_sandbox, pytester, "-n", "4", mode)
    result.assert_outcomes(passed=32)
    records = [json.loads(path.read_text()) for path in names_dir.iterdir()]
    workers = {worker for worker, _ in records}
    names = [name for _, made in records for name in made]
    assert len(records) == 32 and len(workers) > 1
    assert len(names) == 160 == len(set(names))
    assert max(len(name.encode()) for name in names) <= 15
    assert describe(empty, state.snapshot(netns_fresh_sandbox)) == []
    assert not list(Path(netns_fresh_sandbox.root_path("/run/netns")).iterdir())
