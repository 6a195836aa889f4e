"""What :func:`netns_kit.cleanup` reports, and the steps its plan is made of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from netns_kit.command import Command
from netns_kit.owner import Owner


@attrs.define
class CleanupReport:
    """What :func:`cleanup` removed, what it left alone and why, and what failed."""

    owners: list[Owner] = attrs.field(factory=list)
    removed: list[str] = attrs.field(factory=list)
    kept: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)
    dry_run: bool = False

    @property
    def nothing_done(self) -> bool:
        return not self.removed and not self.errors

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        out = [f"{verb}: {what}" for what in self.removed]
        out += [f"left alone: {what}" for what in self.kept]
        out += [f"FAILED: {what}" for what in self.errors]
        return out


@attrs.define
class Step:
    what: str
    run: Callable[[], Any]
    owner: Owner
    #: the commands ``run`` runs, when that is all it does: run with others in few processes
    commands: list[Command] = attrs.field(factory=list)


class CleanupInterrupted(KeyboardInterrupt):
    """A second Ctrl-C forced :func:`cleanup` out before it was done.

    ``report`` says what was removed; ``done`` of ``total`` steps were carried
    out. Running the cleanup again finishes it (what is gone is not looked for).
    """

    def __init__(self, report: CleanupReport, done: int, total: int) -> None:
        super().__init__(f"interrupted after {done} of {total} removals: run the cleanup again to finish it")
        self.report = report
        self.done = done
        self.total = total


class Keep(Exception):
    """A step that found it must leave the object alone (with the reason)."""
