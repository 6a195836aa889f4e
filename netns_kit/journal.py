"""The undo journal: apply commands, remember exactly what took effect, undo it.

A failure half-way undoes what was done, in reverse, and re-raises the
original error with any cleanup errors attached (``error.cleanup_errors``
and a note), never masking it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from . import signals
from .command import Command, Result
from .errors import CommandError, NetnsKitError
from .executor import Executor
from .ledger import Ledger

if TYPE_CHECKING:
    from .resource import Resource

log = logging.getLogger("netns_kit")


@attrs.define
class Unit:
    """What one resource did: the commands that took effect, in order."""

    resource: Resource
    done: list[tuple[Command, int]] = attrs.field(factory=list)
    complete: bool = False


class Journal:
    """Applies resources through one executor and can undo them exactly."""

    def __init__(self, executor: Executor, *, ledger: bool = True) -> None:
        self.executor = executor
        directory = executor.ledger_dir if ledger else None
        self.ledger = Ledger(directory, executor.owner) if directory is not None else None
        self.units: list[Unit] = []

    def __len__(self) -> int:
        return len(self.units)

    def apply(self, resource: Resource) -> list[Result]:
        """Plan ``resource`` and run its commands; on failure undo all of this journal."""
        return self.apply_all([resource])

    def apply_all(self, resources: Sequence[Resource]) -> list[Result]:
        """Apply several resources; their commands may be batched by the executor."""
        units = [Unit(r) for r in resources]
        plans = [r.plan(self.executor) for r in resources]
        flat = [(unit, command) for unit, plan in zip(units, plans, strict=True) for command in plan]
        self.units.extend(units)
        commands = [command for _, command in flat]
        seqs = self.ledger.intend(commands) if self.ledger else list(range(len(commands)))
        marked = 0

        def progress(n: int) -> None:
            # each command is marked ok as soon as it took effect: after a
            # SIGKILL only the command that was running is left in flight
            nonlocal marked
            if self.ledger and n > marked:
                self.ledger.mark([(s, "ok") for s in seqs[marked:n]])
            marked = max(marked, n)

        try:
            results = self.executor.run_all(commands, on_done=progress)
        except BaseException as error:
            done = len(getattr(error, "completed", ()))
            progress(done)
            # A command that failed did not take effect; one that was interrupted
            # (Ctrl-C, SIGTERM, or itself killed by a signal or a timeout) may
            # have: it is undone too (missing_ok).
            failed = isinstance(error, CommandError) and error.returncode >= 0
            taken = done if failed else min(done + 1, len(flat))
            self._record(flat[:taken], seqs[:taken])
            if self.ledger and done < len(seqs):
                self.ledger.mark(
                    [(seqs[done], "failed" if taken == done else "in-flight")]
                    + [(s, "skipped") for s in seqs[done + 1 :]]
                )
            self.fail(error)
        progress(len(commands))
        self._record(flat, seqs)
        for unit in units:
            unit.complete = True
        return results

    def _record(self, flat: Sequence[tuple[Unit, Command]], seqs: Sequence[int]) -> None:
        for (unit, command), seq in zip(flat, seqs, strict=True):
            unit.done.append((command, seq))

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
