"""The undo journal: apply commands, remember exactly what took effect, undo it.

A failure half-way undoes what was done, in reverse, and re-raises the
original error with any cleanup errors attached (``error.cleanup_errors``
and a note), never masking it.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
from collections.abc import Sequence

from netns_kit import signals
from netns_kit.batching.outcome import Outcome, Progress
from netns_kit.command import Command, Result, query
from netns_kit.errors import CommandError, NetnsKitError
from netns_kit.executors.base import Executor
from netns_kit.lifecycle import teardown
from netns_kit.lifecycle.ledger import Ledger, created_by
from netns_kit.lifecycle.overlay import PlannedSysctls
from netns_kit.lifecycle.undoable import Undoable, Unit

log = logging.getLogger("netns_kit")


def taken(error: BaseException, progress: Progress | None) -> tuple[set[int], set[int], int | None]:
    """What a failed run did: (positions that took effect, positions that may have, the
    position that failed), from its ``progress`` (None: the error came after the run)."""
    if progress is None:
        return set(), set(), None
    # a command killed by a signal (negative exit code) may have taken effect
    killed = isinstance(error, CommandError) and error.returncode < 0
    inflight = set(progress.inflight)
    failed = progress.failed
    if killed and failed is not None:
        inflight.add(failed)
        failed = None
    return set(progress.completed), inflight, failed


def _record(unit: Unit, command: Command, seq: int) -> None:
    """Note that ``command`` (sequence number ``seq``) of ``unit`` took effect: in plan
    order (steps finish in any order; the undo reverses the plan), once only."""
    if any(known == seq for _, known in unit.done):
        return
    bisect.insort(unit.done, (command, seq), key=lambda entry: entry[1])


class Journal:
    """Applies resources through one executor and can undo them exactly."""

    def __init__(self, executor: Executor, *, ledger: bool = True) -> None:
        self.executor = executor
        directory = executor.ledger_dir if ledger else None
        self.ledger = Ledger(directory, executor.owner) if directory is not None else None
        self.units: list[Unit] = []

    def __len__(self) -> int:
        return len(self.units)

    def apply(self, resource: Undoable) -> list[Result]:
        """Plan ``resource`` and run its commands; on failure undo all of this journal."""
        return self.apply_all([resource])

    def apply_all(self, resources: Sequence[Undoable]) -> list[Result]:
        """Apply several resources; their commands may be batched by the executor."""
        units = [Unit(r) for r in resources]
        plans = self._plan(resources, self.executor)  # may raise: nothing ran then
        flat = [(unit, command) for unit, plan in zip(units, plans, strict=True) for command in plan]
        self.units.extend(units)
        commands = [command for _, command in flat]
        seqs = (
            self.ledger.intend(commands, absent=self._absent(commands)) if self.ledger else list(range(len(commands)))
        )
        marked: set[int] = set()

        def progress(indexes: Sequence[int]) -> None:
            # each command is recorded and marked ok as soon as it took effect (after
            # each batch when batching): an undo, or crash cleanup after a SIGKILL,
            # then knows about it wherever a signal lands
            new = [i for i in indexes if i not in marked]
            for i in new:
                _record(*flat[i], seqs[i])
            marked.update(new)
            if self.ledger and new:
                self.ledger.mark([(seqs[i], "ok") for i in new])

        outcome: Outcome | None = None
        try:
            outcome = self.executor.attempt(commands, on_done=progress)
            if outcome.error is not None:
                raise outcome.error
            results = [outcome.results[i] for i in range(len(commands))]
            progress(range(len(commands)))
            for unit in units:
                unit.complete = True
        except BaseException as error:
            # A command that failed did not take effect; one that was interrupted
            # (Ctrl-C, SIGTERM, or itself killed by a signal) may have: it is undone too
            # (missing_ok). A batching executor may have run commands out of plan order:
            # the sets need not be prefixes. What was reported done counts too: all of
            # it when a SIGTERM landed after the run, in the bookkeeping above.
            ran = outcome.progress if outcome is not None and error is outcome.error else None
            done, inflight, failed = taken(error, ran)
            done |= marked
            inflight -= done
            for i in sorted(done | inflight):
                _record(*flat[i], seqs[i])
            if self.ledger:
                state = {i: "ok" for i in done} | {i: "in-flight" for i in inflight}
                if failed is not None:
                    state[failed] = "failed"
                self.ledger.mark([(s, state.get(i, "skipped")) for i, s in enumerate(seqs) if i not in marked])
            self.fail(error)
        return results

    def _absent(self, commands: Sequence[Command]) -> set[int]:
        """Positions of the commands creating namespaces or links whose names are free now.

        Written into the ledger with the entries, so that crash cleanup can tell an
        untagged object made by a creation in flight at a SIGKILL from one of the same
        name that was there before (one query per place, only for real runs).
        """
        creating = {i: made for i, c in enumerate(commands) if (made := created_by(c))}
        if not creating:
            return set()
        new_netns = {obj for made in creating.values() for obj in made if isinstance(obj, str)}
        seen: dict[str | None, set[str]] = {}

        def names(netns: str | None, what: str) -> set[str]:
            key = "\0netns" if what == "netns" else netns
            if key not in seen:
                argv = ("ip", "-j", "netns", "list") if what == "netns" else ("ip", "-j", "link", "show")
                result = self.executor.run(query(*argv, netns=None if what == "netns" else netns), check=False)
                field = "name" if what == "netns" else "ifname"
                seen[key] = {entry.get(field, "") for entry in result.json()} if result.ok else set()
            return seen[key]

        absent = set()
        for i, made in creating.items():
            free = True
            for obj in made:
                if isinstance(obj, str):
                    free = free and obj not in names(None, "netns")
                elif obj[1] not in new_netns:  # a link in a namespace made in this same apply is new
                    free = free and obj[0] not in names(obj[1], "link")
            if free:
                absent.add(i)
        return absent

    @staticmethod
    def _plan(resources: Sequence[Undoable], executor: Executor) -> list[list[Command]]:
        """Plan each resource, seeing the sysctls the ones before it will set."""
        view = PlannedSysctls(executor)
        plans: list[list[Command]] = []
        try:
            for resource in resources:
                plans.append(resource.plan(view))
                view.learn(plans[-1])
        except BaseException:
            # the ones planned already may have claimed shared state (sysctl claims)
            for planned in resources[: len(plans)]:
                with contextlib.suppress(Exception):
                    planned.undo(executor, [], complete=False)
            raise
        return plans

    def fail(self, error: BaseException) -> None:
        """Undo everything, attach cleanup errors to ``error`` and raise it."""
        log.debug("undoing %d resources after: %s", len(self.units), error)
        cleanup_errors = self.rollback()
        if cleanup_errors:
            existing = list(getattr(error, "cleanup_errors", ()))
            error.cleanup_errors = existing + cleanup_errors  # type: ignore[attr-defined]
            for problem in cleanup_errors:
                error.add_note(f"while undoing, another error: {problem}")
        raise error

    def rollback(self) -> list[Exception]:
        """Undo every unit in reverse order; return the errors met (and keep going)."""
        errors: list[Exception] = []
        with signals.shielded():  # one SIGTERM or Ctrl-C waits until the undo is complete
            fast = teardown.rollback(self)  # all at once, when it can
            if fast is not None:
                return fast
            while self.units:
                unit = self.units.pop()
                try:
                    unit.resource.undo(self.executor, [c for c, _ in unit.done], complete=unit.complete)
                except Exception as error:
                    errors.append(error)
                    continue
                if self.ledger:
                    self.ledger.mark([(seq, "undone") for _, seq in unit.done])
            if self.ledger:
                self.ledger.close(empty=not errors)
        return errors

    def close(self) -> None:
        """Undo everything; raise the first error (others attached as notes)."""
        errors = self.rollback()
        if errors:
            first = errors[0]
            if len(errors) > 1:
                for other in errors[1:]:
                    first.add_note(f"and also: {other}")
            if isinstance(first, NetnsKitError):
                raise first
            raise NetnsKitError(f"teardown failed: {first}") from first
