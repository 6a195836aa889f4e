"""Commands and results: frozen values, built once, quoted only to be shown."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

import attrs

from netns_kit import shape


def _argv(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("argv must be a sequence of strings, not one string")
    return tuple(map(str, value))


def _codes(value: Iterable[int]) -> frozenset[int]:
    return frozenset(value)


def _commands(value: Iterable[Command]) -> tuple[Command, ...]:
    return tuple(value)


def _non_empty(instance: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


def _stdin_text(instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    # A here-document always ends its last line: only such text renders exactly.
    if value and not value.endswith("\n"):
        raise ValueError("stdin must be empty or end with a newline (it is rendered as a here-document)")


#: iproute2 binaries that take ``-n NS`` themselves (cheaper than ``ip netns exec``)
_NETNS_AWARE = frozenset({"ip", "tc"})


@attrs.frozen
class Command:
    """One process to run: an argv tuple, optionally inside a named namespace.

    ``mutating`` commands change state: the recorder records them and they go
    into scripts. Queries only read state. ``undo`` holds the commands that
    reverse this one when that is known up front (``ip netns add x`` is undone
    by ``ip netns del x``). ``missing_ok`` makes a :class:`~netns_kit.errors.NotFoundError`
    count as success (idempotent deletes). ``stdin`` is text fed to the
    process (a file's content, say); scripts render it as a quoted
    here-document, so a dry-run script writes the same bytes.
    """

    argv: tuple[str, ...] = attrs.field(converter=_argv, validator=_non_empty)
    netns: str | None = None
    mutating: bool = True
    ok_codes: frozenset[int] = attrs.field(default=frozenset({0}), converter=_codes)
    undo: tuple[Command, ...] = attrs.field(default=(), converter=_commands)
    missing_ok: bool = False
    stdin: str | None = attrs.field(default=None, validator=_stdin_text)

    @property
    def program(self) -> str:
        """The program run (``ip``, ``iptables``...); :mod:`netns_kit.shape` reads the rest."""
        return shape.program(self.argv)

    @property
    def full_argv(self) -> tuple[str, ...]:
        """The argv as run: ``ip -n NS ...`` for ip and tc, ``ip netns exec NS ...`` for the rest."""
        if self.netns is None:
            return self.argv
        if self.program in _NETNS_AWARE:
            return (self.program, "-n", self.netns, *shape.arguments(self.argv))
        return ("ip", "netns", "exec", self.netns, *self.argv)

    @property
    def line(self) -> str:
        """The shell-quoted line (for logs and errors; never run through a shell)."""
        return shlex.join(self.full_argv)

    @property
    def script(self) -> str:
        """The command as a script writes it: :attr:`line`, plus a quoted here-document for ``stdin``."""
        if self.stdin is None:
            return self.line
        end = "EOF"
        while end in self.stdin.splitlines():
            end += "_"
        return f"{self.line} <<'{end}'\n{self.stdin}{end}"

    def __str__(self) -> str:
        return self.line

    def tolerant(self) -> Command:
        """This command with ``missing_ok`` (an idempotent undo): a third of the cost
        of ``attrs.evolve``, which a teardown of W(200) calls 1800 times."""
        if self.missing_ok:
            return self
        return Command(
            self.argv,
            netns=self.netns,
            mutating=self.mutating,
            ok_codes=self.ok_codes,
            undo=self.undo,
            missing_ok=True,
            stdin=self.stdin,
        )

    def in_netns(self, netns: str | None) -> Command:
        """This command (and its undo) inside ``netns``."""
        return attrs.evolve(self, netns=netns, undo=tuple(u.in_netns(netns) for u in self.undo))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"argv": list(self.argv)}
        if self.netns is not None:
            data["netns"] = self.netns
        if not self.mutating:
            data["mutating"] = False
        if self.ok_codes != frozenset({0}):
            data["ok_codes"] = sorted(self.ok_codes)
        if self.undo:
            data["undo"] = [u.to_json() for u in self.undo]
        if self.missing_ok:
            data["missing_ok"] = True
        if self.stdin is not None:
            data["stdin"] = self.stdin
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Command:
        return cls(
            argv=data["argv"],
            netns=data.get("netns"),
            mutating=data.get("mutating", True),
            ok_codes=data.get("ok_codes", (0,)),
            undo=tuple(cls.from_json(u) for u in data.get("undo", ())),
            missing_ok=data.get("missing_ok", False),
            stdin=data.get("stdin"),
        )


def query(*argv: str, netns: str | None = None, ok_codes: Iterable[int] = (0,)) -> Command:
    """A command that only reads state."""
    return Command(argv, netns=netns, mutating=False, ok_codes=frozenset(ok_codes))


def change(
    *argv: str,
    netns: str | None = None,
    undo: Command | Iterable[Command] = (),
    missing_ok: bool = False,
    stdin: str | None = None,
) -> Command:
    """A command that changes state, with what undoes it (and text for its stdin)."""
    undo_t = (undo,) if isinstance(undo, Command) else tuple(undo)
    return Command(argv, netns=netns, undo=undo_t, missing_ok=missing_ok, stdin=stdin)


@attrs.frozen
class Result:
    """What a command gave back."""

    command: Command
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode in self.command.ok_codes

    def json(self) -> Any:
        """stdout parsed as JSON (``ip -j ...``); ``[]`` for empty output."""
        return json.loads(self.stdout) if self.stdout.strip() else []
