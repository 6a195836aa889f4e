"""The files of the sysctl claims: the one lock, tidying, reading a value, a claim's name
(see :mod:`netns_kit.lifecycle.sysctl`)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

#: the most of a claim file read: a value is short
_MOST = 256

#: ``claim.OWNER.PID-N`` (a process), ``claim.OWNER.script`` (a printed script)
_CLAIM = re.compile(r"claim\.([A-Za-z0-9_.-]{1,64})\.(?:script|[0-9]{1,10}-[0-9]{1,20})")


def read_value(path: Path) -> tuple[str | None, str | None]:
    """``(value, None)`` read from ``path``, ``(None, None)`` when there is none, or
    ``(None, what is wrong)`` when it cannot be read as text."""
    try:
        with open(path, "rb") as file:
            data = file.read(_MOST + 1)
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        return None, "is a directory"
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None, "holds bytes that are not text"
    if len(data) > _MOST:
        return None, f"holds more than {_MOST} bytes"
    return text.strip(), None


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the claims lock of ledger directory ``directory`` (made if missing).

    ``flock`` on the directory itself: nothing to leave behind, and no lock file
    that could be removed while someone waits on it. Should the directory be
    replaced meanwhile, the lock is taken again on the new one.
    """
    while True:
        directory.mkdir(mode=0o755 if os.geteuid() == 0 else 0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(directory))
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)


def tidy(path: Path, root: Path) -> None:
    """Remove ``path`` and the directories above it, up to ``root`` (not included), as
    long as they are empty (call it locked: a claimer makes them under the same lock)."""
    with contextlib.suppress(FileNotFoundError):
        (path / ".lock").unlink()  # the per-key lock file of versions before 0.2
    while path != root and root in path.parents:
        try:
            path.rmdir()
        except FileNotFoundError:
            pass
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return
            raise
        path = path.parent


def claim_owner(name: str) -> str | None:
    """The owner id in a claim file's name (``claim.OWNER.PID-N``, ``claim.OWNER.script``),
    or None when the name is no claim of any version."""
    found = _CLAIM.fullmatch(name)
    return found.group(1) if found is not None else None


def owner_of(claim: Path) -> str:
    """The owner id in the name of ``claim`` (a file :meth:`Claims.files` listed)."""
    owner = claim_owner(claim.name)
    if owner is None:
        raise ValueError(f"{claim}: not a claim file")
    return owner
