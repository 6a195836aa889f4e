"""The exit codes of ``netns-kit`` and the error that maps to "conflict"."""

from __future__ import annotations

from netns_kit.errors import NetnsKitError

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
    "141 output pipe closed early, the work was done (| head); "
    "exec and shell exit with the command's own code"
)


class Conflict(NetnsKitError):
    """What the command is asked to make or remove is another's (exit 4)."""


class Unavailable(NetnsKitError):
    """What the command needs is not on this machine (exit 3)."""
