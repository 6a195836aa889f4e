"""Running many commands in few processes: the loop of a batching executor.

:func:`run` is what :class:`~netns_kit.executors.local.ShExecutor` does with a list
of commands when it batches: it groups them into steps
(:func:`~netns_kit.batching.schedule.schedule`), starts each step as one process
(``ip -batch``, ``iptables-restore --noflush``, or the command alone) once the
steps it waits for are done, up to ``parallel`` at a time, and reads what each
process's output says took effect (:mod:`netns_kit.batching.reading`) into an
:class:`~netns_kit.batching.outcome.Outcome`: the precise error of the command
that failed, and exactly which commands took effect, were in flight, or failed.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import logging
from collections.abc import Callable, Sequence

from netns_kit.batching.batch import (
    check_of,
    deletes_first,
    exists,
    ip_input,
    is_delete,
    listing_needed,
    restore_input,
    restore_order,
)
from netns_kit.batching.outcome import Outcome, Tally
from netns_kit.batching.reading import failed_line, read_ip, read_restore
from netns_kit.batching.schedule import Step, graph, priorities, schedule
from netns_kit.command import Command
from netns_kit.errors import BinaryNotFoundError, CommandError
from netns_kit.executors.hook import Executor
from netns_kit.executors.inorder import OnDone

log = logging.getLogger("netns_kit")

#: starts one batch process (``process``, a :meth:`~netns_kit.batching.schedule.Step.process`)
#: with text on its stdin: (exit code, stdout, stderr). Raises
#: :class:`~netns_kit.errors.BinaryNotFoundError` when it could not be started.
Launch = Callable[[Command, str], tuple[int, str, str]]


class StepFailed(Exception):
    """A step stopped: by ``error`` (a command's, or a Ctrl-C), with what it knows."""

    def __init__(self, error: BaseException, *, failed: int | None = None, inflight: Sequence[int] = ()) -> None:
        super().__init__(error)
        self.error = error
        self.failed = failed
        self.inflight = tuple(inflight)


def run(
    executor: Executor,
    commands: Sequence[Command],
    *,
    launch: Launch,
    argv_of: Callable[[Command], tuple[str, ...]],
    parallel: int = 1,
    on_done: OnDone | None = None,
) -> Outcome:
    """Run ``commands`` in few processes started by ``launch`` (``argv_of`` says the
    argv a batch process is started as, for its errors); one-off commands and
    queries go through ``executor.run``.

    Each step starts once the steps it waits for are done, up to ``parallel`` at
    a time (the namespaces of a topology run side by side, and start while the
    host's later lines still run). After a failure no step starts; the error is
    that of the first failing step in the schedule, and what the steps running
    meanwhile finished is reported as completed.
    """
    tally = Tally(commands)
    steps = schedule(commands)
    waiting, dependents = graph(steps)
    key = priorities(steps)  # the longest chain of work first
    ready = [key[p] for p, before in waiting.items() if not before]
    heapq.heapify(ready)
    failures: dict[int, StepFailed] = {}
    running: dict[concurrent.futures.Future[None], int] = {}

    def step(p: int) -> None:
        _run_step(executor, steps[p], tally, launch, argv_of)

    def finished(p: int, failure: StepFailed | None) -> None:
        if failure is not None:
            failures[p] = failure
            return
        if on_done is not None:
            on_done(steps[p].indexes)
        for q in dependents.get(p, ()):
            waiting[q].discard(p)
            if not waiting[q]:
                heapq.heappush(ready, key[q])

    pool = concurrent.futures.ThreadPoolExecutor(parallel, thread_name_prefix="netns_kit") if parallel > 1 else None
    try:
        while (ready and not failures) or running:
            if pool is None:
                p = heapq.heappop(ready)[1]
                try:
                    step(p)
                except StepFailed as failure:
                    if not isinstance(failure.error, CommandError):
                        raise  # interrupted (Ctrl-C): no further step
                    finished(p, failure)
                else:
                    finished(p, None)
                continue
            while ready and not failures and len(running) < parallel:
                p = heapq.heappop(ready)[1]
                running[pool.submit(step, p)] = p
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                p = running.pop(future)
                raised = future.exception()
                finished(p, raised if isinstance(raised, StepFailed) or raised is None else StepFailed(raised))
    except StepFailed as failure:  # interrupted inside a step, on this thread
        return tally.outcome(failure.error, failed=failure.failed, inflight=failure.inflight)
    except BaseException as error:
        # interrupted (Ctrl-C) while steps ran: what they had not finished may have taken effect
        if pool is not None:
            pool.shutdown(wait=True)
        done_now = set(tally.order)
        pending = [i for p in running.values() for i in steps[p].indexes if i not in done_now]
        return tally.outcome(error, inflight=pending)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    if failures:
        first = failures[min(failures)]
        for p in sorted(failures)[1:]:
            first.error.add_note(f"meanwhile, another step failed too: {failures[p].error}")
        inflight = sorted({i for failure in failures.values() for i in failure.inflight})
        return tally.outcome(first.error, failed=first.failed, inflight=inflight)
    return tally.outcome()


def _run_step(
    executor: Executor, step: Step, tally: Tally, launch: Launch, argv_of: Callable[[Command], tuple[str, ...]]
) -> None:
    todo = list(step.indexes)
    try:
        if step.kind == "ip":
            _run_ip(step, todo, tally, launch, argv_of)
        elif step.kind == "restore":
            _run_restore(executor, step, todo, tally, launch=launch, argv_of=argv_of)
        elif step.kind == "nft" and len(todo) > 1:
            _run_nft(executor, step, todo, tally, launch)
        else:
            _run_one(executor, todo, tally)
    except StepFailed:
        raise
    except BaseException as error:
        # the binary is missing (nothing ran), or interrupted (Ctrl-C, SIGTERM):
        # what this step had not finished may have taken effect
        raise StepFailed(error, inflight=[] if isinstance(error, BinaryNotFoundError) else todo) from None


def _run_one(executor: Executor, todo: list[int], tally: Tally) -> None:
    for index in list(todo):
        try:
            result = executor.run(tally.commands[index])
        except CommandError as error:
            raise StepFailed(error, failed=index) from None
        tally.done(index, result)
        todo.remove(index)


def _run_nft(executor: Executor, step: Step, todo: list[int], tally: Tally, launch: Launch) -> None:
    """Consecutive ``nft -f -`` of one namespace as ONE transaction (each nft process reads the
    whole table first: one process, not N). All or nothing: when it fails, nothing took
    effect, and they run one by one for the precise error (and their ``missing_ok``)."""
    process = step.process(tally.commands)
    text = "".join(tally.commands[i].stdin or "" for i in todo)
    returncode, _, stderr = _launch(launch, process, text, todo, tally)
    if returncode == 0:
        for index in todo:
            tally.done(index)
        todo.clear()
        return
    log.debug("%s failed (%s); running its %d transactions one by one", process.line, stderr.strip(), len(todo))
    _run_one(executor, todo, tally)


def _launch(launch: Launch, process: Command, text: str, todo: list[int], tally: Tally) -> tuple[int, str, str]:
    for index in todo:
        log.debug("run %s", tally.commands[index])
    log.debug("as one process (%d commands): %s", len(todo), process)
    return launch(process, text)


def _run_ip(
    step: Step, todo: list[int], tally: Tally, launch: Launch, argv_of: Callable[[Command], tuple[str, ...]]
) -> None:
    process = step.process(tally.commands)
    while todo:
        verdict = read_ip(
            tally.commands, todo, argv_of(process), _launch(launch, process, ip_input(step, todo), todo, tally)
        )
        for index in verdict.done:
            tally.done(index)
        if verdict.error is not None:
            raise StepFailed(verdict.error, failed=verdict.failed, inflight=verdict.inflight)
        todo[:] = verdict.rest


def _run_restore(
    executor: Executor,
    step: Step,
    todo: list[int],
    tally: Tally,
    *,
    launch: Launch,
    argv_of: Callable[[Command], tuple[str, ...]],
) -> None:
    commands = tally.commands
    todo[:] = restore_order(commands, todo)
    listing = listing_needed(commands, todo)
    saved = executor.run(listing, check=False).stdout if listing is not None else ""
    todo[:] = deletes_first(commands, todo, saved)
    text, blocks = restore_input([commands[i] for i in todo], [step.lines[i] for i in todo])
    process = step.process(commands)
    ran = _launch(launch, process, text, todo, tally)
    verdict = read_restore(todo, blocks, argv_of(process), ran)
    for index in verdict.done:
        tally.done(index)
    if verdict.error is not None:
        raise StepFailed(verdict.error, inflight=verdict.inflight)
    todo[:] = verdict.rest
    if todo:
        log.debug("%s failed at line %s; running the rest one by one", process.line, failed_line(ran[2]))
    for index in list(todo):
        command = commands[index]
        if command.missing_ok and is_delete(command) and not exists(executor.run(check_of(command), check=False)):
            log.debug("nothing to delete (no such rule): %s", command.line)
            tally.done(index)
        else:
            try:
                result = executor.run(command)
            except CommandError as error:
                raise StepFailed(error, failed=index) from None
            tally.done(index, result)
        todo.remove(index)
