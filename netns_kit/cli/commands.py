"""The commands of ``netns-kit``: each takes the parsed arguments and the output stream
and returns the exit code (errors are raised, and mapped to codes by :func:`netns_kit.cli.main`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from netns_kit.cli import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, Conflict
from netns_kit.cli.output import Progress, Removals
from netns_kit.cli.place import (
    Place,
    clash,
    elsewhere,
    forget,
    namesakes,
    origin,
    owner_for,
    place,
    quiet,
    remember,
)
from netns_kit.errors import AlreadyExistsError, SandboxError, ValidationError
from netns_kit.owner import Owner

if TYPE_CHECKING:
    from netns_kit.ops.cleanup import CleanupReport
    from netns_kit.ops.inventory import Inventory
    from netns_kit.topology.tomlfile import TopologyFile


def _needs_root(args: argparse.Namespace, what: str) -> None:
    if not args.sandbox and args.attach is None and os.geteuid() != 0:
        raise SandboxError(f"{what} on this machine needs root; add --sandbox to work in a rootless sandbox instead")


# -- commands ----------------------------------------------------------------------
def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    from netns_kit.topology import picture
    from netns_kit.topology import tomlfile as topofile

    loaded = topofile.load(args.file)
    if args.format != "sh":
        if args.down:
            raise ValidationError("--down", True, "only goes with --format sh (the picture has no direction)")
        draw = picture.mermaid if args.format == "mermaid" else picture.dot
        out.write(draw(loaded.topology))
        return EXIT_OK
    with quiet():
        recorder = loaded.topology.plan(owner=owner_for(loaded))
    out.write(recorder.teardown_script() if args.down else recorder.script())
    return EXIT_OK


def cmd_up(args: argparse.Namespace, out: TextIO) -> int:
    from netns_kit.topology import tomlfile as topofile

    loaded = topofile.load(args.file)
    owner = owner_for(loaded)
    _needs_root(args, "up")
    if not loaded.topology.resources:
        print(f"up: {loaded.name}: nothing to do: {args.file} describes no resources", file=out)
        return EXIT_OK
    with place(args, owner, start=True, out=out) as here:
        return _up(args, loaded, owner, here, out)


def _up(args: argparse.Namespace, loaded: TopologyFile, owner: Owner, here: Place, out: TextIO) -> int:
    from netns_kit.ops import inventory

    if any(lf.owner == owner and lf.standing for lf in inventory.read_ledgers(here.executor)):
        if not _gone(here, owner):
            raise Conflict(_already_up(here, loaded, owner, args.file))
        _forget_gone(here, owner, out)
    topology = loaded.topology
    remember(here.executor, owner, loaded)
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
    except BaseException as error:
        if not getattr(error, "cleanup_errors", None):  # undone (Topology.up rolls back)
            forget(here.executor, owner)
        raise
    if progress.done == 0:  # everything was there already (adopted): nothing stays up
        from netns_kit.ops.cleanup import cleanup

        cleanup(here.executor, owner=owner)  # its empty ledger
        forget(here.executor, owner)
        print(f"up: {loaded.name}: nothing to do {here.where}: everything it describes is there already", file=out)
        return EXIT_OK
    print(
        f"up: {loaded.name}: {progress.done} changes in {elapsed:.2f} s {here.where}, owner {owner.id}\n"
        f"take it down with: {here.command('down', args.file)}",
        file=out,
    )
    return EXIT_OK


def _gone(here: Place, owner: Owner, found: Inventory | None = None) -> bool:
    """Whether ``owner``'s ledgers say it is up ``here`` while nothing of it is: what they
    record making carries its tag (a namespace, a link, a rule), and no such object nor
    a claim on a shared switch of it is left. So it was taken down without netns-kit
    (the printed teardown, ``netns-kit plan --down FILE | sh``, or by hand). A ledger
    that made nothing tagged proves nothing either way: it is not called gone."""
    from netns_kit.lifecycle import sysctl
    from netns_kit.lifecycle.ledger import created_by
    from netns_kit.ops import inventory

    if found is None:
        found = inventory.scan(here.executor)
    tag = owner.tag
    standing = [e.command for lf in found.ledgers if lf.owner == owner for e in lf.standing]
    if not any(created_by(command) or tag in command.argv for command in standing):
        return False
    if any(alias == tag for alias in found.namespaces.values()):
        return False
    if any(link.alias == tag for link in found.links) or any(rule.comment == tag for rule in found.rules):
        return False
    return not sysctl.leftovers(here.executor, owner)


def _forget_gone(here: Place, owner: Owner, out: TextIO) -> None:
    """Drop the records of ``owner``, gone (:func:`_gone`), before it is brought up again."""
    from netns_kit.ops.cleanup import cleanup

    report = cleanup(here.executor, owner=owner)  # its ledgers; what else they still prove is there
    forget(here.executor, owner)
    print(
        f"up: note: {owner.id} was recorded as up {here.where}, but nothing of it is there any more "
        "(taken down without netns-kit, e.g. by the printed teardown): its records are dropped",
        file=out,
    )
    _lines(out, report.lines())


def _already_up(here: Place, loaded: TopologyFile, owner: Owner, file: str) -> str:
    source = origin(here.executor, owner)
    if source is None or loaded.path is None or source == str(loaded.path):
        return (
            f"{loaded.name} is already up {here.where} (owner {owner.id}); "
            f"take it down first: {here.command('down', file)}"
        )
    return (
        f"{loaded.name} is already up {here.where} from {source}, which has the same [topology] name "
        f"(owner {owner.id}): give one of the two files another name, or take that one down first: "
        f"{here.command('down', source)}"
    )


def cmd_down(args: argparse.Namespace, out: TextIO) -> int:
    from netns_kit.topology import tomlfile as topofile

    loaded = topofile.head(args.file)  # the owner is all down needs: nothing is built
    owner = owner_for(loaded)
    _needs_root(args, "down")
    with _held(), place(args, owner, out=out) as here:
        source = origin(here.executor, owner)
        if source is not None and loaded.path is not None and source != str(loaded.path):
            raise Conflict(
                f"{loaded.name} (owner {owner.id}) is up {here.where} from {source}, not from {args.file} "
                f"(both set [topology] name = {loaded.name!r}): {here.command('down', source)} takes it down"
            )
        report = _cleanup(here, out, owner=owner, again=here.command("down", args.file), verbose=args.verbose)
        if not report.errors:
            forget(here.executor, owner)
        if not report.nothing_done:
            print(f"down: {loaded.name}: {len(report.removed)} removed {here.where}", file=out)
            return EXIT_FAILED if report.errors else EXIT_OK
        print(f"down: nothing to do: {loaded.name} (owner {owner.id}) is not up {here.where}", file=out)
        for line in namesakes(here, loaded, owner):
            print(f"down: note: {line}", file=out)
        hint = elsewhere(here, owner)
        if hint is not None:
            print(f"down: {hint}: {here.command('down', '--sandbox', args.file)}", file=out)
            return EXIT_ENVIRONMENT
        return EXIT_OK


@contextlib.contextmanager
def _held() -> Iterator[None]:
    """The whole of ``down`` and ``cleanup`` is an undo: one Ctrl-C (or SIGTERM) is held
    until it is done, its report printed, the origin record forgotten and an emptied
    sandbox holder stopped; then raised (exit 130). A second one is raised at once."""
    from netns_kit import signals

    with signals.terminate_cleanly(), signals.shielded():
        yield


def _cleanup(here: Place, out: TextIO, *, again: str, verbose: bool, **options: Any) -> CleanupReport:
    """Run :func:`netns_kit.cleanup` at ``here`` and print its report (to the end,
    whatever happens to the output). A Ctrl-C is held until the removal is complete;
    a second one stops it; either way ``again`` is said, the command that finishes it."""
    from netns_kit.ops.cleanup import CleanupInterrupted, cleanup

    try:
        with Removals(verbose=verbose) as removals:
            report = cleanup(here.executor, progress=removals, **options)
    except CleanupInterrupted as error:
        _lines(out, error.report.lines())
        print(
            f"netns-kit: stopped after {error.done} of {error.total} removals: `{again}` finishes it",
            file=sys.stderr,
        )
        raise
    except KeyboardInterrupt:
        print(f"netns-kit: interrupted; if anything is left, `{again}` finishes it", file=sys.stderr)
        raise
    _lines(out, report.lines())
    return report


def _lines(out: TextIO, lines: list[str]) -> None:
    """``lines`` in one write (W(200)'s 2,200 report lines: one system call, not 4,400)."""
    if lines:
        out.write("".join(line + "\n" for line in lines))


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from netns_kit.executors import holder
    from netns_kit.ops import inventory

    if args.sandbox and holder.find() is None:
        print("no sandbox is running: netns_kit owns nothing there", file=out)
        return EXIT_OK
    with place(args, out=None) as here:
        found = inventory.scan(here.executor)
        summaries = [inventory.summary(found, owner) for owner in found.owners()]
        for item in summaries:
            item["file"] = origin(here.executor, Owner(item["owner"]))
            item["gone"] = item["state"] == "named" and _gone(here, Owner(item["owner"]), found)
        hint = None if summaries else elsewhere(here)
    if args.json:
        data: dict[str, Any] = {"where": here.where, "owners": summaries}
        if hint is not None:
            data["elsewhere"] = hint
        json.dump(data, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not summaries:
        print(f"netns_kit owns nothing {here.where}", file=out)
        if hint is not None:
            print(hint, file=out)
        return EXIT_OK
    print(f"netns_kit owns, {here.where}:", file=out)
    for item in summaries:
        file = item["file"]
        state = {
            "alive": "its process is running",
            "dead": f"its process is gone: `{here.command('cleanup')}` removes this",
            "named": f"named owner: kept until `{here.command('down', file)}`"
            if file
            else f"named owner: kept until `{here.command('cleanup', '--owner', item['owner'])}` (or down FILE)",
        }[item["state"]]
        if item["gone"]:
            again = f"`{here.command('up', file)}` or `{here.command('down', file)}`" if file else "down FILE"
            state = (
                "recorded as up, but nothing of it is there any more (taken down without netns-kit): "
                f"{again} drops the record"
            )
        print(f"\n{item['owner']}  [{'gone' if item['gone'] else item['state']}] {state}", file=out)
        if file:
            print(f"  from {file}", file=out)
        for key, title in (("namespaces", "namespaces"), ("links", "links"), ("rules", "iptables rules")):
            values = item[key]
            if values:
                print(f"  {title} ({len(values)}):", file=out)
                for value in values:
                    print(f"    {value}", file=out)
        if item["ledger_files"]:
            files = len(item["ledger_files"])
            print(f"  ledger: {item['changes_standing']} changes in effect, {files} file(s)", file=out)
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace, out: TextIO) -> int:
    _needs_root(args, "cleanup")
    held = contextlib.nullcontext() if args.dry_run else _held()  # a dry run undoes nothing: Ctrl-C stops it
    with held:
        return _cleanup_command(args, out)


def _cleanup_command(args: argparse.Namespace, out: TextIO) -> int:
    with place(args, out=None if args.dry_run else out) as here:
        again = here.command("cleanup", *(("--owner", args.owner) if args.owner else ()))
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
    return EXIT_FAILED if report.errors else EXIT_OK


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    from netns_kit.ops.doctor import doctor

    if args.sandbox or args.attach is not None:
        with place(args) as here:
            report = doctor(here.executor)
    else:
        report = doctor(None)
    if args.json:
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        for line in report.lines():
            print(line, file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from netns_kit import demo

    return demo.run(out)


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "plan": cmd_plan,
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "cleanup": cmd_cleanup,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
}
