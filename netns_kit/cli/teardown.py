"""``netns-kit down`` and ``netns-kit cleanup``: the undo, held against Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from netns_kit import signals
from netns_kit.cli import data
from netns_kit.cli.codes import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, Conflict
from netns_kit.cli.output import Removals
from netns_kit.cli.place import (
    CLI_OWNER_PREFIX,
    Place,
    elsewhere,
    forget,
    namesakes,
    needs_root,
    origin,
    owner_for,
    place,
)
from netns_kit.cli.records import lines
from netns_kit.errors import ValidationError
from netns_kit.ops import cleanup as opscleanup
from netns_kit.ops import inventory, quickdown
from netns_kit.owner import Owner
from netns_kit.topology.tomlread import head


def cmd_down(args: argparse.Namespace, out: TextIO) -> int:
    if args.all:
        if args.file is not None or args.name is not None:
            raise ValidationError("--all", True, "takes down every topology: give no FILE and no -p NAME with it")
        needs_root(args, "down")
        with held(), place(args, out=out) as here:
            return _down_all(args, here, out)
    if args.file is None and args.name is None:
        raise ValidationError("FILE", None, "down needs the FILE that `up` was given, -p NAME, or --all")
    loaded = None if args.file is None else head(args.file)  # the owner is all down needs
    owner = Owner(CLI_OWNER_PREFIX + args.name) if loaded is None else owner_for(loaded, args.name)
    needs_root(args, "down")
    what = args.name if loaded is None else loaded.name
    again = ("-p", args.name) if loaded is None else (args.file,)
    with held(), place(args, owner, out=out) as here:
        source = origin(here.executor, owner)
        if loaded is not None and source is not None and loaded.path is not None and source != str(loaded.path):
            raise Conflict(
                f"{loaded.name} (owner {owner.id}) is up {here.where} from {source}, not from {args.file} "
                f"(both are named {what!r}): {here.command('down', source)} takes it down"
            )
        found = inventory.scan(here.executor) if args.json else None
        report = _cleanup(here, out, owner=owner, again=here.command("down", *again), verbose=args.verbose, quick=True)
        if not report.errors:
            forget(here.executor, owner)
        if args.json:
            data.emit(
                args.stdout, "down", {"where": data.where(here), "topologies": [_gone(found, owner, source, report)]}
            )
        if not report.nothing_done:
            print(f"down: {what}: {len(report.removed)} removed {here.where}", file=out)
            return EXIT_FAILED if report.errors else EXIT_OK
        print(f"down: nothing to do: {what} (owner {owner.id}) is not up {here.where}", file=out)
        if loaded is not None:
            for line in namesakes(here, loaded, owner):
                print(f"down: note: {line}", file=out)
        hint = elsewhere(here, owner)
        if hint is not None:
            print(f"down: {hint}: {here.command('down', '--sandbox', *again)}", file=out)
            return EXIT_ENVIRONMENT
        return EXIT_OK


def _gone(
    found: inventory.Inventory | None, owner: Owner, source: str | None, report: opscleanup.CleanupReport
) -> dict[str, Any]:
    """One topology taken down, as data: what of it was there before (what was removed)."""
    removed = data.objects(found, [owner]) if found is not None else {}
    return {
        "owner": owner.id,
        "file": source,
        "removals": len(report.removed),
        **removed,
        "errors": report.errors,
    }


def _down_all(args: argparse.Namespace, here: Place, out: TextIO) -> int:
    """Every topology ``up`` made ``here`` (its owners ``cli.*``), listed, then (after a
    yes on a terminal) taken down one by one."""
    owners = sorted(
        {
            lf.owner
            for lf in inventory.read_ledgers(here.executor)
            if lf.standing and lf.owner.id.startswith(CLI_OWNER_PREFIX)
        },
        key=lambda o: o.id,
    )
    if not owners:
        print(f"down: nothing to do: no topology is up {here.where}", file=out)
        if args.json:
            data.emit(args.stdout, "down", {"where": data.where(here), "topologies": []})
        hint = elsewhere(here)
        if hint is not None:
            print(f"down: {hint}", file=out)
        return EXIT_OK
    sources = {owner: origin(here.executor, owner) for owner in owners}
    count = "1 topology is" if len(owners) == 1 else f"{len(owners)} topologies are"
    print(f"down --all: {count} up {here.where}:", file=out)
    for owner in owners:
        print(f"  {owner.id}" + (f"  from {sources[owner]}" if sources[owner] else ""), file=out)
    if not args.yes and sys.stdin.isatty() and not _confirmed(f"take {'it' if len(owners) == 1 else 'them all'} down?"):
        print("down: nothing done", file=out)
        return EXIT_OK
    found = inventory.scan(here.executor) if args.json else None
    taken, failed = [], False
    for owner in owners:
        report = _cleanup(here, out, owner=owner, again=here.command("down", "--all"), verbose=args.verbose, quick=True)
        failed = failed or bool(report.errors)
        if not report.errors:
            forget(here.executor, owner)
        taken.append(_gone(found, owner, sources[owner], report))
        print(f"down: {owner.id}: {len(report.removed)} removed {here.where}", file=out)
    if args.json:
        data.emit(args.stdout, "down", {"where": data.where(here), "topologies": taken})
    return EXIT_FAILED if failed else EXIT_OK


def _confirmed(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@contextlib.contextmanager
def held() -> Iterator[None]:
    """The whole of ``down`` and ``cleanup`` is an undo: one Ctrl-C (or SIGTERM) is held
    until it is done, its report printed, the origin record forgotten and an emptied
    sandbox holder stopped; then raised (exit 130). A second one is raised at once."""
    with signals.terminate_cleanly(), signals.shielded():
        yield


def _cleanup(
    here: Place, out: TextIO, *, again: str, verbose: bool, quick: bool = False, **options: Any
) -> opscleanup.CleanupReport:
    """Run :func:`netns_kit.cleanup` at ``here`` and print its report (to the end,
    whatever happens to the output). With ``quick`` (``down``), the teardown a completed
    ``up`` recorded, when it can be trusted (:mod:`netns_kit.ops.quickdown`). A Ctrl-C
    is held until the removal is complete; a second one stops it; either way ``again``
    is said, the command that finishes it."""
    try:
        with Removals(verbose=verbose) as removals:
            report = quickdown.down(here.executor, options["owner"], progress=removals) if quick else None
            if isinstance(report, str):
                if verbose:
                    print(f"down: proving what is left from tags ({report})", file=out)
                report = None
            elif report is not None and verbose:
                print("down: carried out the teardown `up` recorded", file=out)
            if report is None:
                report = opscleanup.cleanup(here.executor, progress=removals, **options)
    except opscleanup.CleanupInterrupted as error:
        lines(out, error.report.lines())
        print(
            f"netns-kit: stopped after {error.done} of {error.total} removals: `{again}` finishes it",
            file=sys.stderr,
        )
        raise
    except KeyboardInterrupt:
        print(f"netns-kit: interrupted; if anything is left, `{again}` finishes it", file=sys.stderr)
        raise
    lines(out, report.lines())
    return report


def cmd_cleanup(args: argparse.Namespace, out: TextIO) -> int:
    needs_root(args, "cleanup")
    guard = contextlib.nullcontext() if args.dry_run else held()  # a dry run undoes nothing: Ctrl-C stops it
    with guard:
        return _cleanup_command(args, out)


def _cleanup_command(args: argparse.Namespace, out: TextIO) -> int:
    with place(args, out=None if args.dry_run else out) as here:
        again = here.command("cleanup", *(("--owner", args.owner) if args.owner else ()))
        found = inventory.scan(here.executor) if args.json else None
        report = _cleanup(here, out, owner=args.owner, dry_run=args.dry_run, again=again, verbose=args.verbose)
        if not report.owners:
            print(f"cleanup: nothing to clean up {here.where} (no owner is gone)", file=out)
            hint = elsewhere(here)
            if hint is not None:
                print(f"cleanup: {hint}", file=out)
        else:
            owners = ", ".join(o.id for o in report.owners)
            verb = "would remove" if args.dry_run else "removed"
            print(f"cleanup: {verb} {len(report.removed)} objects of {owners} {here.where}", file=out)
        if args.owner is not None and not args.dry_run and not report.errors:
            forget(here.executor, Owner(args.owner))
        if args.json:
            assert found is not None
            data.emit(
                args.stdout,
                "cleanup",
                {
                    "where": data.where(here),
                    "dry_run": args.dry_run,
                    "owners": [o.id for o in report.owners],
                    "removals": len(report.removed),
                    **data.objects(found, report.owners),
                    "notes": report.kept,
                    "errors": report.errors,
                },
            )
    return EXIT_FAILED if report.errors else EXIT_OK
