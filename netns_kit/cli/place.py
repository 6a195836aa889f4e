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
import importlib
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

        # what the sandbox holds is read only here: on this machine, `down` does not load the inventory
        empty = importlib.import_module("netns_kit.ops.inventory").holds_nothing
        with holder.session(owner, start=start, on_stop=stopped, empty=empty) as sandbox:
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


def needs_root(args: argparse.Namespace, what: str) -> None:
    """On this machine (no ``--sandbox`` / ``--attach``) ``what`` needs root."""
    if not args.sandbox and args.attach is None and os.geteuid() != 0:
        raise SandboxError(f"{what} on this machine needs root; add --sandbox to work in a rootless sandbox instead")
