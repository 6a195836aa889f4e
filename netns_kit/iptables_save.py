"""``iptables-save`` output as values: tables, their chains, the rules as argv.

The one parser of that text in the package (the inventory, the state
snapshot, the backend check and the teardown's delete order all read it
here). Every line is split as a shell would (:func:`words`, equal to
:func:`shlex.split`), never with ``str.split``: a ``--comment`` holds spaces
and escaped quotes.

>>> table, = parse('*nat\\n:PREROUTING ACCEPT [0:0]\\n-A PREROUTING -m comment --comment "a b" -j NK-x\\nCOMMIT\\n')
>>> rule, = table.rules
>>> rule.chain, rule.position, rule.comment, rule.target
('PREROUTING', 1, 'a b', 'NK-x')

It also reads the output of ``iptables -t TABLE -S`` after a ``*TABLE`` line
(``-P CHAIN POLICY``, ``-N CHAIN``, ``-A ...``), and counters written by
``iptables-save -c`` (``[packets:bytes] -A ...``).
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Sequence

import attrs

#: a word of a line whose only quoting is double quotes without backslashes
_WORD = re.compile(r'(?:"[^"]*"|[^\s"])+')
_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]$")


def words(line: str) -> list[str]:
    """``shlex.split(line)``; 20 times faster for the lines ``iptables-save`` writes
    most (W(200): 2,000 rules, their comments in double quotes), while any other
    quoting (single quotes, backslashes, escaped quotes) goes to :func:`shlex.split`."""
    if "'" in line or "\\" in line or line.count('"') % 2:
        return shlex.split(line)
    return [word.replace('"', "") for word in _WORD.findall(line)]


def _counters(word: str) -> tuple[int, int] | None:
    match = _COUNTERS.match(word)
    return (int(match.group(1)), int(match.group(2))) if match else None


def option(spec: Sequence[str], *names: str) -> str | None:
    """The value after the first of ``names`` in a rule's words (``--comment``, ``-j``)."""
    for word, value in itertools.pairwise(spec):
        if word in names:
            return value
    return None


@attrs.frozen
class Rule:
    """One ``-A CHAIN SPEC...`` line: ``spec`` is the argv after the chain."""

    table: str
    chain: str
    #: 1 for the chain's first rule (as ``iptables -I CHAIN N`` counts)
    position: int
    spec: tuple[str, ...]
    #: the line as written (stripped), for messages
    line: str
    #: (packets, bytes) when saved with ``-c``
    counters: tuple[int, int] | None = None

    def option(self, *names: str) -> str | None:
        """The value after the first of ``names`` in the rule (``--comment``, ``-j``)."""
        return option(self.spec, *names)

    @property
    def comment(self) -> str | None:
        return self.option("--comment")

    @property
    def target(self) -> str | None:
        return self.option("-j", "-g")

    @property
    def argv(self) -> tuple[str, ...]:
        """``("-A", chain, *spec)``: the line's words without its counters."""
        return ("-A", self.chain, *self.spec)


@attrs.frozen
class Chain:
    name: str
    #: ``ACCEPT``/``DROP``... for a built-in chain, None for a user chain (``-``)
    policy: str | None
    counters: tuple[int, int] | None = None
    rules: tuple[Rule, ...] = ()

    @property
    def builtin(self) -> bool:
        return self.policy is not None


@attrs.frozen
class Table:
    name: str
    chains: tuple[Chain, ...] = ()
    #: every rule of the table, in the order of the text
    rules: tuple[Rule, ...] = ()
    #: False when the text ended before the table's ``COMMIT``
    committed: bool = True

    def chain(self, name: str) -> Chain | None:
        return next((chain for chain in self.chains if chain.name == name), None)


@attrs.define
class _Building:
    name: str
    policies: dict[str, tuple[str | None, tuple[int, int] | None]] = attrs.field(factory=dict)
    rules: dict[str, list[Rule]] = attrs.field(factory=dict)
    order: list[Rule] = attrs.field(factory=list)

    def declare(self, chain: str, policy: str | None, counters: tuple[int, int] | None) -> None:
        self.policies[chain] = (policy, counters)
        self.rules.setdefault(chain, [])

    def add(self, chain: str, spec: list[str], line: str, counters: tuple[int, int] | None) -> None:
        if chain not in self.policies:
            self.declare(chain, None, None)
        rules = self.rules[chain]
        rules.append(Rule(self.name, chain, len(rules) + 1, tuple(spec), line, counters))
        self.order.append(rules[-1])

    def table(self, committed: bool) -> Table:
        chains = tuple(
            Chain(name, policy, counters, tuple(self.rules[name])) for name, (policy, counters) in self.policies.items()
        )
        return Table(self.name, chains, tuple(self.order), committed)


def parse(text: str) -> tuple[Table, ...]:
    """The tables of ``iptables-save`` (or ``*TABLE`` + ``-S``) text, in its order.

    Comment lines (``#``) and blank lines are skipped; lines before the first
    ``*TABLE`` are ignored; a table without its ``COMMIT`` is kept with
    ``committed=False``.
    """
    tables: list[Table] = []
    building: _Building | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            if building is not None:
                tables.append(building.table(committed=False))
            building = _Building(line[1:])
        elif building is None:
            continue
        elif line == "COMMIT":
            tables.append(building.table(committed=True))
            building = None
        elif line.startswith(":"):
            parts = words(line[1:])
            policy = parts[1] if len(parts) > 1 and parts[1] != "-" else None
            building.declare(parts[0], policy, _counters(parts[2]) if len(parts) > 2 else None)
        else:
            parts = words(line)
            counters = _counters(parts[0]) if parts else None
            if counters is not None:
                parts = parts[1:]
            if len(parts) < 2:
                continue
            if parts[0] == "-A":
                building.add(parts[1], parts[2:], line, counters)
            elif parts[0] == "-P" and len(parts) > 2:
                building.declare(parts[1], parts[2], None)
            elif parts[0] == "-N":
                building.declare(parts[1], None, None)
    if building is not None:
        tables.append(building.table(committed=False))
    return tuple(tables)


def table(saved: str | tuple[Table, ...], name: str) -> Table | None:
    """The table ``name`` of ``saved`` (text or :func:`parse` output), if present."""
    tables = parse(saved) if isinstance(saved, str) else saved
    return next((t for t in tables if t.name == name), None)


def positions(saved: str | tuple[Table, ...], table_name: str, chain: str) -> dict[str, int]:
    """Where the rules of ``table_name``/``chain`` stand, keyed by each rule's last word
    (usually its jump target): last word -> position (1 for the first rule; the first
    rule wins when several end with the same word). Empty when the chain is absent.

    ``saved`` may be the text or its :func:`parse` output (parse once, ask per chain).
    """
    found = table(saved, table_name)
    where: dict[str, int] = {}
    chain_found = found.chain(chain) if found else None
    for rule in chain_found.rules if chain_found else ():
        where.setdefault(rule.spec[-1] if rule.spec else rule.chain, rule.position)
    return where
