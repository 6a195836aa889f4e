"""Starting a process and waiting for it, fast; and finding the processes in namespaces.

This is the one place where netns_kit starts a process it waits for.
``subprocess`` (vfork + exec on Linux) costs ~0.9 ms per process here, the
``sh`` package ~6.8 ms (it sets up threads and a pty per call); with a few
hundred ``ip -batch`` processes per topology that difference is most of the
time (see CHANGELOG.md). ``ShExecutor(runner="sh")`` keeps the old way.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .errors import CommandError, binary_not_found


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str, str]:
    """Run ``argv`` (never through a shell); return (exit code, stdout, stderr).

    The command gets a process group of its own, so a Ctrl-C in the terminal
    reaches this process only and never kills a command half-way; if this
    process is interrupted while waiting (Ctrl-C, SIGTERM), the command is
    left to finish first, so an undo never runs before the change it undoes
    has landed. A command killed by a signal has a negative exit code.
    """
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            process_group=0,
        )
    except FileNotFoundError:
        raise binary_not_found(argv) from None
    try:
        stdout, stderr = process.communicate(input.encode() if input is not None else None, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        process.communicate()
        raise CommandError(argv, -9, "", "", f"timed out after {timeout} s") from exc
    except BaseException:
        with contextlib.suppress(Exception):
            process.communicate(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
    return process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")


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
