"""doctor, for real in a sandbox: all good; legacy rules while iptables is nft; FORWARD DROP.
(Missing binaries and refused user namespaces cannot be made for real without harming the
machine: tests/unit/test_doctor.py simulates them through the probes.)"""

from __future__ import annotations

import os

from netns_kit import Command
from netns_kit.doctor import OK, WARN, doctor
from netns_kit.sandbox import Sandbox

from .cli import netns_kit


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
    bridged = fresh_sandbox.run(
        Command(("sysctl", "-n", "net.bridge.bridge-nf-call-iptables"), mutating=False), check=False
    )
    expected = WARN if bridged.ok and bridged.stdout.strip() == "1" else OK
    assert report["br_netfilter"].status == expected


def test_cli_doctor_prints_each_check_with_its_fix(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.run(Command(("iptables", "-w", "-P", "FORWARD", "DROP")))
    result = netns_kit("doctor", "--attach", str(fresh_sandbox.pid))
    assert result.returncode == 0  # warnings do not fail
    assert "[WARN] FORWARD policy: DROP in iptables (Docker sets it so)" in result.stdout
    assert "fix: add a scoped accept" in result.stdout
    assert "[OK  ] iptables backend: iptables v" in result.stdout
    assert "-> backend nf_tables" in result.stdout


def test_the_br_netfilter_warning_is_true(sb: Sandbox) -> None:
    """With FORWARD DROP, namespaces on one bridge cannot talk exactly when doctor says so."""
    import netns_kit
    from netns_kit import scenarios

    topo = scenarios.seed001_bridge()
    topo.wait = True
    with topo:
        topo["red"].wait_reachable("192.168.1.2")
        sb.run(Command(("iptables", "-w", "-P", "FORWARD", "DROP")))
        try:
            warned = doctor(sb)["br_netfilter"].status == WARN
            reached = topo["red"].ping("192.168.1.2", count=2, timeout=1)
        finally:
            sb.run(Command(("iptables", "-w", "-P", "FORWARD", "ACCEPT")))
    assert warned == (not reached)
    assert netns_kit.current() is sb
