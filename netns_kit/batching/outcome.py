"""What a run of many commands did: one typed value, never attributes set on an error.

An executor's :meth:`~netns_kit.executors.base.Executor.handle` returns an
:class:`Outcome`: the results of the commands that ran, the :class:`Progress`
(which positions took effect, which may have, which one failed) and the error
that stopped the run, if one did. An undo journal reads ``outcome.progress`` to
reverse exactly what took effect; :meth:`~netns_kit.executors.base.Executor.run_all`
raises ``outcome.error``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from netns_kit.command import Command, Result


@attrs.frozen
class Progress:
    """Positions in the commands given: what took effect, what may have, what failed.

    A batching executor may run commands that do not depend on each other out of
    order, so ``completed`` (in the order they ran) need not be a prefix.
    """

    #: the commands that took effect, in the order they ran
    completed: tuple[int, ...] = ()
    #: the commands that may have taken effect (interrupted by Ctrl-C, or in a batch
    #: whose output does not say how far it got)
    inflight: tuple[int, ...] = ()
    #: the command that failed (it did not take effect), or None
    failed: int | None = None


@attrs.frozen
class Outcome:
    """What :meth:`~netns_kit.executors.base.Executor.handle` did with a list of commands."""

    #: the result of each command that ran to an exit code, by position (a failed
    #: command's too, when it has one)
    results: dict[int, Result]
    progress: Progress
    #: what stopped the run (a classified :class:`~netns_kit.errors.CommandError`, a
    #: Ctrl-C...), None when every command took effect
    error: BaseException | None = None

    @property
    def completed(self) -> tuple[Result, ...]:
        """The results of the commands that took effect, in the order they ran (those the
        executor gave a result for)."""
        return tuple(self.results[i] for i in self.progress.completed if i in self.results)


class Tally:
    """An :class:`Outcome` being built: commands are ticked off as they take effect
    (from several threads, for a batching executor: each tick is one append)."""

    def __init__(self, commands: Sequence[Command]) -> None:
        self.commands = commands
        self.results: dict[int, Result] = {}
        self.order: list[int] = []

    def done(self, index: int, result: Result | None = None) -> None:
        """``commands[index]`` took effect (with ``result``, or an empty success)."""
        self.results[index] = result or Result(self.commands[index])
        self.order.append(index)

    def ran(self, index: int, result: Result) -> None:
        """``commands[index]`` ran and failed with ``result`` (it did not take effect)."""
        self.results[index] = result

    def outcome(
        self, error: BaseException | None = None, *, failed: int | None = None, inflight: Sequence[int] = ()
    ) -> Outcome:
        results = dict(self.results)
        return Outcome(results, Progress(tuple(self.order), tuple(inflight), failed), error)
