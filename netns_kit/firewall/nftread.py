"""Reading nftables back: ``nft -j`` parsed into tables, chains and rules.

Handles and comments come back verbatim (libnftables-json(5)), so a rule is
found by its owner's tag and deleted by its handle. Two questions the rest of
netns_kit asks:

* which tables are ours, and whose (:func:`our_tables`, :func:`dead_tables`:
  crash cleanup by table name, ``netns_kit_<owner>`` only);
* would another table drop the traffic our rules accept (:func:`forward_drops`):
  an ``accept`` in our table does not override a ``drop`` in another table
  (Docker 29's ``docker-bridges``, firewalld, podman) nor in iptables' FORWARD.

Only tables are listed whole that are ours; of the others only the chains (and
the rules of their forward base chains): an older ``nft`` can fail to print a
newer tool's table (knftables v0.0.20).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from netns_kit.command import Command, query
from netns_kit.executors.base import Executor
from netns_kit.firewall import iptables, nft
from netns_kit.owner import Owner


@attrs.frozen
class Table:
    family: str
    name: str
    handle: int = 0
    flags: tuple[str, ...] = ()

    @property
    def owner(self) -> Owner | None:
        return nft.owner_of(self.name)


@attrs.frozen
class Chain:
    family: str
    table: str
    name: str
    handle: int = 0
    type: str | None = None
    hook: str | None = None
    prio: int | None = None
    policy: str | None = None


@attrs.frozen
class Rule:
    family: str
    table: str
    chain: str
    handle: int
    comment: str | None
    expr: tuple[Any, ...]

    @property
    def verdicts(self) -> set[str]:
        """The statements of this rule that are verdicts or NAT (``accept``, ``drop``, ``masquerade``...)."""
        keys = {"accept", "drop", "reject", "return", "jump", "goto", "masquerade", "dnat", "snat", "queue"}
        return {key for statement in self.expr if isinstance(statement, dict) for key in statement if key in keys}


@attrs.frozen
class Ruleset:
    """What one ``nft -j list ...`` gave back."""

    tables: tuple[Table, ...] = ()
    chains: tuple[Chain, ...] = ()
    rules: tuple[Rule, ...] = ()

    @classmethod
    def from_json(cls, text: str) -> Ruleset:
        """Parse ``nft -j`` output (empty text: nothing). Raises ``ValueError`` for text that is
        not JSON, which nft 1.0.6 may print for an owned table (see :func:`list_table`)."""
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            data = json.loads(_FLAGS.sub(r"\1}}", text))
        items = data.get("nftables", []) if isinstance(data, dict) else []  # a dry-run answers "[]"
        tables, chains, rules = [], [], []
        for item in items:
            if "table" in item:
                t = item["table"]
                flags = t.get("flags", ())
                tables.append(
                    Table(
                        t["family"], t["name"], t.get("handle", 0), (flags,) if isinstance(flags, str) else tuple(flags)
                    )
                )
            elif "chain" in item:
                c = item["chain"]
                chains.append(
                    Chain(
                        c["family"],
                        c["table"],
                        c["name"],
                        c.get("handle", 0),
                        c.get("type"),
                        c.get("hook"),
                        c.get("prio"),
                        c.get("policy"),
                    )
                )
            elif "rule" in item:
                r = item["rule"]
                rules.append(
                    Rule(r["family"], r["table"], r["chain"], r["handle"], r.get("comment"), tuple(r.get("expr", ())))
                )
        return cls(tuple(tables), tuple(chains), tuple(rules))

    def tagged(self, tag: str) -> list[Rule]:
        """The rules whose comment is exactly ``tag``."""
        return [rule for rule in self.rules if rule.comment == tag]


#: nft 1.0.6 prints an owned table's flags from past the end of its one-entry name table
#: ("json: fix use after free in table_flags_json()", 2023-11: nft 1.1.0, and 1.0.6.1): any bytes,
#: sometimes the end of the output; they are dropped (a table's flags are not read from JSON)
_FLAGS = re.compile(r'("table": \{[^{}]*?"handle": \d+), "flags": .*?\}\}(?=, \{"|\]\})', re.S)


def _list(executor: Executor, netns: str | None, *what: str) -> Ruleset:
    result = executor.run(query("nft", "-j", "list", *what, netns=netns))
    return Ruleset.from_json(result.stdout)


def list_tables(executor: Executor, netns: str | None = None) -> list[Table]:
    """Every table, from ``nft list tables``: plain text, one ``table FAMILY NAME`` a line (the
    JSON of nft 1.0.6 breaks on an owned table's flags, firewalld's included)."""
    result = executor.run(query("nft", "list", "tables", netns=netns))
    words = (line.split() for line in result.stdout.splitlines())
    return [Table(w[1], w[2]) for w in words if len(w) == 3 and w[0] == "table"]


def list_table(executor: Executor, family: str, name: str, netns: str | None = None) -> Ruleset:
    """One table whole: its chains and rules, with handles and comments.

    When nft 1.0.6 spoils the JSON of an owned table, the table is read chain by
    chain instead (``list chain`` prints no table object)."""
    try:
        return _list(executor, netns, "table", family, name)
    except ValueError:
        chains = [c for c in _list(executor, netns, "chains", family).chains if c.table == name]
        rules = [r for c in chains for r in _list(executor, netns, "chain", family, name, c.name).rules]
        return Ruleset((Table(family, name),), tuple(chains), tuple(rules))


def list_chains(executor: Executor, netns: str | None = None) -> list[Chain]:
    """Every chain of every table, without rules (``nft -j list chains``)."""
    return list(_list(executor, netns, "chains").chains)


def our_tables(tables: Iterable[Table]) -> dict[Owner, list[Table]]:
    """Our tables (``netns_kit_<owner id>``), by owner."""
    found: dict[Owner, list[Table]] = {}
    for table in tables:
        owner = table.owner
        if owner is not None:
            found.setdefault(owner, []).append(table)
    return found


def dead_tables(tables: Iterable[Table], alive: Callable[[Owner], bool] = Owner.is_alive) -> list[Table]:
    """Our tables whose process owner is gone (``alive``: by default, is its process running);
    a named owner's (``cli.NAME``, ``dry-run``) is never gone: removed only when named."""
    mine = our_tables(tables).items()
    return [table for owner, held in mine if owner.pid is not None and not alive(owner) for table in held]


