"""``netns-kit doctor``: can netns_kit work here, and what to change if not.

:func:`doctor` returns a :class:`Report` of :class:`Check` values, each with
a status (``ok``, ``warn``, ``fail``, ``skip``), a one-line summary, an
explanation and a fix. It only reads: it never changes the machine. Where it
looks is a :class:`Probes` value (which binaries exist, files under
``/proc``, the effective uid, whether a user namespace can be made, and the
executor that runs the read-only commands), so every branch can be tested,
and the pytest plugin can reuse :meth:`Report.reason` as its skip reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import attrs

from netns_kit.command import Command, query
from netns_kit.errors import CommandError
from netns_kit.executors import binaries
from netns_kit.executors.base import Executor
from netns_kit.executors.local import ShExecutor
from netns_kit.firewall import iptables

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"

#: (package, binaries it provides that netns_kit runs, required?)
PACKAGES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("iproute2", ("ip",), True),
    ("iptables", ("iptables", "iptables-save", "ip6tables", "ip6tables-save"), True),
    ("util-linux", ("nsenter", "unshare"), True),
    ("procps", ("sysctl", "kill"), True),
    ("iputils-ping", ("ping",), False),
)
_VERSION = {"iproute2": ("ip", "-V"), "iptables": ("iptables", "-V"), "util-linux": ("unshare", "--version")}


@attrs.frozen
class Check:
    """One finding: ``status`` is ok, warn, fail or skip."""

    name: str
    status: str
    summary: str
    explanation: str = ""
    fix: str = ""

    def lines(self) -> list[str]:
        out = [f"[{self.status.upper():4}] {self.name}: {self.summary}"]
        if self.explanation and self.status != OK:
            out += [f"       {line}" for line in self.explanation.splitlines()]
        if self.fix and self.status in (WARN, FAIL):
            out += [f"       fix: {line}" for line in self.fix.splitlines()]
        return out


@attrs.frozen
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when nothing failed (warnings allowed)."""
        return not any(c.status == FAIL for c in self.checks)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def reason(self) -> str:
        """Why netns_kit cannot run here, in one line (empty when it can): a skip reason."""
        return "; ".join(f"{c.name}: {c.summary} (fix: {c.fix})" for c in self.failures())

    def lines(self) -> list[str]:
        out = [line for check in self.checks for line in check.lines()]
        fails, warns = len(self.failures()), sum(c.status == WARN for c in self.checks)
        out.append("")
        out.append(
            "netns_kit can run here." if not fails else f"{fails} problem(s) stop netns_kit here; see the fixes above."
        )
        if warns:
            out.append(f"{warns} warning(s): netns_kit runs, but read them.")
        return out

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [attrs.asdict(c) for c in self.checks]}


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _userns_works() -> tuple[bool, str]:
    """Really try to make a user + network namespace, as this user."""
    result = ShExecutor().run(
        Command(("unshare", "--user", "--map-root-user", "--net", "true"), mutating=False), check=False
    )
    return result.ok, result.stderr.strip()


def _rootless_impairments() -> tuple[str, str]:
    """netem and NFQUEUE probed in a throwaway rootless sandbox (the probes make namespaces)."""
    from netns_kit.executors.sandbox import Sandbox
    from netns_kit.linkemu import probe

    with Sandbox() as sandbox:
        return probe.backend(sandbox)


@attrs.define
class Probes:
    """Where doctor looks. Replace any field to simulate a machine."""

    # looked up when a Probes is made, so a test may monkeypatch the module functions;
    # which: the way every process start finds programs (PATH, then /usr/sbin, /sbin)
    which: Callable[[str], str | None] = attrs.field(factory=lambda: binaries.which)
    read: Callable[[str], str | None] = attrs.field(factory=lambda: _read)
    euid: Callable[[], int] = attrs.field(factory=lambda: os.geteuid)
    userns_works: Callable[[], tuple[bool, str]] = attrs.field(factory=lambda: _userns_works)
    #: probe what Impairment(via="auto") uses (netem, NFQUEUE: namespaces made and thrown away)
    impairments: bool = True
    #: what Impairment(via="auto") uses in a throwaway rootless sandbox (doctor without root)
    rootless_impairments: Callable[[], tuple[str, str]] = attrs.field(factory=lambda: _rootless_impairments)
    #: runs the read-only commands (versions, iptables); None: the real machine
    executor: Executor | None = None
    #: the executor is a sandbox (its firewall may be probed more freely)
    sandboxed: bool = False


