"""``netns-kit plan`` and ``netns-kit up``: what a topology file makes, printed or made."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any, TextIO

from netns_kit.cli import data, records
from netns_kit.cli.codes import EXIT_OK, Conflict, Unavailable
from netns_kit.cli.hints import clash, quiet
from netns_kit.cli.output import Progress
from netns_kit.cli.parser import PICTURE_FORMATS
from netns_kit.cli.place import (
    Place,
    down_command,
    forget,
    needs_root,
    origin,
    owner_for,
    place,
    remember,
)
from netns_kit.errors import AlreadyExistsError, ValidationError
from netns_kit.executors import binaries
from netns_kit.ops import cleanup as opscleanup
from netns_kit.ops import inventory, seal
from netns_kit.owner import Owner
from netns_kit.topology import picture
from netns_kit.topology import tomlfile as topofile


def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    loaded = topofile.load(args.file)
    if getattr(args, "firewall", None) is not None:
        loaded.topology.firewall = args.firewall
    if args.format != "sh" and args.down:
        raise ValidationError("--down", True, "only goes with --format sh (the picture has no direction)")
    if args.format in PICTURE_FORMATS:
        return _draw(loaded.topology, args.format, args.output, out)
    if args.format != "sh":
        draw = picture.mermaid if args.format == "mermaid" else picture.dot
        out.write(draw(loaded.topology))
        return EXIT_OK
    owner = owner_for(loaded, args.name)
    with quiet():
        recorder = loaded.topology.plan(owner=owner)
    if args.json:
        data.emit(
            args.stdout,
            "plan",
            {
                "name": loaded.name,
                "file": None if loaded.path is None else str(loaded.path),
                "owner": owner.id,
                "up": [data.command(c) for c in recorder.commands],
                "down": [data.command(c) for c in recorder.undo_commands()],
            },
        )
        return EXIT_OK
    out.write(recorder.teardown_script() if args.down else recorder.script())
    return EXIT_OK


def _draw(topology: Any, fmt: str, output: str | None, out: TextIO) -> int:
    """The picture drawn by Graphviz ``dot`` (the DOT text on its standard input)."""
    dot = binaries.which("dot")
    if dot is None:
        raise Unavailable(
            f"--format {fmt} needs Graphviz's dot, which is not installed (looked on PATH, then in "
            f"{', '.join(binaries.SYSTEM_DIRS)}): apt-get install graphviz (Debian/Ubuntu; or your "
            "distribution's package), or print the DOT text with --format dot"
        )
    argv = [dot, f"-T{fmt}", *(["-o", output] if output else [])]
    out.flush()
    target = None if output else out.fileno()
    done = subprocess.run(
        argv, input=picture.dot(topology).encode(), stdout=target, stderr=subprocess.PIPE, check=False
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace"))
        raise ValidationError("--format", fmt, f"dot failed with exit code {done.returncode}")
    return EXIT_OK


def cmd_up(args: argparse.Namespace, out: TextIO) -> int:
    loaded = topofile.load(args.file)
    owner = owner_for(loaded, args.name)
    needs_root(args, "up")
    if not loaded.topology.resources:
        print(f"up: {loaded.name}: nothing to do: {args.file} describes no resources", file=out)
        if args.json:
            data.emit(args.stdout, "up", _up_data(args, loaded, owner, None, changes=0, seconds=0.0))
        return EXIT_OK
    with place(args, owner, start=True, out=out) as here:
        return _up(args, loaded, owner, here, out)


def _up_data(
    args: Any, loaded: topofile.TopologyFile, owner: Owner, here: Place | None, *, changes: int, seconds: float
) -> dict[str, Any]:
    return {
        "name": loaded.name,
        "file": None if loaded.path is None else str(loaded.path),
        "owner": owner.id,
        "where": None if here is None else data.where(here),
        "changes": changes,
        "seconds": round(seconds, 3),
        "down": None if here is None or not changes else _down_command(here, args),
    }


def _down_command(here: Place, args: Any) -> str:
    return here.command("down", "-p", args.name) if args.name else here.command("down", args.file)


def _up(args: argparse.Namespace, loaded: topofile.TopologyFile, owner: Owner, here: Place, out: TextIO) -> int:
    if any(lf.owner == owner and lf.standing for lf in inventory.read_ledgers(here.executor)):
        if not records.gone(here, owner):
            raise Conflict(_already_up(here, loaded, owner, args))
        records.forget_gone(here, owner, out)
    topology = loaded.topology
    if getattr(args, "firewall", None) is not None:
        topology.firewall = args.firewall
    remember(here.executor, owner, loaded, args.name)
    try:
        topology.wait = topology.wait or args.wait
        total = None
        if Progress.visible(verbose=args.verbose):  # the total only for the line a terminal shows
            with quiet():
                total = len(topology.plan(owner=owner).commands)
        started = time.monotonic()
        with Progress(total, verbose=args.verbose) as progress:
            try:
                topology.up(here.executor)
            except AlreadyExistsError as error:
                taken = clash(here, loaded)
                if taken is None:
                    raise
                raise Conflict(f"{args.file}: {taken}") from error
        elapsed = time.monotonic() - started
        if topology.journal is not None:
            seal.seal(topology.journal)  # what `down` carries out, trusted while it is the last line
    except BaseException as error:
        if not getattr(error, "cleanup_errors", None):  # undone (Topology.up rolls back)
            forget(here.executor, owner)
        raise
    if progress.done == 0:  # everything was there already (adopted): nothing stays up
        opscleanup.cleanup(here.executor, owner=owner)  # its empty ledger
        forget(here.executor, owner)
        print(f"up: {loaded.name}: nothing to do {here.where}: everything it describes is there already", file=out)
    else:
        print(
            f"up: {loaded.name}: {progress.done} changes in {elapsed:.2f} s {here.where}, owner {owner.id}\n"
            f"take it down with: {_down_command(here, args)}",
            file=out,
        )
    if args.json:
        data.emit(args.stdout, "up", _up_data(args, loaded, owner, here, changes=progress.done, seconds=elapsed))
    return EXIT_OK


def _already_up(here: Place, loaded: topofile.TopologyFile, owner: Owner, args: Any) -> str:
    source = origin(here.executor, owner)
    if source is None or loaded.path is None or source == str(loaded.path):
        return (
            f"{loaded.name} is already up {here.where} (owner {owner.id}); "
            f"take it down first: {_down_command(here, args)}"
        )
    return (
        f"{loaded.name} is already up {here.where} from {source}, which has the same "
        f"{'project name' if args.name else '[topology] name'} (owner {owner.id}): give one of the two another "
        f"name, or take that one down first: {down_command(here, owner)}"
    )
