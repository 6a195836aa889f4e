"""The commands of ``netns-kit``, by name, and where each one lives.

A command takes the parsed arguments and the output stream and returns the exit
code (errors are raised, and mapped to codes by :func:`netns_kit.cli.main`).
The table names modules, not functions, and :func:`command` imports only the
module of the command being run (as pip's command table does): ``netns-kit
down`` does not pay for loading the TOML reader, the picture or the demo.

Modules: :mod:`~netns_kit.cli.build` (plan, up), :mod:`~netns_kit.cli.down` (down),
:mod:`~netns_kit.cli.teardown` (down --all, cleanup), :mod:`~netns_kit.cli.look`
(status, ls, inspect, doctor),
:mod:`~netns_kit.cli.enter` (exec, shell), :mod:`~netns_kit.cli.complete`
(completion), :mod:`~netns_kit.cli.demo_command` (demo).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TextIO, cast

Command = Callable[[argparse.Namespace, TextIO], int]

#: command name -> (module, function)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("netns_kit.cli.build", "cmd_plan"),
    "up": ("netns_kit.cli.build", "cmd_up"),
    "down": ("netns_kit.cli.down", "cmd_down"),
    "status": ("netns_kit.cli.look", "cmd_status"),
    "ls": ("netns_kit.cli.look", "cmd_ls"),
    "inspect": ("netns_kit.cli.look", "cmd_inspect"),
    "cleanup": ("netns_kit.cli.teardown", "cmd_cleanup"),
    "doctor": ("netns_kit.cli.look", "cmd_doctor"),
    "demo": ("netns_kit.cli.demo_command", "cmd_demo"),
    "exec": ("netns_kit.cli.enter", "cmd_exec"),
    "shell": ("netns_kit.cli.enter", "cmd_shell"),
    "completion": ("netns_kit.cli.complete", "cmd_completion"),
}


def command(name: str) -> Command:
    """The function of command ``name``, its module imported now."""
    module, function = COMMANDS[name]
    return cast(Command, getattr(importlib.import_module(module), function))
