"""The emulators an owner left running, found by their command line, for crash cleanup.

Every emulator netns_kit starts carries ``--owner TAG`` in its argv
(:func:`.plan.start_command`). When its owner dies, its namespace's deletion
stops it, or it exits by itself once its device is gone; but on an adopted
device (not deleted by cleanup) it would idle on, and a SIGKILL landing between
its start and the ledger's mark leaves the ledger unable to prove it ran.
:func:`stops` finds them, through the executor (so in a sandbox's namespaces
when cleaning a sandbox): ``python3 -m netns_kit.linkemu --list --owner TAG``
lists the serving emulators of those owners in the namespaces the executor
sees (its own and those under ``/run/netns``); each is stopped by
``... --stop --pid PID --owner TAG``, which checks again, at that moment, that
PID is still an emulator of that owner there. An emulator of any other owner,
or outside the executor's namespaces, is never touched.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import attrs

from netns_kit.command import Command, change, query
from netns_kit.executors.base import Executor
from netns_kit.linkemu.plan import MODULE, PYTHON
from netns_kit.owner import Owner

NETNS_DIR = Path("/run/netns")
#: what a serving emulator's argv never holds (the commands that only ask or stop)
NOT_SERVING = frozenset({"--stop", "--status", "--probe", "--list"})


@attrs.frozen
class Found:
    """One emulator: its pid, what it serves, whose it is, and where (None: the namespace the search ran in)."""

    pid: int
    queue: str | None
    dev: str | None
    owner: str
    netns: str | None

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)


def option(words: Sequence[str], name: str) -> str | None:
    """The value of option ``name`` in ``words`` (``--name VALUE`` or ``--name=VALUE``)."""
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def _places(proc: Path, netns_dir: Path) -> dict[tuple[int, int], str | None]:
    """The network namespaces this process sees: its own (None), and each one under ``netns_dir``."""
    places: dict[tuple[int, int], str | None] = {}
    try:
        entries = sorted(netns_dir.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        try:
            st = entry.stat()
        except OSError:
            continue
        places.setdefault((st.st_dev, st.st_ino), entry.name)
    st = (proc / "self" / "ns" / "net").stat()
    places[(st.st_dev, st.st_ino)] = None
    return places


def find(
    tags: Collection[str], *, pid: int | None = None, proc: Path = Path("/proc"), netns_dir: Path = NETNS_DIR
) -> Iterator[Found]:
    """The serving emulators whose ``--owner`` is one of ``tags`` (only ``pid``, when given), in the
    network namespaces this process sees. Run inside the executor (``--list``, ``--stop --pid``)."""
    places = _places(proc, netns_dir)
    me = os.getpid()
    entries = (
        [proc / str(pid)]
        if pid is not None
        else sorted((e for e in proc.iterdir() if e.name.isdigit()), key=lambda e: int(e.name))
    )
    for entry in entries:
        if int(entry.name) == me:
            continue
        try:
            words = [w.decode(errors="replace") for w in (entry / "cmdline").read_bytes().split(b"\0")[:-1]]
        except OSError:
            continue
        tag = option(words, "--owner")
        if (
            tag is None
            or tag not in tags
            or "-m" not in words
            or option(words, "-m") != MODULE
            or NOT_SERVING & set(words)
        ):
            continue
        try:
            st = (entry / "ns" / "net").stat()  # not ours to look at: not ours to stop either
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in places:
            yield Found(int(entry.name), option(words, "--queue"), option(words, "--dev"), tag, places[key])


def list_main(tags: Collection[str]) -> int:
    """``--list``: one JSON object a line per emulator of these owners here."""
    for found in find(tags):
        print(found.to_json())
    return 0


def stop_main(tags: Collection[str], pid: int | None, timeout: float = 5.0) -> int:
    """``--stop --owner TAG [--pid PID]``: SIGTERM (SIGKILL after ``timeout`` s) the emulators
    of these owners here (only ``pid``, when given); fine when none is left."""
    doomed = [found.pid for found in find(tags, pid=pid)]
    for each in doomed:
        try:
            os.kill(each, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    left = doomed
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = [each for each in doomed if any(True for _ in find(tags, pid=each))]
    for each in left:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return 0


def list_command(owners: Sequence[Owner]) -> Command:
    return query(PYTHON, "-m", MODULE, "--list", *(w for o in owners for w in ("--owner", o.tag)))


def stop_command(found: Found) -> Command:
    return change(PYTHON, "-m", MODULE, "--stop", "--pid", str(found.pid), "--owner", found.owner)


def stops(executor: Executor, owners: Sequence[Owner]) -> list[tuple[str, Owner, Command]]:
    """For crash cleanup: each emulator of ``owners`` running behind ``executor``, as
    (what, whose, the command stopping it)."""
    if not owners:
        return []
    result = executor.run(list_command(owners), check=False)
    if not result.ok:
        return []
    by_tag = {owner.tag: owner for owner in owners}
    out = []
    for line in result.stdout.splitlines():
        try:
            found = Found(**json.loads(line))
        except (ValueError, TypeError):
            continue
        owner = by_tag.get(found.owner)
        if owner is None:
            continue
        where = f" in {found.netns}" if found.netns else ""
        what = f"link emulator pid {found.pid} (queue {found.queue}, dev {found.dev}{where}) of {owner.id}"
        out.append((what, owner, stop_command(found)))
    return out
