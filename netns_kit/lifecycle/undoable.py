"""What the journal and the fast teardown need of a resource, and of a journal.

Both are written against these protocols, not against
:class:`~netns_kit.lifecycle.resource.Resource` (which applies itself through a
:class:`~netns_kit.lifecycle.journal.Journal`): so the lifecycle's modules import
one another in one direction only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

import attrs

from netns_kit.command import Command
from netns_kit.executors.base import Executor
from netns_kit.lifecycle.ledger import Ledger


class Undoable(Protocol):
    """A resource as the journal applies it and the teardown undoes it."""

    holds_others: ClassVar[bool]

    def plan(self, executor: Executor) -> list[Command]: ...

    def undo(self, executor: Executor, done: Sequence[Command], *, complete: bool) -> None: ...

    def undo_plan(self, done: Sequence[Command]) -> list[Command] | None: ...

    def undo_record(self, done: Sequence[Command]) -> list[Command] | None: ...

    def quiet_plan(self, done: Sequence[Command]) -> list[Command]: ...

    def vanishes_with(self, doomed: frozenset[str]) -> tuple[tuple[str | None, str], ...] | None: ...

    def held_name(self) -> str: ...

    def delete_whole(self) -> list[Command]: ...

    @classmethod
    def empty(cls, executor: Executor, holders: Sequence[Undoable]) -> None: ...


@attrs.define
class Unit:
    """What one resource did: the commands that took effect, in order (with their ledger numbers)."""

    resource: Undoable
    done: list[tuple[Command, int]] = attrs.field(factory=list)
    complete: bool = False


class Undoing(Protocol):
    """A journal as the fast teardown undoes it."""

    @property
    def executor(self) -> Executor: ...

    @property
    def units(self) -> list[Unit]: ...

    @property
    def ledger(self) -> Ledger | None: ...
