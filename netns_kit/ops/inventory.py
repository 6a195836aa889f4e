"""What netns_kit owns on a machine, read back from the kernel and the ledgers.

:func:`scan` lists, through any executor (the real host, a sandbox), the
namespaces with the alias of their ``lo``, the links with their alias in the
host and in every namespace, the iptables/ip6tables rules with their
``--comment`` and the chains, our nft tables (``netns_kit_<owner id>``, read with
``nft -j``: their chains and how many rules) and every ledger file. Tags
(``netns_kit:OWNER``) say who owns what; :func:`owners` groups it all per
owner. ``netns-kit status`` prints it and :func:`netns_kit.cleanup` acts on it.
What it finds is in :mod:`~netns_kit.ops.inventory_items`; the namespaces' tags
are read by :meth:`Executor.loopback_aliases() <netns_kit.executors.hook.Executor.loopback_aliases>`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from netns_kit import iptables_save, shape
from netns_kit.command import query
from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor
from netns_kit.firewall import nftread
from netns_kit.lifecycle import ledger
from netns_kit.ops.inventory_items import (
    CHAIN_PREFIX,
    FIREWALL_TOOLS,
    Chain,
    Firewall,
    Inventory,
    LedgerFile,
    Link,
    NftChain,
    NftTable,
    Rule,
)
from netns_kit.owner import Owner

__all__ = [
    "CHAIN_PREFIX",
    "FIREWALL_TOOLS",
    "Chain",
    "Firewall",
    "Inventory",
    "LedgerFile",
    "Link",
    "NftChain",
    "NftTable",
    "Rule",
    "attached",
    "describe_owner",
    "parse_save",
    "read_firewall",
    "read_firewalls",
    "read_ledgers",
    "read_nft_tables",
    "scan",
    "summary",
]


def scan(
    executor: Executor,
    *,
    firewall: bool = True,
    skip_links: Callable[[str, str | None], bool] | None = None,
    host_firewall: bool = False,
) -> Inventory:
    """Read what is there: namespaces, links, rules, chains, our nft tables and ledgers.

    ``skip_links(name, tag)``: namespaces whose links need not be listed (the ones a
    cleanup deletes whole): their ``lo`` tags are read all at once when the executor
    can (:meth:`~netns_kit.executors.hook.Executor.loopback_aliases`), and only the
    other namespaces are entered one by one.
    ``host_firewall``: read the host's rules (only), as ``firewall`` reads everyone's.
    The host's links and rules and the tags are read while the ledgers are parsed.
    """
    inventory = Inventory()
    listing = executor.run(query("ip", "-j", "netns", "list"), check=False)
    entries = listing.json() if listing.ok else []
    names = sorted(entry["name"] for entry in entries)
    # the ids the host knows other namespaces by (a veth on the host names its peer's that way)
    ids = {entry["id"]: entry["name"] for entry in entries if "id" in entry}
    calls: list[Callable[[], Any]] = [
        lambda: read_ledgers(executor),
        lambda: executor.run(query("ip", "-j", "-d", "link", "show"), check=False),
        lambda: executor.loopback_aliases(names) if skip_links is not None and names else None,
    ]
    if host_firewall and not firewall:
        calls += [functools.partial(read_firewall, executor, tool, None) for tool in FIREWALL_TOOLS]
    inventory.ledgers, host, tags, *firewalls = _together(executor, calls)
    inventory.firewalls += firewalls
    for netns in (None, *names):
        if netns is None:
            result = host
        elif tags is not None and netns in tags and skip_links is not None and skip_links(netns, tags[netns]):
            inventory.namespaces[netns] = tags[netns]
            continue
        else:
            result = executor.run(query("ip", "-j", "-d", "link", "show", netns=netns), check=False)
        if not result.ok:
            continue  # deleted meanwhile
        for data in result.json():
            if data["ifname"] == "lo":
                if netns is not None:
                    inventory.namespaces[netns] = data.get("ifalias")
                continue
            kind = data.get("linkinfo", {}).get("info_kind")
            peer = ids.get(data["link_netnsid"]) if netns is None and "link_netnsid" in data else None
            inventory.links.append(Link(data["ifname"], netns, kind, data.get("ifalias"), peer))
        if netns is not None:
            inventory.namespaces.setdefault(netns, None)
    if firewall:
        read_firewalls(executor, inventory)
        for netns in nft_places(inventory):
            inventory.nft_tables += read_nft_tables(executor, netns)
    return inventory


def nft_places(inventory: Inventory) -> list[str | None]:
    """Where our nft tables may be: the host, every namespace netns_kit did not make (someone
    else's, an attached one), and those of ours where a ledger records an ``nft`` change. A
    namespace of ours with no ``nft`` in its ledgers is not entered (one process less each: on
    W(100), ``status`` took 2.6-3.1 s reading every namespace, 1.4-1.7 s without nft)."""
    recorded = {e.command.netns for lf in inventory.ledgers for e in lf.standing if e.command.program == "nft"}
    return [
        netns
        for netns in (None, *sorted(inventory.namespaces))
        if netns is None or netns in recorded or inventory.namespace_owner(netns) is None
    ]


def _together(executor: Executor, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """The results of ``calls``, the first in this thread and the others beside it (they
    mostly wait for a process); one after the other for a dry-run."""
    if executor.dry_run or len(calls) < 2:
        return [call() for call in calls]
    with ThreadPoolExecutor(len(calls) - 1, thread_name_prefix="netns_kit") as pool:
        futures = [pool.submit(call) for call in calls[1:]]
        first = calls[0]()
        return [first, *(future.result() for future in futures)]


def read_firewalls(executor: Executor, inventory: Inventory, *, skip: Iterable[str | None] = ()) -> None:
    """Read the rules in the host and in every namespace of ``inventory`` but ``skip``."""
    left_out = set(skip)
    for netns in (None, *sorted(inventory.namespaces)):
        if netns not in left_out:
            inventory.firewalls += [read_firewall(executor, tool, netns) for tool in FIREWALL_TOOLS]


def read_firewall(executor: Executor, tool: str, netns: str | None) -> Firewall:
    """``TOOL-save`` in ``netns``, parsed (with :func:`shlex.split`)."""
    firewall = Firewall(tool, netns)
    try:
        result = executor.run(query(f"{tool}-save", netns=netns), check=False)
    except CommandError as error:  # the binary is missing
        firewall.error = error.hint or str(error)
        return firewall
    if not result.ok:
        firewall.error = result.stderr.strip() or f"{tool}-save exited with {result.returncode}"
        return firewall
    parse_save(result.stdout, firewall)
    return firewall


def read_nft_tables(executor: Executor, netns: str | None) -> list[NftTable]:
    """Our nft tables in ``netns`` (by name, :func:`netns_kit.firewall.nftread.our_tables`), each
    read whole with ``nft -j``: its chains and their rules counted. No ``nft`` (or no
    nf_tables in the kernel, or the namespace gone meanwhile): none."""
    try:
        tables = nftread.list_tables(executor, netns)
    except CommandError:
        return []
    found = []
    for table in (t for held in nftread.our_tables(tables).values() for t in held):
        try:
            ruleset = nftread.list_table(executor, table.family, table.name, netns)
        except CommandError:
            continue  # deleted meanwhile
        except ValueError:
            ruleset = nftread.Ruleset()  # its JSON unreadable: listed by name only
        chains = tuple(
            NftChain(c.name, c.hook, c.prio, sum(1 for r in ruleset.rules if r.chain == c.name)) for c in ruleset.chains
        )
        found.append(NftTable(netns, table.family, table.name, chains))
    return found


def parse_save(text: str, firewall: Firewall) -> None:
    """Add the user chains and the rules of ``TOOL-save`` text to ``firewall``."""
    for table in iptables_save.parse(text):
        firewall.chains += [
            Chain(firewall.tool, firewall.netns, table.name, chain.name) for chain in table.chains if not chain.builtin
        ]
        firewall.rules += [
            Rule(firewall.tool, firewall.netns, table.name, rule.chain, rule.spec) for rule in table.rules
        ]


def read_ledgers(executor: Executor) -> list[LedgerFile]:
    directory = executor.ledger_dir
    if directory is None:
        return []
    found = []
    for owner, path in ledger.files(directory):
        try:
            contents = ledger.load(path)
        except OSError:
            continue  # removed meanwhile, or not a regular file
        found.append(LedgerFile(path, owner, contents.entries, contents.foreign, contents.skipped))
    return found


def holds_nothing(executor: Executor) -> bool:
    """True when ``executor`` (a sandbox, say) holds no namespace, link, rule or ledger.

    The cheapest signs are looked at first, and the first one found answers: a
    ledger (files, no process), then a namespace (one ``ip netns list``); only a
    sandbox with neither is scanned whole (its host's links and rules). Every
    ``--sandbox`` command ends with this check (:func:`netns_kit.executors.holder.session`):
    on a W(200) sandbox the whole scan took 6-14 s, the first sign a few milliseconds.
    """
    if read_ledgers(executor):
        return False
    listing = executor.run(query("ip", "-j", "netns", "list"), check=False)
    if listing.ok and listing.json():
        return False
    found = scan(executor)
    return not (found.namespaces or found.links or found.rules or found.ledgers)


def attached(inventory: Inventory, owner: Owner) -> dict[str, str]:
    """The namespaces ``owner`` attached (``ip netns attach NAME PID``, still standing in its
    ledger) that still carry the name: name -> PID. The namespace is someone else's."""
    found: dict[str, str] = {}
    for lf in inventory.ledgers:
        if lf.owner != owner:
            continue
        for entry in lf.standing:
            named = shape.netns_attach(entry.command.argv)
            if named and named[0] in inventory.namespaces:
                found[named[0]] = named[1]
    return dict(sorted(found.items()))


def describe_owner(owner: Owner) -> str:
    """``alive``, ``dead`` or ``named`` (a non-process owner, kept until named)."""
    if owner.pid is None:
        return "named"
    return "alive" if owner.is_alive() else "dead"


def summary(inventory: Inventory, owner: Owner) -> dict[str, Any]:
    """What ``owner`` holds, as data (for ``netns-kit status``)."""
    tag = owner.tag
    files = [lf for lf in inventory.ledgers if lf.owner == owner]
    return {
        "owner": owner.id,
        "state": describe_owner(owner),
        "namespaces": sorted(n for n, alias in inventory.namespaces.items() if alias == tag),
        "attached": [f"{name} (pid {pid}: only the name is ours)" for name, pid in attached(inventory, owner).items()],
        "links": [str(link) for link in inventory.links if link.alias == tag],
        "rules": [str(rule) for rule in inventory.rules if rule.comment == tag],
        "nft_tables": [
            "\n      ".join([str(table), *map(str, table.chains)])
            for table in inventory.nft_tables
            if table.owner == owner
        ],
        "ledger_files": [str(lf.path) for lf in files],
        "changes_standing": sum(len(lf.standing) for lf in files),
    }
