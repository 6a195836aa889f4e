"""Commands and results: frozen values, built once, quoted only to be shown."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

import attrs


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


@attrs.frozen
class Command:
    """One process to run: an argv tuple, optionally inside a named namespace.

    ``mutating`` commands change state: the recorder records them and they go
    into scripts. Queries only read state. ``undo`` holds the commands that
    reverse this one when that is known up front (``ip netns add x`` is undone
    by ``ip netns del x``). ``missing_ok`` makes a :class:`~netns_kit.errors.NotFoundError`
    count as success (idempotent deletes).
    """

    argv: tuple[str, ...] = attrs.field(converter=_argv, validator=_non_empty)
    netns: str | None = None
    mutating: bool = True
    ok_codes: frozenset[int] = attrs.field(default=frozenset({0}), converter=_codes)
    undo: tuple[Command, ...] = attrs.field(default=(), converter=_commands)
    missing_ok: bool = False

    @property
    def full_argv(self) -> tuple[str, ...]:
        """The argv as run: ``ip -n NS ...`` for ip, ``ip netns exec NS ...`` for the rest."""
        if self.netns is None:
            return self.argv
        if self.argv[0] == "ip":
            return ("ip", "-n", self.netns, *self.argv[1:])
        return ("ip", "netns", "exec", self.netns, *self.argv)

    @property
    def line(self) -> str:
        """The shell-quoted line (for logs, errors and scripts; never run through a shell)."""
        return shlex.join(self.full_argv)

    def __str__(self) -> str:
        return self.line

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
        )


def query(*argv: str, netns: str | None = None, ok_codes: Iterable[int] = (0,)) -> Command:
    """A command that only reads state."""
    return Command(argv, netns=netns, mutating=False, ok_codes=frozenset(ok_codes))


def change(
    *argv: str,
    netns: str | None = None,
    undo: Command | Iterable[Command] = (),
    missing_ok: bool = False,
) -> Command:
    """A command that changes state, with what undoes it."""
    undo_t = (undo,) if isinstance(undo, Command) else tuple(undo)
    return Command(argv, netns=netns, undo=undo_t, missing_ok=missing_ok)


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
