"""The alias of ``lo`` in many namespaces (netns_kit.executors.loopback): read in this
process where it may enter them, else by ONE process where the executor acts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netns_kit import Command, Recorder, Result, ShExecutor
from netns_kit.executors import loopback


def test_a_refused_namespace_is_none_so_the_executor_asks_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(paths: dict[str, str]) -> dict[str, str | None]:
        raise PermissionError(1, "setns", next(iter(paths.values())))

    monkeypatch.setitem(loopback._program, "aliases", refused)
    assert loopback.read_here({"red": Path("/run/netns/red")}) is None
    asked: list[tuple[tuple[str, ...], object]] = []

    def run(self: ShExecutor, command: Command, **kwargs: object) -> Result:
        asked.append((command.argv[1:], kwargs.get("input")))
        return Result(command, 0, json.dumps({"red": "netns_kit:cli.lab", "other": "x"}), "")

    monkeypatch.setattr(ShExecutor, "run", run)
    assert ShExecutor().loopback_aliases(["red"]) == {"red": "netns_kit:cli.lab"}  # what was asked for, only
    # the program comes on stdin: `-v` shows one short line, not the program
    assert asked == [(("-I", "-S", "-c", "import sys; exec(sys.stdin.read())"), loopback.stdin(["red"]))]
    assert loopback.stdin(["red"]).startswith("NAMES = ['red']\n")


def test_read_here_runs_in_a_thread_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    seen: list[str] = []

    def aliases(paths: dict[str, str]) -> dict[str, str | None]:
        seen.append(threading.current_thread().name)
        return {name: f"netns_kit:{name}" for name in paths}

    monkeypatch.setitem(loopback._program, "aliases", aliases)
    assert loopback.read_here({"a": Path("/x/a"), "b": Path("/x/b")}) == {"a": "netns_kit:a", "b": "netns_kit:b"}
    assert seen == ["netns_kit loopback aliases"]  # setns moves that thread, never the caller's


def test_a_dry_run_reads_nothing_and_a_prefixed_executor_asks_where_it_acts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Recorder().loopback_aliases(["red"]) is None
    monkeypatch.setattr(loopback, "read_here", lambda paths: pytest.fail("read here for a prefixed executor"))
    prefixed = ShExecutor(prefix=("sudo", "-n"))
    monkeypatch.setattr(ShExecutor, "run", lambda self, command, **kw: Result(command, 0, '{"red": null}', ""))
    assert prefixed.loopback_aliases(["red"]) == {"red": None}


def test_the_program_parses_the_alias_out_of_a_netlink_answer() -> None:
    """PROGRAM's own reading, on the bytes the kernel sends for ``lo`` with an alias."""
    import struct

    def attr(kind: int, value: bytes) -> bytes:
        size = 4 + len(value)
        return struct.pack("=HH", size, kind) + value + b"\0" * ((4 - size % 4) % 4)

    body = struct.pack("=BxHiII", 0, 772, 1, 0x49, 0) + attr(3, b"lo\0") + attr(20, b"netns_kit:cli.lab\0")
    message = struct.pack("=LHHLL", 16 + len(body), 16, 0, 1, 0) + body
    assert loopback._program["lo_alias"](message) == ("lo", "netns_kit:cli.lab")  # type: ignore[operator]
    assert loopback._program["lo_alias"](message[:16] + body[:16]) is None  # type: ignore[operator]
