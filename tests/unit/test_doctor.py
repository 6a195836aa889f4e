"""doctor: each scenario simulated through injectable probes (no privileges needed)."""

from __future__ import annotations

import attrs
import pytest

from netns_kit import Command, Recorder, Result
from netns_kit.executors.capability import NETEM_PROBE
from netns_kit.linkemu.probe import PROBE as NFQUEUE_PROBE
from netns_kit.ops.doctor import FAIL, OK, SKIP, WARN, Probes, doctor

ALL_BINARIES = {
    "ip", "iptables", "iptables-save", "ip6tables", "ip6tables-save", "nsenter", "unshare",
    "sysctl", "kill", "ping", "iptables-legacy", "ip6tables-legacy",
}  # fmt: skip


def machine(answers: dict[tuple[str, ...], str | Result] | None = None) -> Recorder:
    """A simulated machine: queries answered by argv prefix (longest first), else as a fresh kernel."""
    table = {
        ("ip", "-V"): "ip utility, iproute2-6.1.0, libbpf 1.1.2",
        ("iptables", "-V"): "iptables v1.8.9 (nf_tables)",
        ("unshare", "--version"): "unshare from util-linux 2.38.1",
        ("cat", "/proc/net/ip_tables_names"): "",
        ("cat", "/proc/net/ip6_tables_names"): "",
        ("iptables", "-w", "-S", "FORWARD"): "-P FORWARD ACCEPT\n",
        ("ip6tables", "-w", "-S", "FORWARD"): "-P FORWARD ACCEPT\n",
        ("sysctl", "-n", "net.bridge.bridge-nf-call-iptables"): "1\n",
        **(answers or {}),
    }

    def handler(command: Command) -> Result | str | None:
        for prefix in sorted(table, key=len, reverse=True):
            if command.argv[: len(prefix)] == prefix:
                answer = table[prefix]
                return (
                    Result(command, answer.returncode, answer.stdout, answer.stderr)
                    if isinstance(answer, Result)
                    else answer
                )
        return None

    return Recorder(handler)


def probes(
    *,
    missing: set[str] = frozenset(),  # type: ignore[assignment]
    euid: int = 0,
    files: dict[str, str] | None = None,
    userns: tuple[bool, str] = (True, ""),
    executor: Recorder | None = None,
) -> Probes:
    files = {"/proc/sys/user/max_user_namespaces": "15000", **(files or {})}

    def present(name: str) -> str | None:
        return None if name in missing or name not in ALL_BINARIES else f"/usr/sbin/{name}"

    return Probes(
        which=present,
        read=files.get,
        euid=lambda: euid,
        userns_works=lambda: userns,
        rootless_impairments=lambda: ("netem", "the kernel has the netem qdisc"),  # never a real sandbox here
        executor=executor or machine(),
    )


def test_all_good_reports_every_check_ok() -> None:
    report = doctor(probes=probes())
    assert report.ok
    assert {c.status for c in report.checks} == {OK}
    assert report["iptables backend"].summary.endswith("backend nf_tables")
    assert "iproute2-6.1.0" in report["iproute2 (ip)"].summary
    assert report.reason() == ""
    assert "netns_kit can run here." in report.lines()


def test_missing_iptables_fails_with_the_package_to_install() -> None:
    report = doctor(probes=probes(missing={"iptables", "iptables-save"}))
    assert not report.ok
    check = report["iptables (iptables, iptables-save, ip6tables, ip6tables-save)"]
    assert check.status == FAIL
    assert check.summary == "missing: iptables, iptables-save"
    assert "apt-get install iptables" in check.fix
    assert report["iptables backend"].status == SKIP
    assert report["FORWARD policy"].status == SKIP
    assert "apt-get install iptables" in report.reason()


def test_missing_ping_only_warns() -> None:
    report = doctor(probes=probes(missing={"ping"}))
    assert report.ok
    assert report["iputils-ping (ping)"].status == WARN


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1", "apparmor_restrict_unprivileged_userns=0"),
        ("/proc/sys/user/max_user_namespaces", "0", "user.max_user_namespaces=15000"),
        ("/proc/sys/kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=1"),
    ],
)
def test_not_root_without_user_namespaces_fails_naming_the_switch(path: str, value: str, words: str) -> None:
    report = doctor(probes=probes(euid=1000, files={path: value}, userns=(False, "unshare: Operation not permitted")))
    check = report["privileges"]
    assert check.status == FAIL
    assert check.summary.startswith("not root, and user namespaces are refused")
    assert words in check.fix
    assert "rootless sandbox" in check.explanation
    assert not report.ok
    assert "privileges: not root" in report.reason()


def test_not_root_when_unshare_is_refused_without_a_known_switch() -> None:
    report = doctor(probes=probes(euid=1000, userns=(False, "unshare: unshare failed: Operation not permitted")))
    check = report["privileges"]
    assert check.status == FAIL
    assert "Operation not permitted" in check.summary
    assert "seccomp" in check.explanation


