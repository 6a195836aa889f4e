"""Damaged ledgers: readers and cleanup() survive what a crash or a stranger leaves (no privileges).

An empty file (an ``up`` killed before its first write), a half-written last line,
garbage, a file of another format: nothing crashes, what the tags prove is removed,
nothing untagged is touched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from netns_kit import Owner
from netns_kit.lifecycle import ledger
from netns_kit.ops import inventory
from netns_kit.ops.cleanup import cleanup
from tests.unit.test_leftovers import BRIDGE, DEAD, FORWARD, NETNS, Machine, tag_br, tag_lo
from tests.unit.test_leftovers import ledger as write_ledger

NAMED = Owner("cli.lab")


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def a_ledger(machine: Machine, owner: Owner = NAMED) -> Path:
    """A whole ledger of ``owner``: namespace red and bridge br0 made and tagged, forwarding on."""
    machine.namespace("red", owner.tag)
    machine.link("br0", tag=owner.tag)
    machine.sysctls["net.ipv4.ip_forward"] = "1"
    return write_ledger(machine.directory, owner, [NETNS, tag_lo(owner), BRIDGE, tag_br(owner), FORWARD], ["ok"] * 5)


def empty_ledger(machine: Machine, owner: Owner = NAMED) -> Path:
    path = machine.directory / f"{owner.id}.4242-1.jsonl"
    path.touch()
    return path


#: the fast teardown's order: bridges set down, namespaces deleted, then the links outside them
EVERYTHING = [
    "sysctl -q -w net.ipv4.ip_forward=0",
    "ip link set dev br0 down",
    "ip netns del red",
    "ip link del dev br0",
]


def test_an_empty_ledger_next_to_a_whole_one_does_not_stop_the_cleanup(machine: Machine) -> None:
    # issue 15: an `up` killed before its first write, then a second `up` of the same file:
    # `down` crashed with IndexError (the empty file's first entry) and removed nothing
    empty = empty_ledger(machine)
    whole = a_ledger(machine)
    report = cleanup(machine, owner=NAMED)
    assert machine.changes == EVERYTHING
    assert report.errors == []
    assert not empty.exists() and not whole.exists()


def test_an_empty_ledger_alone_removes_what_carries_the_tag(machine: Machine) -> None:
    empty_ledger(machine, DEAD)
    machine.namespace("red", DEAD.tag)
    machine.namespace("theirs", None)
    report = cleanup(machine)
    assert report.owners == [DEAD]
    assert machine.changes == ["ip netns del red"]
    assert list(machine.directory.glob("*.jsonl")) == []


def test_a_half_written_last_line_is_skipped_and_the_rest_undone(machine: Machine) -> None:
    path = a_ledger(machine)
    with path.open("a") as out:
        out.write('{"seq":6,"t":17.5,"do":{"argv":["ip","route","add"')  # killed mid-write
    assert len(ledger.read(path)) == 5
    cleanup(machine, owner=NAMED)
    assert machine.changes == EVERYTHING
    assert not path.exists()


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x00\x00\x00",
        b"\xff\xfe not utf-8 \xc3\x28",
        b"[1, 2, 3]",
        b"42",
        b'"a string"',
        b"null",
        b'{"seq": "one", "mark": "ok"}',
        b'{"seq": 1, "mark": "eaten"}',
        b'{"seq": 7, "t": "yesterday", "do": {"argv": ["ip", "netns", "add", "x"]}}',
        b'{"seq": 7, "t": 1.0, "do": {"argv": []}}',
        b'{"seq": 7, "t": 1.0, "do": {"argv": [1, 2]}}',
        b'{"seq": 7, "t": 1.0, "do": {"argv": ["ip"], "netns": 5}}',
        b'{"seq": 7, "t": 1.0, "do": {"argv": ["ip"], "undo": [{"argv": null}]}}',
        b'{"seq": 7, "t": 1.0, "do": "ip netns add x"}',
        b'{"seq": true, "t": 1.0, "do": {"argv": ["ip", "netns", "add", "x"]}}',
        b'{"seq": 7, "t": 1.0, "do": {"argv": ["ip"], "ok_codes": "zero"}}',
        b"{" * 100_000,
    ],
)
def test_garbage_lines_are_skipped(machine: Machine, garbage: bytes) -> None:
    path = a_ledger(machine)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:3], garbage + b"\n", *lines[3:], garbage]))
    contents = ledger.load(path)
    assert [e.command.argv[:3] for e in contents.entries] == [
        ("ip", "netns", "add"),
        ("ip", "link", "set"),
        ("ip", "link", "add"),
        ("ip", "link", "set"),
        ("sysctl", "-q", "-w"),
    ]
    assert all(e.state == "ok" for e in contents.entries)
    assert contents.skipped == 2
    report = cleanup(machine, owner=NAMED)
    assert machine.changes == EVERYTHING
    assert report.errors == []


def test_a_file_of_garbage_only_still_lets_the_tags_speak(machine: Machine) -> None:
    path = machine.directory / f"{NAMED.id}.4242-1.jsonl"
    path.write_bytes(os.urandom(4096))
    machine.namespace("red", NAMED.tag)
    machine.namespace("blue", None)
    machine.link("br9")
    report = cleanup(machine, owner=NAMED)
    assert machine.changes == ["ip netns del red"]
    assert report.errors == []
    assert not path.exists()


def test_a_ledger_of_another_format_is_not_read_and_is_kept(machine: Machine) -> None:
    path = a_ledger(machine)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"netns_kit_ledger": ledger.FORMAT}  # every file says its format
    # a later netns_kit may mean other things by the same words: none of it is acted on
    path.write_text("\n".join([json.dumps({"netns_kit_ledger": 99}), *lines[1:]]) + "\n")
    assert ledger.load(path).foreign == 99 and ledger.read(path) == []
    machine.sysctls["net.ipv4.ip_forward"] = "1"
    report = cleanup(machine, owner=NAMED)
    assert machine.changes == EVERYTHING[1:]  # what the tags prove
    assert path.exists()
    assert any(str(path) in line and "format 99" in line for line in report.kept)


def test_a_ledger_without_a_header_is_read_as_the_first_format(machine: Machine) -> None:
    path = a_ledger(machine)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    assert len(ledger.read(path)) == 5
    cleanup(machine, owner=NAMED)
    assert machine.changes == EVERYTHING


def test_only_files_named_as_ledgers_are_read(machine: Machine, tmp_path: Path) -> None:
    a_ledger(machine)
    (machine.directory / "notes.jsonl").write_text("{}\n")
    (machine.directory / "cli.lab.jsonl").write_text("{}\n")
    (machine.directory / "cli.lab.1-1.jsonl.tmp").write_text("{}\n")
    assert [owner for owner, _ in ledger.files(machine.directory)] == [NAMED]


def test_a_fifo_or_a_link_in_place_of_a_ledger_is_not_read(machine: Machine, tmp_path: Path) -> None:
    fifo = machine.directory / f"{NAMED.id}.1-1.jsonl"
    os.mkfifo(fifo)  # reading it would block forever
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(json.dumps({"seq": 1, "t": 1.0, "do": {"argv": ["ip", "netns", "add", "x"]}}) + "\n")
    (machine.directory / f"{NAMED.id}.1-2.jsonl").symlink_to(elsewhere)
    (machine.directory / f"{NAMED.id}.1-3.jsonl").mkdir()
    assert inventory.read_ledgers(machine) == []
    cleanup(machine, owner=NAMED)
    assert machine.changes == []
    assert fifo.exists()
