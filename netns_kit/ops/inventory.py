"""What netns_kit owns on a machine, read back from the kernel and the ledgers.

:func:`scan` lists, through any executor (the real host, a sandbox), the
namespaces with the alias of their ``lo``, the links with their alias in the
host and in every namespace, the iptables/ip6tables rules with their
``--comment`` and the chains, and every ledger file. Tags
(``netns_kit:OWNER``) say who owns what; :func:`owners` groups it all per
owner. ``netns-kit status`` prints it and :func:`netns_kit.cleanup` acts on it.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from netns_kit import iptables_save
from netns_kit.command import Command, change, query
from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor
from netns_kit.lifecycle import ledger
from netns_kit.owner import Owner

#: user chains made by netns_kit start with this (reached by tagged jump rules)
CHAIN_PREFIX = "NK-"
FIREWALL_TOOLS = ("iptables", "ip6tables")


@attrs.frozen
class Link:
    """An interface (``lo`` excluded) and its alias."""

    name: str
    netns: str | None
    kind: str | None
    alias: str | None
    #: the namespace the other end of a veth lives in, when it is a named one
    peer_netns: str | None = None

    @property
    def owner(self) -> Owner | None:
        return Owner.from_tag(self.alias or "")

    def __str__(self) -> str:
        return f"{self.name} ({self.kind or 'link'} in {self.netns or 'the host'})"


@attrs.frozen
class Rule:
    """One ``-A CHAIN ...`` line of ``iptables-save``, with the owner from its comment."""

    tool: str
    netns: str | None
    table: str
    chain: str
    spec: tuple[str, ...]

    def option(self, *names: str) -> str | None:
        """The value after the first of ``names`` in the rule (``--comment``, ``-j``)."""
        for option, value in zip(self.spec, self.spec[1:], strict=False):
            if option in names:
                return value
        return None

    @property
    def comment(self) -> str | None:
        return self.option("--comment")

    @property
    def owner(self) -> Owner | None:
        return Owner.from_tag(self.comment or "")

    @property
    def target(self) -> str | None:
        return self.option("-j", "-g")

    def delete(self) -> Command:
        return change(
            self.tool, "-w", "-t", self.table, "-D", self.chain, *self.spec, netns=self.netns, missing_ok=True
        )

    def __str__(self) -> str:
        where = self.netns or "the host"
        return f"{self.tool} -t {self.table} -A {self.chain} {shlex.join(self.spec)} (in {where})"


@attrs.frozen
class Chain:
    tool: str
    netns: str | None
    table: str
    name: str

    def delete(self) -> Command:
        return change(self.tool, "-w", "-t", self.table, "-X", self.name, netns=self.netns, missing_ok=True)

    def __str__(self) -> str:
        return f"{self.tool} -t {self.table} chain {self.name} (in {self.netns or 'the host'})"


@attrs.define
class Firewall:
    """The rules and user chains of one tool in one namespace (``error`` if unreadable)."""

    tool: str
    netns: str | None
    chains: list[Chain] = attrs.field(factory=list)
    rules: list[Rule] = attrs.field(factory=list)
    error: str | None = None


@attrs.frozen
class LedgerFile:
    path: Path
    owner: Owner
    entries: tuple[ledger.Entry, ...]
    #: the format its header names, when it is not one this version reads (no entries then)
    foreign: object = None
    #: lines that were skipped: torn by a crash, or garbage
    skipped: int = 0

    @property
    def started(self) -> float:
        """When its first entry was written (0 for a file with none)."""
        return min((e.time for e in self.entries), default=0.0)

    @property
    def standing(self) -> list[ledger.Entry]:
        """Entries that took effect or may have (not failed, skipped or undone)."""
        return [e for e in self.entries if e.state in ("ok", "in-flight")]


@attrs.define
class Inventory:
    """Everything :func:`scan` found."""

    #: namespace name -> alias of its ``lo`` (its tag), None when untagged
    namespaces: dict[str, str | None] = attrs.field(factory=dict)
    links: list[Link] = attrs.field(factory=list)
    firewalls: list[Firewall] = attrs.field(factory=list)
    ledgers: list[LedgerFile] = attrs.field(factory=list)

    @property
    def rules(self) -> list[Rule]:
        return [rule for fw in self.firewalls for rule in fw.rules]

    def namespace_owner(self, name: str) -> Owner | None:
        return Owner.from_tag(self.namespaces.get(name) or "")

    def link(self, name: str, netns: str | None) -> Link | None:
        for link in self.links:
            if link.name == name and link.netns == netns:
                return link
        return None

    def owners(self) -> list[Owner]:
        """Every owner named by a tag or a ledger file."""
        found: set[Owner] = {lf.owner for lf in self.ledgers}
        found.update(o for o in map(self.namespace_owner, self.namespaces) if o is not None)
        found.update(link.owner for link in self.links if link.owner is not None)
        found.update(rule.owner for rule in self.rules if rule.owner is not None)
        return sorted(found, key=lambda o: o.id)


def scan(
    executor: Executor,
    *,
    firewall: bool = True,
    skip_links: Callable[[str, str | None], bool] | None = None,
    host_firewall: bool = False,
) -> Inventory:
    """Read what is there: namespaces, links, rules, chains and ledgers.

    ``skip_links(name, tag)``: namespaces whose links need not be listed (the ones a
    cleanup deletes whole): their ``lo`` tags are read all at once when the executor
    can (:func:`read_tags`), and only the other namespaces are entered one by one.
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
        lambda: read_tags(executor, names) if skip_links is not None and names else None,
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
    return inventory


