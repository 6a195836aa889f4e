"""Sysctls a resource turns on and restores: read the prior value when planning, undo to it.

The plan reads the value first (a query: a dry-run answers as a fresh kernel
would) and changes it only when it differs; the undo restores exactly that
prior value, so ``ip_forward`` or ``route_localnet`` come back as they were.

On a real run several owners (processes, or topologies of one process) may
rely on the same switch of the same "host" at once: two NAT rules both need
``ip_forward=1``. Whoever leaves first must not switch it off under the
others. So each one that relies on it files a *claim* (a file under the
executor's ledger directory, ``sysctl/<netns>/<key>/``, changed under a
lock) next to the value found before the first claim; only the last claim
to go restores that value. Claims of processes that are gone do not count
(``netns_kit.cleanup()`` restores for them). A dry-run has no claims: its
script restores what it changed.

One process files one claim per sysctl and owner, however many of its
resources rely on it (W(200) has 400 port forwards and NAT rules relying on
``ip_forward``): the others are counted in memory, without a lock or a look
at the directory, and the file goes with the last of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

from .command import Command, change, query
from .executor import Executor
from .owner import Owner

IPV4_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"

_counter = itertools.count(1)
_PRIOR = "prior"


@attrs.define
class _Held:
    """A claim file of this process, how many of its resources rely on it, and the
    value to restore in the end."""

    file: Path
    count: int
    original: str


#: (claims directory, owner id, pid) -> the claim this process holds there
_held: dict[tuple[Path, str, int], _Held] = {}
_held_lock = threading.Lock()


def forwarding_key(version: int) -> str:
    """The switch that makes a namespace route between interfaces (IPv4 or IPv6)."""
    return IPV6_FORWARD if version == 6 else IPV4_FORWARD


def interface_key(family: str, dev: str, name: str) -> str:
    """``net.ipv4.conf.DEV.NAME``, in the slash form when DEV has a dot (``eth0.10``)."""
    if "." in dev:
        return f"net/{family}/conf/{dev}/{name}"
    return f"net.{family}.conf.{dev}.{name}"


def read(executor: Executor, key: str, netns: str | None) -> str | None:
    """The value of ``key`` in ``netns``, or None when it does not exist (yet)."""
    result = executor.run(query("sysctl", "-n", key, netns=netns), check=False)
    return result.stdout.strip() if result.ok else None


class Claims:
    """Who relies on one sysctl of one namespace of an executor's "host", and the value
    it had before the first of them changed it."""

    def __init__(self, directory: Path, key: str, netns: str | None) -> None:
        # "-host-" cannot be a namespace name (no leading '-')
        self.path = directory / "sysctl" / (netns or "-host-") / key.replace("/", ",")
        self.key = key
        self.netns = netns

    @classmethod
    def at(cls, path: Path) -> Claims:
        """The claims kept in ``path`` (a directory made by :meth:`of`)."""
        place = path.parent.name
        return cls(path.parents[2], path.name.replace(",", "/"), None if place == "-host-" else place)

    @classmethod
    def of(cls, executor: Executor, key: str, netns: str | None) -> Claims | None:
        """The claims of ``key`` where ``executor`` acts; None for a dry-run."""
        directory = None if executor.dry_run else executor.ledger_dir
        return cls(directory, key, netns) if directory is not None else None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.mkdir(mode=0o755, parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def live(self) -> list[Path]:
        """Claims whose owner still runs (named owners, like the CLI's, always count);
        the claims of gone processes are removed (call it locked)."""
        alive: dict[str, bool] = {}
        return [claim for claim in self.path.glob("claim.*") if self._counts(claim, alive)]

    def any_live(self) -> bool:
        """True when some claim's owner still runs: stops at the first one (call it locked)."""
        alive: dict[str, bool] = {}
        return any(self._counts(claim, alive) for claim in self.path.glob("claim.*"))

    @staticmethod
    def _counts(claim: Path, alive: dict[str, bool]) -> bool:
        """Whether ``claim`` still counts; a gone process's claim is removed. ``alive``
        caches the answer per owner: one process usually holds many claims."""
        owner_id = claim.name.removeprefix("claim.").rsplit(".", 1)[0]
        if owner_id not in alive:
            try:
                owner = Owner(owner_id)
            except ValueError:
                return False
            alive[owner_id] = owner.pid is None or owner.is_alive()
        if not alive[owner_id]:
            claim.unlink(missing_ok=True)
        return alive[owner_id]

    def join(self, owner: Owner) -> tuple[str, Path] | None:
        """Rely on it once more, when this process holds a claim on it for ``owner``
        already: counted in memory (no lock needed); returns the value to restore in
        the end and the claim. None when it holds none (file one with :meth:`add`)."""
        with _held_lock:
            held = _held.get((self.path, owner.id, os.getpid()))
            if held is None or not held.file.exists():  # removed by an explicit cleanup
                return None
            held.count += 1
            return held.original, held.file

    def add(self, owner: Owner, value: str, current: str) -> tuple[str, Path] | None:
        """File a claim for ``value`` (call it locked); returns the value to restore in the
        end and the claim, or None when ``value`` was there before anyone claimed it."""
        prior = self.path / _PRIOR
        live = self.any_live()
        original = current
        if prior.exists() and (live or current == value):
            # set by owners still relying on it, or by one that is gone and was never undone
            original = prior.read_text()
        if not live and original == value:
            prior.unlink(missing_ok=True)
            return None
        prior.write_text(original)
        claim = self.path / f"claim.{owner.id}.{os.getpid()}-{next(_counter)}"
        claim.touch()
        with _held_lock:
            _held[(self.path, owner.id, os.getpid())] = _Held(claim, 1, original)
        return original, claim

    @staticmethod
    def let_go(claims: Sequence[Path]) -> list[Path]:
        """Count ``claims`` off in memory; returns the files no resource of this
        process relies on any more (to drop), in order."""
        files: list[Path] = []
        with _held_lock:
            for claim in claims:
                key = next((k for k, h in _held.items() if h.file == claim), None)
                if key is not None:
                    _held[key].count -= 1
                    if _held[key].count > 0:
                        continue
                    del _held[key]
                if claim not in files:
                    files.append(claim)
        return files

    def drop(self, claims: Sequence[Path]) -> str | None:
        """Drop ``claims`` (call it locked); the value to restore when no live claim is
        left (None: others still rely on it, or there is nothing to restore)."""
        for claim in claims:
            claim.unlink(missing_ok=True)
        if self.any_live():
            return None
        prior = self.path / _PRIOR
        try:
            original = prior.read_text()
        except FileNotFoundError:
            return None
        prior.unlink()
        return original

    def restore(self, value: str) -> Command:
        return Command(("sysctl", "-q", "-w", f"{self.key}={value}"), netns=self.netns, missing_ok=True)


def plan_set(
    executor: Executor,
    key: str,
    value: str,
    netns: str | None,
    *,
    default: str | None = None,
    claims: list[Path] | None = None,
) -> list[Command]:
    """The command setting ``key`` to ``value`` with the prior value as its undo; nothing
    if it already has it (and nobody else of ours relies on it).

    ``default`` is the key whose value a not-yet-existing key will start with
    (``net.ipv4.conf.default.route_localnet`` for an interface created later
    in the same plan). On a real run the claim filed is appended to ``claims``,
    for :func:`release`.
    """

    def now() -> str:
        found = read(executor, key, netns)
        if found is None and default is not None:
            found = read(executor, default, netns)
        return found if found is not None else "0"

    shared = Claims.of(executor, key, netns)
    if shared is not None and (joined := shared.join(executor.owner)) is not None:
        original, claim = joined
        if claims is not None:
            claims.append(claim)
        if now() == value:
            return []  # release() restores in the end
        restore = Command(("sysctl", "-q", "-w", f"{key}={original}"), netns=netns)
        return [change("sysctl", "-q", "-w", f"{key}={value}", netns=netns, undo=restore)]
    with shared.locked() if shared is not None else contextlib.nullcontext():
        prior = current = now()
        if shared is not None:
            filed = shared.add(executor.owner, value, current)
            if filed is None:
                return []
            prior, claim = filed
            if claims is not None:
                claims.append(claim)
        if current == value:
            # already so (set by another claim holder, or planned earlier in this
            # apply): nothing to change; with a claim, release() restores in the end
            return []
    restore = Command(("sysctl", "-q", "-w", f"{key}={prior}"), netns=netns)
    return [change("sysctl", "-q", "-w", f"{key}={value}", netns=netns, undo=restore)]


def release(claims: list[Path], undo: Sequence[Command]) -> list[Command]:
    """``undo`` with its sysctl restores replaced by what dropping ``claims`` calls for:
    the restore of the value found first, for each sysctl of which these were the last
    live claims (whether or not this resource's own change ran).

    Without claims (a dry-run, or a plan this process did not file) ``undo`` is
    returned as it is.
    """
    if not claims:
        return list(undo)
    by_place: dict[Path, list[Path]] = {}
    for claim in claims:
        by_place.setdefault(claim.parent, []).append(claim)
    claims.clear()
    restores: list[Command] = []
    for path, held in by_place.items():
        mine = Claims.let_go(held)
        if not mine:
            continue  # other resources of this process still rely on it
        shared = Claims.at(path)
        with shared.locked():
            original = shared.drop(mine)
        if original is not None:
            restores.append(shared.restore(original))
    return restores + [c for c in undo if c.argv[0] != "sysctl"]