def delete_tables(tables: Sequence[Table], netns: str | None = None) -> Command | None:
    """ONE ``nft -f -`` deleting ``tables`` (each ``add`` first: a table already gone is no error)."""
    if not tables:
        return None
    lines = tuple(f"{verb} table {t.family} {t.name}" for t in tables for verb in ("add", "delete"))
    return nft.Transaction(lines).command(netns)


_TABLE_LINE = re.compile(r"^(add|create|delete|destroy) table (\S+) (\S+)")


def tables_in(command: Command) -> list[tuple[str, str, str]]:
    """The tables an ``nft -f -`` transaction adds or deletes: (verb, family, name), in order."""
    if command.program != "nft" or not command.stdin:
        return []
    found = (_TABLE_LINE.match(line) for line in command.stdin.splitlines())
    return [(m[1], m[2], m[3]) for m in found if m is not None]


def describe(command: Command) -> str | None:
    """What an ``nft -f -`` transaction does, for people (a cleanup's report, a leak): the
    tables it deletes (``nft table inet netns_kit_42.7 (in red)``), else the chains it deletes,
    else the chains and rules it adds, else the tables it adds; None for any other command."""
    if command.program != "nft" or not command.stdin:
        return None
    where = f"(in {command.netns or 'the host'})"
    words = [line.split() for line in command.stdin.splitlines()]
    deleted = list(dict.fromkeys(f"{w[2]} {w[3]}" for w in words if w[:2] == ["delete", "table"] and len(w) > 3))
    if deleted:
        return f"nft table{'s' if len(deleted) > 1 else ''} {', '.join(deleted)} {where}"
    for verb in ("delete", "add"):
        chains = [(f"{w[2]} {w[3]}", w[4]) for w in words if w[:2] == [verb, "chain"] and len(w) > 4]
        if chains:
            tables = ", ".join(dict.fromkeys(table for table, _ in chains))
            rules = sum(1 for w in words if w[:2] == ["add", "rule"]) if verb == "add" else 0
            added = f" with {rules} rule{'' if rules == 1 else 's'}" if rules else ""
            names = ", ".join(name for _, name in chains)
            return f"nft chain{'s' if len(chains) > 1 else ''} {names}{added} of table {tables} {where}"
    made = [f"{verb} {family} {name}" for verb, family, name in tables_in(command) if verb in ("add", "create")]
    if made:
        return f"nft table{'s' if len(made) > 1 else ''} {', '.join(m.split(' ', 1)[1] for m in made)} {where}"
    return None


@attrs.frozen
class Drop:
    """Something outside our table that drops forwarded traffic."""

    where: str  #: "nft" or "iptables"
    table: str  #: "inet docker-bridges", "filter"
    chain: str
    why: str  #: "policy drop", or the rule

    def __str__(self) -> str:
        return f"{self.where} table {self.table} chain {self.chain}: {self.why}"


def forward_drops(ruleset: Ruleset, *, hook: str = "forward") -> list[Drop]:
    """Base chains at ``hook`` in tables not ours that drop: by policy, or by a rule.

    ``ruleset`` holds the chains (``list chains``) and the rules of those
    base chains (``list chain ...``)."""
    found: list[Drop] = []
    for chain in ruleset.chains:
        if chain.hook != hook or nft.owner_of(chain.table) is not None:
            continue
        table = f"{chain.family} {chain.table}"
        if chain.policy == "drop":
            found.append(Drop("nft", table, chain.name, "policy drop"))
        for rule in ruleset.rules:
            same = (rule.family, rule.table, rule.chain) == (chain.family, chain.table, chain.name)
            if same and rule.verdicts & {"drop", "reject"}:
                found.append(
                    Drop("nft", table, chain.name, f"rule handle {rule.handle} drops ({rule.comment or 'no comment'})")
                )
    return found


def iptables_forward_drops(save_text: str) -> list[Drop]:
    """iptables' FORWARD policy DROP and DROP/REJECT rules, from ``iptables-save``."""
    found = []
    for line in iptables.shadowing_rules(save_text):
        if line.endswith(" policy DROP"):
            table, chain, _ = line.split(" ", 2)
            if chain == "FORWARD":
                found.append(Drop("iptables", table, chain, "policy DROP"))
            continue
        table, _, rule = line.partition(": ")
        if rule.startswith("-A FORWARD "):
            found.append(Drop("iptables", table, "FORWARD", rule))
    return found


def read_forward_drops(executor: Executor, netns: str | None = None) -> list[Drop]:
    """:func:`forward_drops` of the machine: chains first, then the rules of each forward base chain not ours."""
    chains = list_chains(executor, netns)
    rules: list[Rule] = []
    for chain in chains:
        if chain.hook == "forward" and nft.owner_of(chain.table) is None:
            rules += _list(executor, netns, "chain", chain.family, chain.table, chain.name).rules
    return forward_drops(Ruleset(chains=tuple(chains), rules=tuple(rules)))