def doctor(executor: Executor | None = None, *, probes: Probes | None = None) -> Report:
    """Check this machine (or, with a sandbox executor, the sandbox) for netns_kit."""
    from netns_kit.executors.sandbox import Sandbox

    probes = probes or Probes()
    if executor is not None:
        probes = attrs.evolve(probes, executor=executor, sandboxed=isinstance(executor, Sandbox))
    if probes.executor is None:
        probes = attrs.evolve(probes, executor=ShExecutor())
    return Report(tuple(_Doctor(probes).checks()))


class _Doctor:
    def __init__(self, probes: Probes) -> None:
        self.p = probes
        assert probes.executor is not None
        self.executor: Executor = probes.executor

    def run(self, *argv: str) -> tuple[bool, str, str]:
        try:
            result = self.executor.run(query(*argv), check=False)
        except CommandError as error:
            return False, "", error.stderr or error.hint
        return result.ok, result.stdout, result.stderr

    def checks(self) -> list[Check]:
        found = [self.package(*package) for package in PACKAGES]
        found.append(self.privileges())
        found.append(self.forwarding())
        have_iptables = all(self.p.which(b) for b in PACKAGES[1][1])
        if not have_iptables:
            why = "iptables is not installed"
            found += [Check(name, SKIP, why) for name in ("iptables backend", "other backend", "FORWARD policy")]
            found.append(self.br_netfilter(None))
            if self.p.impairments:
                found.append(self.impairments())
            return found
        backend = self.backend()
        found.append(backend)
        found.append(self.other_backend(backend))
        policy = self.forward_policy()
        found.append(policy)
        found.append(self.br_netfilter(policy))
        if self.p.impairments:
            found.append(self.impairments())
        return found

    # -- binaries ---------------------------------------------------------------
    def package(self, package: str, binaries: tuple[str, ...], required: bool) -> Check:
        missing = [b for b in binaries if not self.p.which(b)]
        name = f"{package} ({', '.join(binaries)})"
        if missing:
            return Check(
                name,
                FAIL if required else WARN,
                f"missing: {', '.join(missing)}",
                f"netns_kit runs {', '.join(missing)} for every topology"
                if required
                else "only Namespace.ping / wait_reachable need it",
                f"apt-get install {package}  (Debian/Ubuntu; or your distribution's package)",
            )
        version = ""
        if package in _VERSION:
            ok, out, err = self.run(*_VERSION[package])
            version = (out or err).strip().splitlines()[0] if ok and (out or err).strip() else ""
        return Check(name, OK, version or "installed")

    # -- privileges -------------------------------------------------------------
    def privileges(self) -> Check:
        name = "privileges"
        if self.p.euid() == 0:
            return Check(name, OK, "running as root: netns_kit can act on this machine and start sandboxes")
        switches = (
            (
                "/proc/sys/kernel/unprivileged_userns_clone",
                "0",
                "Debian's kernel.unprivileged_userns_clone is 0",
                "sysctl -w kernel.unprivileged_userns_clone=1",
            ),
            (
                "/proc/sys/user/max_user_namespaces",
                "0",
                "user.max_user_namespaces is 0",
                "sysctl -w user.max_user_namespaces=15000",
            ),
            (
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
                "1",
                "Ubuntu's AppArmor restricts unprivileged user namespaces "
                "(kernel.apparmor_restrict_unprivileged_userns=1)",
                "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (until reboot; persist it in "
                "/etc/sysctl.d/), or give the test runner an AppArmor profile that allows 'userns'",
            ),
        )
        for path, bad, why, fix in switches:
            if self.p.read(path) == bad:
                return Check(
                    name,
                    FAIL,
                    f"not root, and user namespaces are refused: {why}",
                    "Without root, netns_kit runs everything in a rootless sandbox, which needs an "
                    "unprivileged user namespace.",
                    f"{fix}; or run as root",
                )
        if not self.p.which("unshare"):
            return Check(name, SKIP, "not root; user namespaces not checked: unshare is missing (see util-linux)")
        works, err = self.p.userns_works()
        if not works:
            return Check(
                name,
                FAIL,
                "not root, and making a user namespace failed" + (f": {err}" if err else ""),
                "Without root, netns_kit runs everything in a rootless sandbox, which needs an "
                "unprivileged user namespace. A container runtime's seccomp profile may forbid unshare(2).",
                "run as root, or allow user namespaces (see kernel.unprivileged_userns_clone, "
                "user.max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns)",
            )
        limit = self.p.read("/proc/sys/user/max_user_namespaces")
        return Check(
            name,
            OK,
            f"not root; unprivileged user namespaces work (max_user_namespaces={limit}): "
            "use netns_kit.Sandbox() / netns-kit --sandbox",
        )

    # -- iptables ---------------------------------------------------------------
    def backend(self) -> Check:
        ok, out, err = self.run("iptables", "-V")
        text = (out or err).strip()
        if not ok:
            return Check("iptables backend", FAIL, f"iptables -V failed: {text}", fix="reinstall iptables")
        kind = "nf_tables" if "nf_tables" in text else "legacy" if "legacy" in text else "unknown"
        return Check("iptables backend", OK, f"{text} -> backend {kind}")

    def other_backend(self, backend: Check) -> Check:
        name = "other backend"
        nft = "nf_tables" in backend.summary
        other = "legacy" if nft else "nft"
        counts: dict[str, int] = {}
        shadowing: list[str] = []
        for family, names_file in (("iptables", "ip_tables_names"), ("ip6tables", "ip6_tables_names")):
            tool = f"{family}-{other}"
            if not self.p.which(tool):
                continue
            tables = self.legacy_tables(names_file) if nft else ["filter", "nat", "mangle", "raw"]
            if tables is None:
                return Check(
                    name,
                    SKIP,
                    f"cannot list the {other} tables here without creating them",
                    "Reading /proc/net/ip_tables_names needs root on the real machine.",
                    "run as root, or netns-kit doctor --sandbox",
                )
            for table in tables:
                ok, out, _ = self.run(tool, "-w", "-t", table, "-S")
                rules = [line for line in out.splitlines() if line.startswith(("-A", "-N"))] if ok else []
                if rules:
                    counts[f"{family} {table}"] = len(rules)
                if ok:
                    shadowing += [f"{family} {s}" for s in iptables.shadowing_rules(f"*{table}\n{out}")]
        if not counts:
            return Check(name, OK, f"no rules held by iptables-{other}")
        where = ", ".join(f"{k} ({n})" for k, n in counts.items())
        drops = f"\nThese drop what netns_kit lets through: {'; '.join(shadowing[:5])}" if shadowing else ""
        return Check(
            name,
            WARN,
            f"iptables is {'nf_tables' if nft else 'legacy'} but iptables-{other} holds rules: {where}",
            "Both rule sets apply to every packet: a DROP in the other backend silently shadows the "
            "ACCEPT and NAT rules netns_kit adds, and iptables-save shows only one of them." + drops,
            f"inspect them with iptables-{other}-save; migrate them (iptables-{other}-save | "
            f"iptables-{'nft' if nft else 'legacy'}-restore) and flush the old set, or switch the "
            "default with update-alternatives --config iptables",
        )

    def legacy_tables(self, names_file: str) -> list[str] | None:
        """The legacy tables that exist (None: cannot tell without creating some)."""
        ok, out, _ = self.run("cat", f"/proc/net/{names_file}")
        if ok:
            return out.split()
        if self.p.sandboxed:
            return ["filter", "nat", "mangle", "raw"]  # the sandbox is throwaway: probing is fine there
        return None

    def forward_policy(self) -> Check:
        name = "FORWARD policy"
        drops = []
        for tool in ("iptables", "ip6tables"):
            ok, out, err = self.run(tool, "-w", "-S", "FORWARD")
            if not ok:
                return Check(
                    name,
                    SKIP,
                    f"cannot read the FORWARD chain: {err.strip().splitlines()[0] if err.strip() else 'failed'}",
                    "Reading iptables needs CAP_NET_ADMIN.",
                    "run as root, or netns-kit doctor --sandbox",
                )
            if "-P FORWARD DROP" in out.splitlines():
                drops.append(tool)
        if not drops:
            return Check(name, OK, "ACCEPT")
        return Check(
            name,
            WARN,
            f"DROP in {' and '.join(drops)} (Docker sets it so)",
            "Packets routed between namespaces through this host are dropped unless a rule accepts them. "
            "netns_kit never changes a chain policy; NatRule and PortForward add their own FORWARD accepts, "
            "scoped to their subnet and bridge, but plain routing between your namespaces is dropped.",
            "add a scoped accept for your subnet (iptables -I FORWARD -s 192.168.1.0/24 -j ACCEPT), "
            "use NatRule, or work inside a sandbox (netns_kit.Sandbox(), netns-kit --sandbox) whose policy is ACCEPT",
        )

    def br_netfilter(self, policy: Check | None) -> Check:
        name = "br_netfilter"
        ok, out, _ = self.run("sysctl", "-n", "net.bridge.bridge-nf-call-iptables")
        if not ok:
            return Check(name, OK, "not loaded: traffic inside a bridge does not go through iptables")
        if out.strip() != "1":
            return Check(name, OK, "loaded, bridge-nf-call-iptables=0: traffic inside a bridge skips iptables")
        if policy is not None and policy.status == WARN:
            return Check(
                name,
                WARN,
                "loaded with bridge-nf-call-iptables=1 and FORWARD policy DROP: "
                "namespaces on the same bridge cannot talk",
                "br_netfilter sends frames switched inside a bridge through iptables FORWARD, "
                "so the DROP policy drops traffic between two namespaces on one bridge.",
                "iptables -I FORWARD -m physdev --physdev-is-bridged -j ACCEPT, or "
                "sysctl -w net.bridge.bridge-nf-call-iptables=0 (Docker relies on it), "
                "or work inside a sandbox",
            )
        return Check(
            name,
            OK,
            "loaded, bridge-nf-call-iptables=1: FORWARD rules also see traffic inside a bridge",
        )

    # -- forwarding (netns_kit.lifecycle.sysctl) ----------------------------------------------
    def forwarding(self) -> Check:
        """ip_forward that reads one value while conf/default or every interface holds the
        other (what racing writes of it leave): NAT and routing through this host break."""
        from netns_kit.lifecycle import sysctl

        name = "forwarding"
        try:
            problem = sysctl.forwarding_problem(self.executor)
        except CommandError as error:
            return Check(name, SKIP, f"cannot read the forwarding switches: {error.stderr.strip() or error}")
        if problem is None:
            return Check(name, OK, "ip_forward agrees with conf/default and the interfaces")
        found = [line.partition("; fix: ") for line in problem.splitlines()]
        return Check(
            name,
            WARN,
            " / ".join(summary for summary, _, _ in found),
            "The kernel copies a forwarding switch to conf/default and to every interface only when a "
            "write changes it: two writes racing (a restore to 0 and a set to 1) can leave them apart, "
            "and a later write of the same value then changes nothing. New interfaces copy conf/default.",
            "\n".join(fix for _, _, fix in found),
        )

    # -- impairments (netns_kit.linkemu) --------------------------------------------
    def impairments(self) -> Check:
        """What ``Impairment(via="auto")`` uses here: netem, the userspace link emulator, or neither."""
        from netns_kit.linkemu import probe

        name = "impairments"
        if self.p.euid() == 0 or self.p.sandboxed:
            which, why = probe.backend(self.executor)
        elif self.p.which("unshare") and self.p.userns_works()[0]:
            which, why = self.p.rootless_impairments()
            why += " (probed in a throwaway rootless sandbox, where netns_kit runs without root)"
        else:
            return Check(
                name,
                SKIP,
                "not probed: the netem and NFQUEUE probes make a throwaway network namespace",
                "Without root or user namespaces (see privileges), the probes cannot make one here.",
                "run as root, or allow user namespaces",
            )
        if which == "netem":
            return Check(name, OK, "netem: delay, jitter, loss, duplication, reordering and corruption", why)
        if which == "userspace":
            return Check(
                name,
                OK,
                "userspace: no netem here; the userspace link emulator (NFQUEUE) stands in, about ±1 ms",
                why,
            )
        return Check(
            name,
            WARN,
            "none: no netem and no NFQUEUE; only rate limits (tbf) and plain loss (iptables) work",
            f"Impairment's delay, jitter, duplication, reordering and corruption raise UnsupportedError here: {why}",
            "load sch_netem (Debian/Ubuntu: linux-modules-extra-$(uname -r); Fedora: kernel-modules-extra), "
            "or use a kernel with CONFIG_NET_SCH_NETEM, or with CONFIG_NETFILTER_NETLINK_QUEUE and "
            "CONFIG_NETFILTER_XT_TARGET_NFQUEUE (the userspace link emulator)",
        )
