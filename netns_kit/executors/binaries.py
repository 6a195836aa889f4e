"""Finding the programs netns_kit runs, where distributions install them.

An ordinary user's login shell on Debian has ``PATH=/usr/local/bin:/usr/bin:/bin``
(``/etc/profile``, ``ENV_PATH`` in ``/etc/login.defs``): no ``/usr/sbin``, where
``iptables``, ``iptables-restore``, ``sysctl`` and ``tc`` are. A rootless user
needs them all the same (inside a sandbox they act on the sandbox's network).
So every program is looked for on ``PATH`` first, then in :data:`SYSTEM_DIRS`
(:func:`which`), and every process netns_kit starts runs its programs by
absolute path (:func:`resolve`): the first word, and the program each wrapper
runs in turn (``nsenter ... -- PROG``, ``unshare ... PROG``, ``env ... PROG``,
``ip netns exec NS PROG``), since those look on their own ``PATH``.

This happens only where an argv becomes a process (:func:`netns_kit.executors.spawn.run`,
the ``sh`` runner, :meth:`netns_kit.executors.process.Process.start`, the sandbox's holder):
printed scripts, logs and errors keep the bare names, as a user would type them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

#: where distributions install system programs; searched after ``PATH``, in this order
SYSTEM_DIRS: tuple[str, ...] = ("/usr/sbin", "/sbin", "/usr/local/sbin")

#: (name, PATH, SYSTEM_DIRS) -> where it was found (only found ones: a program
#: installed later is found then)
_found: dict[tuple[str, str, tuple[str, ...]], str] = {}


def search_path(path: str | None = None) -> list[str]:
    """The directories searched, in order: ``path`` (default: this process's ``PATH``),
    then each of :data:`SYSTEM_DIRS` not in it. Empty and relative entries of
    ``PATH`` are left out (they name the working directory of the moment)."""
    if path is None:
        path = os.environ.get("PATH", os.defpath)
    dirs: list[str] = []
    for directory in [*path.split(os.pathsep), *SYSTEM_DIRS]:
        if directory.startswith("/") and directory not in dirs:
            dirs.append(directory)
    return dirs


def which(name: str, *, path: str | None = None) -> str | None:
    """The absolute path of program ``name`` (on ``path``, default ``PATH``, then in
    :data:`SYSTEM_DIRS`), or None when it is nowhere. A name with a ``/`` is taken
    as it is (None when it is not an executable file). Found paths are cached per
    ``PATH``; symlinks are kept as found (``/usr/sbin/iptables`` goes through
    ``/etc/alternatives``, which a sandbox may point elsewhere)."""
    if "/" in name:
        return name if _executable(name) else None
    if not name:
        return None
    if path is None:
        path = os.environ.get("PATH", os.defpath)
    key = (name, path, SYSTEM_DIRS)
    found = _found.get(key)
    if found is not None:
        return found
    for directory in search_path(path):
        candidate = os.path.join(directory, name)
        if _executable(candidate):
            _found[key] = candidate
            return candidate
    return None


def _which_cached(name: str, path: str) -> str | None:
    found = _found.get((name, path, SYSTEM_DIRS))
    return found if found is not None else which(name, path=path)


def forget() -> None:
    """Forget every path found (after installing or moving programs in this process's lifetime)."""
    _found.clear()


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def resolve(argv: Sequence[str], *, path: str | None = None) -> tuple[str, ...]:
    """``argv`` with its program, and the program each wrapper in it runs, by absolute path.

    ``("nsenter", "--target=7", "--net", "--", "ip", "netns", "exec", "red", "env",
    "-C", "/srv", "iptables-save")`` becomes ``("/usr/bin/nsenter", ..., "--",
    "/usr/bin/ip", "netns", "exec", "red", "/usr/bin/env", "-C", "/srv",
    "/usr/sbin/iptables-save")``. A name found nowhere is left as it is (starting
    it then fails as before: :class:`~netns_kit.errors.BinaryNotFoundError`).
    Wrappers: ``nsenter``, ``unshare``, ``env``, ``ip netns exec``.
    """
    if path is None:
        path = os.environ.get("PATH", os.defpath)
    out = list(argv)
    index: int | None = 0
    while index is not None and index < len(out):
        if "/" not in out[index]:
            found = _which_cached(out[index], path)
            if found is not None:
                out[index] = found
        index = _runs(out, index)
    return tuple(out)


#: options of each wrapper that take the next word as their value
_VALUED: dict[str, frozenset[str]] = {
    "nsenter": frozenset({"-t", "--target", "-S", "--setuid", "-G", "--setgid"}),
    "unshare": frozenset(
        {
            "--propagation",
            "--setgroups",
            "-S",
            "--setuid",
            "-G",
            "--setgid",
            "--map-user",
            "--map-group",
            "--map-users",
            "--map-groups",
            "-R",
            "--root",
            "-w",
            "--wd",
            "--monotonic",
            "--boottime",
        }
    ),
    "env": frozenset({"-u", "--unset", "-C", "--chdir", "-a", "--argv0"}),
}


def _runs(argv: Sequence[str], index: int) -> int | None:
    """Where the program that the wrapper at ``argv[index]`` runs is, or None (no wrapper)."""
    wrapper = argv[index].rsplit("/", 1)[-1]
    at = index + 1
    if wrapper == "ip":
        # ip netns exec NAME PROG ...
        return at + 3 if tuple(argv[at : at + 2]) == ("netns", "exec") and at + 3 < len(argv) else None
    valued = _VALUED.get(wrapper)
    if valued is None:
        return None
    while at < len(argv):
        word = argv[at]
        if word == "--":
            at += 1
            break
        if wrapper == "env" and (word in ("-S", "--split-string") or word.startswith(("-S", "--split-string="))):
            return None  # the program is inside a string env splits itself
        if not word.startswith("-") or (word == "-" and wrapper != "env"):
            break
        at += 2 if word in valued else 1
    if wrapper == "env":
        while at < len(argv) and "=" in argv[at]:
            at += 1  # NAME=VALUE
    return at if at < len(argv) else None
