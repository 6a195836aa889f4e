"""Where a ``netns-kit`` command works, and whose objects it acts on.

**Where** (:func:`place`): in the sandbox held by ``--attach PID``; in the
sandbox ``--sandbox`` keeps between commands (:mod:`netns_kit.executors.holder`); else
on this machine. A :class:`Place` carries the executor, the words that say
where ("in sandbox holder 4242") and the option that reaches it again, for
the commands a message suggests.

**Which owner** (:func:`owner_for`): what ``netns-kit up FILE`` makes outlives
the command, so it belongs to a named owner that identifies the file:
``cli.NAME`` when the file sets ``[topology] name`` (a name chosen on purpose,
as Compose's ``-p``: two files that set the same name are one project),
else ``cli.STEM-HASH``, STEM the file's name without ``.toml`` and HASH the
first 8 hex digits of the SHA-256 of its resolved path: ``p1/net.toml`` and
``p2/net.toml`` are two owners.

**Origins**: ``up`` records which file an owner came from, next to the
ledgers of the place (``OWNER.origin.json``), so that a clash, ``status``
and ``down`` can name the file; ``down`` and ``cleanup --owner`` drop it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import attrs

from netns_kit.errors import SandboxError
from netns_kit.executors import holder
from netns_kit.executors.base import Executor
from netns_kit.executors.local import ShExecutor
from netns_kit.executors.sandbox import Sandbox
from netns_kit.lifecycle.ledger import created_by
from netns_kit.ops import inventory
from netns_kit.owner import Owner

if TYPE_CHECKING:
    from netns_kit.topology.tomlfile import TopologyFile, TopologyHead

log = logging.getLogger("netns_kit")

CLI_OWNER_PREFIX = "cli."
#: hex digits of the path's hash in an owner id
HASH_DIGITS = 8
ORIGIN_SUFFIX = ".origin.json"
_ID_MAX = 64  # netns_kit.owner: ids are 1-64 characters


def owner_for(loaded: TopologyFile | TopologyHead, name: str | None = None) -> Owner:
    """The named owner of what ``netns-kit up`` makes from ``loaded``.

    ``name`` (chosen on the command line) or the file's ``[topology] name``
    give ``cli.NAME``; else the owner is ``cli.STEM-HASH`` (see the module doc).
    The one place an owner id is derived: ``up`` (the whole file) and ``down``
    (only its head, :func:`netns_kit.topology.tomlfile.head`) cannot disagree.
    """
    if name is None and loaded.named:
        name = loaded.name
    if name is not None or loaded.path is None:
        return Owner(CLI_OWNER_PREFIX + (name or loaded.name))
    digest = hashlib.sha256(os.fsencode(loaded.path)).hexdigest()[:HASH_DIGITS]
    stem = loaded.name[: _ID_MAX - len(CLI_OWNER_PREFIX) - 1 - HASH_DIGITS]
    return Owner(f"{CLI_OWNER_PREFIX}{stem}-{digest}")


# -- where ------------------------------------------------------------------------
@attrs.frozen
class Place:
    """Where a command works."""

    executor: Executor
    #: "on this machine", "in sandbox holder 4242"
    where: str
    #: the option that reaches this place again: "", "--sandbox", "--attach 4242"
    option: str = ""
    #: the sandbox holder's process id (None: this machine)
    holder_pid: int | None = None

    def command(self, *words: str) -> str:
        """``netns-kit WORDS...`` with the option that reaches this place."""
        head = ["netns-kit", words[0], *self.option.split()]
        return shlex.join(head) + "".join(" " + shlex.quote(w) for w in words[1:])


@contextlib.contextmanager
def place(
    args: argparse.Namespace, owner: Owner | None = None, *, start: bool = False, out: TextIO | None = None
) -> Iterator[Place]:
    """Where ``args`` say the command works, for the length of the command.

    With ``--sandbox``, the recorded holder (``start``: started when none runs) is
    used inside :func:`netns_kit.executors.holder.session`: however the command ends (done,
    failed, interrupted, made nothing), the holder is stopped once it holds nothing,
    which is said on ``out``.
    """
    if args.sandbox:

        def stopped(pid: int) -> None:
            if out is not None:
                print(f"sandbox holder {pid} stopped: it holds nothing any more", file=out)

        with holder.session(owner, start=start, on_stop=stopped, empty=inventory.holds_nothing) as sandbox:
            yield Place(sandbox, f"in sandbox holder {sandbox.pid}", "--sandbox", sandbox.pid)
        return
    executor = open_executor(args, owner)
    if args.attach is not None:
        yield Place(executor, f"in sandbox holder {args.attach}", f"--attach {args.attach}", args.attach)
    else:
        yield Place(executor, "on this machine")


def open_executor(args: argparse.Namespace, owner: Owner | None) -> Executor:
    """The executor of ``--attach PID``, or of this machine."""
    if args.attach is not None:
        sandbox = Sandbox.attach(args.attach)
        if owner is not None:
            sandbox.owner = owner
        return sandbox
    return ShExecutor(owner=owner)


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


# -- origins ----------------------------------------------------------------------
def _origin_path(executor: Executor, owner: Owner) -> Path | None:
    directory = executor.ledger_dir
    return None if directory is None or executor.dry_run else directory / f"{owner.id}{ORIGIN_SUFFIX}"


def remember(executor: Executor, owner: Owner, loaded: TopologyFile, project: str | None = None) -> None:
    """Record that ``owner``'s objects come from ``loaded``'s file (before they are made),
    and the ``-p`` project name it was given, if any."""
    path = _origin_path(executor, owner)
    if path is None or loaded.path is None:
        return
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    record = {"owner": owner.id, "file": str(loaded.path), "name": loaded.name, "project": project}
    tmp.write_text(json.dumps(record) + "\n")
    tmp.replace(path)


def _record(executor: Executor, owner: Owner) -> dict[str, object] | None:
    path = _origin_path(executor, owner)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # none, or damaged: the file is then just not named
    if not isinstance(data, dict) or data.get("owner") != owner.id or not isinstance(data.get("file"), str):
        return None
    return data


def origin(executor: Executor, owner: Owner) -> str | None:
    """The file ``owner``'s objects came from, if ``up`` recorded it here."""
    data = _record(executor, owner)
    return None if data is None else str(data["file"])


def project(executor: Executor, owner: Owner) -> str | None:
    """The ``-p`` name ``owner`` was brought up with, if ``up`` recorded one here."""
    data = _record(executor, owner)
    name = None if data is None else data.get("project")
    return name if isinstance(name, str) else None


def down_command(here: Place, owner: Owner) -> str | None:
    """The command that takes ``owner`` down: ``down -p NAME`` for a project name, ``down
    FILE`` for a file; None when ``up`` recorded neither here."""
    name = project(here.executor, owner)
    if name is not None:
        return here.command("down", "-p", name)
    source = origin(here.executor, owner)
    return None if source is None else here.command("down", source)


def forget(executor: Executor, owner: Owner) -> None:
    path = _origin_path(executor, owner)
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


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


# -- clashes ----------------------------------------------------------------------
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


def needs_root(args: argparse.Namespace, what: str) -> None:
    """On this machine (no ``--sandbox`` / ``--attach``) ``what`` needs root."""
    if not args.sandbox and args.attach is None and os.geteuid() != 0:
        raise SandboxError(f"{what} on this machine needs root; add --sandbox to work in a rootless sandbox instead")
