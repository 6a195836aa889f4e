"""The commands of ``netns-kit``, by name: each takes the parsed arguments and the
output stream and returns the exit code (errors are raised, and mapped to codes by
:func:`netns_kit.cli.main`).

Modules: :mod:`~netns_kit.cli.build` (plan, up), :mod:`~netns_kit.cli.teardown`
(down, cleanup), :mod:`~netns_kit.cli.look` (status, ls, inspect, doctor),
:mod:`~netns_kit.cli.enter` (exec, shell), :mod:`~netns_kit.cli.complete` (completion).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO

from netns_kit import demo
from netns_kit.cli.build import cmd_plan, cmd_up
from netns_kit.cli.complete import cmd_completion
from netns_kit.cli.enter import cmd_exec, cmd_shell
from netns_kit.cli.look import cmd_doctor, cmd_inspect, cmd_ls, cmd_status
from netns_kit.cli.teardown import cmd_cleanup, cmd_down

__all__ = [
    "COMMANDS",
    "cmd_cleanup",
    "cmd_completion",
    "cmd_demo",
    "cmd_doctor",
    "cmd_down",
    "cmd_exec",
    "cmd_inspect",
    "cmd_ls",
    "cmd_plan",
    "cmd_shell",
    "cmd_status",
    "cmd_up",
]


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    return demo.run(out)


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "plan": cmd_plan,
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "ls": cmd_ls,
    "inspect": cmd_inspect,
    "cleanup": cmd_cleanup,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
    "exec": cmd_exec,
    "shell": cmd_shell,
    "completion": cmd_completion,
}