def _together(executor: Executor, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """The results of ``calls``, the first in this thread and the others beside it (they
    mostly wait for a process); one after the other for a dry-run."""
    if executor.dry_run or len(calls) < 2:
        return [call() for call in calls]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(calls) - 1, thread_name_prefix="netns_kit") as pool:
        futures = [pool.submit(call) for call in calls[1:]]
        first = calls[0]()
        return [first, *(future.result() for future in futures)]


#: run by the executor's Python where it acts: the alias of ``lo`` (ifindex 1) in each
#: namespace named on stdin, by one netlink request per namespace (setns, no process
#: each: ``ip -n NS`` costs a process and a remount of ``/sys`` per namespace)
_READ_TAGS = r"""
import ctypes, json, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
found = {}
for name in sys.stdin.read().split():
    try:
        fd = os.open("/run/netns/" + name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as nl:
            nl.send(struct.pack("=LHHLL", 32, 18, 1, 1, 0) + struct.pack("=BxHiII", 0, 0, 1, 0, 0))
            data = nl.recv(65536)
        length, kind = struct.unpack_from("=LH", data)
        if kind != 16:
            continue
        attrs, at = {}, 32
        while at + 4 <= min(length, len(data)):
            size, which = struct.unpack_from("=HH", data, at)
            if size < 4:
                break
            attrs[which & 0x3FFF] = data[at + 4 : at + size].rstrip(b"\0").decode("utf-8", "replace")
            at += (size + 3) & ~3
        if attrs.get(3) == "lo":
            found[name] = attrs.get(20)
    except OSError:
        continue
json.dump(found, sys.stdout)
"""


def read_tags(executor: Executor, names: Sequence[str]) -> dict[str, str | None] | None:
    """The tag (``lo``'s alias) of each namespace in ``names``, read by ONE process;
    None when the executor cannot run it (a recorder, no Python where it acts), and
    a namespace is left out when it could not be read (ask ``ip`` then)."""
    if executor.dry_run:
        return None
    try:
        result = executor.run(query(sys.executable, "-I", "-S", "-c", _READ_TAGS), input="\n".join(names), check=False)
    except CommandError:
        return None
    if not result.ok:
        return None
    try:
        found = json.loads(result.stdout)
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    return {k: v for k, v in found.items() if k in names and (v is None or isinstance(v, str))}


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
        "links": [str(link) for link in inventory.links if link.alias == tag],
        "rules": [str(rule) for rule in inventory.rules if rule.comment == tag],
        "ledger_files": [str(lf.path) for lf in files],
        "changes_standing": sum(len(lf.standing) for lf in files),
    }