def test_not_root_without_unshare_reports_util_linux_once_and_probes_nothing() -> None:
    def never() -> tuple[bool, str]:
        raise AssertionError("user namespaces probed without unshare")

    report = doctor(probes=attrs.evolve(probes(euid=1000, missing={"unshare"}), userns_works=never))
    assert report["privileges"].status == SKIP
    assert [c.name for c in report.failures()] == ["util-linux (nsenter, unshare)"]


def test_not_root_with_user_namespaces_is_fine() -> None:
    report = doctor(probes=probes(euid=1000))
    assert report["privileges"].status == OK
    assert "Sandbox()" in report["privileges"].summary


def test_legacy_rules_while_iptables_is_nft_warn_with_counts() -> None:
    executor = machine(
        {
            ("cat", "/proc/net/ip_tables_names"): "filter\nnat\n",
            ("iptables-legacy", "-w", "-t", "filter", "-S"): "-P INPUT ACCEPT\n-A INPUT -s 10.1.1.1/32 -j DROP\n",
            ("iptables-legacy", "-w", "-t", "nat", "-S"): "-P PREROUTING ACCEPT\n-N DOCKER\n-A DOCKER -j RETURN\n",
        }
    )
    report = doctor(probes=probes(executor=executor))
    check = report["other backend"]
    assert check.status == WARN
    assert (
        check.summary == "iptables is nf_tables but iptables-legacy holds rules: iptables filter (1), iptables nat (2)"
    )
    assert "iptables-legacy-save" in check.fix
    assert (
        "These drop what netns_kit lets through: iptables filter: -A INPUT -s 10.1.1.1/32 -j DROP" in check.explanation
    )
    assert report.ok  # a warning, not a failure
    # only tables the kernel lists are read: nothing is created on the machine
    assert not any(q.argv[:4] == ("iptables-legacy", "-w", "-t", "mangle") for q in executor.queries)


def test_legacy_tables_unreadable_outside_a_sandbox_is_skipped_not_probed() -> None:
    executor = machine({("cat", "/proc/net/ip_tables_names"): Result(Command(("cat",)), 1, "", "Permission denied")})
    report = doctor(probes=probes(executor=executor))
    assert report["other backend"].status == SKIP
    assert not any(q.argv[0] == "iptables-legacy" for q in executor.queries)


def test_forward_policy_drop_warns_and_br_netfilter_explains_bridged_traffic() -> None:
    executor = machine({("iptables", "-w", "-S", "FORWARD"): "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n"})
    report = doctor(probes=probes(executor=executor))
    policy = report["FORWARD policy"]
    assert policy.status == WARN
    assert policy.summary == "DROP in iptables (Docker sets it so)"
    assert "never changes a chain policy" in policy.explanation
    bridge = report["br_netfilter"]
    assert bridge.status == WARN
    assert "namespaces on the same bridge cannot talk" in bridge.summary
    assert "physdev" in bridge.fix
    assert report.ok


def test_br_netfilter_not_loaded_is_fine_even_with_drop() -> None:
    executor = machine(
        {
            ("iptables", "-w", "-S", "FORWARD"): "-P FORWARD DROP\n",
            ("sysctl", "-n", "net.bridge.bridge-nf-call-iptables"): Result(Command(("sysctl",)), 255, "", "No such"),
        }
    )
    report = doctor(probes=probes(executor=executor))
    assert report["br_netfilter"].status == OK
    assert report["br_netfilter"].summary == "not loaded: traffic inside a bridge does not go through iptables"
    assert report["FORWARD policy"].status == WARN


def test_br_netfilter_switched_off_is_fine_even_with_drop() -> None:
    executor = machine(
        {
            ("iptables", "-w", "-S", "FORWARD"): "-P FORWARD DROP\n",
            ("sysctl", "-n", "net.bridge.bridge-nf-call-iptables"): "0\n",
        }
    )
    report = doctor(probes=probes(executor=executor))
    assert report["br_netfilter"].status == OK
    assert report["br_netfilter"].summary == "loaded, bridge-nf-call-iptables=0: traffic inside a bridge skips iptables"
    assert report["FORWARD policy"].status == WARN


def test_br_netfilter_with_accept_is_fine() -> None:
    report = doctor(probes=probes())  # bridge-nf-call-iptables=1, FORWARD policy ACCEPT
    assert report["br_netfilter"].status == OK
    assert report["br_netfilter"].summary == (
        "loaded, bridge-nf-call-iptables=1: FORWARD rules also see traffic inside a bridge"
    )


def test_iptables_unreadable_without_root_is_skipped() -> None:
    denied = Result(Command(("iptables",)), 4, "", "iptables v1.8.9 (nf_tables): Permission denied (you must be root)")
    executor = machine({("iptables", "-w", "-S", "FORWARD"): denied})
    report = doctor(probes=probes(executor=executor, euid=1000))
    assert report["FORWARD policy"].status == SKIP
    assert "Permission denied" in report["FORWARD policy"].summary


