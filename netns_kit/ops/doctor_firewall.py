"""doctor's checks of the firewall: the iptables backend, rules of the other backend,
the FORWARD policy, br_netfilter, which backend ``auto`` takes; and the same words for
``up`` with ``firewall="nft"`` asked for by name (:func:`nft_warnings`)."""

from __future__ import annotations

from collections.abc import Iterable

from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor
from netns_kit.firewall import backend as firewall_backend
from netns_kit.firewall import iptables, nftchoice
from netns_kit.firewall.base import Firewall
from netns_kit.ops.doctor_report import FAIL, OK, SKIP, WARN, Check, Look


def backend(look: Look) -> Check:
    ok, out, err = look.run("iptables", "-V")
    text = (out or err).strip()
    if not ok:
        return Check("iptables backend", FAIL, f"iptables -V failed: {text}", fix="reinstall iptables")
    kind = "nf_tables" if "nf_tables" in text else "legacy" if "legacy" in text else "unknown"
    return Check("iptables backend", OK, f"{text} -> backend {kind}")


def other_backend(look: Look, backend: Check) -> Check:
    name = "other backend"
    nft = "nf_tables" in backend.summary
    other = "legacy" if nft else "nft"
    counts: dict[str, int] = {}
    shadowing: list[str] = []
    for family, names_file in (("iptables", "ip_tables_names"), ("ip6tables", "ip6_tables_names")):
        tool = f"{family}-{other}"
        if not look.p.which(tool):
            continue
        tables = legacy_tables(look, names_file) if nft else ["filter", "nat", "mangle", "raw"]
        if tables is None:
            return Check(
                name,
                SKIP,
                f"cannot list the {other} tables here without creating them",
                "Reading /proc/net/ip_tables_names needs root on the real machine.",
                "run as root, or netns-kit doctor --sandbox",
            )
        for table in tables:
            ok, out, _ = look.run(tool, "-w", "-t", table, "-S")
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


def legacy_tables(look: Look, names_file: str) -> list[str] | None:
    """The legacy tables that exist (None: cannot tell without creating some)."""
    ok, out, _ = look.run("cat", f"/proc/net/{names_file}")
    if ok:
        return out.split()
    if look.p.sandboxed:
        return ["filter", "nat", "mangle", "raw"]  # the sandbox is throwaway: probing is fine there
    return None


def forward_policy(look: Look) -> Check:
    name = "FORWARD policy"
    drops = []
    for tool in ("iptables", "ip6tables"):
        ok, out, err = look.run(tool, "-w", "-S", "FORWARD")
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


def br_netfilter(look: Look, policy: Check | None) -> Check:
    name = "br_netfilter"
    ok, out, _ = look.run("sysctl", "-n", "net.bridge.bridge-nf-call-iptables")
    if not ok:
        return Check(name, OK, "not loaded: traffic inside a bridge does not go through iptables")
    if out.strip() != "1":
        return Check(name, OK, "loaded, bridge-nf-call-iptables=0: traffic inside a bridge skips iptables")
    if policy is not None and policy.status == WARN:
        return Check(
            name,
            WARN,
            "loaded with bridge-nf-call-iptables=1 and FORWARD policy DROP: namespaces on the same bridge cannot talk",
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


def nft_choice(look: Look) -> Check:
    """Which backend ``firewall="auto"`` takes here, and what drops forwarded traffic in
    either (another table's forward chain: Docker 29, firewalld, podman)."""
    name = "firewall backend (auto)"
    if not look.p.which("nft"):
        return Check(name, OK, "nft is not installed: auto takes iptables")
    try:
        chosen = nftchoice.choose(nftchoice.probe(look.executor), "auto", needs=("nat", "forward", "fib"))
    except CommandError as error:
        return Check(name, SKIP, f"nft could not be read: {error.stderr.strip() or error.hint}")
    head, *rest = chosen.message().splitlines()
    summary = head.removeprefix("firewall backend: ")
    if chosen.backend is None:
        return Check(name, WARN, summary, "\n".join(rest), fix="run inside a sandbox (netns-kit --sandbox)")
    return Check(name, WARN if rest else OK, summary, "\n".join(rest))


def nft_warnings(executor: Executor, resources: Iterable[object]) -> list[str]:
    """What would drop the forwarded traffic of ``resources`` whose firewalls use the nft
    backend asked for by name (``firewall="nft"``, theirs or the default), one warning per
    namespace (:func:`netns_kit.firewall.backend.drop_warnings`, which ``up`` logs)."""
    firewalls = [r for r in resources if isinstance(r, Firewall)]
    found = []
    for table in firewall_backend.owner_tables(firewalls, executor):
        if firewall_backend.effective(table.backend, executor) == "nft":
            found += firewall_backend.drop_warnings(executor, table.netns, table.needs)
    return found
