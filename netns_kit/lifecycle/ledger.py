"""The write-ahead ledger: what an owner is about to change, and what undoes it.

One JSON-lines file per journal under the executor's ledger directory
(``/run/netns_kit/`` for root on the real host, ``/run/netns_kit/`` inside a
sandbox). Entries are written BEFORE the commands run (one write per batch,
flushed, no fsync: ``/run`` is a tmpfs and a machine crash frees everything
anyway) and marked ``ok``, ``failed``, ``skipped`` or ``undone`` after.
An entry with no mark was in flight when the owner died.

A file starts with a header line, ``{"netns_kit_ledger": FORMAT}``. Readers
survive whatever a crash or a stranger left: an empty file, a half-written
last line, garbage, lines they do not understand are skipped (what they
recorded is then proven, or not, by the objects' tags); a file of another
format is not read at all (:attr:`Contents.foreign`).
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import stat
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from netns_kit import shape
from netns_kit.command import Command
from netns_kit.owner import Owner

_counter = itertools.count(1)
#: the format this module writes and reads; files without a header are format 1 too
FORMAT = 1
_HEADER = "netns_kit_ledger"
#: the key of the last line a completed ``up`` writes (:meth:`Ledger.seal`)
_SEALED = "netns_kit_sealed"
_MARK_LINE = re.compile(rb'\{"seq":([0-9]+),"mark":"(ok|failed|skipped|undone|in-flight)"\}')
_NAME = re.compile(r"(.+)\.[0-9]+-[0-9]+\.jsonl")
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
            if self._file.tell() == 0:
                self._file.write(_encode({_HEADER: FORMAT}) + "\n")
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

    def seal(self, teardown: dict[str, Any]) -> None:
        """Write, last, how the changes recorded so far are undone at once (a completed
        ``up``: :mod:`netns_kit.ops.quickdown`). Trusted only while it stays the last line."""
        self._write([{_SEALED: FORMAT, "seq": self._seq, "teardown": teardown}])

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


@attrs.frozen
class Contents:
    """What :func:`load` made of a ledger file."""

    entries: tuple[Entry, ...] = ()
    #: the format a header names when it is not one this module reads (nothing read then)
    foreign: object = None
    #: lines that were not understood (torn by a crash, garbage) and were skipped
    skipped: int = 0


def load(path: Path) -> Contents:
    """The entries of a ledger file, with their last mark applied. Never fails on
    what the file holds (only on reading it: ``OSError``)."""
    entries: dict[int, Entry] = {}
    skipped = 0
    lines = [line for line in _read_regular(path).splitlines() if line.strip()]
    if lines and (header := _record(lines[0])) is not None and _HEADER in header:
        if header[_HEADER] != FORMAT:
            return Contents(foreign=header[_HEADER])
        lines = lines[1:]
    for line in lines:
        mark = _MARK_LINE.fullmatch(line)  # most lines: read without json
        if mark is not None:
            entry = entries.get(int(mark[1]))
            if entry is not None:
                entry.state = _MARKS[mark[2].decode()]
                continue
            skipped += 1
            continue
        record = _record(line)
        if record is not None and _SEALED in record:
            continue  # the teardown of what is above (read by sealed())
        if record is None or not _apply(record, entries):
            skipped += 1
    return Contents(tuple(entries[k] for k in sorted(entries)), skipped=skipped)


def sealed(path: Path) -> dict[str, Any] | None:
    """The teardown a completed ``up`` wrote last (:meth:`Ledger.seal`), when it is still
    the file's last line and the file is of this format; else None."""
    data = _read_regular(path)
    head, _, _ = data.partition(b"\n")
    lines = data.rstrip(b"\n").rsplit(b"\n", 1)
    if len(lines) < 2 or not lines[-1].startswith(b'{"' + _SEALED.encode()):
        return None
    header, record = _record(head), _record(lines[-1])
    if header is None or header.get(_HEADER) != FORMAT or record is None or record.get(_SEALED) != FORMAT:
        return None
    teardown = record.get("teardown")
    return teardown if isinstance(teardown, dict) else None


def command_of(data: object) -> Command | None:
    """The command a record names (:meth:`Command.to_json`), or None when it does not name one well-formed."""
    return _command(data)


def read(path: Path) -> list[Entry]:
    """The entries of a ledger file (see :func:`load`; none for a file of another format)."""
    return list(load(path).entries)


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a link, FIFO or device: a
    FIFO put there would block a reader forever); raises ``OSError`` otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as raw:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return raw.read()


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:  # torn by a crash while being written, garbage, not UTF-8
        return None
    return record if isinstance(record, dict) else None


def _apply(record: dict[str, Any], entries: dict[int, Entry]) -> bool:
    """Take ``record`` (an entry or a mark) into ``entries``; False if it is not one."""
    seq = record.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        return False
    if "do" in record:
        command = _command(record["do"])
        when = record.get("t")
        if command is None or not isinstance(when, int | float) or isinstance(when, bool):
            return False
        entries[seq] = Entry(seq, command, float(when), absent=record.get("absent") is True)
        return True
    mark = record.get("mark")
    if mark not in _MARKS or seq not in entries:
        return False
    entries[seq].state = _MARKS[mark]
    return True


def _command(data: object) -> Command | None:
    """The command a record names, or None when it does not name one well-formed."""
    if not isinstance(data, dict):
        return None
    argv, netns, undo = data.get("argv"), data.get("netns"), data.get("undo", ())
    if not isinstance(argv, list) or not argv or {*map(type, argv)} != {str}:
        return None
    if (netns is not None and not isinstance(netns, str)) or not isinstance(undo, list | tuple):
        return None
    codes = data.get("ok_codes", (0,))
    if not isinstance(codes, list | tuple) or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
        return None
    stdin = data.get("stdin")
    if stdin is not None and not isinstance(stdin, str):
        return None
    undone = []
    for u in undo:
        command = _command(u)
        if command is None:
            return None
        undone.append(command)
    try:
        return Command(
            tuple(argv),
            netns=netns,
            mutating=data.get("mutating", True) is not False,
            ok_codes=frozenset(codes),
            undo=tuple(undone),
            missing_ok=data.get("missing_ok") is True,
            stdin=stdin,
        )
    except (TypeError, ValueError):
        return None


def files(directory: Path) -> Iterator[tuple[Owner, Path]]:
    """Every ledger file in ``directory`` with its owner."""
    try:
        paths = sorted(directory.glob("*.jsonl"))
    except OSError:
        return
    for path in paths:
        # OWNER.PID-N.jsonl (Ledger.path); anything else is not a ledger of ours
        name = _NAME.fullmatch(path.name)
        if name is None:
            continue
        try:
            owner = Owner(name[1])
        except ValueError:
            continue
        yield owner, path


def created_by(command: Command) -> list[str | tuple[str, str | None]]:
    """What a command creates: a namespace name, or (link, netns) for each link
    ``ip link add name A ... [peer name B [netns NS]]`` makes."""
    read = shape.ip(command.argv)
    if read is None or read.options or read.verb != "add":
        return []
    args = read.args
    if read.object == "netns" and args:
        return [args[0]]
    if read.object != "link" or args[:1] != ("name",):
        return []
    made: list[str | tuple[str, str | None]] = [(args[1], command.netns)]
    if "peer" in args:
        rest = args[args.index("peer") + 1 :]
        if rest[:1] == ("name",) and len(rest) > 1:
            netns = rest[rest.index("netns") + 1] if "netns" in rest else command.netns
            made.append((rest[1], netns))
    return made
