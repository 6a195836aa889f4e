"""What every resource shares: validated attrs values that PLAN commands.

A resource's :meth:`~Resource.plan` returns the commands that create it,
each carrying the commands that undo it; deleting is undoing that same plan,
so create and delete cannot drift apart. Resources never start processes:
their executor does (the ``executor=`` field, else :func:`netns_kit.use`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import attrs

from netns_kit import signals
from netns_kit.command import Command
from netns_kit.executors.base import Executor, current
from netns_kit.lifecycle import sysctl
from netns_kit.lifecycle.interfaces import Interface, Whole
from netns_kit.lifecycle.journal import Journal
from netns_kit.lifecycle.undoable import Undoable

#: :attr:`Resource.rank` of a kind that declares none: after every built-in kind
RANK_LAST = 100


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
    """Base class. Subclasses add their fields and implement :meth:`plan`.

    What a subclass may declare, beyond its plan:

    * :attr:`rank`: where it comes in a topology's creation order;
    * :meth:`interfaces`: the interfaces it makes or puts addresses on (the
      topology's checks, the firewall's checks and the picture read them);
    * :meth:`check_topology`: its checks against the rest of a topology;
    * :attr:`holds_others` with :meth:`held_name`, :meth:`delete_whole` and
      :meth:`empty`: deleting it deletes all that lives inside it (a namespace),
      which a whole teardown uses to go fast.
    """

    #: creation order in a topology, lowest first (equal ranks: in the order given). The
    #: built-in kinds: Namespace 0, Bridge 1, VethPair 2, Address 3, Route 4, NatRule 5,
    #: PortForward 6; any other kind defaults to :data:`RANK_LAST` (after all of them)
    rank: ClassVar[int] = RANK_LAST

    #: deleting it deletes everything inside it (its processes, links, routes, rules):
    #: a whole teardown (netns_kit.lifecycle.teardown) stops what runs inside (:meth:`empty`),
    #: deletes it at once (:meth:`delete_whole`) and leaves out every resource whose
    #: :meth:`vanishes_with` says it goes along with :meth:`held_name`
    holds_others: ClassVar[bool] = False

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

    # -- what it declares to a topology ------------------------------------
    def interfaces(self) -> tuple[Interface, ...]:
        """The interfaces it makes, or puts addresses on (none by default)."""
        return ()

    def check_topology(self, topology: Whole) -> None:
        """Raise :class:`~netns_kit.errors.ValidationError` for what cannot work with the rest
        of ``topology`` (called by :meth:`Topology.check`, after its own checks). Nothing by default."""

    # -- fast teardown (netns_kit.lifecycle.teardown) -----------------------------------
    def held_name(self) -> str:
        """With :attr:`holds_others`: the name the resources inside it give as their place
        (a namespace's name), which :meth:`vanishes_with` is asked about."""
        raise NotImplementedError

    def delete_whole(self) -> list[Command]:
        """With :attr:`holds_others`: the commands deleting it with all inside it, idempotent."""
        raise NotImplementedError

    @classmethod
    def empty(cls, executor: Executor, holders: Sequence[Undoable]) -> None:
        """With :attr:`holds_others`: before a whole teardown deletes ``holders`` (resources of
        this class), stop what runs inside them, all at once. Nothing by default."""

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

    def undo_record(self, done: Sequence[Command]) -> list[Command] | None:
        """What another process runs later to undo ``done`` (the record a completed ``up``
        leaves: :mod:`netns_kit.ops.quickdown`): :meth:`undo_plan` without shared
        state, and changing none (sysctls are restored from their claims then); None
        when it must run itself. (The record makes each idempotent: ``missing_ok``.)"""
        if type(self).undo is not Resource.undo:
            return None
        return [u for c in reversed(done) for u in c.undo if u.program != "sysctl"]

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
        with sysctl.planning_undo():  # a plan looked at for its undo changes nothing (no sysctl set)
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
