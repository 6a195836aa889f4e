"""The dry-run: an executor that records what would run and starts no process.

A :class:`Recorder` records every mutating command, answers queries itself
(from a ``handler``, else as a fresh machine would) and renders the script:
``script()`` sets up, ``teardown_script()`` reverses it. It receives exactly
the :class:`~netns_kit.command.Command` values the real executors receive.

A printed script cannot know the machine it will run on. So a switch of the
whole host (``ip_forward``: :data:`netns_kit.sysctl_keys.SWITCHES`) is not set to a
constant and back: the set-up script claims it as the library does, under the
same lock (``flock`` on ``/run/netns_kit``), keeping the value found before the
first claim in ``/run/netns_kit/sysctl/<netns or -host->/<key>/prior`` next to
a claim file of the script's owner, where the library's own cleanup and
``netns-kit down`` read it; the tear-down script drops every claim of that
owner (the library's too) and, when no claim is left, restores the value kept,
only while the switch still holds the value set. Unlike the library, a script
cannot tell a claim of a process that is gone: it counts as live (the switch
stays on; ``netns-kit cleanup`` restores it then).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from netns_kit import shape, sysctl_keys
from netns_kit.batching.outcome import Outcome
from netns_kit.command import Command, Result, query
from netns_kit.errors import NetnsKitError
from netns_kit.executors.hook import Executor
from netns_kit.executors.inorder import OnDone, in_order
from netns_kit.owner import Owner
from netns_kit.version import __version__

if TYPE_CHECKING:
    from netns_kit.executors.process import Process

Handler = Callable[[Command], "Result | str | None"]

#: What a fresh kernel answers, so a dry-run plans as for a fresh machine.
_FRESH_SYSCTLS = {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"}


class Recorder(Executor):
    """The dry-run executor: records every mutating command, starts no process.

    Queries are answered by ``handler`` when given (return a :class:`Result`,
    a string for stdout, or ``None`` for the default answer) and otherwise as
    a fresh machine would: empty JSON lists, kernel default sysctls. A handler
    may also raise :class:`CommandError` to inject a failure.
    """

    dry_run = True

    def __init__(
        self, handler: Handler | None = None, *, owner: Owner | None = None, firewall: str | None = None
    ) -> None:
        super().__init__(owner or Owner.dry_run(), firewall=firewall)
        self.handler = handler
        self.commands: list[Command] = []
        self.queries: list[Command] = []

    def __repr__(self) -> str:
        return f"Recorder({len(self.commands)} commands)"

    def handle(
        self,
        commands: Sequence[Command],
        *,
        input: str | None = None,
        timeout: float | None = None,
        on_done: OnDone | None = None,
    ) -> Outcome:
        """One command after the other: a mutating one recorded, a query answered."""
        return in_order(commands, self._answer, input=input, timeout=timeout, on_done=on_done, check_deletes=True)

    def _answer(self, command: Command, input: str | None, timeout: float | None) -> Result:
        answer = self.handler(command) if self.handler else None
        if answer is None:
            answer = self._default_answer(command)
        result = answer if isinstance(answer, Result) else Result(command, 0, answer, "")
        if result.ok:
            (self.commands if command.mutating else self.queries).append(command)
        elif not command.mutating:
            self.queries.append(command)
        return result

    @staticmethod
    def _default_answer(command: Command) -> str:
        argv = command.argv
        if "-j" in argv or "-json" in argv:
            return "[]"
        key = shape.sysctl_read(argv)
        if key is not None:
            return _FRESH_SYSCTLS.get(key, "0")
        return ""

    def popen(self, command: Command, **kwargs: Any) -> Process:
        raise NetnsKitError(f"a dry-run starts no process: cannot start {command.line}")

    def clear(self) -> None:
        self.commands.clear()
        self.queries.clear()

    @property
    def lines(self) -> list[str]:
        """The recorded mutating commands, one shell line each."""
        return [command.line for command in self.commands]

    def undo_commands(self) -> list[Command]:
        """What reverses the recorded commands, in reverse order."""
        return [u for command in reversed(self.commands) for u in command.undo]

    def script(self, *, title: str = "set up") -> str:
        """A runnable ``#!/bin/sh`` script doing what was recorded."""
        lines = [claim_switch(c, self.owner) if shared_switch(c) else c.script for c in self.commands]
        return render_script(lines, title=title)

    def teardown_script(self) -> str:
        """The inverse of :meth:`script`, in reverse order."""
        lines = [
            release_switch(command, self.owner) if shared_switch(command) else u.script
            for command in reversed(self.commands)
            for u in command.undo
        ]
        return render_script(lines, title="tear down")


