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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from .command import Command
from .owner import Owner

_counter = itertools.count(1)
_MARKS = {m: m for m in ("ok", "failed", "skipped", "undone", "in-flight")}


@attrs.define
class Entry:
    seq: int
    command: Command
    time: float
    state: str = "in-flight"  # ok | failed | skipped | undone | in-flight


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
        out.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
        out.flush()

    def intend(self, commands: Sequence[Command]) -> list[int]:
        """Record commands about to run; returns their sequence numbers."""
        now = time.time()
        seqs = list(range(self._seq + 1, self._seq + 1 + len(commands)))
        self._seq += len(commands)
        self._write([{"seq": s, "t": round(now, 6), "do": c.to_json()} for s, c in zip(seqs, commands, strict=True)])
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
                entries[record["seq"]] = Entry(record["seq"], Command.from_json(record["do"]), record["t"])
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
