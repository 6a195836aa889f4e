"""Executors that play a kernel for unit tests (no privileges)."""

from __future__ import annotations

from pathlib import Path

from netns_kit import Command, Recorder, Result
from netns_kit.owner import Owner


class FakeHost(Recorder):
    """A recorder that keeps sysctl values and a ledger directory, like a real run."""

    dry_run = False

    def __init__(self, directory: Path, owner: Owner | None = None, **values: str) -> None:
        super().__init__(self.answer, owner=owner or Owner.current())
        self.directory = directory
        self.values = {"net.ipv4.ip_forward": "0", **values}

    @property
    def ledger_dir(self) -> Path | None:
        return self.directory

    def answer(self, command: Command) -> Result | str | None:
        argv = command.argv
        if argv[:2] == ("sysctl", "-n"):
            return self.values[argv[2]]
        if argv[:3] == ("sysctl", "-q", "-w"):
            key, _, value = argv[3].partition("=")
            self.values[key] = value
        if argv[0] == "iptables" and "-V" in argv:
            return Result(command, 1)
        return None

    def writes(self) -> list[str]:
        return [c.argv[3] for c in self.commands if c.argv[:3] == ("sysctl", "-q", "-w")]


class BatchingHost(FakeHost):
    """A :class:`FakeHost` that runs one command at a time, in order: as a real run (not a
    dry-run) it takes the real executors' ways (the fast teardown)."""

    parallel = 1
