"""Running many commands in few processes: ``ip -batch`` and ``iptables-restore``.

:func:`run_all` is what a batching executor's ``run_all`` does: it groups the
commands into steps (:func:`~netns_kit.batching.schedule.schedule`), runs each step as
one process, and turns a failure back into the precise error of the command
that failed:

* ``ip -batch -`` stops at the first failing line and says
  ``Command failed -:N``: line N is the command, the lines before it took
  effect. Its own stderr is classified as if it had run alone. A
  ``missing_ok`` command that finds nothing counts as done and the rest of
  the step runs on in a new process.
* ``iptables-restore --noflush`` applies each ``*table ... COMMIT`` block
  atomically and names the line that failed: the blocks before it took
  effect, that one did not. Its commands (and the rest of the step) are then
  run again one by one, so the error is exactly the one an unbatched run
  raises, and what took effect before it is exactly what it would be.

A failure ``ip`` reports without a line number (it exits on a word it
cannot parse, as in ``Error: any valid prefix is expected rather than
"10.0.0.1/33".``) is found by the words ip quotes: the one line holding them
all is the command that failed, the lines before it took effect, the rest
did not. When no line, or several, hold them, which lines of that step ran
is unknown (between the first and the last that hold them, when several):
they are reported as in flight, so an undo journal undoes them with
``missing_ok``.

The error carries, besides ``completed`` (the results that took effect, in
the order they ran), ``completed_indexes`` (their positions in the commands
given), ``inflight_indexes`` (positions that may have taken effect) and
``failed_index`` (the command that failed, or None).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from netns_kit.batching.lines import restore_line
from netns_kit.batching.schedule import Step, graph, priorities, schedule
from netns_kit.command import Command, Result, query
from netns_kit.errors import BinaryNotFoundError, CommandError, NotFoundError, classify

if TYPE_CHECKING:
    from netns_kit.executors.base import Executor

log = logging.getLogger("netns_kit")

_IP_FAILED = re.compile(r"^Command failed -:(\d+)\s*$", re.MULTILINE)
_RESTORE_FAILED = re.compile(r"line:? (\d+)(?: failed)?", re.IGNORECASE)
#: the words ip quotes when it exits on one it cannot parse ("any valid prefix is
#: expected rather than "X"", "either "dev" is duplicate, or "X" is a garbage")
_IP_QUOTED = re.compile(r'"([^"\n]*)"')
#: the first of these two may be a word ip puts in itself ("to" of "route add PREFIX")
_IP_GARBAGE = re.compile(r'either "[^"\n]*" is duplicate, or "([^"\n]*)" is a garbage')


class _Progress:
    """What took effect so far, in the order it ran."""

    def __init__(self, commands: Sequence[Command]) -> None:
        self.commands = commands
        self.results: dict[int, Result] = {}
        self.order: list[int] = []

    def done(self, index: int, result: Result | None = None) -> None:
        self.results[index] = result or Result(self.commands[index])
        self.order.append(index)

    def fail(self, error: BaseException, *, failed: int | None, inflight: Sequence[int] = ()) -> BaseException:
        error.completed = tuple(self.results[i] for i in self.order)  # type: ignore[attr-defined]
        error.completed_indexes = tuple(self.order)  # type: ignore[attr-defined]
        error.inflight_indexes = tuple(inflight)  # type: ignore[attr-defined]
        error.failed_index = failed  # type: ignore[attr-defined]
        return error


def run_all(
    executor: Executor,
    commands: Sequence[Command],
    *,
    parallel: int = 1,
    on_done: Callable[[Sequence[int]], None] | None = None,
) -> list[Result]:
    """Run ``commands`` in few processes; see the module docstring for failures.

    Each step starts once the steps it waits for are done, up to ``parallel``
    at a time (the namespaces of a topology run side by side, and start while
    the host's later lines still run). After a failure no step starts; the
    error is that of the first failing step in the schedule, and what the
    steps running meanwhile finished is reported as completed.
    """
    import heapq
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    progress = _Progress(commands)
    steps = schedule(commands)
    waiting, dependents = graph(steps)
    key = priorities(steps)  # the longest chain of work first
    ready = [key[p] for p, before in waiting.items() if not before]
    heapq.heapify(ready)
    failures: dict[int, BaseException] = {}
    running: dict[Future[None], int] = {}

    def finished(p: int, error: BaseException | None) -> None:
        if error is not None:
            failures[p] = error
            return
        if on_done is not None:
            on_done(steps[p].indexes)
        for q in dependents.get(p, ()):
            waiting[q].discard(p)
            if not waiting[q]:
                heapq.heappush(ready, key[q])

    pool = ThreadPoolExecutor(parallel, thread_name_prefix="netns_kit") if parallel > 1 else None
    try:
        while (ready and not failures) or running:
            if pool is None:
                p = heapq.heappop(ready)[1]
                try:
                    _run_step(executor, steps[p], progress)
                except CommandError as error:
                    finished(p, error)
                else:
                    finished(p, None)
                continue
            while ready and not failures and len(running) < parallel:
                p = heapq.heappop(ready)[1]
                running[pool.submit(_run_step, executor, steps[p], progress)] = p
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                finished(running.pop(future), future.exception())
    except BaseException as error:
        # interrupted (Ctrl-C) while steps ran: what they had not finished may have taken effect
        if pool is not None:
            pool.shutdown(wait=True)
        pending = [i for p in running.values() for i in steps[p].indexes if i not in progress.results]
        if not hasattr(error, "completed_indexes"):
            progress.fail(error, failed=None, inflight=pending)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    if failures:
        first = failures[min(failures)]
        for p in sorted(failures)[1:]:
            first.add_note(f"meanwhile, another step failed too: {failures[p]}")
        raise progress.fail(
            first,
            failed=getattr(first, "failed_index", None),
            inflight=sorted({i for e in failures.values() for i in getattr(e, "inflight_indexes", ())}),
        )
    return [progress.results[i] for i in range(len(commands))]


def _run_step(executor: Executor, step: Step, progress: _Progress) -> None:
    todo = list(step.indexes)
    try:
        if step.kind == "ip":
            _run_ip(executor, step, todo, progress)
        elif step.kind == "restore":
            _run_restore(executor, step, todo, progress)
        else:
            _run_one(executor, todo, progress)
    except BaseException as error:
        if hasattr(error, "completed_indexes"):
            raise
        # the binary is missing (nothing ran), or interrupted (Ctrl-C, SIGTERM):
        # what this step had not finished may have taken effect
        inflight = [] if isinstance(error, BinaryNotFoundError) else todo
        raise progress.fail(error, failed=None, inflight=inflight) from None


def _run_one(executor: Executor, todo: list[int], progress: _Progress) -> None:
    for index in list(todo):
        try:
            result = executor.run(progress.commands[index])
        except CommandError as error:
            raise progress.fail(error, failed=index) from None
        progress.done(index, result)
        todo.remove(index)


def _launch(
    executor: Executor, process: Command, text: str, todo: list[int], progress: _Progress
) -> tuple[int, str, str]:
    """Run one step's process with ``text`` on stdin; on success all of ``todo`` is done."""
    for index in todo:
        log.debug("run %s", progress.commands[index])
    log.debug("as one process (%d commands): %s", len(todo), process)
    returncode, stdout, stderr = executor._execute_batch(process, text)
    if returncode == 0:
        for index in todo:
            progress.done(index)
        todo.clear()
    return returncode, stdout, stderr


def _run_ip(executor: Executor, step: Step, todo: list[int], progress: _Progress) -> None:
    process = step.process(progress.commands)
    while todo:
        lines = [step.lines[i] for i in todo]
        returncode, stdout, stderr = _launch(executor, process, "\n".join(lines) + "\n", todo, progress)
        if returncode == 0:
            return
        match = _IP_FAILED.search(stderr)
        if match is not None and 1 <= int(match.group(1)) <= len(todo):
            line = int(match.group(1))
            said = stderr[: match.start()].strip() + "\n"
        else:  # ip exited on a word it could not parse: the line holding the words it quotes
            holding = unparsed_lines(stderr, [progress.commands[i] for i in todo])
            if len(holding) != 1:
                error = classify(executor.batch_argv_for(process), returncode, stdout, stderr)
                for index in todo[: holding[0]] if holding else ():
                    progress.done(index)  # before the first line it can have stopped on
                inflight = todo[holding[0] : holding[-1]] if holding else list(todo)
                if holding:
                    said = "; ".join(progress.commands[todo[p]].line for p in holding)
                    error.add_note(f"ip stopped on a line it could not parse, one of: {said}")
                else:
                    error.add_note("ip stopped on a line it could not parse; which lines ran is unknown")
                raise progress.fail(error, failed=None, inflight=inflight)
            line = holding[0] + 1
            said = stderr
        for index in todo[: line - 1]:
            progress.done(index)
        failed = todo[line - 1]
        command = progress.commands[failed]
        error = classify(command.full_argv, returncode, "", said)
        del todo[:line]
        if command.missing_ok and isinstance(error, NotFoundError):
            log.debug("nothing to do (already gone): %s", command.line)
            progress.done(failed)
            continue
        raise progress.fail(error, failed=failed)


def unparsed_lines(stderr: str, commands: Sequence[Command]) -> list[int]:
    """Positions of the ``commands`` that hold every word ip quoted in ``stderr``
    (a word quoted with " ..." after it counts by itself; ip's advice, ``Try "ip
    link help"``, is no word of a line; of ``either "to" is duplicate, or "foo" is
    a garbage`` only the garbage is sure to be). Empty when it quoted none."""
    garbage = _IP_GARBAGE.search(stderr)
    words = (quoted.removesuffix(" ...") for quoted in _IP_QUOTED.findall(stderr))
    quoted = [garbage.group(1)] if garbage else [w for w in words if w != "help" and not w.startswith("ip ")]
    if not quoted:
        return []
    return [p for p, command in enumerate(commands) if all(word in command.argv[1:] for word in quoted)]


def _run_restore(executor: Executor, step: Step, todo: list[int], progress: _Progress) -> None:
    # one block per table (tables do not depend on each other): an nf_tables COMMIT
    # costs ~1 ms, and a step alternating nat and filter rules would pay it per rule
    first_seen: dict[str, int] = {}
    tables = {i: progress.commands[i].argv[3] for i in todo}
    todo.sort(key=lambda i: first_seen.setdefault(tables[i], len(first_seen)))
    todo[:] = deletes_first(executor, progress.commands, todo)
    text, blocks = restore_input([progress.commands[i] for i in todo], [step.lines[i] for i in todo])
    process = step.process(progress.commands)
    returncode, stdout, stderr = _launch(executor, process, text, todo, progress)
    if returncode == 0:
        return
    match = _RESTORE_FAILED.search(stderr)
    if match is None:
        error = classify(executor.batch_argv_for(process), returncode, stdout, stderr)
        error.add_note("iptables-restore named no line; which of its blocks took effect is unknown")
        raise progress.fail(error, failed=None, inflight=list(todo))
    # each block is atomic: those committed before the failing line took effect, the rest did not
    failed_line = int(match.group(1))
    committed = sum(end - first for first, end, commit in blocks if commit < failed_line)
    for index in todo[:committed]:
        progress.done(index)
    del todo[:committed]
    log.debug("%s failed at line %d; running the rest one by one", process.line, failed_line)
    for index in list(todo):
        command = progress.commands[index]
        if command.missing_ok and is_delete(command) and not rule_exists(executor, command):
            log.debug("nothing to delete (no such rule): %s", command.line)
            progress.done(index)
        else:
            try:
                result = executor.run(command)
            except CommandError as error:
                raise progress.fail(error, failed=index) from None
            progress.done(index, result)
        todo.remove(index)


#: below this many deletes from one chain, looking up where the rules stand costs more than it saves
_MANY_DELETES = 256


def deletes_first(executor: Executor, commands: Sequence[Command], todo: list[int]) -> list[int]:
    """A teardown step (only ``-D``, ``-F``, ``-X``) reordered to delete fast.

    ``iptables-nft`` finds the rule a ``-D`` names by comparing it with each
    rule of the chain from the top, so deleting 500 jumps appended to
    PREROUTING last-first costs 4x more than first-first. When no ``-F``/``-X``
    names a chain a ``-D`` deletes from, every ``-D`` may go first (deleting
    distinct rules commutes, and a chain is flushed or deleted only once its
    jumps are gone): they do, each chain's in the order its rules stand (one
    ``*-save`` when a chain has many deletes; an unknown rule goes last).
    Only the speed depends on that order, never the outcome.
    """
    ops = {i: commands[i].argv[4] for i in todo}
    if any(op not in ("-D", "-F", "-X") for op in ops.values()):
        return todo
    deletes = [i for i in todo if ops[i] == "-D"]
    emptied = {(commands[i].argv[3], commands[i].argv[5]) for i in todo if ops[i] != "-D"}
    if not deletes or any((commands[i].argv[3], commands[i].argv[5]) in emptied for i in deletes):
        return todo
    by_chain: dict[tuple[str, str, str | None, str], list[int]] = {}
    for i in deletes:
        argv = commands[i].argv
        by_chain.setdefault((argv[0], argv[3], commands[i].netns, argv[5]), []).append(i)
    ordered: list[int] = []
    where: dict[tuple[str, str, str], int] = {}  # (table, chain, jump target) -> position
    for (tool, table, netns, chain), chain_deletes in by_chain.items():
        if len(chain_deletes) >= _MANY_DELETES:
            if not where:  # one *-save for every table and chain of this step
                where = _positions(executor.run(query(f"{tool}-save", netns=netns), check=False).stdout)
            chain_deletes.sort(key=lambda i: where.get((table, chain, commands[i].argv[-1]), len(where)))
        ordered += chain_deletes
    return ordered + [i for i in todo if ops[i] != "-D"]


def _positions(saved: str) -> dict[tuple[str, str, str], int]:
    """Where each rule stands in ``iptables-save`` output: (table, chain, last word) -> position."""
    where: dict[tuple[str, str, str], int] = {}
    table = ""
    counts: dict[str, int] = {}
    for line in saved.splitlines():
        if line.startswith("*"):
            table, counts = line[1:], {}
        elif line.startswith("-A "):
            chain = line.split(" ", 2)[1]
            counts[chain] = counts.get(chain, 0) + 1
            where.setdefault((table, chain, line.rsplit(" ", 1)[-1]), counts[chain])
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
        name = command.argv[3]
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
    return command.argv[0] in ("iptables", "ip6tables") and "-D" in command.argv


def rule_exists(executor: Executor, command: Command) -> bool:
    """True if the rule an ``iptables -D`` would delete is there (``-C``)."""
    argv = tuple("-C" if part == "-D" else part for part in command.argv)
    found = executor.run(query(*argv, netns=command.netns, ok_codes=(0, 1, 2)), check=False)
    return found.returncode <= 0  # a check killed by a signal (< 0) proves nothing: try the delete
