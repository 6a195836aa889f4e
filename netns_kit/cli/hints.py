"""What ``netns-kit`` says when a command finds nothing, or a name taken: where the
topology may be instead (the ``--sandbox`` holder, a file moved, an older owner
name), and who holds a name (:func:`clash`). Each reads the inventory
(:mod:`netns_kit.ops.inventory`), which :mod:`~netns_kit.cli.place` does not load:
a ``down`` that finds what it takes down never reads these."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from netns_kit.cli.place import CLI_OWNER_PREFIX, Place, down_command, origin, project
from netns_kit.executors import holder
from netns_kit.lifecycle.ledger import created_by
from netns_kit.ops import inventory
from netns_kit.owner import Owner

if TYPE_CHECKING:
    from netns_kit.topology.tomlfile import TopologyFile, TopologyHead

log = logging.getLogger("netns_kit")


def elsewhere(here: Place, owner: Owner | None = None) -> str | None:
    """When ``here`` is this machine and the ``--sandbox`` holder holds something (or
    ``owner``'s objects), the sentence that says so and how to reach it; else None."""
    if here.option:
        return None
    sandbox = holder.find()
    if sandbox is None:
        return None
    # the ledgers first (files: no process); the whole scan only when they do not tell
    owners = sorted({lf.owner for lf in inventory.read_ledgers(sandbox) if lf.standing}, key=lambda o: o.id)
    if not owners or (owner is not None and owner not in owners):
        owners = inventory.scan(sandbox, firewall=False).owners()
    if owner is not None:
        if owner not in owners:
            return None
        return f"{owner.id} is up in sandbox holder {sandbox.pid}: add --sandbox to reach it"
    if not owners:
        return None
    ids = ", ".join(o.id for o in owners)
    return f"the sandbox (holder {sandbox.pid}) holds {ids}: add --sandbox to reach it (netns-kit status --sandbox)"


def namesakes(here: Place, loaded: TopologyFile | TopologyHead, owner: Owner) -> list[str]:
    """Other CLI owners up ``here`` that may be what ``down FILE`` was meant for: one up
    from a file of the same name that is gone (moved, renamed directory), or one named
    ``cli.NAME`` by an older netns_kit (before owners named the file). One line each,
    with the command that removes it."""
    if loaded.path is None:
        return []
    found: list[str] = []
    standing = sorted({lf.owner for lf in inventory.read_ledgers(here.executor) if lf.standing}, key=lambda o: o.id)
    for other in standing:
        if other == owner or not other.id.startswith(CLI_OWNER_PREFIX):
            continue
        remove = here.command("cleanup", "--owner", other.id)
        source = origin(here.executor, other)
        if source is None and other.id == CLI_OWNER_PREFIX + loaded.name and not loaded.named:
            found.append(f"{other.id} (a file named {loaded.name}, up before owners named the file) is up: {remove}")
        elif source is not None and Path(source).name == loaded.path.name and not Path(source).exists():
            found.append(f"{other.id} is up from {source}, which is gone: if that was this file: {remove}")
        elif source == str(loaded.path) and project(here.executor, other) is not None:
            found.append(f"{other.id} is up from this file as a project: {down_command(here, other)}")
    return found


def clash(here: Place, loaded: TopologyFile) -> str | None:
    """After ``up`` failed on a name that is taken: which of the file's names are taken,
    by whom (the file it came from), and what to do; None when none is."""
    with quiet():
        planned = loaded.topology.plan().commands
    adopting = {getattr(r, "name", None) for r in loaded.topology.resources if getattr(r, "adopt", False)}
    found = inventory.scan(here.executor, firewall=False)
    taken: dict[str, list[str]] = {}  # why -> what (grouped: one line per owner)
    for made in (obj for command in planned for obj in created_by(command)):
        if isinstance(made, str):
            if made in found.namespaces and made not in adopting:
                taken.setdefault(_why(here, found.namespaces[made]), []).append(f"namespace {made}")
        else:
            link = found.link(*made)
            if link is not None and made[0] not in adopting:
                taken.setdefault(_why(here, link.alias), []).append(str(link))
    if not taken:
        return None
    return "names taken already:\n  " + "\n  ".join(f"{', '.join(what)}: {why}" for why, what in taken.items())


def _why(here: Place, alias: str | None) -> str:
    """Who holds an object carrying ``alias``, and what to do about it."""
    other = Owner.from_tag(alias) if alias else None
    if other is None:
        return "not made by netns_kit: rename yours, delete it, or set adopt = true to use it"
    if other.pid is not None:
        if other.is_alive():
            return f"made by running process {other.pid} (owner {other.id})"
        return f"left by process {other.pid}, which is gone: {here.command('cleanup')} removes it"
    source = origin(here.executor, other)
    if source is not None:
        return f"up from {source} (owner {other.id}): take it down first: {down_command(here, other)}"
    return f"owner {other.id}: remove it with {here.command('cleanup', '--owner', other.id)}"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No ``netns_kit`` log lines (a dry-run pass is not what --verbose shows)."""
    disabled, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = disabled
