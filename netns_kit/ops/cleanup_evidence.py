"""What a dead owner's ledger proves: which entries took effect, what a tagging
command marked (for :mod:`netns_kit.ops.cleanup`)."""

from __future__ import annotations

from typing import Any

from netns_kit import shape
from netns_kit.command import Command
from netns_kit.ops import inventory as inv
from netns_kit.owner import Owner

TAKEN = ("ok",)
MAYBE = ("in-flight",)


def taken_entries(lf: inv.LedgerFile, scan: inv.Inventory) -> set[int]:
    """Entries that took effect: marked ok, or in flight and seen to have taken effect.

    No order is assumed between entries: a batching executor runs the commands of
    different namespaces side by side, so an entry in flight before one that took
    effect may not have run (its step is marked ok as soon as it is done).
    """
    return {e.seq for e in lf.entries if e.state in TAKEN or (e.state in MAYBE and seen(e.command, lf.owner, scan))}


def seen(command: Command, owner: Owner, scan: inv.Inventory) -> bool:
    """True when ``command`` (a tagging command) is seen to have taken effect."""
    target = tagging_target(command, owner)
    if target is None:
        return False
    name, netns = target
    if name == "lo":
        return netns is not None and scan.namespaces.get(netns) == owner.tag
    link = scan.link(name, netns)
    return link is not None and link.alias == owner.tag


def tagging_target(command: Command, owner: Owner) -> tuple[str, str | None] | None:
    ip = shape.ip(command.argv)
    if ip is None or (ip.object, ip.verb) != ("link", "set") or ip.options or ip.args[:1] != ("dev",):
        return None
    if "alias" in ip.args and owner.tag in ip.args and ip.device is not None:
        return ip.device, command.netns
    return None


def tag_key(target: tuple[str, str | None]) -> Any:
    """The object a tagging command marks: a namespace name for ``lo``, else (link, netns)."""
    name, netns = target
    return netns if name == "lo" else target
