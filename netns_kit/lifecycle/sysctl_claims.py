"""Who relies on one sysctl of one place, and the value it had before the first of them
changed it: the claim files (see :mod:`netns_kit.lifecycle.sysctl`)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

from netns_kit.command import Command
from netns_kit.executors.base import Executor
from netns_kit.lifecycle.sysctl_files import claim_owner, locked, read_value, tidy
from netns_kit.owner import Owner
from netns_kit.sysctl_keys import CLAIMS_DIR, HOST, valid_value

log = logging.getLogger("netns_kit")

_counter = itertools.count(1)

_PRIOR = "prior"


@attrs.define
class _Held:
    """A claim file of this process, how many of its resources rely on it, the value
    to restore in the end, and the executor that restores it."""

    file: Path
    count: int
    original: str
    value: str
    executor: Executor | None = None


#: (claims directory, owner id, pid) -> the claim this process holds there
_held: dict[tuple[Path, str, int], _Held] = {}

_held_lock = threading.Lock()


class Claims:
    """Who relies on one sysctl of one namespace of an executor's "host", and the value
    it had before the first of them changed it."""

    def __init__(self, directory: Path, key: str, netns: str | None) -> None:
        self.root = directory
        self.path = directory / CLAIMS_DIR / (netns or HOST) / key.replace("/", ",")
        self.key = key
        self.netns = netns
        #: what was wrong with ``prior`` when last read (None: nothing)
        self.damage: str | None = None
        #: the last :meth:`drop` left live claims
        self.relied_on = False

    @classmethod
    def at(cls, path: Path) -> Claims:
        """The claims kept in ``path`` (a directory made by :meth:`of`)."""
        place = path.parent.name
        return cls(path.parents[2], path.name.replace(",", "/"), None if place == HOST else place)

    @classmethod
    def of(cls, executor: Executor, key: str, netns: str | None) -> Claims | None:
        """The claims of ``key`` where ``executor`` acts; None for a dry-run."""
        directory = None if executor.dry_run else executor.ledger_dir
        return cls(directory, key, netns) if directory is not None else None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock (see :func:`locked`) with this claims directory made; it goes
        again on the way out when nothing is left in it."""
        with locked(self.root):
            self.path.mkdir(mode=0o755, parents=True, exist_ok=True)
            try:
                yield
            finally:
                tidy(self.path, self.root)

    def files(self) -> list[Path]:
        """The claims (entries named ``claim.*`` that parse, and are files)."""
        return sorted(self._claims())

    def _claims(self) -> Iterator[Path]:
        try:
            entries = list(self.path.glob("claim.*"))
        except OSError as error:
            log.warning("%s cannot be read (%s): its claims are not counted", self.path, error)
            return
        for entry in entries:
            if claim_owner(entry.name) is not None and entry.is_file() and not entry.is_symlink():
                yield entry

    def live(self) -> list[Path]:
        """Claims whose owner still runs (named owners, like the CLI's, always count);
        the claims of gone processes are removed (call it locked)."""
        alive: dict[str, bool] = {}
        return [claim for claim in self.files() if self._counts(claim, alive)]

    def any_live(self) -> bool:
        """True when some claim's owner still runs: stops at the first one (call it locked)."""
        alive: dict[str, bool] = {}
        return any(self._counts(claim, alive) for claim in self._claims())

    @staticmethod
    def _counts(claim: Path, alive: dict[str, bool]) -> bool:
        """Whether ``claim`` still counts; a gone process's claim is removed. ``alive``
        caches the answer per owner: one process usually holds many claims."""
        owner_id = claim_owner(claim.name)
        if owner_id is None:
            return False  # not a claim of any version: not ours to count, nor to remove
        if owner_id not in alive:
            try:
                owner = Owner(owner_id)
            except ValueError:
                return False
            alive[owner_id] = owner.pid is None or owner.is_alive()
        if not alive[owner_id]:
            claim.unlink(missing_ok=True)
        return alive[owner_id]

    def prior(self) -> str | None:
        """The value found before the first claim (None: none is kept, or it is not a
        value of this key: then :attr:`damage` says what is wrong, and it is logged)."""
        path = self.path / _PRIOR
        value, problem = read_value(path)
        if problem is None and value is not None and not valid_value(self.key, value):
            shown = repr(value[:40]) + ("..." if len(value) > 40 else "") if value else "nothing"
            problem = f"holds {shown}"
        self.damage = None
        if problem is not None:
            wanted = "0 or 1" if valid_value(self.key, "0") and not valid_value(self.key, "2") else "integers"
            self.damage = f"{path} {problem}, not a value of {self.key} ({wanted})"
            log.warning("%s: it is never written back", self.damage)
            return None
        return value

    def _forget_prior(self) -> None:
        """Remove ``prior`` (a damaged one too; a directory in its place stays)."""
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            (self.path / _PRIOR).unlink()

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

    def add(self, owner: Owner, value: str, current: str, executor: Executor | None = None) -> tuple[str, Path] | None:
        """File a claim for ``value`` (call it locked); returns the value to restore in the
        end and the claim, or None when ``value`` was there before anyone claimed it."""
        prior = self.path / _PRIOR
        live = self.any_live()
        original = current
        kept = self.prior()
        if kept is not None and (live or current == value):
            # set by owners still relying on it, or by one that is gone and was never undone
            original = kept
        if not live and original == value:
            self._forget_prior()
            return None
        if self.damage is not None:
            self._forget_prior()  # damaged: replaced by the value found now
        try:
            prior.write_text(original)
        except IsADirectoryError:
            # not ours to remove: claimed all the same, and left as it is by the last claim out
            log.warning("%s is a directory: %s=%s is not kept, nor restored", prior, self.key, original)
        claim = self.path / f"claim.{owner.id}.{os.getpid()}-{next(_counter)}"
        claim.write_text(value)
        with _held_lock:
            _held[(self.path, owner.id, os.getpid())] = _Held(claim, 1, original, value, executor)
        return original, claim

    @staticmethod
    def let_go(claims: Sequence[Path]) -> list[tuple[Path, _Held | None]]:
        """Count ``claims`` off in memory; returns the files no resource of this
        process relies on any more (to drop), in order, each with what was held."""
        files: list[tuple[Path, _Held | None]] = []
        with _held_lock:
            for claim in claims:
                key = next((k for k, h in _held.items() if h.file == claim), None)
                held = None
                if key is not None:
                    held = _held[key]
                    held.count -= 1
                    if held.count > 0:
                        continue
                    del _held[key]
                if all(claim != f for f, _ in files):
                    files.append((claim, held))
        return files

    def drop(self, claims: Sequence[Path], restore: Callable[[str], None] | None = None) -> str | None:
        """Drop ``claims`` (call it locked); the value to restore when no live claim is
        left (None: others still rely on it, or there is nothing to restore).

        ``restore(value)``, when given, is called with that value *before* the claims and
        ``prior`` go: they are the only record of the value to restore, so a process
        killed between the two leaves them for ``netns_kit.cleanup()``, never a switch
        left on with nothing saying what it was (write-ahead, as the ledger is)."""
        mine = set(claims)
        self.damage = None
        alive: dict[str, bool] = {}
        self.relied_on = any(self._counts(c, alive) for c in self._claims() if c not in mine)
        original = None if self.relied_on else self.prior()
        if original is not None and restore is not None:
            restore(original)
        for claim in claims:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                claim.unlink()
        if not self.relied_on:
            self._forget_prior()
        return original

    def restore(self, value: str) -> Command:
        return Command(("sysctl", "-q", "-w", f"{self.key}={value}"), netns=self.netns, missing_ok=True)
