"""What ``netns-kit up`` leaves for ``down``: the whole teardown of the topology it
completed, sealed last into its ledger (:func:`seal`). ``down`` carries it out:
:mod:`netns_kit.ops.quickdown`, which says when it is trusted."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from netns_kit.command import Command
from netns_kit.firewall import nftread
from netns_kit.lifecycle import teardown
from netns_kit.lifecycle.undoable import Undoing, Unit
from netns_kit.resources.namespace import Namespace

log = logging.getLogger("netns_kit")


def seal(journal: Undoing) -> bool:
    """Write the whole teardown of ``journal`` (an ``up`` that completed) last into its
    ledger; False when it cannot be planned without running anything (then ``down``
    takes the full cleanup's way)."""
    executor, record = journal.executor, journal.ledger
    if record is None or executor.dry_run:
        return False
    planned = teardown.plan(journal.units, lambda resource, done: resource.undo_record(done))
    if planned is None:
        return False
    doomed, whole = planned
    if not all(type(holder) is Namespace for holder in doomed):
        return False
    sealed = {
        "holders": list(whole.holders),
        "quiet": _json(whole.quiet),
        "undo": [{**command.to_json(), "missing_ok": True} for command in whole.undo],  # idempotent
        "delete": _json(whole.delete),
        "left": [list(device) for device in whole.left],
        "appended": [[netns, list(argv)] for netns, argv in sorted(whole.appended, key=repr)],
        "removed": _removed(journal.units, frozenset(whole.holders)),
    }
    try:
        record.seal(sealed)
    except OSError as error:  # down proves it all then
        log.debug("the ledger of %s not sealed: %s", executor.owner.id, error)
        return False
    return True


def _json(commands: Sequence[Command]) -> list[dict[str, Any]]:
    return [command.to_json() for command in commands]


def _removed(units: Sequence[Unit], holders: frozenset[str]) -> list[str]:
    """What the teardown removes, as the cleanup report says it."""
    said: list[str] = []
    for unit in units:
        resource = unit.resource
        if resource.holds_others and unit.done:
            said.append(f"namespace {resource.held_name()}")
        elif unit.done and resource.vanishes_with(holders) is None:
            said += [_said(command) for command, _ in unit.done if command.undo and command.program != "sysctl"]
    return said


def _said(command: Command) -> str:
    """What ``command`` made, as the report says it (an nft transaction by what it adds)."""
    where = "in the host" if command.netns is None else f"in {command.netns}"
    return nftread.describe(command) or " ".join(word for word in command.argv if word != "-w") + f" ({where})"