def render_script(commands: Sequence[Command | str], *, title: str) -> str:
    """A ``#!/bin/sh`` script of ``commands`` (or of lines rendered already)."""
    head = [
        "#!/bin/sh",
        f"# {title}: generated by netns_kit {__version__}",
        "set -eu",
    ]
    return "\n".join(head + [c if isinstance(c, str) else c.script for c in commands]) + "\n"


#: where a printed script (run as root) keeps the claims: the library's ledger directory for root
SCRIPT_STATE_DIR = "/run/netns_kit"


def shared_switch(command: Command) -> bool:
    """A set of a switch of the whole host (``sysctl -q -w net.ipv4.ip_forward=1``), with its undo."""
    written = shape.sysctl_write(command.argv)
    return written is not None and written.key in sysctl_keys.SWITCHES and bool(command.undo)


def _where(command: Command) -> tuple[str, str, str, str]:
    """(key, value set, the claims directory of the key, the directory of its place)."""
    written = shape.sysctl_write(command.argv)
    if written is None:
        raise ValueError(f"not a sysctl write: {command.line}")
    key, value = written.key, written.value or ""
    place = f"{SCRIPT_STATE_DIR}/{sysctl_keys.CLAIMS_DIR}/{command.netns or sysctl_keys.HOST}"
    return key, value, f"{place}/{key.replace('/', ',')}", place


def claim_switch(command: Command, owner: Owner) -> str:
    """``command`` (a :func:`shared_switch` set) as a script claims it (see the module doc)."""
    key, value, claims, _ = _where(command)
    read = query("sysctl", "-n", key, netns=command.netns).line
    claim = shlex.quote(f"claim.{owner.id}.script")
    return "\n".join(
        [
            f"# {key}: claimed as netns_kit claims it; the value found before the first claim is kept",
            "# for netns_kit's cleanup, `netns-kit down` and the tear-down script to restore",
            f"d={shlex.quote(claims)}",
            'mkdir -p "$d"',
            f"exec 9<{SCRIPT_STATE_DIR}",
            "flock 9",
            f'[ -n "$(ls "$d")" ] || {read} >"$d/prior"',
            f'echo {shlex.quote(value)} >"$d"/{claim}',
            command.line,
            "exec 9<&-",
        ]
    )


def release_switch(command: Command, owner: Owner) -> str:
    """The undo of ``command`` (a :func:`shared_switch` set): the script's claim released."""
    key, value, claims, place = _where(command)
    read = query("sysctl", "-n", key, netns=command.netns).line
    write = shlex.join(Command(("sysctl", "-q", "-w"), netns=command.netns).full_argv)
    mine = shlex.quote(f"claim.{owner.id}.") + "*"
    return "\n".join(
        [
            f"# {key}: the claims of {owner.id} go; the last claim out restores the value found",
            f"# before the first, while {key} is still {value}",
            f"d={shlex.quote(claims)}",
            'if [ -d "$d" ]; then',
            f"    exec 9<{SCRIPT_STATE_DIR}",
            "    flock 9",
            f'    rm -f "$d"/{mine}',
            """    if [ -f "$d/prior" ] && ! ls "$d" | grep -q '^claim\\.'; then""",
            '        prior=$(cat "$d/prior")',
            '        case "$prior" in',
            f'            0|1) [ "$({read})" != {shlex.quote(value)} ] || {write} {shlex.quote(key + "=")}"$prior" ;;',
            f"            *) echo {shlex.quote(f'netns_kit: {claims}/prior holds no value of {key}: left as it is')}"
            " >&2 ;;",
            "        esac",
            '        rm "$d/prior"',
            "    fi",
            f'    rmdir "$d" {shlex.quote(place)} {SCRIPT_STATE_DIR}/{sysctl_keys.CLAIMS_DIR} 2>/dev/null || true',
            "    exec 9<&-",
            "fi",
        ]
    )
