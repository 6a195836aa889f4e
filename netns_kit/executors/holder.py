"""The sandbox ``netns-kit --sandbox`` keeps between commands.

``netns-kit up --sandbox FILE`` starts a detached sandbox holder (it outlives
the command) and records it in ``sandbox.json`` in the state directory
(:func:`netns_kit.statedir.state_dir`: ``$NETNS_KIT_STATE_DIR``, else
``/run/netns_kit`` for root, else ``$XDG_RUNTIME_DIR/netns_kit`` or
``/tmp/netns_kit-UID``; trusted only when it is the user's own and not writable
by others). ``down``, ``status``, ``cleanup`` and ``doctor`` with ``--sandbox``
find it there.

A record is believed only as far as the process proves it: a record that is
damaged (empty, half written, garbage, another version), whose process is gone
or is another process that reused the pid, or that names a process that is not
that very holder (:func:`netns_kit.executors.sandbox.verify_holder`: its token, pid and
start time) is dropped, with a warning when a holder may be left behind.

A holder lives exactly as long as it holds something. Every command works in
it inside :func:`session`, which holds a shared lock on the holder (a file on
its private ``/run``) while the command runs; at the end, the last command out
stops a holder that holds nothing (no namespace, link, rule or ledger), whether
the command succeeded, failed, was interrupted or made nothing. A holder
started by a command that dies before recording it stops by itself
(:meth:`Sandbox.start`'s ``keep_later``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator

from netns_kit.errors import NetnsKitError, SandboxError
from netns_kit.executors.holder_record import (
    RECORD,
    VERSION,
    Record,
    drop_record,
    read_record,
    record_path,
    state_dir,
    write_record,
)
from netns_kit.executors.sandbox import MARKER, Sandbox
from netns_kit.owner import Owner, proc_stat, start_time

__all__ = ["RECORD", "VERSION", "Record", "find", "read_record", "record_path", "session", "state_dir"]

#: tells whether a sandbox holds nothing (no namespace, link, rule or ledger): the
#: caller's (:func:`netns_kit.ops.inventory.holds_nothing` looks at everything)
Empty = Callable[[Sandbox], bool]

log = logging.getLogger("netns_kit")


def find(owner: Owner | None = None) -> Sandbox | None:
    """The recorded sandbox, attached (None when there is none, or it is gone)."""
    record = read_record()
    if record is None:
        return None
    if start_time(record.pid) != record.start:
        log.debug("dropping the record of sandbox holder %s: the process is gone", record.pid)
        drop_record(record.pid)
        return None
    try:
        sandbox = Sandbox.attach(record.pid, rootless=record.rootless, token=record.token)
    except SandboxError as error:
        log.warning("dropping the sandbox record %s: %s", record_path(), error)
        drop_record(record.pid)
        return None
    if owner is not None:
        sandbox.owner = owner
    return sandbox


def start(owner: Owner | None = None) -> Sandbox:
    """Start a detached sandbox holder and record it.

    The holder is kept (it outlives this process) only once the record is written:
    if this process dies first, the holder stops by itself.
    """
    with _lifecycle(create=True):
        return _start(owner)


def _start(owner: Owner | None) -> Sandbox:
    sandbox = Sandbox(owner=owner).start(detached=True, keep_later=True)
    try:
        started = start_time(sandbox.pid)
        assert started is not None, "the holder said it is ready"
        write_record(Record(sandbox.pid, started, sandbox.token, sandbox.rootless))
        sandbox.keep()
    except BaseException:
        sandbox.close()
        raise
    log.debug("sandbox holder %s started and recorded in %s", sandbox.pid, record_path())
    return sandbox


def find_or_start(owner: Owner | None = None) -> Sandbox:
    with _lifecycle(create=True):
        return find(owner) or _start(owner)


def require(owner: Owner | None = None) -> Sandbox:
    sandbox = find(owner)
    if sandbox is None:
        raise SandboxError(
            f"no sandbox is running (none recorded in {record_path()}): `netns-kit up --sandbox FILE` starts one"
        )
    return sandbox


@contextlib.contextmanager
def session(
    owner: Owner | None = None,
    *,
    start: bool = False,
    on_stop: Callable[[int], None] | None = None,
    empty: Empty,
) -> Iterator[Sandbox]:
    """The recorded sandbox for one command (started when ``start`` and none runs).

    While the block runs, the holder cannot be stopped by another command. When it
    ends (in any way: done, an error, Ctrl-C), the holder is stopped if it holds
    nothing (``empty(sandbox)`` says so) and no other command is using it; then
    ``on_stop(pid)`` is called.
    Without ``start``, no sandbox running raises :class:`SandboxError`.
    """
    with _lifecycle(create=start):
        sandbox = find(owner)
        if sandbox is None:
            if not start:
                raise SandboxError(
                    f"no sandbox is running (none recorded in {record_path()}): "
                    "`netns-kit up --sandbox FILE` starts one"
                )
            sandbox = _start(owner)
        pid = sandbox.pid
        try:
            _use(pid)
        except OSError as error:
            raise SandboxError(f"sandbox holder {pid} stopped while starting to use it ({error.strerror})") from None
    try:
        yield sandbox
    except BaseException:
        # never hides the error on its way out; a second Ctrl-C does stop this
        try:
            stopped = stop_if_empty(sandbox, empty)
        except Exception as error:  # the first error is the one to see
            log.debug("sandbox holder %s not checked: %s", pid, error)
            stopped = False
        if stopped and on_stop is not None:
            with contextlib.suppress(Exception):
                on_stop(pid)
        raise
    if stop_if_empty(sandbox, empty) and on_stop is not None:
        on_stop(pid)


def stop(sandbox: Sandbox, *, timeout: float = 10.0) -> None:
    """Stop a recorded holder (SIGTERM: it kills what runs inside) and drop the record."""
    pid = sandbox.pid
    started = start_time(pid)
    if started is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while started is not None and start_time(pid) == started and not _zombie(pid):
        if time.monotonic() >= deadline:
            raise SandboxError(f"sandbox holder {pid} did not stop within {timeout:g} s: kill -9 {pid}")
        time.sleep(0.02)
    drop_record(pid)
    _close(pid)


def stop_if_empty(sandbox: Sandbox, empty: Empty) -> bool:
    """This process is done with the recorded holder: stop it when it holds nothing
    and no other command (of any process) is using it; True if it was stopped. A
    holder already gone has its record dropped (True). Anything else leaves it
    running (False)."""
    pid = sandbox.pid
    with _lifecycle(create=False):
        if not _leave(pid):
            return False
        try:
            try:
                current = read_record()
            except SandboxError:
                current = None
            if current is None or current.pid != pid:
                return False  # not (any more) the recorded holder: not ours to stop
            if start_time(pid) != current.start or _zombie(pid):
                drop_record(pid)
                return True
            try:
                nothing = empty(sandbox)
            except NetnsKitError as error:
                log.debug("sandbox holder %s left running: cannot tell what it holds (%s)", pid, error)
                return False
            if not nothing:
                return False
            stop(sandbox)
            return True
        finally:
            _close(pid)


# -- locks ------------------------------------------------------------------------
#: holder pid -> [the descriptor of this process's shared lock on its marker, how many
#: sessions of this process use it] (see _use)
_USERS: dict[int, list[int]] = {}


@contextlib.contextmanager
def _lifecycle(*, create: bool) -> Iterator[None]:
    """An exclusive lock on the state directory: finding, starting and stopping the
    holder are one step each, never two at once."""
    directory = state_dir(create=create)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        yield  # no directory: no record either, nothing to find or stop
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _open_marker(pid: int) -> int:
    return os.open(f"/proc/{pid}/root{MARKER}", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _use(pid: int) -> None:
    """Take a shared lock on the holder's marker (on its private /run): a command is
    using it. The lock goes with the holder, no file is left anywhere."""
    users = _USERS.get(pid)
    if users is not None:
        users[1] += 1
        return
    fd = _open_marker(pid)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _USERS[pid] = [fd, 1]


def _leave(pid: int) -> bool:
    """One use of this process ends; True when no other use (here or in another
    process) remains, this process's lock then exclusive until :func:`_close`."""
    users = _USERS.get(pid)
    if users is not None and users[1] > 1:
        users[1] -= 1
        return False
    try:
        if users is None:
            users = _USERS[pid] = [_open_marker(pid), 1]
        fcntl.flock(users[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _close(pid)
        return False
    except OSError:
        return True  # the holder is gone: nothing to share
    return True


def _close(pid: int) -> None:
    users = _USERS.pop(pid, None)
    if users is not None:
        os.close(users[0])


def _zombie(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is None or fields[0] == "Z"
