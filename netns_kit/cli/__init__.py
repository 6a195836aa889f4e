"""The ``netns-kit`` command.

::

    netns-kit plan FILE [--down] [--format sh|mermaid|dot|svg|png] [--json]
    netns-kit up [-p NAME] FILE     netns-kit down [-p NAME] FILE | --all [--yes]
    netns-kit ls                    netns-kit inspect NAME
    netns-kit exec NAMESPACE -- COMMAND...     netns-kit shell NAMESPACE
    netns-kit status                netns-kit cleanup [--owner ID] [--dry-run]
    netns-kit doctor                netns-kit demo
    netns-kit completion bash|zsh|fish

``--sandbox`` runs against a sandbox kept alive between commands by a
detached holder process (see :mod:`netns_kit.executors.holder`); ``--attach PID``
against any sandbox holder. ``up`` gives what it makes a named owner that
identifies the file (``cli.NAME`` for ``-p NAME`` or a file with ``[topology] name``,
else ``cli.STEM-HASH`` of its resolved path), which ``cleanup`` leaves alone until
``down FILE`` or ``cleanup --owner ID``. ``--json`` prints documented, versioned data
(:mod:`netns_kit.cli.data`); ``--quiet`` prints nothing but errors.

Modules: this one runs a command and maps errors to exit codes (:mod:`~netns_kit.cli.codes`);
:mod:`~netns_kit.cli.parser` holds the arguments; :mod:`~netns_kit.cli.commands` names
the commands; :mod:`~netns_kit.cli.place` decides where a command works and whose objects
it acts on (owners, origins, holder sessions); :mod:`~netns_kit.cli.hints` what a command
says when it finds nothing or a name taken; :mod:`~netns_kit.cli.output`
writes what a closed pipe cannot cut short and the progress lines.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from collections.abc import Sequence
from typing import TextIO, cast

from netns_kit.cli.codes import (
    EXIT_CLOSED_PIPE,
    EXIT_CODES,
    EXIT_CONFLICT,
    EXIT_ENVIRONMENT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Conflict,
    Unavailable,
)
from netns_kit.cli.commands import command
from netns_kit.cli.output import Output
from netns_kit.cli.parser import build_parser
from netns_kit.errors import (
    BinaryNotFoundError,
    NetnsKitError,
    PermissionDeniedError,
    SandboxError,
    ValidationError,
)

__all__ = [
    "EXIT_CLOSED_PIPE",
    "EXIT_CODES",
    "EXIT_CONFLICT",
    "EXIT_ENVIRONMENT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Conflict",
    "build_parser",
    "main",
]

log = logging.getLogger("netns_kit")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = Output(sys.stdout), Output(sys.stderr)
    saved = sys.stdout, sys.stderr
    # print() anywhere below, and the log lines of --verbose, go through them too
    sys.stdout, sys.stderr = cast(TextIO, out), cast(TextIO, err)
    args.parser = parser
    args.stdout = sys.stdout  # where --json goes; what is said for people goes to `said`
    said = cast(TextIO, io.StringIO()) if args.json or args.quiet else sys.stdout
    try:
        if args.verbose:
            logging.basicConfig(format="+ %(message)s", level=logging.DEBUG, stream=sys.stderr)
        code = _run(args, said, sys.stderr)
        out.flush()
        err.flush()
    finally:
        sys.stdout, sys.stderr = saved
    if code == EXIT_OK and out.closed_pipe:
        return EXIT_CLOSED_PIPE
    return code


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        code: int = command(args.command)(args, out)
        return code
    except ValidationError as error:
        return _fail(error, EXIT_USAGE, err)
    except Conflict as error:
        return _fail(error, EXIT_CONFLICT, err)
    except (SandboxError, PermissionDeniedError, BinaryNotFoundError, Unavailable) as error:
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
