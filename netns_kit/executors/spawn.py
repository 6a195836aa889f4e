"""The one function that starts a process (:func:`start`), and running one to its end (:func:`run`).

Every process netns_kit starts is started by :func:`start`: the commands an
executor runs and waits for (:func:`run`), background processes
(:class:`~netns_kit.executors.process.Process`) and the sandbox's holder. It
finds the programs where distributions install them
(:func:`netns_kit.executors.binaries.resolve`) and says so when one is not
installed. ``subprocess`` (vfork + exec on Linux) costs ~0.9 ms per process
here, the ``sh`` package ~6.8 ms (it sets up threads and a pty per call); with
a few hundred ``ip -batch`` processes per topology that difference is most of
the time. ``runner="sh"`` (``ShExecutor(runner="sh")``) keeps the old way,
through the same door. Two more things keep each process cheap: its stdin,
stdout and stderr are in-memory files, not pipes (no select loop while it
runs), and a process for a namespace is started inside it by a thread that
entered it (:func:`start_inside`), not through ``nsenter``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from netns_kit.errors import CommandError, binary_not_found
from netns_kit.executors import binaries, shrunner

#: how a process is started: ``subprocess`` (the default) or the ``sh`` package
RUNNERS = ("subprocess", "sh")


def start(argv: Sequence[str], *, runner: str = "subprocess", path: str | None = None, **options: Any) -> Any:
    """Start ``argv`` (never through a shell) and return the running process: a
    :class:`subprocess.Popen` given ``options``, or with ``runner="sh"`` an ``sh``
    running command given ``options`` (``_bg=True`` ...).

    The programs run by absolute path, found on ``path`` (default ``PATH``) or
    where distributions install them (:func:`netns_kit.executors.binaries.resolve`):
    the first word and the program each wrapper in it runs. One that is found
    nowhere raises :class:`~netns_kit.errors.BinaryNotFoundError` naming ``argv``
    as given (nothing was started).
    """
    started = binaries.resolve(argv, path=path)
    if runner == "sh":
        sh = shrunner.sh_package()
        try:
            program = sh.Command(started[0])
        except sh.CommandNotFound:
            raise binary_not_found(argv) from None
        return program(*started[1:], **options)
    try:
        return subprocess.Popen(list(started), **options)
    except FileNotFoundError:
        raise binary_not_found(argv) from None


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    netns: Path | None = None,
    runner: str = "subprocess",
) -> tuple[int, str, str]:
    """Run ``argv`` (never through a shell); return (exit code, stdout, stderr).

    The command gets a process group of its own, so a Ctrl-C in the terminal
    reaches this process only and never kills a command half-way; if this
    process is interrupted while waiting (Ctrl-C, SIGTERM), the command is
    left to finish first, so an undo never runs before the change it undoes
    has landed. A command killed by a signal has a negative exit code.

    Its stdin, stdout and stderr are in-memory files (``memfd_create``), not
    pipes: the input is written before it starts and the output read after it
    exits, so nothing is pumped through a select loop while it runs (~0.2 ms
    of CPU less per process, which the few hundred batch processes of a large
    topology spend while the CPUs are busy running them).

    With ``netns`` (a network namespace's file) the command starts inside
    that namespace, without a process to enter it (see :func:`start_inside`);
    :class:`NotEntered` when it cannot be entered (nothing was started).

    The programs run by absolute path, found on ``PATH`` (``env``'s when given)
    (see :func:`start`). Errors show ``argv`` as given. ``runner="sh"`` runs it
    with the ``sh`` package instead (not inside a namespace).
    """
    path = env.get("PATH") if env is not None else None
    if runner == "sh":
        if netns is not None:
            raise ValueError("only the subprocess runner starts a process inside a namespace")
        return shrunner.run(argv, input=input, timeout=timeout, env=env, path=path, start=start)
    files = [_scratch("stdin", input)] if input is not None else []
    try:
        stdout, stderr = _scratch("stdout"), _scratch("stderr")
        files += [stdout, stderr]

        def begin() -> subprocess.Popen[bytes]:
            stdin = files[0] if input is not None else subprocess.DEVNULL
            popen: subprocess.Popen[bytes] = start(
                argv, path=path, stdin=stdin, stdout=stdout, stderr=stderr, env=env, process_group=0
            )
            return popen

        if netns is not None:
            process = start_inside(netns, begin)
        else:
            _come_back()
            process = begin()
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.wait()
            raise CommandError(argv, -9, "", "", f"timed out after {timeout} s") from exc
        except BaseException:
            with contextlib.suppress(Exception):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()
                process.wait()
            raise
        return returncode, _text(stdout), _text(stderr)
    finally:
        for fd in files:
            os.close(fd)


def _scratch(name: str, text: str | None = None) -> int:
    """An unnamed in-memory file (its fd), holding ``text`` from offset 0."""
    try:
        fd = os.memfd_create(f"netns_kit-{name}", os.MFD_CLOEXEC)
    except OSError:  # no memfd (seccomp, an old kernel): an unlinked temporary file
        with tempfile.TemporaryFile() as unnamed:
            fd = os.dup(unnamed.fileno())
    if text:
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
        os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _text(fd: int) -> str:
    """What a process wrote into the scratch file ``fd``."""
    size = os.fstat(fd).st_size
    chunks = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode(errors="replace")


T = TypeVar("T")


class NotEntered(OSError):
    """A network namespace could not be entered (its file is gone, or not ours to enter)."""


def start_inside(netns: Path, start: Callable[[], T]) -> T:
    """Call ``start`` (which starts a process) inside the network namespace file ``netns``.

    ``setns`` moves only the calling thread, and a process is born in the
    namespaces of the thread that starts it: so the thread enters the
    namespace, starts the process and goes back. This saves the ``nsenter``
    process each ``ip -batch`` of a namespace would otherwise cost (~1 ms of
    wall time and ~1.4 ms of CPU each here). Raises :class:`NotEntered` when
    the namespace cannot be entered (nothing was started then).

    A signal handler (Ctrl-C) could interrupt the main thread between going
    in and coming back; Python runs those on the main thread only, so there
    a short-lived thread goes in instead and never comes back. A worker
    thread that could not come back (setns failing with ENOMEM) is marked:
    every later :func:`run` on it first tries again, and raises
    ``RuntimeError`` without starting anything while it still cannot.
    """
    if threading.current_thread() is threading.main_thread():
        return _start_on_a_new_thread(netns, start)
    _come_back()
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise NotEntered(error.errno, f"cannot tell which network namespace to go back to: {error}") from None
    try:
        _enter(netns)
    except BaseException:
        os.close(home)
        raise
    try:
        return start()
    finally:
        _local.home = home
        # the process started (or not) where it should; if the thread cannot go back now,
        # the next start on it tries again first and refuses while it still cannot
        with contextlib.suppress(RuntimeError):
            _come_back()


#: per thread: the namespace it must go back to (an open fd), while it has not
_local = threading.local()


def _come_back() -> None:
    home = getattr(_local, "home", None)
    if home is None:
        return
    try:
        _setns(home)
    except OSError as error:
        raise RuntimeError(f"this thread cannot go back to its network namespace: {error}") from None
    _local.home = None
    os.close(home)


def _enter(netns: Path) -> None:
    try:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(fd)
        finally:
            os.close(fd)
    except OSError as error:
        raise NotEntered(error.errno, f"cannot enter {netns}: {error.strerror}") from None


def _start_on_a_new_thread(netns: Path, start: Callable[[], T]) -> T:
    outcome: list[T | BaseException] = []

    def inside() -> None:
        try:
            _enter(netns)
            outcome.append(start())
        except BaseException as error:  # handed to the caller's thread
            outcome.append(error)

    thread = threading.Thread(target=inside, name="netns_kit-enter")
    thread.start()
    thread.join()
    found = outcome[0]
    if isinstance(found, BaseException):
        raise found
    return found


#: setns(2)'s flag for a network namespace
_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    """Move the calling thread into the network namespace open as ``fd``."""
    setns = getattr(os, "setns", None)  # Python >= 3.12
    if setns is not None:
        setns(fd, _CLONE_NEWNET)
        return
    if _libc().setns(fd, _CLONE_NEWNET) != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def forget_pipe(stream: IO[Any]) -> None:
    """In a forked child: let go of a parent's pipe to a holder, so that the holder still
    sees end-of-file when the parent dies. The descriptor becomes /dev/null in place: no
    lock taken (another thread may have held the file's), no number freed for reuse
    before the file object closes it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        os.dup2(devnull, stream.fileno(), inheritable=False)
        os.close(devnull)
    except (OSError, ValueError):
        pass
