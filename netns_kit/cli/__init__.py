"""The ``netns-kit`` command.

::

    netns-kit plan FILE [--down] [--format sh|mermaid|dot]
    netns-kit up FILE          netns-kit down FILE
    netns-kit status           netns-kit cleanup [--owner ID] [--dry-run]
    netns-kit doctor           netns-kit demo

``--sandbox`` runs against a sandbox kept alive between commands by a
detached holder process (see :mod:`netns_kit.executors.holder`); ``--attach PID``
against any sandbox holder. ``up`` gives what it makes a named owner that
identifies the file (``cli.NAME`` for a file with ``[topology] name``, else
``cli.STEM-HASH`` of its resolved path), which ``cleanup`` leaves alone until
``down FILE`` or ``cleanup --owner ID``.

Modules: this one parses the arguments, runs a command and maps errors to exit
codes; :mod:`~netns_kit.cli.commands` holds the commands; :mod:`~netns_kit.cli.place`
decides where a command works and whose objects it acts on (owners, origins, holder
sessions, clashes); :mod:`~netns_kit.cli.output` writes what a closed pipe cannot cut
short and the progress lines.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO, cast

from netns_kit import __version__
from netns_kit.cli.output import Output
from netns_kit.cli.place import CLI_OWNER_PREFIX, owner_for
from netns_kit.errors import (
    BinaryNotFoundError,
    NetnsKitError,
    PermissionDeniedError,
    SandboxError,
    ValidationError,
)

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


class Conflict(NetnsKitError):
    """What the command is asked to make or remove is another's (exit 4)."""


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
    from netns_kit.cli.commands import COMMANDS

    try:
        code: int = COMMANDS[args.command](args, out)
        return code
    except ValidationError as error:
        return _fail(error, EXIT_USAGE, err)
    except Conflict as error:
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


def __getattr__(name: str) -> Any:
    # the commands (netns_kit.cli.commands) load with the first one run
    if name.startswith("cmd_"):
        from netns_kit.cli import commands

        return getattr(commands, name)
    raise AttributeError(name)
