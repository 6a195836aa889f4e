"""Orphan link emulators: found by argv and namespace in a simulated /proc; cleanup plans their stop."""

from __future__ import annotations

import json
import os
from pathlib import Path

from netns_kit import Command, Owner, Recorder
from netns_kit.linkemu import orphans
from netns_kit.linkemu.plan import MODULE, PYTHON
from netns_kit.ops.cleanup import cleanup

DEAD = Owner("999999999.1")  # no such pid: its process is gone
ALIVE = Owner.current()


class Proc:
    """A /proc with processes (argv, the namespace file they are in) and a /run/netns."""

    def __init__(self, root: Path) -> None:
        self.proc = root / "proc"
        self.netns_dir = root / "netns"
        self.spaces = root / "spaces"
        for d in (self.proc, self.netns_dir, self.spaces):
            d.mkdir()
        self.space("host")
        (self.proc / "self" / "ns").mkdir(parents=True)
        os.link(self.spaces / "host", self.proc / "self" / "ns" / "net")

    def space(self, name: str, named: bool = False) -> None:
        (self.spaces / name).touch()
        if named:
            os.link(self.spaces / name, self.netns_dir / name)

    def process(self, pid: int, argv: list[str], space: str) -> None:
        d = self.proc / str(pid)
        (d / "ns").mkdir(parents=True)
        (d / "cmdline").write_bytes(b"".join(w.encode() + b"\0" for w in argv))
        os.link(self.spaces / space, d / "ns" / "net")

    def find(self, *tags: str, pid: int | None = None) -> list[orphans.Found]:
        return list(orphans.find(tags, pid=pid, proc=self.proc, netns_dir=self.netns_dir))


def emulator(queue: int, tag: str, *extra: str) -> list[str]:
    return [PYTHON, "-m", MODULE, "--queue", str(queue), "--dev", "a-eth", "--delay", "20ms", "--owner", tag, *extra]


def test_finds_the_emulators_of_the_owners_asked_for_in_the_namespaces_seen_here(tmp_path: Path) -> None:
    proc = Proc(tmp_path)
    proc.space("own-a", named=True)
    proc.space("elsewhere")  # another sandbox's namespace: not seen from here
    proc.process(10, emulator(9, DEAD.tag, "--background"), "own-a")
    proc.process(11, emulator(10, DEAD.tag, "--background"), "host")
    proc.process(12, emulator(11, ALIVE.tag, "--background"), "own-a")  # another owner's
    proc.process(13, emulator(12, DEAD.tag, "--background"), "elsewhere")
    proc.process(14, [PYTHON, "-m", MODULE, "--stop", "--owner", DEAD.tag], "own-a")  # a stop, not a server
    proc.process(15, ["sleep", "--owner", DEAD.tag], "own-a")  # not an emulator
    proc.process(16, [PYTHON, "-c", "x", MODULE, "--owner", DEAD.tag], "own-a")  # not run as -m MODULE
    assert proc.find(DEAD.tag) == [
        orphans.Found(10, "9", "a-eth", DEAD.tag, "own-a"),
        orphans.Found(11, "10", "a-eth", DEAD.tag, None),
    ]
    assert proc.find(DEAD.tag, pid=11) == [orphans.Found(11, "10", "a-eth", DEAD.tag, None)]
    assert proc.find(DEAD.tag, pid=12) == []
    assert proc.find(DEAD.tag, pid=99) == []
    assert [f.pid for f in proc.find(ALIVE.tag)] == [12]


def test_cleanup_stops_each_emulator_of_a_dead_owner_by_pid_and_owner(tmp_path: Path) -> None:
    listing = [orphans.Found(10, "9", "a-eth", DEAD.tag, "own-a"), orphans.Found(11, "10", "b-eth", DEAD.tag, None)]

    def answer(command: Command) -> str | None:
        if command.argv == (PYTHON, "-m", MODULE, "--list", "--owner", DEAD.tag):
            return "".join(f.to_json() + "\n" for f in listing)
        if command.argv[:1] == ("ip",) and "-j" in command.argv and "netns" in command.argv:
            return json.dumps([])
        return None

    class Machine(Recorder):
        @property
        def ledger_dir(self) -> Path:
            return tmp_path

    machine = Machine(answer)
    report = cleanup(machine, owner=DEAD)
    assert report.removed == [
        f"link emulator pid 10 (queue 9, dev a-eth in own-a) of {DEAD.id}",
        f"link emulator pid 11 (queue 10, dev b-eth) of {DEAD.id}",
    ]
    assert machine.lines == [
        f"{PYTHON} -m {MODULE} --stop --pid 10 --owner {DEAD.tag}",
        f"{PYTHON} -m {MODULE} --stop --pid 11 --owner {DEAD.tag}",
    ]
    assert report.errors == []


def test_a_live_owner_not_asked_for_is_never_listed(tmp_path: Path) -> None:
    class Machine(Recorder):
        @property
        def ledger_dir(self) -> Path:
            return tmp_path

    machine = Machine()
    assert cleanup(machine).owners == []
    assert not any("--list" in q.argv for q in machine.queries)
    assert machine.lines == []
