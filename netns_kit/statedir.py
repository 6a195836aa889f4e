"""Where netns_kit keeps its state on this machine, and whether it may be trusted.

The state directory holds the write-ahead ledgers, the sysctl claims and the
CLI's sandbox record. It is, in this order:

- ``$NETNS_KIT_STATE_DIR`` if set (the CLI's sandbox record only; the ledgers of
  the machine itself stay in the default one);
- ``/run/netns_kit`` for root;
- ``$XDG_RUNTIME_DIR/netns_kit`` for any other user, or ``/tmp/netns_kit-UID``
  when ``XDG_RUNTIME_DIR`` is not set.

Whoever can write into it can steer netns_kit (swap ``sandbox.json`` and the next
command works in a namespace of their choosing; forge a ledger). So, as
OpenSSH's ``StrictModes`` does, it is trusted only when it is a real directory
(not a symbolic link) owned by this user and not writable by group or others,
and every directory above it is owned by this user or root and not writable by
others (unless sticky, as ``/tmp`` is). Inside a user namespace (a rootless
sandbox, ``unshare --user``) root's files show as owned by the overflow uid
(``/proc/sys/kernel/overflowuid``, 65534): there, directories *above* owned by it
are taken for root's, as the namespace cannot tell them apart; the directory
itself must still be this user's own. A missing directory in a place others
can write to (``/tmp``) is made at once, mode 0700, so that no one else can
take the name first. Anything else raises :class:`~netns_kit.errors.StateDirError`
saying how to fix it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from netns_kit.errors import SandboxError

#: the environment variable that moves the CLI's sandbox record
ENV = "NETNS_KIT_STATE_DIR"


class StateDirError(SandboxError):
    """A state directory is not safe to trust: not this user's own, writable by
    others, or a symbolic link. (A :class:`SandboxError`: the CLI exits 3.)"""


def default_dir() -> Path:
    """The state directory of this user on this machine (not checked)."""
    uid = os.geteuid()
    if uid == 0:
        return Path("/run/netns_kit")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "netns_kit"
    return Path("/tmp") / f"netns_kit-{uid}"


def ledger_dir() -> Path:
    """The ledger directory of the machine itself, checked (made only where others could)."""
    return checked(default_dir())


def state_dir(*, create: bool = False) -> Path:
    """The CLI's state directory (``$NETNS_KIT_STATE_DIR`` or the default), checked."""
    override = os.environ.get(ENV)
    path = Path(os.path.abspath(override)) if override else default_dir()
    return checked(path, create=create, env=bool(override))


def checked(path: Path, *, create: bool = False, env: bool = False) -> Path:
    """``path`` if it may be trusted (see the module's docstring); made when ``create``
    (and always when it is missing from a directory others can write to)."""
    path = Path(os.path.abspath(path))
    _check_above(path, env=env)
    try:
        _check_directory(path, env=env)
    except FileNotFoundError:
        if not (create or _others_can_write(path.parent)):
            return path  # no one else can make it: whoever writes first makes it
        _make(path, env=env)
    return path


def _mode() -> int:
    return 0o755 if os.geteuid() == 0 else 0o700


def _make(path: Path, *, env: bool) -> None:
    """Make ``path`` (and missing parents), then check it: made by someone else an
    instant before is fine only if it passes the same check."""
    missing: list[Path] = []
    for directory in (path, *path.parents):
        if os.path.lexists(directory):
            break
        missing.append(directory)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, _mode())
        except FileExistsError:
            pass
        _check_directory(directory, env=env)


def _check_directory(path: Path, *, env: bool) -> None:
    """The directory itself, opened without following a link (no lstat-then-open race)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise FileNotFoundError(error.errno, error.strerror, str(path)) from None
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            what = "a symbolic link" if os.path.islink(path) else "not a directory"
            raise StateDirError(_refusal(path, f"is {what}", f"remove it (rm {path})", env)) from None
        raise StateDirError(_refusal(path, f"cannot be opened ({error.strerror})", "check it", env)) from None
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    uid = os.geteuid()
    if info.st_uid != uid:
        raise StateDirError(
            _refusal(
                path,
                f"is owned by uid {info.st_uid}, not by you (uid {uid})",
                f"remove it (as its owner or root: rm -rf {path})",
                env,
            )
        )
    if info.st_mode & 0o022:
        raise StateDirError(
            _refusal(
                path,
                f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})",
                f"chmod go-w {path}",
                env,
            )
        )


def _check_above(path: Path, *, env: bool) -> None:
    """Every directory above: owned by this user or root, not writable by others unless sticky."""
    uid = os.geteuid()
    trusted = {0, uid, *_outside_owners()}
    real = Path(os.path.realpath(path.parent))
    for directory in (real, *real.parents):
        try:
            info = os.stat(directory)
        except FileNotFoundError:
            continue  # made by _make, with our own mode
        if info.st_uid not in trusted:
            raise StateDirError(
                _refusal(path, f"is inside {directory}, owned by uid {info.st_uid}", "use a directory of your own", env)
            )
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise StateDirError(
                _refusal(
                    path,
                    f"is inside {directory}, writable by group or others "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}, not sticky)",
                    f"chmod go-w {directory}, or use another directory",
                    env,
                )
            )


def _outside_owners(proc: Path = Path("/proc")) -> set[int]:
    """The overflow uid when this process is in a user namespace other than the
    machine's (where every owner the namespace does not map, root included, shows
    as that uid); nothing in the machine's own."""
    try:
        mapping = (proc / "self" / "uid_map").read_text().split()
        if mapping == ["0", "0", "4294967295"]:
            return set()
        return {int((proc / "sys" / "kernel" / "overflowuid").read_text())}
    except (OSError, ValueError):
        return set()


def _others_can_write(directory: Path) -> bool:
    try:
        info = os.stat(directory)
    except OSError:
        return False
    return bool(info.st_mode & 0o022)


def _refusal(path: Path, problem: str, fix: str, env: bool) -> str:
    where = f"${ENV}" if env else "the netns_kit state directory"
    alternative = "" if env else f", or set {ENV} to a directory of your own (mode 0700)"
    return (
        f"{where} {path} {problem}: netns_kit does not trust it (anyone who can write there "
        f"could steer netns_kit into their own namespaces); {fix}{alternative}"
    )
