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
import errno
import fcntl
import json
import logging
import os
import re
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from netns_kit import statedir
from netns_kit.errors import NetnsKitError, SandboxError
from netns_kit.executors.sandbox import MARKER, Sandbox
from netns_kit.owner import Owner, proc_stat, start_time
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


def _write_record(record: Record) -> None:
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


def _drop_record(pid: int) -> None:
    """Remove the record if it still names ``pid``."""
    path = record_path()
    try:
        data = json.loads(path.read_text())
        named = data.get("pid") if isinstance(data, dict) else None
    except (OSError, ValueError):
        named = None
    if named == pid:
        path.unlink(missing_ok=True)


def find(owner: Owner | None = None) -> Sandbox | None:
    """The recorded sandbox, attached (None when there is none, or it is gone)."""
    record = read_record()
    if record is None:
        return None
    if start_time(record.pid) != record.start:
        log.debug("dropping the record of sandbox holder %s: the process is gone", record.pid)
        _drop_record(record.pid)
        return None
    try:
        sandbox = Sandbox.attach(record.pid, rootless=record.rootless, token=record.token)
    except SandboxError as error:
        log.warning("dropping the sandbox record %s: %s", record_path(), error)
        _drop_record(record.pid)
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
        _write_record(Record(sandbox.pid, started, sandbox.token, sandbox.rootless))
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
) -> Iterator[Sandbox]:
    """The recorded sandbox for one command (started when ``start`` and none runs).

    While the block runs, the holder cannot be stopped by another command. When it
    ends (in any way: done, an error, Ctrl-C), the holder is stopped if it holds
    nothing and no other command is using it; then ``on_stop(pid)`` is called.
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
            stopped = stop_if_empty(sandbox)
        except Exception as error:  # the first error is the one to see
            log.debug("sandbox holder %s not checked: %s", pid, error)
            stopped = False
        if stopped and on_stop is not None:
            with contextlib.suppress(Exception):
                on_stop(pid)
        raise
    if stop_if_empty(sandbox) and on_stop is not None:
        on_stop(pid)


def is_empty(sandbox: Sandbox) -> bool:
    """True when the sandbox holds no namespace, link, rule or ledger.

    The cheapest signs are looked at first, and the first one found answers: a
    ledger (files, no process), then a namespace (one ``ip netns list``); only a
    sandbox with neither is scanned whole (its host's links and rules). Every
    ``--sandbox`` command ends with this check: on a W(200) sandbox the whole scan
    took 6-14 s, the first sign a few milliseconds.
    """
    from netns_kit.command import query
    from netns_kit.ops import inventory

    if inventory.read_ledgers(sandbox):
        return False
    listing = sandbox.run(query("ip", "-j", "netns", "list"), check=False)
    if listing.ok and listing.json():
        return False
    found = inventory.scan(sandbox)
    return not (found.namespaces or found.links or found.rules or found.ledgers)


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
    _drop_record(pid)
    _close(pid)


def stop_if_empty(sandbox: Sandbox) -> bool:
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
                _drop_record(pid)
                return True
            try:
                empty = is_empty(sandbox)
            except NetnsKitError as error:
                log.debug("sandbox holder %s left running: cannot tell what it holds (%s)", pid, error)
                return False
            if not empty:
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
