"""doctor, for real in a sandbox: all good; legacy rules while iptables is nft; FORWARD DROP.
(Missing binaries and refused user namespaces cannot be made for real without harming the
machine: tests/unit/test_doctor.py simulates them through the probes.)"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import pytest

import netns_kit
from netns_kit import Command, Host, LinkImpairment, Namespace, Topology, VethPair
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops.doctor import OK, WARN, doctor
from netns_kit.topology import scenarios

from .cli import netns_kit as cli
from .traffic import assert_dropped


def test_a_fresh_sandbox_is_all_good(fresh_sandbox: Sandbox) -> None:
    report = doctor(fresh_sandbox)
    assert report.ok
    assert [c for c in report.checks if c.status != OK] == []
    assert "backend nf_tables" in report["iptables backend"].summary
    privileges = report["privileges"].summary
    assert privileges.startswith(
        "running as root" if os.geteuid() == 0 else "not root; unprivileged user namespaces work"
    )


def test_legacy_rules_while_iptables_is_nft_are_found(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.run(Command(("iptables-legacy", "-w", "-A", "INPUT", "-s", "198.51.100.9", "-j", "DROP")))
    report = doctor(fresh_sandbox)
    check = report["other backend"]
    assert check.status == WARN
    assert check.summary == "iptables is nf_tables but iptables-legacy holds rules: iptables filter (1)"
    assert report.ok


def test_forward_policy_drop_is_found(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.run(Command(("iptables", "-w", "-P", "FORWARD", "DROP")))
    report = doctor(fresh_sandbox)
    assert report["FORWARD policy"].status == WARN
    assert report["FORWARD policy"].summary == "DROP in iptables (Docker sets it so)"


def test_cli_doctor_prints_each_check_with_its_fix(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.run(Command(("iptables", "-w", "-P", "FORWARD", "DROP")))
    result = cli("doctor", "--attach", str(fresh_sandbox.pid))
    assert result.returncode == 0  # warnings do not fail
    assert "[WARN] FORWARD policy: DROP in iptables (Docker sets it so)" in result.stdout
    assert "fix: add a scoped accept" in result.stdout
    assert "[OK  ] iptables backend: iptables v" in result.stdout
    assert "-> backend nf_tables" in result.stdout


@contextlib.contextmanager
def bridge_under_forward_drop(sb: Sandbox, bridge_nf_call_iptables: str) -> Iterator[Topology]:
    """Seed 001's bridge, red reaching blue; then FORWARD policy DROP and the switch set as asked
    (it is per network namespace: the sandbox's own, the machine's is untouched)."""
    topo = scenarios.seed001_bridge()
    topo.wait = True
    with topo:
        topo["red"].wait_reachable("192.168.1.2")
        prior = Host().set_sysctl("net.bridge.bridge-nf-call-iptables", bridge_nf_call_iptables)
        sb.run(Command(("iptables", "-w", "-P", "FORWARD", "DROP")))
        try:
            yield topo
        finally:
            sb.run(Command(("iptables", "-w", "-P", "FORWARD", "ACCEPT")))
            Host().set_sysctl("net.bridge.bridge-nf-call-iptables", prior)


@pytest.mark.needs("br_netfilter")
def test_the_br_netfilter_warning_is_true_namespaces_on_one_bridge_are_cut(sb: Sandbox) -> None:
    with bridge_under_forward_drop(sb, "1") as topo:
        check = doctor(sb)["br_netfilter"]
        assert check.status == WARN
        assert check.summary.endswith("namespaces on the same bridge cannot talk")
        # the FORWARD policy's own counter shows red's pings dropped (not merely slow)
        assert_dropped(topo["red"], "192.168.1.2", by=[Host()])
    assert netns_kit.current() is sb


@pytest.mark.needs("br_netfilter")
def test_with_bridge_nf_call_iptables_off_doctor_is_content_and_the_bridge_still_passes(sb: Sandbox) -> None:
    with bridge_under_forward_drop(sb, "0") as topo:
        check = doctor(sb)["br_netfilter"]
        assert check.status == OK
        assert check.summary == "loaded, bridge-nf-call-iptables=0: traffic inside a bridge skips iptables"
        assert doctor(sb)["FORWARD policy"].status == WARN
        topo["red"].wait_reachable("192.168.1.2")


def test_the_impairments_check_names_what_via_auto_really_uses_here(fresh_sandbox: Sandbox) -> None:
    """doctor's answer is what Impairment(via="auto") does: a netem qdisc, or an emulator process
    behind a queue rule (this machine, without netem: "userspace")."""
    report = doctor(fresh_sandbox)
    check = report["impairments"]
    assert check.status == OK
    which = check.summary.split(":")[0]
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.1.1/24", peer_addresses="10.8.1.2/24")
    impaired = LinkImpairment("a-eth", {"delay": "5ms"}, netns="a")
    with netns_kit.use(fresh_sandbox), Topology([Namespace("a"), Namespace("b"), veth, impaired]):
        qdisc = impaired.qdisc()
        used = "netem" if qdisc is not None and qdisc["kind"] == "netem" else None
        if impaired.queue_rule() and impaired.emulator_alive():
            used = "userspace"
    assert which == used
    # the kernel's own word on netem, read without netns_kit: tc in a namespace of the sandbox
    tc = fresh_sandbox.run(
        Command(("unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms")), check=False
    )
    if "qdisc kind is unknown" in tc.stderr:  # this machine
        assert which == "userspace"
        assert check.summary.startswith("userspace: no netem here; the userspace link emulator (NFQUEUE) stands in")
        assert "NFQUEUE works" in check.explanation
    else:
        assert tc.returncode == 0, tc.stderr
        assert which == "netem"
    printed = cli("doctor", "--json", "--attach", str(fresh_sandbox.pid))
    assert printed.returncode == 0
    checks = {c["name"]: c for c in json.loads(printed.stdout)["checks"]}
    assert checks["impairments"]["summary"].split(":")[0] == which
