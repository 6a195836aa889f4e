"""What every resource shares: validated attrs values that PLAN commands.

A resource's :meth:`~Resource.plan` returns the commands that create it,
each carrying the commands that undo it; deleting is undoing that same plan,
so create and delete cannot drift apart. Resources never start processes:
their executor does (the ``executor=`` field, else :func:`netns_kit.use`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import attrs

from netns_kit import signals
from netns_kit.command import Command
from netns_kit.executors.base import Executor, current

if TYPE_CHECKING:
    from netns_kit.lifecycle.journal import Journal


@attrs.define
class _State:
    """Run-time bookkeeping of a (frozen) resource value: what this object created."""

    journals: list[Journal] = attrs.field(factory=list)
    adopted: bool = False
    processes: list[Any] = attrs.field(factory=list)
    guards: list[signals.Guard] = attrs.field(factory=list)
    #: sysctl claims filed by its plans (netns_kit.lifecycle.sysctl), dropped by its undo
    claims: list[Any] = attrs.field(factory=list)
    #: its claims were dropped already (by a fast teardown's plan): restore no sysctl again
    claims_released: bool = False


@attrs.frozen(kw_only=True)
class Resource:
    """Base class. Subclasses add their fields and implement :meth:`plan`."""

    #: run through this executor instead of the one in effect (:func:`netns_kit.use`)
    executor: Executor | None = attrs.field(default=None, eq=False, repr=False)
    #: if the object already exists, use it instead of failing; never delete it
    adopt: bool = attrs.field(default=False)
    _state: _State = attrs.field(factory=_State, init=False, eq=False, repr=False)

    # -- to implement ------------------------------------------------------
    def plan(self, executor: Executor) -> list[Command]:
        """The commands that create this resource (queries allowed, no changes)."""
        raise NotImplementedError

    def exists(self, executor: Executor | None = None) -> bool:
        raise NotImplementedError

    def undo(self, executor: Executor, done: Sequence[Command], *, complete: bool) -> None:
        """Reverse ``done`` (the commands of the plan that took effect), idempotently."""
        undo = [u.tolerant() for c in reversed(done) for u in c.undo]
        if undo:
            executor.run_all(undo)

    # -- fast teardown (netns_kit.lifecycle.teardown) -----------------------------------
    def vanishes_with(self, doomed: frozenset[str]) -> tuple[tuple[str | None, str], ...] | None:
        """None, or: deleting the namespaces ``doomed`` takes this resource along, and
        these ``(netns, device)`` elsewhere go too, once the kernel gets to them."""
        return None

    def quiet_plan(self, done: Sequence[Command]) -> list[Command]:
        """Commands that stop it acting on traffic before a whole teardown starts (a
        bridge set down stops flooding), for ``done``, what of its plan took effect."""
        return []

    def undo_plan(self, done: Sequence[Command]) -> list[Command] | None:
        """The commands :meth:`undo` would run for ``done``, or None when it must run itself."""
        if type(self).undo is not Resource.undo:
            return None
        return [u.tolerant() for c in reversed(done) for u in c.undo]

    # -- shared behaviour ----------------------------------------------------
    def _executor(self, executor: Executor | None = None) -> Executor:
        return executor or self.executor or current()

    @property
    def adopted(self) -> bool:
        """True when :meth:`create` found the object already there (``adopt=True``)."""
        return self._state.adopted

    def adopts(self, executor: Executor) -> bool:
        """With ``adopt=True``, look whether the object is there; if so it is adopted
        (:attr:`adopted`): nothing is created, and nothing will be deleted."""
        if self.adopt and self.exists(executor):
            self._state.adopted = True
            return True
        return False

    def create(self, executor: Executor | None = None) -> Self:
        """Create it; a failure half-way undoes what was done and re-raises."""
        from netns_kit.lifecycle.journal import Journal

        executor = self._executor(executor)
        if self.adopts(executor):
            return self
        journal = Journal(executor)
        with signals.terminate_cleanly():  # SIGTERM half-way: rolled back, not left half-made
            journal.apply(self)
        self._state.journals.append(journal)
        return self

    def delete(self, executor: Executor | None = None) -> None:
        """Delete it. Idempotent; never deletes an adopted object.

        Undoes exactly what :meth:`create` did (restoring prior values); on an
        object this value did not create, undoes its plan as far as it is there.
        That plan is made under :func:`netns_kit.lifecycle.sysctl.planning_undo`: it writes
        nothing, and a shared switch (``ip_forward``) this value never claimed is
        not touched (its last claim restores it; ``netns_kit.cleanup()`` for a
        process that is gone).
        """
        if self._state.adopted:
            self._state.adopted = False
            return
        if self._state.journals:
            with signals.shielded():  # no SIGTERM between taking the journal and undoing it
                self._state.journals.pop().close()
            return
        executor = self._executor(executor)
        from netns_kit.lifecycle.sysctl import planning_undo

        with planning_undo():  # a plan looked at for its undo changes nothing (no sysctl set)
            done = self.plan(executor)
        self.undo(executor, done, complete=True)

    def __enter__(self) -> Self:
        # while the block runs, SIGTERM unwinds it (and so deletes): see netns_kit.signals
        guard = signals.Guard()
        guard.enter()
        try:
            self.create()
        except BaseException:
            guard.exit()
            raise
        self._state.guards.append(guard)
        return self

    def __exit__(self, *exc: object) -> None:
        journals = len(self._state.journals)
        try:
            self.delete()
        except BaseException:
            if len(self._state.journals) == journals and journals:  # interrupted before it began
                self.delete()
            raise
        finally:
            if self._state.guards:
                self._state.guards.pop().exit()
