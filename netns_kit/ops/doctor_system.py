"""doctor's checks of the machine: the programs, the privileges, the forwarding
switches, what link impairments can use."""

from __future__ import annotations

from netns_kit.errors import CommandError
from netns_kit.lifecycle import sysctl
from netns_kit.linkemu import probe
from netns_kit.ops.doctor_report import FAIL, OK, SKIP, WARN, Check, Look

#: (package, binaries it provides that netns_kit runs, required?)
PACKAGES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("iproute2", ("ip",), True),
    ("iptables", ("iptables", "iptables-save", "ip6tables", "ip6tables-save"), True),
    ("util-linux", ("nsenter", "unshare"), True),
    ("procps", ("sysctl", "kill"), True),
    ("iputils-ping", ("ping",), False),
)
_VERSION = {"iproute2": ("ip", "-V"), "iptables": ("iptables", "-V"), "util-linux": ("unshare", "--version")}


def package(look: Look, package: str, binaries: tuple[str, ...], required: bool) -> Check:
    missing = [b for b in binaries if not look.p.which(b)]
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
        ok, out, err = look.run(*_VERSION[package])
        version = (out or err).strip().splitlines()[0] if ok and (out or err).strip() else ""
    return Check(name, OK, version or "installed")


def privileges(look: Look) -> Check:
    name = "privileges"
    if look.p.euid() == 0:
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
            "Ubuntu's AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)",
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (until reboot; persist it in "
            "/etc/sysctl.d/), or give the test runner an AppArmor profile that allows 'userns'",
        ),
    )
    for path, bad, why, fix in switches:
        if look.p.read(path) == bad:
            return Check(
                name,
                FAIL,
                f"not root, and user namespaces are refused: {why}",
                "Without root, netns_kit runs everything in a rootless sandbox, which needs an "
                "unprivileged user namespace.",
                f"{fix}; or run as root",
            )
    if not look.p.which("unshare"):
        return Check(name, SKIP, "not root; user namespaces not checked: unshare is missing (see util-linux)")
    works, err = look.p.userns_works()
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
    limit = look.p.read("/proc/sys/user/max_user_namespaces")
    return Check(
        name,
        OK,
        f"not root; unprivileged user namespaces work (max_user_namespaces={limit}): "
        "use netns_kit.Sandbox() / netns-kit --sandbox",
    )


def forwarding(look: Look) -> Check:
    """ip_forward that reads one value while conf/default or every interface holds the
    other (what racing writes of it leave): NAT and routing through this host break."""
    name = "forwarding"
    try:
        problem = sysctl.forwarding_problem(look.executor)
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


def impairments(look: Look) -> Check:
    """What ``Impairment(via="auto")`` uses here: netem, the userspace link emulator, or neither."""
    name = "impairments"
    if look.p.euid() == 0 or look.p.sandboxed:
        which, why = probe.backend(look.executor)
    elif look.p.which("unshare") and look.p.userns_works()[0]:
        which, why = look.p.rootless_impairments()
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
