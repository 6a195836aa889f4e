"""Which firewall backend: ``"iptables"``, ``"nft"``, or ``"auto"`` (probe the machine, then decide).

:func:`probe` reads what the machine has (the ``nft`` binary and what its kernel
accepts, checked with ``nft -c``, which validates a transaction in the kernel
and commits nothing; ``iptables`` and which one it is; who drops forwarded
traffic); :func:`choose` is a pure decision over that, so every case is a
line of a unit test.

The trap it guards against: an ``accept`` in our table does not override a
``drop`` in another table. A base chain at the forward hook with ``policy
drop`` in someone else's table (Docker 29's ``docker-bridges``, firewalld,
podman) drops our forwarded traffic whatever either backend does; iptables'
own FORWARD policy DROP is overridden by the iptables backend (its accepts
are inserted at the top of that very chain) but not by the nft backend.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from netns_kit.command import Command, query
from netns_kit.executors.base import Executor
from netns_kit.firewall import iptables, nftread
from netns_kit.firewall.nft import owner_of
from netns_kit.firewall.nftread import Drop

BACKENDS = ("auto", "iptables", "nft")
#: what each need asks of the kernel, as an ``nft -c`` transaction (``{f}``: the family)
FEATURES = {
    "inet": ("add table inet netns_kit_probe",),
    "inet-nat": (
        "add table inet netns_kit_probe",
        "add chain inet netns_kit_probe p { type nat hook postrouting priority srcnat; }",
    ),
    "ip-nat": (
        "add table ip netns_kit_probe",
        "add chain ip netns_kit_probe p { type nat hook postrouting priority srcnat; }",
    ),
    "masquerade": (
        "add table ip netns_kit_probe",
        "add chain ip netns_kit_probe p { type nat hook postrouting priority srcnat; }",
        "add rule ip netns_kit_probe p masquerade",
    ),
    "fib": (
        "add table ip netns_kit_probe",
        "add chain ip netns_kit_probe f { type filter hook prerouting priority 0; }",
        "add rule ip netns_kit_probe f fib daddr type local accept",
    ),
    "numgen": (
        "add table ip netns_kit_probe",
        "add chain ip netns_kit_probe f { type filter hook prerouting priority 0; }",
        "add rule ip netns_kit_probe f numgen random mod 100 < 5 drop",
    ),
    "queue": (
        "add table ip netns_kit_probe",
        "add chain ip netns_kit_probe f { type filter hook postrouting priority 0; }",
        "add rule ip netns_kit_probe f queue num 0 bypass",
    ),
}
#: the tables iptables-nft keeps its rules in (its FORWARD is where the iptables backend's accepts go)
_IPTABLES_NFT_TABLES = {f"{family} {table}" for family in ("ip", "ip6") for table in ("filter", "nat", "raw", "mangle")}


@attrs.frozen
class Probe:
    """What the machine has. ``nft``/``iptables``: the version, or None when not installed."""

    nft: str | None = None
    #: what the kernel accepts from nft (keys of :data:`FEATURES`)
    features: frozenset[str] = frozenset()
    iptables: str | None = None
    #: "nf_tables" or "legacy"
    iptables_backend: str | None = None
    #: drops at the forward hook: other nft tables', and iptables' FORWARD (policy or rule)
    drops: tuple[Drop, ...] = ()
    #: iptables holds rules (any table, either backend)
    iptables_rules: bool = False
    #: nft tables that are neither ours nor iptables-nft's ("ip docker-bridges", "inet firewalld")
    native_tables: tuple[str, ...] = ()


@attrs.frozen
class Choice:
    """The backend picked (None: refused), why, and what to beware of."""

    backend: str | None
    reason: str
    #: nft tables must be ``ip``/``ip6`` (the kernel has no ``inet`` NAT)
    split: bool = False
    warnings: tuple[str, ...] = ()

    def message(self) -> str:
        """What ``doctor`` shows."""
        head = f"firewall backend: {self.backend or 'none'}"
        return "\n".join([f"{head} ({self.reason})", *(f"warning: {w}" for w in self.warnings)])


def _is_iptables(drop: Drop) -> bool:
    return drop.where == "iptables" or (drop.table in _IPTABLES_NFT_TABLES and drop.chain == "FORWARD")


def _nft_missing(probe: Probe, needs: Collection[str]) -> list[str]:
    if probe.nft is None:
        return ["the nft binary (install the nftables package)"]
    missing = []
    if not {"inet-nat", "ip-nat"} & probe.features and "nat" in needs:
        missing.append("NAT in nf_tables (nft_nat / nft_chain_nat)")
    missing += [
        f"nft {need} support in the kernel" for need in needs if need in FEATURES and need not in probe.features
    ]
    return missing


def _fix(blocking: list[Drop]) -> str:
    names = "; ".join(str(d) for d in blocking)
    return (
        f"{names}. An accept in netns_kit's rules cannot override a drop in another table. "
        "Run inside a sandbox (netns_kit.Sandbox(), `netns-kit --sandbox`), or make that table's owner accept "
        "this traffic (Docker 29: dockerd --bridge-accept-fwmark, with the mark set on it), "
        "or add an accept for the subnet to that chain yourself"
    )


def choose(
    probe: Probe,
    requested: str = "auto",
    *,
    needs: Collection[str] = ("nat", "forward"),
    accept_mark: str | None = None,
) -> Choice:
    """Pick the backend for ``requested`` on a machine that has what ``probe`` says.

    ``needs``: what the resources ask for: ``"forward"`` (their traffic crosses
    the forward hook), ``"nat"``, and kernel features by :data:`FEATURES` key
    (``"masquerade"``, ``"fib"`` for port forwards, ``"numgen"`` for the loss
    fallback, ``"queue"`` for the userspace emulator). ``accept_mark``: the mark
    another table's forward chain accepts (Docker 29's ``--bridge-accept-fwmark``),
    which the nft backend's forward accepts set (:attr:`~netns_kit.firewall.nft.Table.accept_mark`):
    then only nft gets past that table's drop.
    """
    if requested not in BACKENDS:
        raise ValueError(f"firewall backend {requested!r}: must be one of {', '.join(BACKENDS)}")
    split = "inet-nat" not in probe.features
    nft_missing = _nft_missing(probe, needs)
    ipt_missing = [] if probe.iptables else ["the iptables binary"]
    drops = probe.drops if "forward" in needs else ()
    others = [d for d in drops if not _is_iptables(d)]
    blocked_all = [d for d in others if d.why == "policy drop"]
    blocked_nft = [d for d in drops if _is_iptables(d) and d.why.lower() == "policy drop"]
    warnings = tuple(f"may drop netns_kit's forwarded traffic: {d}" for d in drops if d.why.lower() != "policy drop")

    def refuse(backend: str, why: str) -> Choice:
        who = "no backend can" if backend == "auto" else f"{backend} cannot"
        return Choice(None, f"{who} work here: {why}", split, warnings)

    if blocked_all and accept_mark and requested != "iptables" and not nft_missing and not blocked_nft:
        tables = ", ".join(sorted({f"{d.table} chain {d.chain}" for d in blocked_all}))
        trust = f"relies on {tables} accepting packets marked {accept_mark}"
        return Choice("nft", f"its forward accepts set mark {accept_mark}", split, (*warnings, trust))
    if blocked_all:
        return refuse(requested, _fix(blocked_all))
    if requested == "iptables":
        return (
            refuse("iptables", "missing " + ", ".join(ipt_missing))
            if ipt_missing
            else Choice("iptables", "asked for", split, warnings)
        )
    if requested == "nft":
        if nft_missing:
            return refuse("nft", "missing " + ", ".join(nft_missing))
        if blocked_nft:
            return refuse(
                "nft", _fix(blocked_nft) + "; or use the iptables backend, whose accepts go first in that chain"
            )
        return Choice("nft", "asked for", split, warnings)
    # auto
    nft_ok, ipt_ok = not nft_missing and not blocked_nft, not ipt_missing
    if nft_ok and ipt_ok:
        if probe.iptables_rules and not probe.native_tables:
            return Choice("iptables", "both work; iptables already holds this machine's rules", split, warnings)
        return Choice("nft", "both work; nft is native (no xt_* kernel modules)", split, warnings)
    if nft_ok:
        return Choice("nft", f"iptables cannot: missing {', '.join(ipt_missing)}", split, warnings)
    if ipt_ok:
        why = f"{blocked_nft[0]}, which an accept in another table cannot override" if blocked_nft else None
        why = why or "missing " + ", ".join(nft_missing)
        return Choice("iptables", f"nft cannot: {why}", split, warnings)
    problems = [f"missing {', '.join(ipt_missing + nft_missing)}"] if ipt_missing + nft_missing else []
    return refuse("auto", "; ".join(problems + ([_fix(blocked_nft)] if blocked_nft else [])))


# -- reading the machine ---------------------------------------------------------


def _check(executor: Executor, lines: tuple[str, ...], netns: str | None) -> bool:
    text = "".join(line + "\n" for line in lines)
    command = Command(("nft", "-c", "-f", "-"), netns=netns, mutating=False, ok_codes=(0, 1))
    return executor.run(command, input=text, check=False).returncode == 0


def probe(executor: Executor, netns: str | None = None) -> Probe:
    """Read what :func:`choose` decides on (a handful of queries; ``nft -c`` changes nothing)."""
    found = Probe()
    version = executor.run(query("nft", "--version", netns=netns, ok_codes=(0, 1, 127)), check=False)
    if version.returncode == 0:
        features = frozenset(name for name, lines in FEATURES.items() if _check(executor, lines, netns))
        chains = nftread.list_chains(executor, netns)
        tables = {f"{c.family} {c.table}" for c in chains} | {
            f"{t.family} {t.name}" for t in nftread.list_tables(executor, netns)
        }
        native = tuple(sorted(t for t in tables if t not in _IPTABLES_NFT_TABLES and owner_of(t.split()[1]) is None))
        words = version.stdout.split()  # "nftables v1.0.6 (Lester Gooch #5)"
        nft_drops = tuple(nftread.read_forward_drops(executor, netns))
        found = Probe(words[1] if len(words) > 1 else "?", features, drops=nft_drops, native_tables=native)
    backend = iptables.detect(executor, netns)
    if backend.name != "unknown":
        saved = executor.run(query("iptables-save", netns=netns), check=False)
        rules = any(line.startswith("-A ") for line in saved.stdout.splitlines())
        drops = found.drops
        if saved.ok:  # iptables' own view of its FORWARD replaces the nft view of iptables-nft's tables
            drops = (*(d for d in drops if not _is_iptables(d)), *nftread.iptables_forward_drops(saved.stdout))
        found = attrs.evolve(
            found, iptables=backend.version, iptables_backend=backend.name, iptables_rules=rules, drops=drops
        )
    return found
