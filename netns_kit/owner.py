"""Who owns what netns_kit creates: a process, named by pid and start time."""

from __future__ import annotations

import os
import re
from typing import ClassVar

import attrs

from netns_kit.errors import ValidationError

TAG_PREFIX = "netns_kit:"
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _valid_id(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _ID.match(value):
        raise ValidationError("Owner.id", value, "must be 1-64 characters from [A-Za-z0-9_.-]")


def proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name, from field 3 (state)
    on, or None if the process is gone. The name is skipped by its LAST ``)``: it may
    hold spaces and parentheses."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            data = stat.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None if gone."""
    fields = proc_stat(pid)
    return fields[19] if fields is not None else None


@attrs.frozen
class Owner:
    """An owner id: ``PID.STARTTIME`` for a process, or any other word (``dry-run``).

    Its :attr:`tag` goes on everything netns_kit creates: interface aliases,
    iptables comments, ledger file names.
    """

    id: str = attrs.field(validator=_valid_id)

    _cache: ClassVar[dict[int, Owner]] = {}

    @classmethod
    def current(cls) -> Owner:
        """The owner of this process (recomputed after a fork)."""
        pid = os.getpid()
        owner = cls._cache.get(pid)
        if owner is None:
            owner = cls._cache[pid] = cls.of_process(pid)
        return owner

    @classmethod
    def of_process(cls, pid: int) -> Owner:
        start = start_time(pid)
        if start is None:
            raise ProcessLookupError(pid)
        return cls(f"{pid}.{start}")

    @classmethod
    def dry_run(cls) -> Owner:
        return cls("dry-run")

    @classmethod
    def from_tag(cls, tag: str) -> Owner | None:
        """The owner named by a tag, or None if it is not one of ours."""
        if not tag.startswith(TAG_PREFIX):
            return None
        try:
            return cls(tag[len(TAG_PREFIX) :])
        except ValueError:
            return None

    @property
    def tag(self) -> str:
        return TAG_PREFIX + self.id

    @property
    def pid(self) -> int | None:
        head, _, start = self.id.partition(".")
        return int(head) if head.isdigit() and start.isdigit() else None

    def is_alive(self) -> bool:
        """True while the owning process runs (a non-process owner is never alive)."""
        pid = self.pid
        if pid is None:
            return False
        return start_time(pid) == self.id.partition(".")[2]
