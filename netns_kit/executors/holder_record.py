"""The record of the sandbox ``netns-kit --sandbox`` keeps between commands: ``sandbox.json``.

A record is believed only as far as the process proves it (see
:mod:`netns_kit.executors.holder`): a record that is damaged (empty, half written,
garbage, another version) is dropped, with a warning when a holder may be left
behind. The file must be a regular file of this user, not writable by others.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
from pathlib import Path

import attrs

from netns_kit import statedir
from netns_kit.errors import SandboxError
from netns_kit.owner import start_time
from netns_kit.statedir import StateDirError

log = logging.getLogger("netns_kit")

RECORD = "sandbox.json"
#: the format of the record; a record of another version is not believed
VERSION = 1

_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def state_dir(*, create: bool = False) -> Path:
    """Where the CLI keeps its sandbox record (checked, see :mod:`netns_kit.statedir`)."""
    return statedir.state_dir(create=create)


def record_path() -> Path:
    return state_dir() / RECORD


@attrs.frozen
class Record:
    """What ``sandbox.json`` says: which holder, and how to know it is that one."""

    pid: int
    start: str
    token: str
    rootless: bool

    @classmethod
    def parse(cls, text: str) -> Record:
        """The record in ``text``; ValueError for anything but a whole record of this version."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}, not {VERSION}")
        pid, start, token, rootless = (data.get(key) for key in ("pid", "start", "token", "rootless"))
        if type(pid) is not int or pid <= 0:
            raise ValueError(f"pid {pid!r}")
        if not isinstance(start, str) or not start.isdigit():
            raise ValueError(f"start {start!r}")
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise ValueError("token")
        if type(rootless) is not bool:
            raise ValueError(f"rootless {rootless!r}")
        return cls(pid, start, token, rootless)

    def dumps(self) -> str:
        data = {"version": VERSION, "pid": self.pid, "start": self.start, "token": self.token}
        return json.dumps({**data, "rootless": self.rootless}) + "\n"


def read_record() -> Record | None:
    """The record, or None when there is none; a damaged one is dropped (with a warning).

    The file must be a regular file of this user, not writable by others, not a
    link (:class:`StateDirError` otherwise: someone else put it there).
    """
    path = record_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise StateDirError(
                f"{path} is a symbolic link: netns_kit does not trust it; remove it (rm {path})"
            ) from None
        raise SandboxError(f"cannot read the sandbox record {path}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            raise StateDirError(
                f"{path} is not a file of yours that only you can write (uid {info.st_uid}, "
                f"mode {stat.S_IMODE(info.st_mode):04o}): netns_kit does not trust it; remove it (rm {path})"
            )
        data = file.read(4096)
    try:
        return Record.parse(data.decode())
    except (ValueError, UnicodeDecodeError) as error:
        _drop_damaged(path, data, error)
        return None


def _drop_damaged(path: Path, data: bytes, error: Exception) -> None:
    pid = re.search(rb'"pid"\s*:\s*(\d+)', data)
    left = int(pid[1]) if pid else None
    if left is not None and start_time(left) is not None:
        log.warning(
            "the sandbox record %s is damaged (%s): dropped; a sandbox holder may be left "
            "running as pid %s (check it, stop it with kill %s)",
            path,
            error,
            left,
            left,
        )
    else:
        log.warning("the sandbox record %s is damaged (%s): dropped", path, error)
    path.unlink(missing_ok=True)


def write_record(record: Record) -> None:
    """Write the record atomically (a temporary file of this process, renamed)."""
    directory = state_dir(create=True)
    tmp = directory / f".{RECORD}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(record.dumps())
        tmp.replace(directory / RECORD)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def drop_record(pid: int) -> None:
    """Remove the record if it still names ``pid``."""
    path = record_path()
    try:
        data = json.loads(path.read_text())
        named = data.get("pid") if isinstance(data, dict) else None
    except (OSError, ValueError):
        named = None
    if named == pid:
        path.unlink(missing_ok=True)
