"""The write-ahead ledger: every change written before it runs, marked ok as soon as it took effect."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import Command, Recorder, Result
from netns_kit.errors import CommandError
from netns_kit.lifecycle.journal import Journal
from netns_kit.lifecycle.ledger import files, read
from netns_kit.topology import scenarios


class LedgerRecorder(Recorder):
    def __init__(self, directory: Path, handler=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(self.answer)
        self.then = handler
        self.directory = directory
        self.seen: list[list[str]] = []

    @property
    def ledger_dir(self) -> Path:
        return self.directory

    def answer(self, command: Command) -> Result | str | None:
        if command.mutating:  # what the ledger says at the moment each change starts
            self.seen.append([e.state for _, p in files(self.directory) for e in read(p)])
        return self.then(command) if self.then else None


def test_each_change_is_written_before_it_runs_and_marked_ok_right_after(tmp_path: Path) -> None:
    recorder = LedgerRecorder(tmp_path)
    Journal(recorder).apply_all(scenarios.seed001_pipe().ordered())
    n = len(recorder.commands)
    # when change k starts, all n are written, changes 1..k-1 are ok, k.. are still in flight
    assert recorder.seen == [["ok"] * k + ["in-flight"] * (n - k) for k in range(n)]
    [(_, path)] = list(files(tmp_path))
    assert [e.state for e in read(path)] == ["ok"] * n
    assert [e.command for e in read(path)] == recorder.commands


def test_a_failed_change_is_marked_failed_and_the_rest_skipped_then_undone(tmp_path: Path) -> None:
    def fail_third(command: Command) -> Result | None:
        if command.mutating and command.argv[:3] == ("ip", "netns", "add") and command.argv[3] == "blue":
            return Result(command, 1, "", 'Cannot create namespace file "/run/netns/blue": File exists')
        return None

    recorder = LedgerRecorder(tmp_path, fail_third)
    with pytest.raises(CommandError):
        Journal(recorder).apply_all(scenarios.seed001_pipe().ordered())
    # rollback succeeded: nothing is left standing, so the ledger file is gone
    assert list(files(tmp_path)) == []
    n = len(scenarios.seed001_pipe().plan().commands)
    assert recorder.seen[2] == ["ok", "ok"] + ["in-flight"] * (n - 2)  # `ip netns add blue` starting
    assert recorder.seen[3] == ["ok", "ok", "failed"] + ["skipped"] * (n - 3)  # the first undo starting


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    recorder = LedgerRecorder(tmp_path)
    Journal(recorder).apply_all(scenarios.seed002_host().ordered())
    [(_, path)] = list(files(tmp_path))
    with open(path, "a") as out:
        out.write('{"seq": 1, "mark": "und')
    assert [e.state for e in read(path)] == ["ok"] * len(recorder.commands)


def test_wait_uses_the_executor_up_was_given() -> None:
    from netns_kit import use

    elsewhere, given = Recorder(), Recorder()
    topo = scenarios.seed001_pipe()
    topo.wait = True
    with use(elsewhere):
        topo.up(given)
    assert elsewhere.queries == [] and elsewhere.commands == []
    assert given.commands
