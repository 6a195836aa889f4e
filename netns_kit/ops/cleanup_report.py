"""What :func:`netns_kit.cleanup` reports, and the steps its plan is made of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from netns_kit.command import Command
from netns_kit.firewall import nftread
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


def said(commands: list[Command]) -> str:
    """``commands`` for a report: each its shell line, but an ``nft -f -`` transaction what it
    removes (``nft table inet netns_kit_42.7 (in red)``), not ``nft -f -``."""
    return "; ".join(nftread.describe(c) or c.line for c in commands)


@attrs.define
class Step:
    what: str
    run: Callable[[], Any]
    owner: Owner
    #: the commands ``run`` runs, when that is all it does: run with others in few processes
    commands: list[Command] = attrs.field(factory=list)


class Keep(Exception):
    """A step that found it must leave the object alone (with the reason)."""
