"""The alias of ``lo`` in many namespaces (where netns_kit keeps an owner's tag), read
with no process per namespace.

One program (:data:`PROGRAM`) does the reading: it enters each namespace with
``setns`` and asks the kernel for ``lo`` (ifindex 1) by one netlink request,
where ``ip -n NS`` would cost a process and a remount of ``/sys`` each. An
executor runs it where it acts, as a process of its own (``python -c``,
the program and the names on stdin, JSON out:
:meth:`~netns_kit.executors.hook.Executor.loopback_aliases`);
an executor whose namespaces this process can open runs it here, in a thread
of its own (:func:`read_here`): ``setns`` moves only the thread that calls
it, and the thread ends with the reading. W(200): 6 ms here, 55 ms as a process.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

#: ``aliases(paths)``: {name: alias of lo (None: none)} for each namespace file in
#: ``paths`` that could be entered; PermissionError when this may not enter them.
#: ``lo_alias(answer)``: ("lo", alias) of the kernel's RTM_NEWLINK answer for ifindex 1.
#: Run as a process (:func:`stdin`), it writes the JSON of that for ``NAMES``.
PROGRAM = r"""
import ctypes, json, os, socket, struct, sys

def lo_alias(data):
    length, kind = struct.unpack_from("=LH", data)
    if kind != 16:
        return None
    attrs, at = {}, 32
    while at + 4 <= min(length, len(data)):
        size, which = struct.unpack_from("=HH", data, at)
        if size < 4:
            break
        attrs[which & 0x3FFF] = data[at + 4 : at + size].rstrip(b"\0").decode("utf-8", "replace")
        at += (size + 3) & ~3
    return ("lo", attrs.get(20)) if attrs.get(3) == "lo" else None

def aliases(paths):
    libc = ctypes.CDLL(None, use_errno=True)
    found = {}
    for name, path in paths.items():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, 0x40000000) != 0:
                    raise OSError(ctypes.get_errno(), "setns", path)
            finally:
                os.close(fd)
            with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as nl:
                nl.send(struct.pack("=LHHLL", 32, 18, 1, 1, 0) + struct.pack("=BxHiII", 0, 0, 1, 0, 0))
                data = nl.recv(65536)
        except PermissionError:
            raise
        except OSError:
            continue
        lo = lo_alias(data)
        if lo is not None:
            found[name] = lo[1]
    return found

if __name__ == "__main__":
    json.dump(aliases({name: "/run/netns/" + name for name in NAMES}), sys.stdout)
"""

#: the argv of the process: the program comes on stdin (``-v`` shows this line, not 40)
ARGV_TAIL = ("-I", "-S", "-c", "import sys; exec(sys.stdin.read())")


def stdin(names: Sequence[str]) -> str:
    """What the process reads: the names, then :data:`PROGRAM`."""
    return f"NAMES = {list(names)!r}\n{PROGRAM}"


_program: dict[str, object] = {"__name__": "netns_kit.executors.loopback.PROGRAM"}
exec(compile(PROGRAM, "<netns_kit.executors.loopback.PROGRAM>", "exec"), _program)


def read_here(paths: Mapping[str, Path]) -> dict[str, str | None] | None:
    """:data:`PROGRAM` run in this process, in a thread that ends with it; None when
    this process may not enter the namespaces (no ``CAP_SYS_ADMIN`` over them)."""
    found: dict[str, str | None] = {}
    refused: list[OSError] = []

    def read() -> None:
        try:
            found.update(_program["aliases"]({name: str(path) for name, path in paths.items()}))  # type: ignore[operator]
        except PermissionError as error:
            refused.append(error)

    thread = threading.Thread(target=read, name="netns_kit loopback aliases", daemon=True)
    thread.start()
    thread.join()
    return None if refused else found
