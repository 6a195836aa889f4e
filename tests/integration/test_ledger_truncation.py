"""A damaged ledger never makes a topology unremovable (issue 15, defect 2).

A large topology (W(N): N namespaces on a bridge, NAT, N port forwards, forwarding on)
is built by a named owner, as ``netns-kit up`` does; its ledger is then cut at an
offset (at an entry's boundary, or inside a line: what a crash, a full disk or a
stranger leaves) and the cleanup runs. After each: everything the owner made is gone
(the state equals the one before the build), the untagged decoys made by hand are
intact, and no ledger is left. The first and the last offsets go through the real
``netns-kit cleanup --owner`` command.

By default the offsets are every line boundary of the first and last lines, a spread
of the others and a spread of cuts inside lines; ``NETNS_KIT_STRESS=full`` takes every
line boundary of the ledger (and a cut inside every tenth line).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Command, Owner
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.ops.cleanup import cleanup
from netns_kit.topology import scenarios

from .cli import netns_kit

N = 24  # namespaces (W(24): 2 * 24 + 2 rules, one ledger of some 800 lines)
OWNER = Owner("cli.truncated")

DECOYS = [
    ("ip", "netns", "add", "decoy"),
    ("ip", "link", "add", "name", "decoy-br", "type", "bridge"),
    ("iptables", "-w", "-A", "FORWARD", "-s", "198.51.100.7/32", "-j", "ACCEPT"),
    ("iptables", "-w", "-t", "nat", "-N", "NK-decoy"),  # our prefix, but never tagged nor in a ledger
    ("iptables", "-w", "-t", "nat", "-A", "NK-decoy", "-s", "198.51.100.8/32", "-j", "MASQUERADE"),
]
UNDO_DECOYS = [
    ("iptables", "-w", "-t", "nat", "-D", "NK-decoy", "-s", "198.51.100.8/32", "-j", "MASQUERADE"),
    ("iptables", "-w", "-t", "nat", "-X", "NK-decoy"),
    ("iptables", "-w", "-D", "FORWARD", "-s", "198.51.100.7/32", "-j", "ACCEPT"),
    ("ip", "link", "del", "dev", "decoy-br"),
    ("ip", "netns", "del", "decoy"),
]


@pytest.fixture
def decoys(sb: Sandbox) -> Iterator[dict[str, object]]:
    for argv in DECOYS:
        sb.run(Command(argv))
    yield state.snapshot(sb)
    for argv in UNDO_DECOYS:
        sb.run(Command(argv))


def build(sb: Sandbox) -> Path:
    """W(N) built by OWNER in the sandbox and left up (as `netns-kit up` leaves it); its ledger."""
    box = Sandbox.attach(sb.pid)
    box.owner = OWNER
    before = set(ledgers(sb))
    scenarios.workload(N).up(box)
    made = sorted(set(ledgers(sb)) - before)
    assert len(made) == 1, made
    return made[0]


def ledgers(sb: Sandbox) -> list[Path]:
    directory = sb.ledger_dir
    assert directory is not None
    return sorted(directory.glob("*.jsonl"))


def cuts(lines: int, full: bool) -> list[tuple[str, int]]:
    """Where to cut a ledger of ``lines`` lines: ("boundary", k): after its first k
    lines; ("inside", k): in the middle of line k."""
    if full:
        boundaries = list(range(lines + 1))
        inside = list(range(0, lines, 10))
    else:
        edge = 12
        boundaries = sorted({*range(edge), *range(lines - edge, lines + 1), *range(edge, lines - edge, 23)})
        inside = sorted({0, 1, 2, lines - 1, *range(3, lines - 1, 41)})
    return [("boundary", k) for k in boundaries] + [("inside", k) for k in inside]


def offset(data: bytes, cut: tuple[str, int]) -> int:
    kind, k = cut
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    starts = [0, *ends[:-1]]
    k = min(k, len(ends) - (kind == "inside"))  # another build's ledger may be a line shorter
    if kind == "boundary":
        return 0 if k == 0 else ends[k - 1]
    return starts[k] + (ends[k] - starts[k]) // 2


def test_cleanup_after_the_ledger_is_cut_anywhere_leaves_nothing_of_the_owner(
    sb: Sandbox, decoys: dict[str, object]
) -> None:
    full = os.environ.get("NETNS_KIT_STRESS") == "full"
    path = build(sb)
    lines = path.read_bytes().count(b"\n")
    assert lines > 400, f"W({N}) should write a large ledger, not {lines} lines"
    todo = cuts(lines, full)
    for number, cut in enumerate(todo):
        if number:
            path = build(sb)
        data = path.read_bytes()
        at = offset(data, cut)
        path.write_bytes(data[:at])
        where = f"ledger cut {cut[0]} line {cut[1]} (byte {at} of {len(data)})"
        if number == len(todo) - 1:
            # and the 0-byte ledger of an `up` killed before its first write (issue 15:
            # `down` then crashed with IndexError and removed nothing)
            (path.parent / f"{OWNER.id}.99999-1.jsonl").touch()
        if number in (0, len(todo) - 1):  # the real command, as a user runs it
            done = netns_kit("cleanup", "--attach", str(sb.pid), "--owner", OWNER.id)
            assert done.returncode == 0, f"{where}: {done.stdout}{done.stderr}"
            assert "FAILED" not in done.stdout, f"{where}: {done.stdout}"
        else:
            report = cleanup(Sandbox.attach(sb.pid), owner=OWNER)
            assert report.errors == [], f"{where}: {report.errors}"
        left = state.diff(decoys, state.snapshot(sb))
        assert left == [], f"{where}: left {left}"
        assert ledgers(sb) == [], f"{where}: a ledger is left"
    print(f"W({N}): a ledger of {lines} lines cut at {len(todo)} offsets: 0 leftovers after each cleanup")
