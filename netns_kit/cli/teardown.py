"""``netns-kit down --all``, ``down --json``, a ``down`` that proves what is left, and
``netns-kit cleanup``: the undo, held against Ctrl-C (:func:`netns_kit.cli.down.held`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any, TextIO

from netns_kit.cli import data
from netns_kit.cli.codes import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK
from netns_kit.cli.down import Target, finished, held, same_origin, target
from netns_kit.cli.down import quick as quick_down
from netns_kit.cli.hints import elsewhere, namesakes
from netns_kit.cli.output import Removals, lines
from netns_kit.cli.place import CLI_OWNER_PREFIX, Place, forget, needs_root, origin, place
from netns_kit.errors import ValidationError
from netns_kit.ops import cleanup as opscleanup
from netns_kit.ops import inventory
from netns_kit.owner import Owner


def cmd_down(args: argparse.Namespace, out: TextIO) -> int:
    """``down --all``, ``down --json``; the rest of ``down`` is :mod:`netns_kit.cli.down`'s."""
    if args.all:
        if args.file is not None or args.name is not None:
            raise ValidationError("--all", True, "takes down every topology: give no FILE and no -p NAME with it")
        needs_root(args, "down")
        with held(), place(args, out=out) as here:
            return _down_all(args, here, out)
    down = target(args)
    needs_root(args, "down")
    with held(), place(args, down.owner, out=out) as here:
        return down_here(args, here, out, down, same_origin(here, down), quick=True)


def down_here(
    args: argparse.Namespace, here: Place, out: TextIO, down: Target, source: str | None, *, quick: bool
) -> int:
    """Take ``down``'s topology down ``here`` (the teardown ``up`` recorded first, with
    ``quick``); say so, or that it is not up and where it may be instead."""
    owner = down.owner
    found = inventory.scan(here.executor) if args.json else None
    report = _cleanup(
        here, out, owner=owner, again=here.command("down", *down.again), verbose=args.verbose, quick=quick
    )
    if args.json:
        data.emit(args.stdout, "down", {"where": data.where(here), "topologies": [_gone(found, owner, source, report)]})
    if not report.nothing_done:
        return finished(here, out, down, report)  # which forgets the origin record
    if not report.errors:
        forget(here.executor, owner)  # the record of a topology that is not up goes too
    print(f"down: nothing to do: {down.what} (owner {owner.id}) is not up {here.where}", file=out)
    if down.loaded is not None:
        for line in namesakes(here, down.loaded, owner):
            print(f"down: note: {line}", file=out)
    hint = elsewhere(here, owner)
    if hint is not None:
        print(f"down: {hint}: {here.command('down', '--sandbox', *down.again)}", file=out)
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


def _cleanup(
    here: Place, out: TextIO, *, again: str, verbose: bool, quick: bool = False, **options: Any
) -> opscleanup.CleanupReport:
    """Run :func:`netns_kit.cleanup` at ``here`` and print its report (to the end,
    whatever happens to the output). With ``quick`` (``down``), the teardown a completed
    ``up`` recorded first (:func:`netns_kit.cli.down.quick`). A Ctrl-C is held until the
    removal is complete; a second one stops it; either way ``again`` is said, the
    command that finishes it."""
    report = quick_down(here, out, options["owner"], again=again, verbose=verbose) if quick else None
    if report is not None:
        return report
    try:
        with Removals(verbose=verbose) as removals:
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