def test_report_lines_show_explanation_and_fix_for_problems_only() -> None:
    report = doctor(probes=probes(missing={"ip"}))
    text = "\n".join(report.lines())
    assert "[FAIL] iproute2 (ip): missing: ip" in text
    assert "fix: apt-get install iproute2" in text
    assert "1 problem(s) stop netns_kit here" in text
    assert report.to_json()["ok"] is False


NO_NETEM = Result(Command(("unshare",)), 2, "", "Error: Specified qdisc kind is unknown.")
NO_NFQUEUE = Result(
    Command(("unshare",)), 1, "", "linkemu: binding an NFQUEUE failed: [Errno 93] Protocol not supported"
)


def kernel(*, netem: bool, nfqueue: bool) -> Recorder:
    """A machine whose netem and NFQUEUE probes answer as asked (the probes' own command lines)."""
    answers: dict[tuple[str, ...], str | Result] = {}
    if not netem:
        answers[NETEM_PROBE.argv] = NO_NETEM
    if not nfqueue:
        answers[NFQUEUE_PROBE.argv] = NO_NFQUEUE
    return machine(answers)


def test_impairments_with_netem_use_netem_and_never_probe_nfqueue() -> None:
    executor = kernel(netem=True, nfqueue=False)
    check = doctor(probes=probes(executor=executor))["impairments"]
    assert check.status == OK
    assert check.summary == "netem: delay, jitter, loss, duplication, reordering and corruption"
    assert check.explanation == "the kernel has the netem qdisc"
    assert [q.argv for q in executor.queries if q.argv[:2] == ("unshare", "--net")] == [NETEM_PROBE.argv]


def test_impairments_without_netem_but_with_nfqueue_use_the_userspace_emulator() -> None:
    executor = kernel(netem=False, nfqueue=True)
    report = doctor(probes=probes(executor=executor))
    check = report["impairments"]
    assert check.status == OK
    assert check.summary.startswith("userspace: no netem here; the userspace link emulator (NFQUEUE) stands in")
    assert "this kernel has no netem qdisc (tc says: Error: Specified qdisc kind is unknown.)" in check.explanation
    assert "NFQUEUE works" in check.explanation
    assert [q.argv for q in executor.queries if q.argv[:2] == ("unshare", "--net")] == [
        NETEM_PROBE.argv,
        NFQUEUE_PROBE.argv,
    ]
    checks = report.to_json()["checks"]
    assert isinstance(checks, list)
    as_json = {c["name"]: c for c in checks}
    assert as_json["impairments"]["status"] == "ok"
    assert as_json["impairments"]["summary"].startswith("userspace:")


def test_impairments_without_netem_and_nfqueue_warn_with_the_fix() -> None:
    report = doctor(probes=probes(executor=kernel(netem=False, nfqueue=False)))
    check = report["impairments"]
    assert check.status == WARN
    assert check.summary == "none: no netem and no NFQUEUE; only rate limits (tbf) and plain loss (iptables) work"
    assert "Protocol not supported" in check.explanation
    assert "linux-modules-extra" in check.fix
    assert "CONFIG_NETFILTER_XT_TARGET_NFQUEUE" in check.fix
    assert report.ok  # a warning: netns_kit runs
    text = "\n".join(report.lines())
    assert "[WARN] impairments: none: no netem and no NFQUEUE" in text
    assert "fix: load sch_netem" in text


def test_impairments_without_root_are_probed_in_a_rootless_sandbox_not_on_the_machine() -> None:
    executor = kernel(netem=True, nfqueue=True)
    found = probes(euid=1000, executor=executor)
    found.rootless_impairments = lambda: ("userspace", "no netem; NFQUEUE works")
    check = doctor(probes=found)["impairments"]
    assert check.status == OK
    assert check.summary.startswith("userspace: ")
    assert check.explanation == (
        "no netem; NFQUEUE works (probed in a throwaway rootless sandbox, where netns_kit runs without root)"
    )
    assert not any(q.argv[:2] == ("unshare", "--net") for q in executor.queries)


def test_impairments_without_root_or_user_namespaces_are_not_probed() -> None:
    def never() -> tuple[str, str]:
        raise AssertionError("probed in a sandbox that cannot be made")

    found = probes(
        euid=1000, userns=(False, "unshare: Operation not permitted"), executor=kernel(netem=True, nfqueue=True)
    )
    found.rootless_impairments = never
    check = doctor(probes=found)["impairments"]
    assert check.status == SKIP
    assert "allow user namespaces" in check.fix


def test_impairments_are_left_out_when_asked_and_nothing_is_probed() -> None:
    executor = kernel(netem=True, nfqueue=True)
    report = doctor(probes=attrs.evolve(probes(executor=executor), impairments=False))
    assert "impairments" not in [c.name for c in report.checks]
    assert not any(q.argv[:2] == ("unshare", "--net") for q in executor.queries)
