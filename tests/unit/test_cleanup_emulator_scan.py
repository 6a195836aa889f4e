"""Cleanup looks for link emulators left running only when its owners may have one.

Looking costs a process of its own (``python -m netns_kit.linkemu --list``): a topology
without impairments (most) need not pay it. The ledger is written ahead of every
emulator start, so a ledger read whole that names none proves there is none; a ledger
that is damaged, foreign or missing proves nothing, and then cleanup looks.
"""

from __future__ import annotations

from pathlib import Path

from netns_kit import (
    Bridge,
    Command,
    LinkImpairment,
    Namespace,
    NatRule,
    Owner,
    Result,
    Topology,
    VethPair,
    cleanup,
)

from .fakes import FakeHost

OWNER = Owner("cli.scan")


class Watching(FakeHost):
    """A FakeHost that notes every command, queries included."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, owner=OWNER)
        self.seen: list[tuple[str, ...]] = []

    def answer(self, command: Command) -> Result | str | None:
        self.seen.append(command.argv)
        return super().answer(command)

    def looked_for_emulators(self) -> bool:
        return any("netns_kit.linkemu" in argv and "--list" in argv for argv in self.seen)


def test_a_ledger_read_whole_that_names_no_emulator_spares_the_look(tmp_path: Path) -> None:
    host = Watching(tmp_path)
    Topology([Bridge("br1", addresses="10.1.0.1/24"), NatRule("10.1.0.0/24", bridge="br1")]).up(host)
    cleanup(host, owner=OWNER.id)
    assert not host.looked_for_emulators()


def test_a_ledger_that_names_an_emulator_makes_cleanup_look(tmp_path: Path) -> None:
    host = Watching(tmp_path)
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.0.0.1/24", peer_addresses="10.0.0.2/24")
    impaired = LinkImpairment("a-eth", {"delay": "10ms", "via": "userspace"}, netns="a")
    Topology([Namespace("a"), Namespace("b"), veth, impaired]).up(host)
    cleanup(host, owner=OWNER.id)
    assert host.looked_for_emulators()


def test_a_damaged_ledger_makes_cleanup_look(tmp_path: Path) -> None:
    host = Watching(tmp_path)
    Topology([Bridge("br1", addresses="10.1.0.1/24")]).up(host)
    (ledger,) = tmp_path.glob("cli.scan.*.jsonl")
    with ledger.open("a") as torn:
        torn.write('{"seq": 99, "argv": ["ip", "li')
    cleanup(host, owner=OWNER.id)
    assert host.looked_for_emulators()
