"""The ``netns-kit`` command.

::

    netns-kit plan FILE [--down] [--format sh|mermaid|dot]
    netns-kit up FILE          netns-kit down FILE
    netns-kit status           netns-kit cleanup [--owner ID] [--dry-run]
    netns-kit doctor           netns-kit demo

``--sandbox`` runs against a sandbox kept alive between commands by a
detached holder process (see :mod:`netns_kit.holder`); ``--attach PID``
against any sandbox holder. ``up`` gives what it makes a named owner that
identifies the file (``cli.NAME`` for a file with ``[topology] name``, else
``cli.STEM-HASH`` of its resolved path: :mod:`netns_kit.cliplace`), which
``cleanup`` leaves alone until ``down FILE`` or ``cleanup --owner ID``.
Output to a pipe closed early never cuts a command short (:mod:`netns_kit.cliout`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO, cast

from . import __version__
from .cliout import Output, Progress, Removals
from .cliplace import (
    CLI_OWNER_PREFIX,
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
from .errors import (
    AlreadyExistsError,
    BinaryNotFoundError,
    NetnsKitError,
    PermissionDeniedError,
    SandboxError,
    ValidationError,
)
from .owner import Owner

__all__ = ["CLI_OWNER_PREFIX", "build_parser", "main", "owner_for"]

#: exit codes
EXIT_OK = 0  # done
EXIT_FAILED = 1  # a command failed (what was done is undone), cleanup left errors, doctor found a problem
EXIT_USAGE = 2  # bad arguments, or an invalid topology file
EXIT_ENVIRONMENT = 3  # cannot run here: not root and no sandbox, permission denied, missing binary, no sandbox
EXIT_CONFLICT = 4  # `up` of a topology that is already up, or whose names another one holds
EXIT_INTERRUPTED = 130  # Ctrl-C (what `up` had done is undone; `down` finishes first)
EXIT_CLOSED_PIPE = 141  # the output pipe closed early (`| head`): the work was still done

EXIT_CODES = (
    "exit codes: 0 done; 1 failed (what was done is undone); 2 usage or invalid file; "
    "3 cannot run here (not root, permission denied, no sandbox, missing binary); "
    "4 conflict (already up, or a name is taken); 130 interrupted (Ctrl-C); "
    "141 output pipe closed early, the work was done (| head)"
)

log = logging.getLogger("netns_kit")


class _Conflict(NetnsKitError):
    pass


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS,
        help="work in the sandbox netns-kit keeps between commands (up starts it)",
    )
    where.add_argument(
        "--attach",
        metavar="PID",
        type=int,
        default=argparse.SUPPRESS,
        help="work in the sandbox held by process PID",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show each command as it runs"
    )

    parser = argparse.ArgumentParser(
        prog="netns-kit",
        description="Real, throwaway Linux network topologies built with ip and iptables.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"netns_kit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each command as it runs")
    parser.add_argument("--sandbox", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--attach", metavar="PID", type=int, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, epilog=EXIT_CODES)

    plan = add("plan", "print the shell script (or the picture) of a topology file")
    plan.add_argument("file", metavar="FILE")
    plan.add_argument("--down", action="store_true", help="print the teardown script instead")
    plan.add_argument("--format", choices=("sh", "mermaid", "dot"), default="sh", help="sh (default), mermaid, dot")

    up = add("up", "build a topology file (all or nothing); it stays up")
    up.add_argument("file", metavar="FILE")
    up.add_argument("--wait", action="store_true", help="wait until links are up and addresses usable")

    add("down", "remove what `up FILE` made, exactly").add_argument("file", metavar="FILE")

    add("status", "what netns_kit owns here, per owner").add_argument(
        "--json", action="store_true", help="machine-readable output"
    )

    clean = add("cleanup", "remove what dead owners (or --owner) left behind")
    clean.add_argument("--owner", metavar="ID", help="remove what this owner made (PID.START, cli.NAME, dry-run)")
    clean.add_argument("--dry-run", action="store_true", help="only say what would be removed")

    add("doctor", "check this machine (or the sandbox) and explain fixes").add_argument(
        "--json", action="store_true", help="machine-readable output"
    )

    add("demo", "build seed 001 in a sandbox, check it with traffic, tear it down")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = Output(sys.stdout), Output(sys.stderr)
    saved = sys.stdout, sys.stderr
    # print() anywhere below, and the log lines of --verbose, go through them too
    sys.stdout, sys.stderr = cast(TextIO, out), cast(TextIO, err)
    try:
        if args.verbose:
            logging.basicConfig(format="+ %(message)s", level=logging.DEBUG, stream=sys.stderr)
        code = _run(args, sys.stdout, sys.stderr)
        out.flush()
        err.flush()
    finally:
        sys.stdout, sys.stderr = saved
    if code == EXIT_OK and out.closed_pipe:
        return EXIT_CLOSED_PIPE
    return code


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        code: int = _COMMANDS[args.command](args, out)
        return code
    except ValidationError as error:
        return _fail(error, EXIT_USAGE, err)
    except _Conflict as error:
        return _fail(error, EXIT_CONFLICT, err)
    except (SandboxError, PermissionDeniedError, BinaryNotFoundError) as error:
        return _fail(error, EXIT_ENVIRONMENT, err)
    except NetnsKitError as error:
        return _fail(error, EXIT_FAILED, err)
    except PermissionError as error:
        return _fail(_oserror(error), EXIT_ENVIRONMENT, err)
    except OSError as error:
        return _fail(_oserror(error), EXIT_FAILED, err)
    except KeyboardInterrupt:
        print("netns-kit: interrupted", file=err)
        return EXIT_INTERRUPTED


def _oserror(error: OSError) -> str:
    where = f": {error.filename}" if error.filename is not None else ""
    return f"{error.strerror or error}{where}"


def _fail(error: BaseException | str, code: int, err: TextIO) -> int:
    print(f"netns-kit: error: {error}", file=err)
    for problem in getattr(error, "cleanup_errors", ()):
        print(f"netns-kit: while undoing, another error: {problem}", file=err)
    return code


def _needs_root(args: argparse.Namespace, what: str) -> None:
    if not args.sandbox and args.attach is None and os.geteuid() != 0:
        raise SandboxError(f"{what} on this machine needs root; add --sandbox to work in a rootless sandbox instead")


# -- commands ----------------------------------------------------------------------
def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    from . import picture, topofile

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
    from . import topofile

    loaded = topofile.load(args.file)
    owner = owner_for(loaded)
    _needs_root(args, "up")
    if not loaded.topology.resources:
        print(f"up: {loaded.name}: nothing to do: {args.file} describes no resources", file=out)
        return EXIT_OK
    with place(args, owner, start=True, out=out) as here:
        return _up(args, loaded, owner, here, out)


def _up(args: argparse.Namespace, loaded: Any, owner: Owner, here: Place, out: TextIO) -> int:
    from . import inventory

    if any(lf.owner == owner and lf.standing for lf in inventory.read_ledgers(here.executor)):
        raise _Conflict(_already_up(here, loaded, owner, args.file))
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
                raise _Conflict(f"{args.file}: {taken}") from error
        elapsed = time.monotonic() - started
    except BaseException as error:
        if not getattr(error, "cleanup_errors", None):  # undone (Topology.up rolls back)
            forget(here.executor, owner)
        raise
    if progress.done == 0:  # everything was there already (adopted): nothing stays up
        from .leftovers import cleanup

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


def _already_up(here: Place, loaded: Any, owner: Owner, file: str) -> str:
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
    from . import topofile

    loaded = topofile.load(args.file)
    owner = owner_for(loaded)
    _needs_root(args, "down")
    with place(args, owner, out=out) as here:
        source = origin(here.executor, owner)
        if source is not None and loaded.path is not None and source != str(loaded.path):
            raise _Conflict(
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


def _cleanup(here: Place, out: TextIO, *, again: str, verbose: bool, **options: Any) -> Any:
    """Run :func:`netns_kit.cleanup` at ``here`` and print its report (to the end,
    whatever happens to the output). A Ctrl-C is held until the removal is complete;
    a second one stops it; either way ``again`` is said, the command that finishes it."""
    from .leftovers import CleanupInterrupted, cleanup

    try:
        with Removals(verbose=verbose) as removals:
            report = cleanup(here.executor, progress=removals, **options)
    except CleanupInterrupted as error:
        for line in error.report.lines():
            print(line, file=out)
        print(
            f"netns-kit: stopped after {error.done} of {error.total} removals: `{again}` finishes it",
            file=sys.stderr,
        )
        raise
    except KeyboardInterrupt:
        print(f"netns-kit: interrupted; if anything is left, `{again}` finishes it", file=sys.stderr)
        raise
    for line in report.lines():
        print(line, file=out)
    return report


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from . import holder, inventory

    if args.sandbox and holder.find() is None:
        print("no sandbox is running: netns_kit owns nothing there", file=out)
        return EXIT_OK
    with place(args, out=None) as here:
        found = inventory.scan(here.executor)
        summaries = [inventory.summary(found, owner) for owner in found.owners()]
        for item in summaries:
            item["file"] = origin(here.executor, Owner(item["owner"]))
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
        print(f"\n{item['owner']}  [{item['state']}] {state}", file=out)
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
    from .doctor import doctor

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
    from . import demo

    return demo.run(out)


_COMMANDS: dict[str, Any] = {
    "plan": cmd_plan,
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "cleanup": cmd_cleanup,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
}


if __name__ == "__main__":
    sys.exit(main())
