"""What runs in this machine's namespaces, read from ``/proc`` without starting a process."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path


def netns_pids(paths: Mapping[str, Path], proc: Path = Path("/proc")) -> dict[str, list[int]]:
    """The processes in each named namespace, by ONE scan of ``/proc``.

    ``paths`` maps a name to its namespace file (``/run/netns/NAME``, or the
    same seen from outside a sandbox); a process is in it when its
    ``/proc/PID/ns/net`` is the same inode. Names whose file is gone are left out.
    """
    wanted: dict[tuple[int, int], str] = {}
    for name, path in paths.items():
        try:
            st = path.stat()
        except OSError:
            continue
        wanted[(st.st_dev, st.st_ino)] = name
    found: dict[str, list[int]] = {name: [] for name in wanted.values()}
    if not wanted:
        return found
    me = os.getpid()
    for pid in pids(proc):
        if pid == me:
            continue
        try:
            st = os.stat(proc / str(pid) / "ns" / "net")
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        owner = wanted.get((st.st_dev, st.st_ino))
        if owner is not None:
            found[owner].append(pid)
    return found


def devices(process: Path) -> set[str] | None:
    """The network devices of the namespace ``process`` (``/proc/PID``) is in, from
    its ``net/dev``; None when that cannot be read."""
    try:
        text = (process / "net" / "dev").read_text()
    except OSError:
        return None
    return {line.split(":", 1)[0].strip() for line in text.splitlines()[2:] if ":" in line}


def pids(proc: Path = Path("/proc")) -> Iterable[int]:
    """Every process id under ``proc``, as it is listed (a process may be gone by the time it is read)."""
    for entry in os.scandir(proc):
        if entry.name.isdigit():
            yield int(entry.name)
