"""``netns-kit exec`` and ``netns-kit shell``: a process in a namespace of a running
topology, on this machine or inside the sandbox that holds it.

The command *becomes* the process it starts (``os.execve``): ``nsenter --target
HOLDER --net --mount [--user --preserve-credentials] --`` (the prefix of
:class:`~netns_kit.executors.sandbox.Sandbox`, for a sandbox), then ``ip netns exec
NAMESPACE env -- COMMAND``, and none of these forks. So the command has netns-kit's
process id, its standard input, output and error, gets the signals sent to it and
its exit status is the one the caller sees (127: not found, as a shell says).
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from netns_kit.errors import NetnsKitError, SandboxError, ValidationError
from netns_kit.executors import binaries, holder
from netns_kit.executors.sandbox import Sandbox
from netns_kit.validate import netns_name

#: set in the environment of what ``exec`` and ``shell`` start: the namespace's name
NAMESPACE_ENV = "NETNS_KIT_NAMESPACE"

#: ``shell`` with bash: its usual start-up files, then a prompt that names the namespace
BASH_RC = r"""[ -r /etc/bash.bashrc ] && . /etc/bash.bashrc
[ -r ~/.bashrc ] && . ~/.bashrc
PS1="[netns $NETNS_KIT_NAMESPACE] ${PS1:-\s-\v\$ }"
"""


def cmd_exec(args: argparse.Namespace, out: TextIO) -> int:
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        del argv[:1]
    if not argv:
        raise ValidationError("COMMAND", None, "is missing: netns-kit exec NAMESPACE -- COMMAND [ARG...]")
    enter(args, argv, {})


def cmd_shell(args: argparse.Namespace, out: TextIO) -> int:
    shell = os.environ.get("SHELL") or _login_shell()
    name = netns_name("NAMESPACE", args.namespace)
    kind = Path(shell).name
    prompt = f"[netns {name}] {'#' if os.geteuid() == 0 else '$'} "
    if not os.isatty(0):  # commands on stdin (`... | netns-kit shell NS`): no prompt, no job control
        enter(args, [shell], {})
    if kind == "bash":
        read, write = os.pipe()
        os.write(write, BASH_RC.encode())  # far less than a pipe holds
        os.close(write)
        os.set_inheritable(read, True)
        argv = [shell, "--rcfile", f"/dev/fd/{read}", "-i"]
    elif kind == "fish":
        argv = [shell, "-C", f"function fish_prompt; echo -n {_fish_quote(prompt)}; end"]
    else:  # sh, dash, ksh, zsh: the prompt from the environment
        argv = [shell, "-i"]
    enter(args, argv, {"PS1": prompt})


def _login_shell() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def enter(args: argparse.Namespace, argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """Become ``argv`` run in namespace ``args.namespace`` where ``args`` say."""
    name = netns_name("NAMESPACE", args.namespace)
    prefix = prefix_for(args, name)
    wrapper = binaries.resolve([*prefix, "ip", "netns", "exec", name, "env", "--"])
    environment = {
        **os.environ,
        "PATH": os.pathsep.join(binaries.search_path()),  # iptables, sysctl: /usr/sbin too
        NAMESPACE_ENV: name,
        **env,
    }
    sys.stdout.flush()
    sys.stderr.flush()
    # as a shell starts a command: SIGPIPE and SIGXFSZ as the kernel has them (Python ignores them)
    for number in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    os.execve(wrapper[0], [*wrapper, *argv], environment)


def prefix_for(args: argparse.Namespace, name: str) -> tuple[str, ...]:
    """The words that enter the place ``args`` name (none on this machine), once the
    namespace ``name`` is known to be there."""
    if args.attach is not None or args.sandbox:
        sandbox = Sandbox.attach(args.attach) if args.attach is not None else holder.find()
        if sandbox is None:
            raise SandboxError(
                f"no sandbox is running (none recorded in {holder.record_path()}): "
                "`netns-kit up --sandbox FILE` starts one"
            )
        if not sandbox.netns_path(name).exists():
            raise NetnsKitError(f"no namespace {name} in sandbox holder {sandbox.pid}: `netns-kit ls` lists what is up")
        return sandbox.prefix
    if Path("/run/netns", name).exists() and os.geteuid() == 0:
        return ()
    sandbox = holder.find()
    if sandbox is not None and sandbox.netns_path(name).exists():
        raise SandboxError(f"namespace {name} is in the sandbox (holder {sandbox.pid}): add --sandbox to reach it")
    if os.geteuid() != 0:
        raise SandboxError(f"exec on this machine needs root; add --sandbox to enter the sandbox's {name} instead")
    raise NetnsKitError(f"no namespace {name} on this machine: `netns-kit ls` lists what is up")
