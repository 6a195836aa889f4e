"""``netns-kit down FILE`` (or ``-p NAME``): one topology taken down, held against Ctrl-C.

A topology whose ``up`` completed is taken down by the teardown ``up`` sealed in
its ledger (:mod:`netns_kit.ops.quickdown`, which says when that is trusted), and
this module imports no more than that needs: not the inventory, the full cleanup,
the JSON documents or the hints of a ``down`` that finds nothing (W(200): 60 ms
of imports fewer). Everything else (``--all``, ``--json``, a topology that is not
up, a record that cannot be trusted) is :mod:`netns_kit.cli.teardown`'s, loaded
only then, as :mod:`netns_kit.cli.commands` loads only the module of a command.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import TextIO

import attrs

from netns_kit import signals
from netns_kit.cli.codes import EXIT_FAILED, EXIT_OK, Conflict
from netns_kit.cli.output import Removals, lines
from netns_kit.cli.place import CLI_OWNER_PREFIX, Place, forget, needs_root, origin, owner_for, place
from netns_kit.errors import ValidationError
from netns_kit.ops import quickdown
from netns_kit.ops.cleanup_report import CleanupReport
from netns_kit.owner import Owner
from netns_kit.topology.tomlread import TopologyHead, head


@attrs.frozen
class Target:
    """The topology a ``down`` is for."""

    owner: Owner
    #: its name, as messages say it
    what: str
    #: the words after ``down`` that name it again (``FILE``, or ``-p NAME``)
    again: tuple[str, ...]
    #: the file's head (None for ``-p NAME`` alone)
    loaded: TopologyHead | None = None


def target(args: argparse.Namespace) -> Target:
    """What ``down FILE`` / ``down -p NAME`` is for: the file's owner, read from its
    ``[topology]`` table alone (:func:`~netns_kit.topology.tomlread.head`)."""
    if args.file is None and args.name is None:
        raise ValidationError("FILE", None, "down needs the FILE that `up` was given, -p NAME, or --all")
    if args.file is None:
        return Target(Owner(CLI_OWNER_PREFIX + args.name), args.name, ("-p", args.name))
    loaded = head(args.file)
    return Target(owner_for(loaded, args.name), loaded.name, (args.file,), loaded)


def cmd_down(args: argparse.Namespace, out: TextIO) -> int:
    if args.all or args.json:
        return int(_teardown().cmd_down(args, out))
    down = target(args)
    needs_root(args, "down")
    with held(), place(args, down.owner, out=out) as here:
        source = same_origin(here, down)
        report = quick(here, out, down.owner, again=here.command("down", *down.again), verbose=args.verbose)
        if report is None:  # not up, or its record is not to be trusted: prove what is left
            return int(_teardown().down_here(args, here, out, down, source, quick=False))
        return finished(here, out, down, report)


def _teardown() -> ModuleType:
    """:mod:`netns_kit.cli.teardown`, loaded now."""
    return importlib.import_module("netns_kit.cli.teardown")


def same_origin(here: Place, down: Target) -> str | None:
    """The file ``down``'s owner is up from ``here``; a :class:`Conflict` when that is
    another file than the one given (both named alike)."""
    source = origin(here.executor, down.owner)
    loaded = down.loaded
    if loaded is not None and source is not None and loaded.path is not None and source != str(loaded.path):
        raise Conflict(
            f"{loaded.name} (owner {down.owner.id}) is up {here.where} from {source}, not from {loaded.source} "
            f"(both are named {down.what!r}): {here.command('down', source)} takes it down"
        )
    return source


def quick(here: Place, out: TextIO, owner: Owner, *, again: str, verbose: bool) -> CleanupReport | None:
    """``owner`` taken down by the teardown its ``up`` recorded, its report printed; None
    when that cannot be trusted (said with ``verbose``: the full cleanup goes on)."""
    try:
        with Removals(verbose=verbose) as removals:
            report = quickdown.down(here.executor, owner, progress=removals)
    except KeyboardInterrupt:
        print(f"netns-kit: interrupted; if anything is left, `{again}` finishes it", file=sys.stderr)
        raise
    if isinstance(report, str):
        if verbose:
            print(f"down: proving what is left from tags ({report})", file=out)
        return None
    if verbose:
        print("down: carried out the teardown `up` recorded", file=out)
    lines(out, report.lines())
    return report


def finished(here: Place, out: TextIO, down: Target, report: CleanupReport) -> int:
    """After a ``down`` that removed something: the origin record dropped, the count said."""
    if not report.errors:
        forget(here.executor, down.owner)
    print(f"down: {down.what}: {len(report.removed)} removed {here.where}", file=out)
    return EXIT_FAILED if report.errors else EXIT_OK


@contextlib.contextmanager
def held() -> Iterator[None]:
    """The whole of ``down`` and ``cleanup`` is an undo: one Ctrl-C (or SIGTERM) is held
    until it is done, its report printed, the origin record forgotten and an emptied
    sandbox holder stopped; then raised (exit 130). A second one is raised at once."""
    with signals.terminate_cleanly(), signals.shielded():
        yield
