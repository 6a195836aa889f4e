"""The ``netns-kit`` command.

::

    netns-kit plan FILE [--down] [--format sh|mermaid|dot]
    netns-kit up FILE          netns-kit down FILE
    netns-kit status           netns-kit cleanup [--owner ID] [--dry-run]
    netns-kit doctor           netns-kit demo

``--sandbox`` runs against a sandbox kept alive between commands by a
detached holder process (see :mod:`netns_kit.holder`); ``--attach PID``
against any sandbox holder. ``up`` gives what it makes the named owner
``cli.NAME`` (NAME from the file), which ``cleanup`` leaves alone until
``down FILE`` or ``cleanup --owner cli.NAME``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from . import __version__
from .errors import (
    BinaryNotFoundError,
    NetnsKitError,
    PermissionDeniedError,
    SandboxError,
    ValidationError,
)
from .executor import Executor
from .owner import Owner
from .shexecutor import ShExecutor

#: exit codes
EXIT_OK = 0  # done
EXIT_FAILED = 1  # a command failed (what was done is undone), cleanup left errors, doctor found a problem
EXIT_USAGE = 2  # bad arguments, or an invalid topology file
EXIT_ENVIRONMENT = 3  # cannot run here: not root and no sandbox, missing binary, no sandbox running
EXIT_CONFLICT = 4  # `up` of a topology that is already up
EXIT_INTERRUPTED = 130

CLI_OWNER_PREFIX = "cli."

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
        epilog="exit codes: 0 done, 1 failed (undone), 2 usage or invalid file, 3 cannot run here, 4 already up",
    )
    parser.add_argument("--version", action="version", version=f"netns_kit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each command as it runs")
    parser.add_argument("--sandbox", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--attach", metavar="PID", type=int, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plan = sub.add_parser("plan", parents=[common], help="print the shell script (or the picture) of a topology file")
    plan.add_argument("file", metavar="FILE")
    plan.add_argument("--down", action="store_true", help="print the teardown script instead")
    plan.add_argument("--format", choices=("sh", "mermaid", "dot"), default="sh", help="sh (default), mermaid, dot")

    up = sub.add_parser("up", parents=[common], help="build a topology file (all or nothing); it stays up")
    up.add_argument("file", metavar="FILE")
    up.add_argument("--wait", action="store_true", help="wait until links are up and addresses usable")

    down = sub.add_parser("down", parents=[common], help="remove what `up FILE` made, exactly")
    down.add_argument("file", metavar="FILE")

    sub.add_parser("status", parents=[common], help="what netns_kit owns here, per owner").add_argument(
        "--json", action="store_true", help="machine-readable output"
    )

    clean = sub.add_parser("cleanup", parents=[common], help="remove what dead owners (or --owner) left behind")
    clean.add_argument("--owner", metavar="ID", help="remove what this owner made (PID.START, cli.NAME, dry-run)")
    clean.add_argument("--dry-run", action="store_true", help="only say what would be removed")

    doc = sub.add_parser("doctor", parents=[common], help="check this machine (or the sandbox) and explain fixes")
    doc.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("demo", parents=[common], help="build seed 001 in a sandbox, check it with traffic, tear it down")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(format="+ %(message)s", level=logging.DEBUG, stream=sys.stderr)
    try:
        code: int = _COMMANDS[args.command](args, sys.stdout)
        return code
    except ValidationError as error:
        return _fail(error, EXIT_USAGE)
    except _Conflict as error:
        return _fail(error, EXIT_CONFLICT)
    except (SandboxError, PermissionDeniedError, BinaryNotFoundError) as error:
        return _fail(error, EXIT_ENVIRONMENT)
    except NetnsKitError as error:
        return _fail(error, EXIT_FAILED)
    except KeyboardInterrupt:
        print("netns-kit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(error: BaseException, code: int) -> int:
    print(f"netns-kit: error: {error}", file=sys.stderr)
    for problem in getattr(error, "cleanup_errors", ()):
        print(f"netns-kit: while undoing, another error: {problem}", file=sys.stderr)
    return code


# -- where commands run ----------------------------------------------------------
def _executor(args: argparse.Namespace, owner: Owner | None = None, *, start: bool = False) -> Executor:
    from . import holder
    from .sandbox import Sandbox

    if args.attach is not None:
        sandbox = Sandbox.attach(args.attach)
        if owner is not None:
            sandbox.owner = owner
        return sandbox
    if args.sandbox:
        return holder.find_or_start(owner) if start else holder.require(owner)
    return ShExecutor(owner=owner)


def _needs_root(args: argparse.Namespace, what: str) -> None:
    if not args.sandbox and args.attach is None and os.geteuid() != 0:
        raise SandboxError(f"{what} on this machine needs root; add --sandbox to work in a rootless sandbox instead")


def _where(executor: Executor) -> str:
    pid = getattr(executor, "_pid", None)
    return f"in sandbox holder {pid}" if pid is not None else "on this machine"


def _stop_empty_sandbox(args: argparse.Namespace, executor: Executor, out: TextIO) -> None:
    from . import holder
    from .sandbox import Sandbox

    if args.sandbox and isinstance(executor, Sandbox) and holder.stop_if_empty(executor):
        print(f"sandbox holder {executor.pid} stopped: it holds nothing any more", file=out)


def owner_for(name: str) -> Owner:
    """The named owner of what ``netns-kit up`` makes from a file called NAME."""
    return Owner(CLI_OWNER_PREFIX + name)


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
    recorder = loaded.topology.plan(owner=owner_for(loaded.name))
    out.write(recorder.teardown_script() if args.down else recorder.script())
    return EXIT_OK


def cmd_up(args: argparse.Namespace, out: TextIO) -> int:
    from . import inventory, topofile

    loaded = topofile.load(args.file)
    owner = owner_for(loaded.name)
    _needs_root(args, "up")
    executor = _executor(args, owner, start=True)
    held = [lf for lf in inventory.read_ledgers(executor) if lf.owner == owner and lf.standing]
    if held:
        raise _Conflict(
            f"{loaded.name} is already up {_where(executor)} (owner {owner.id}, ledger {held[0].path}); "
            f"take it down first: netns-kit down{' --sandbox' if args.sandbox else ''} {args.file}"
        )
    topology = loaded.topology
    topology.wait = topology.wait or args.wait
    total = len(topology.plan(owner=owner).commands)
    started = time.monotonic()
    with _Progress(total, verbose=args.verbose):
        topology.up(executor)
    elapsed = time.monotonic() - started
    print(
        f"up: {loaded.name}: {total} changes in {elapsed:.2f} s {_where(executor)}, owner {owner.id}\n"
        f"take it down with: netns-kit down{' --sandbox' if args.sandbox else ''} {args.file}",
        file=out,
    )
    return EXIT_OK


def cmd_down(args: argparse.Namespace, out: TextIO) -> int:
    from . import topofile
    from .leftovers import cleanup

    loaded = topofile.load(args.file)
    owner = owner_for(loaded.name)
    _needs_root(args, "down")
    executor = _executor(args, owner)
    report = cleanup(executor, owner=owner)
    for line in report.lines():
        print(line, file=out)
    if report.nothing_done and not report.errors:
        print(f"down: nothing to do: {loaded.name} (owner {owner.id}) is not up {_where(executor)}", file=out)
    else:
        print(f"down: {loaded.name}: {len(report.removed)} removed {_where(executor)}", file=out)
    _stop_empty_sandbox(args, executor, out)
    return EXIT_FAILED if report.errors else EXIT_OK


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    from . import holder, inventory

    if args.sandbox and holder.find() is None:
        print("no sandbox is running: netns_kit owns nothing there", file=out)
        return EXIT_OK
    executor = _executor(args)
    found = inventory.scan(executor)
    summaries = [inventory.summary(found, owner) for owner in found.owners()]
    if args.json:
        json.dump({"where": _where(executor), "owners": summaries}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not summaries:
        print(f"netns_kit owns nothing {_where(executor)}", file=out)
        return EXIT_OK
    print(f"netns_kit owns, {_where(executor)}:", file=out)
    for item in summaries:
        state = {
            "alive": "its process is running",
            "dead": "its process is gone: `netns-kit cleanup` removes this",
            "named": f"named owner: kept until `netns-kit cleanup --owner {item['owner']}` (or down FILE)",
        }[item["state"]]
        print(f"\n{item['owner']}  [{item['state']}] {state}", file=out)
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
    from .leftovers import cleanup

    _needs_root(args, "cleanup")
    executor = _executor(args)
    report = cleanup(executor, owner=args.owner, dry_run=args.dry_run)
    for line in report.lines():
        print(line, file=out)
    if not report.owners:
        print(f"cleanup: nothing to clean up {_where(executor)} (no owner is gone)", file=out)
    else:
        owners = ", ".join(o.id for o in report.owners)
        verb = "would remove" if args.dry_run else "removed"
        print(f"cleanup: {verb} {len(report.removed)} objects of {owners} {_where(executor)}", file=out)
    if not args.dry_run:
        _stop_empty_sandbox(args, executor, out)
    return EXIT_FAILED if report.errors else EXIT_OK


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    from .doctor import doctor

    executor = _executor(args) if (args.sandbox or args.attach is not None) else None
    report = doctor(executor)
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


class _Progress(logging.Handler):
    """A progress line on stderr while ``up`` runs (a terminal only; --verbose prints each command)."""

    def __init__(self, total: int, *, verbose: bool, stream: TextIO | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.active = not verbose and self.stream.isatty() and total > 0
        self._level = log.level

    def emit(self, record: logging.LogRecord) -> None:
        if not (isinstance(record.args, tuple) and record.args and record.args[0] == "run"):
            return
        self.done += 1
        line = f"\r[{self.done}/{self.total}] {str(record.args[1])[:70]}"
        self.stream.write(f"{line:<80}")
        self.stream.flush()

    def __enter__(self) -> _Progress:
        if self.active:
            log.addHandler(self)
            if log.getEffectiveLevel() > logging.DEBUG:
                log.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.active:
            log.removeHandler(self)
            log.setLevel(self._level)
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()


if __name__ == "__main__":
    sys.exit(main())
