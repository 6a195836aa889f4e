"""What :func:`netns_kit.ops.inventory.scan` finds: namespaces' links, firewall rules
and chains, our nft tables, ledger files, with the owner each one's tag (or table name) names."""

from __future__ import annotations

import shlex
from pathlib import Path

import attrs

from netns_kit import iptables_save
from netns_kit.command import Command, change
from netns_kit.firewall import nft
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
        return iptables_save.option(self.spec, *names)

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


@attrs.frozen
class NftChain:
    """A chain of one of our nft tables: its hook and priority (None: a regular chain) and
    how many rules it holds."""

    name: str
    hook: str | None
    priority: int | None
    rules: int

    def __str__(self) -> str:
        hooked = f"{self.hook} hook, priority {self.priority}" if self.hook else "regular chain"
        return f"chain {self.name} ({hooked}, {self.rules} rule{'' if self.rules == 1 else 's'})"


@attrs.frozen
class NftTable:
    """One of our nft tables (``netns_kit_<owner id>``) in one namespace, read with ``nft -j``."""

    netns: str | None
    family: str
    name: str
    chains: tuple[NftChain, ...] = ()

    @property
    def owner(self) -> Owner | None:
        return nft.owner_of(self.name)

    @property
    def rules(self) -> int:
        return sum(chain.rules for chain in self.chains)

    def __str__(self) -> str:
        count = len(self.chains)
        return (
            f"nft table {self.family} {self.name} (in {self.netns or 'the host'}): "
            f"{count} chain{'' if count == 1 else 's'}, {self.rules} rule{'' if self.rules == 1 else 's'}"
        )


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
    #: our nft tables (by name: ``netns_kit_<owner id>``), in the host and every namespace
    nft_tables: list[NftTable] = attrs.field(factory=list)

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
        found.update(table.owner for table in self.nft_tables if table.owner is not None)
        return sorted(found, key=lambda o: o.id)
