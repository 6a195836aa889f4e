"""Batch programs: what one ``ip -batch`` or ``iptables-restore`` process is given.

Pure planning: nothing here starts a process. :func:`~netns_kit.batching.schedule.schedule`
groups commands into steps; for each step this module says which process runs
it (:meth:`~netns_kit.batching.schedule.Step.process`), what goes on its stdin
(:func:`ip_input`, :func:`restore_input`) and in what order a teardown step's
rule deletions go (:func:`deletes_first`). What the process's output says took
effect is read back by :mod:`netns_kit.batching.reading`. The executors that
batch (:mod:`netns_kit.executors.batcher`) start the processes.
"""

from __future__ import annotations

from collections.abc import Sequence

from netns_kit import iptables_save, shape
from netns_kit.batching.lines import restore_line
from netns_kit.batching.schedule import Step
from netns_kit.command import Command, Result, query


def ip_input(step: Step, todo: Sequence[int]) -> str:
    """The stdin of ``ip -batch -`` for the commands ``todo`` (positions) of ``step``."""
    return "\n".join(step.lines[i] for i in todo) + "\n"


def restore_order(commands: Sequence[Command], todo: Sequence[int]) -> list[int]:
    """``todo`` (an ``iptables-restore`` step) with one block per table: tables do not
    depend on each other, and an nf_tables COMMIT costs ~1 ms, which a step
    alternating nat and filter rules would pay per rule."""
    first_seen: dict[str, int] = {}
    tables = {i: _rule(commands[i]).table for i in todo}
    return sorted(todo, key=lambda i: first_seen.setdefault(tables[i], len(first_seen)))


#: below this many deletes from one chain, looking up where the rules stand costs more than it saves
_MANY_DELETES = 256


def _deletes_by_chain(
    commands: Sequence[Command], todo: Sequence[int]
) -> dict[tuple[str, str, str | None, str], list[int]] | None:
    """The ``-D`` of a teardown step (only ``-D``, ``-F``, ``-X``) by (tool, table, netns,
    chain); None when the step may not be reordered."""
    rules = {i: _rule(commands[i]) for i in todo}
    if any(fw.verb not in ("-D", "-F", "-X") for fw in rules.values()):
        return None
    deletes = [i for i in todo if rules[i].verb == "-D"]
    emptied = {(rules[i].table, rules[i].chain) for i in todo if rules[i].verb != "-D"}
    if not deletes or any((rules[i].table, rules[i].chain) in emptied for i in deletes):
        return None
    by_chain: dict[tuple[str, str, str | None, str], list[int]] = {}
    for i in deletes:
        fw = rules[i]
        by_chain.setdefault((fw.tool, fw.table, commands[i].netns, fw.chain or ""), []).append(i)
    return by_chain


def listing_needed(commands: Sequence[Command], todo: Sequence[int]) -> Command | None:
    """The ``*-save`` query :func:`deletes_first` needs the output of, or None (few deletes)."""
    by_chain = _deletes_by_chain(commands, todo) or {}
    for (tool, _, netns, _), chain_deletes in by_chain.items():
        if len(chain_deletes) >= _MANY_DELETES:
            return query(f"{tool}-save", netns=netns)
    return None


def deletes_first(commands: Sequence[Command], todo: Sequence[int], listing: str = "") -> list[int]:
    """A teardown step (only ``-D``, ``-F``, ``-X``) reordered to delete fast.

    ``iptables-nft`` finds the rule a ``-D`` names by comparing it with each
    rule of the chain from the top, so deleting 500 jumps appended to
    PREROUTING last-first costs 4x more than first-first. When no ``-F``/``-X``
    names a chain a ``-D`` deletes from, every ``-D`` may go first (deleting
    distinct rules commutes, and a chain is flushed or deleted only once its
    jumps are gone): they do, each chain's in the order its rules stand in
    ``listing`` (the output of :func:`listing_needed`'s query, for chains with
    many deletes; an unknown rule goes last). Only the speed depends on that
    order, never the outcome.
    """
    by_chain = _deletes_by_chain(commands, todo)
    if by_chain is None:
        return list(todo)
    ordered: list[int] = []
    where: dict[tuple[str, str, str], int] | None = None
    for (_, table, _, chain), chain_deletes in by_chain.items():
        if len(chain_deletes) >= _MANY_DELETES:
            if where is None:  # one *-save for every table and chain of this step
                where = _positions(listing)
            found = where
            chain_deletes.sort(key=lambda i: found.get((table, chain, _rule(commands[i]).last or ""), len(found)))
        ordered += chain_deletes
    return ordered + [i for i in todo if _rule(commands[i]).verb != "-D"]


def _positions(saved: str) -> dict[tuple[str, str, str], int]:
    """Where each rule stands in ``iptables-save`` output: (table, chain, last word) -> position."""
    where: dict[tuple[str, str, str], int] = {}
    for table in iptables_save.parse(saved):
        for rule in table.rules:
            last = rule.spec[-1] if rule.spec else rule.chain
            where.setdefault((table.name, rule.chain, last), rule.position)
    return where


def restore_input(
    commands: Sequence[Command], lines: Sequence[str] | None = None
) -> tuple[str, list[tuple[int, int, int]]]:
    """The ``iptables-restore`` text for ``commands``: one ``*table`` ... ``COMMIT`` block
    per run of one table. Returns it and the blocks as ``(first, end, commit_line)``:
    the positions of their commands and the line number of their COMMIT."""
    out: list[str] = []
    blocks: list[tuple[int, int, int]] = []
    table = None
    start = 0
    for position, command in enumerate(commands):
        if lines is None:
            found = restore_line(command)
            assert found is not None
            line = found[1]
        else:
            line = lines[position]
        name = _rule(command).table
        if name != table:
            if table is not None:
                out.append("COMMIT")
                blocks.append((start, position, len(out)))
            out.append(f"*{name}")
            table, start = name, position
        out.append(line)
    out.append("COMMIT")
    blocks.append((start, len(commands), len(out)))
    return "\n".join(out) + "\n", blocks


def is_delete(command: Command) -> bool:
    """An ``iptables -D`` (whose rule may be gone: checked with ``-C`` first)."""
    return command.program in shape.FIREWALL_TOOLS and "-D" in command.argv


def _rule(command: Command) -> shape.Iptables:
    """A command of an ``iptables-restore`` step, read (:func:`shape.planned_iptables`)."""
    fw = shape.planned_iptables(command.argv)
    if fw is None:
        raise ValueError(f"not a planned iptables rule: {command.line}")
    return fw


def check_of(command: Command) -> Command:
    """The ``-C`` query that tells whether the rule an ``iptables -D`` deletes is there."""
    argv = tuple("-C" if part == "-D" else part for part in command.argv)
    return query(*argv, netns=command.netns, ok_codes=(0, 1, 2))


def exists(check: Result) -> bool:
    """What :func:`check_of`'s result says: True if the rule is there. A check killed by a
    signal (< 0) proves nothing: the delete is tried."""
    return check.returncode <= 0
