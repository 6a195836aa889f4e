"""The tags (``lo``'s alias) of many namespaces, read by ONE process where the executor acts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from netns_kit.command import query
from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor

#: run by the executor's Python where it acts: the alias of ``lo`` (ifindex 1) in each
#: namespace named on stdin, by one netlink request per namespace (setns, no process
#: each: ``ip -n NS`` costs a process and a remount of ``/sys`` per namespace)
_READ_TAGS = r"""
import ctypes, json, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
found = {}
for name in sys.stdin.read().split():
    try:
        fd = os.open("/run/netns/" + name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as nl:
            nl.send(struct.pack("=LHHLL", 32, 18, 1, 1, 0) + struct.pack("=BxHiII", 0, 0, 1, 0, 0))
            data = nl.recv(65536)
        length, kind = struct.unpack_from("=LH", data)
        if kind != 16:
            continue
        attrs, at = {}, 32
        while at + 4 <= min(length, len(data)):
            size, which = struct.unpack_from("=HH", data, at)
            if size < 4:
                break
            attrs[which & 0x3FFF] = data[at + 4 : at + size].rstrip(b"\0").decode("utf-8", "replace")
            at += (size + 3) & ~3
        if attrs.get(3) == "lo":
            found[name] = attrs.get(20)
    except OSError:
        continue
json.dump(found, sys.stdout)
"""


def read_tags(executor: Executor, names: Sequence[str]) -> dict[str, str | None] | None:
    """The tag (``lo``'s alias) of each namespace in ``names``, read by ONE process;
    None when the executor cannot run it (a recorder, no Python where it acts), and
    a namespace is left out when it could not be read (ask ``ip`` then)."""
    if executor.dry_run:
        return None
    try:
        result = executor.run(query(sys.executable, "-I", "-S", "-c", _READ_TAGS), input="\n".join(names), check=False)
    except CommandError:
        return None
    if not result.ok:
        return None
    try:
        found = json.loads(result.stdout)
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    return {k: v for k, v in found.items() if k in names and (v is None or isinstance(v, str))}
