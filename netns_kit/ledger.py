"""The write-ahead ledger: what an owner is about to change, and what undoes it.

One JSON-lines file per journal under the executor's ledger directory
(``/run/netns_kit/`` for root on the real host, ``/run/netns_kit/`` inside a
sandbox). Entries are written BEFORE the commands run (one write per batch,
flushed, no fsync: ``/run`` is a tmpfs and a machine crash frees everything
anyway) and marked ``ok``, ``failed``, ``skipped`` or ``undone`` after.
An entry with no mark was in flight when the owner died.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from .command import Command
from .owner import Owner

_counter = itertools.count(1)
_MARKS = {m: m for m in ("ok", "failed", "skipped", "undone", "in-flight")}
#: one encoder for every line (json.dumps with separators builds a new one per call)
_encode = json.JSONEncoder(separators=(",", ":")).encode


@attrs.define
class Entry:
    seq: int
    command: Command
    time: float
    state: str = "in-flight"  # ok | failed | skipped | undone | in-flight
    #: what it creates did not exist just before (so if it exists now, this made it)
    absent: bool = False


class Ledger:
    """An append-only record of one journal's changes."""

    def __init__(self, directory: Path, owner: Owner) -> None:
        self.owner = owner
        self.path = directory / f"{owner.id}.{os.getpid()}-{next(_counter)}.jsonl"
        self._file: IO[str] | None = None
        self._seq = 0

    def _open(self) -> IO[str]:
        if self._file is None:
            self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        return self._file

    def _write(self, records: Sequence[dict[str, Any]]) -> None:
        out = self._open()
        out.write("".join(_encode(r) + "\n" for r in records))
        out.flush()

    def intend(self, commands: Sequence[Command], *, absent: Collection[int] = ()) -> list[int]:
        """Record commands about to run; returns their sequence numbers.

        ``absent``: positions of commands creating objects that were seen not to
        exist just before (see :func:`created_by`).
        """
        now = time.time()
        seqs = list(range(self._seq + 1, self._seq + 1 + len(commands)))
        self._seq += len(commands)
        records = []
        for i, (s, c) in enumerate(zip(seqs, commands, strict=True)):
            record: dict[str, Any] = {"seq": s, "t": round(now, 6), "do": c.to_json()}
            if i in absent:
                record["absent"] = True
            records.append(record)
        self._write(records)
        return seqs

    def mark(self, marks: Sequence[tuple[int, str]]) -> None:
        if marks:
            # the same JSON as json.dumps({"seq": s, "mark": m}), thousands of times faster to make
            out = self._open()
            out.write("".join(f'{{"seq":{int(s)},"mark":"{_MARKS[m]}"}}\n' for s, m in marks))
            out.flush()

    def close(self, *, empty: bool) -> None:
        """Close the file; remove it when nothing it records is left standing."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if empty:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def read(path: Path) -> list[Entry]:
    """The entries of a ledger file, with their last mark applied (torn lines ignored)."""
    entries: dict[int, Entry] = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash while being written
            if "do" in record:
                entries[record["seq"]] = Entry(
                    record["seq"], Command.from_json(record["do"]), record["t"], absent=record.get("absent", False)
                )
            elif record.get("seq") in entries:
                entries[record["seq"]].state = record["mark"]
    return [entries[k] for k in sorted(entries)]


def files(directory: Path) -> Iterator[tuple[Owner, Path]]:
    """Every ledger file in ``directory`` with its owner."""
    try:
        paths = sorted(directory.glob("*.jsonl"))
    except OSError:
        return
    for path in paths:
        owner_id = path.name.rsplit(".", 2)[0]
        try:
            yield Owner(owner_id), path
        except ValueError:
            continue


def created_by(command: Command) -> list[str | tuple[str, str | None]]:
    """What a command creates: a namespace name, or (link, netns) for each link
    ``ip link add name A ... [peer name B [netns NS]]`` makes."""
    argv = command.argv
    if argv[:3] == ("ip", "netns", "add") and len(argv) > 3:
        return [argv[3]]
    if argv[:4] != ("ip", "link", "add", "name"):
        return []
    made: list[str | tuple[str, str | None]] = [(argv[4], command.netns)]
    if "peer" in argv:
        rest = argv[argv.index("peer") + 1 :]
        if rest[:1] == ("name",) and len(rest) > 1:
            netns = rest[rest.index("netns") + 1] if "netns" in rest else command.netns
            made.append((rest[1], netns))
    return made
