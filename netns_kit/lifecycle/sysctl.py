"""Sysctls a resource turns on and restores: read the prior value when planning, undo to it.

The plan reads the value first (a query: a dry-run answers as a fresh kernel
would) and changes it only when it differs; the undo restores exactly that
prior value, so ``ip_forward`` or ``route_localnet`` come back as they were.

On a real run several owners (processes, or topologies of one process) may
rely on the same switch of the same "host" at once: two NAT rules both need
``ip_forward=1``. Whoever leaves first must not switch it off under the
others. So each one that relies on it files a *claim* (a file under the
executor's ledger directory, ``sysctl/<netns or -host->/<key>/claim.OWNER.N``,
holding the value it relies on) next to ``prior``, the value found before the
first claim; only the last claim to go restores that value, and only while the
switch still holds the value set. Claims of processes that are gone do not
count (``netns_kit.cleanup()`` restores for them). Every look at and change of
the claims happens under ONE lock: ``flock`` on the ledger directory itself,
which no one removes, so that the claim directories can go with their last
claim (race-free: a claimer makes them under the same lock). A printed script
takes the same lock and keeps the same files (:mod:`netns_kit.executors.recorder`).

One process files one claim per sysctl and owner, however many of its
resources rely on it (W(200) has 400 port forwards and NAT rules relying on
``ip_forward``): the others are counted in memory, without a lock or a look
at the directory, and the file goes with the last of them.

The forwarding switches (:data:`SWITCHES`) are written at once, under the lock
---------------------------------------------------------------------------------

``net.ipv4.ip_forward`` and ``net.ipv6.conf.all.forwarding`` are shared by the
whole "host", and the kernel does not take concurrent writes of them well: it
stores the new value first and copies it to ``conf/default`` and to every
interface afterwards, only when the writer saw a change. A restore to 0 racing
a set to 1 can leave ``all`` at 1 while ``default`` and every interface are 0:
nothing is forwarded, ``ip_forward`` still reads 1, and later writes of 1 change
nothing. So deciding a write of a switch and making it are ONE step under the
lock, within a process (threads open the lock separately) and across
processes; the alternative, a planned command run later by the batch
scheduler, left a window between the decision and the write in which another
owner decided on a value that was about to change. :func:`plan_set` therefore
runs the write itself, through the executor (the same :class:`Command` a
dry-run records and prints), and returns nothing to run later; the claim, filed
before the write under the lock, is its write-ahead record (``netns_kit.cleanup``
reads it when the process dies). The release likewise restores under the lock
(:func:`release`). After each write, ``all``, ``default`` and every interface
are read back (``ip -j netconf show``, one process): any that disagree are
written again, and a :class:`~netns_kit.errors.NetnsKitError` says so if that
does not repair them. A switch that reads the value already but whose
``default`` disagrees (left so by such a race elsewhere) is repaired the same
way, as netns_kit relies on it. :func:`forwarding_problem` is ``doctor``'s look.

Per-interface switches (``route_localnet`` of a bridge the same plan creates)
cannot be written at plan time; they stay planned commands, claimed the same way.

Planning an undo writes nothing
-------------------------------

``Resource.delete()`` of an object its value did not create plans the resource
to find what to undo. That plan runs under :func:`planning_undo`, where
:func:`plan_set` files no claim, writes nothing and returns nothing: a
resource that filed no claim has nothing of a shared switch to restore (the
last claim out restores it; ``netns_kit.cleanup()`` does for a process gone).

Damaged claim files
-------------------

Files in the claims directory may be damaged (a crash mid-write, a full disk,
another program, another version of netns_kit). Every reader here survives an
empty file, garbage, bytes that are not text, a directory where a file should
be, and never crashes on them:

* a ``prior`` is written back only when it is a value of its switch
  (:func:`valid_value`: ``0`` or ``1`` for the forwarding switches and
  ``route_localnet``; else one to eight ASCII integers of at most 20 digits,
  as ``sysctl -n`` prints them). Any other ``prior`` is never written back: the
  switch is left as it is, a warning is logged, and ``cleanup()`` lists it in
  its report's ``kept`` with what to do;
* a claim counts only when its name parses (``claim.OWNER.PID-N``,
  ``claim.OWNER.script``, :func:`claim_owner`) and it is a file; any other
  ``claim.*`` entry is not counted as a live claim, and never deleted (it is not
  provably ours);
* a claim's content (the value it relies on) that is not a value is ignored:
  the ``prior`` alone decides;
* a key or place directory whose name cannot be a sysctl key or a namespace
  name is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path

import attrs

from netns_kit.command import Command, change, query
from netns_kit.errors import NetnsKitError
from netns_kit.executors.base import Executor
from netns_kit.lifecycle.overlay import PlannedSysctls
from netns_kit.owner import Owner
from netns_kit.validate import netns_name

log = logging.getLogger("netns_kit")

IPV4_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"
#: switches of a whole "host" that the kernel copies to ``default`` and every interface
SWITCHES = {IPV4_FORWARD: "4", IPV6_FORWARD: "6"}

#: where the claims live, under the ledger directory
CLAIMS_DIR = "sysctl"
#: the directory name of the host's claims ("-host-" cannot be a namespace name)
HOST = "-host-"

_counter = itertools.count(1)
_PRIOR = "prior"
#: how many times a disagreeing interface is written again before giving up
_REPAIRS = 3
#: the most of a claim file read: a value is short
_MOST = 256
#: ``claim.OWNER.PID-N`` (a process), ``claim.OWNER.script`` (a printed script)
_CLAIM = re.compile(r"claim\.([A-Za-z0-9_.-]{1,64})\.(?:script|[0-9]{1,10}-[0-9]{1,20})")
#: what a sysctl key directory may be named (``/`` of a key is kept as ``,``)
_KEY = re.compile(r"[A-Za-z0-9_][!-.0-~]{0,254}", re.ASCII)
#: a general sysctl value: ASCII integers, as ``sysctl -n`` prints them
_INTEGERS = re.compile(r"-?[0-9]{1,20}(?:[ \t]+-?[0-9]{1,20}){0,7}", re.ASCII)
#: the last part of the name of keys that are 0 or 1 only
_BOOLEANS = ("ip_forward", "forwarding", "route_localnet")

#: set while a plan is made only to find an undo (see :func:`planning_undo`)
_undoing: ContextVar[bool] = ContextVar("netns_kit_sysctl_planning_undo", default=False)


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


def forwarding_key(version: int) -> str:
    """The switch that makes a namespace route between interfaces (IPv4 or IPv6)."""
    return IPV6_FORWARD if version == 6 else IPV4_FORWARD


def interface_key(family: str, dev: str, name: str) -> str:
    """``net.ipv4.conf.DEV.NAME``, in the slash form when DEV has a dot (``eth0.10``)."""
    if "." in dev:
        return f"net/{family}/conf/{dev}/{name}"
    return f"net.{family}.conf.{dev}.{name}"


def valid_value(key: str, value: str) -> bool:
    """Whether ``value`` may be written back to ``key`` (see the module doc): ``0`` or ``1``
    for the forwarding switches and ``route_localnet``, else ASCII integers."""
    if key in SWITCHES or key.replace("/", ".").rsplit(".", 1)[-1] in _BOOLEANS:
        return value in ("0", "1")
    return _INTEGERS.fullmatch(value) is not None


def _read_value(path: Path) -> tuple[str | None, str | None]:
    """``(value, None)`` read from ``path``, ``(None, None)`` when there is none, or
    ``(None, what is wrong)`` when it cannot be read as text."""
    try:
        with open(path, "rb") as file:
            data = file.read(_MOST + 1)
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        return None, "is a directory"
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None, "holds bytes that are not text"
    if len(data) > _MOST:
        return None, f"holds more than {_MOST} bytes"
    return text.strip(), None


@contextlib.contextmanager
def planning_undo() -> Iterator[None]:
    """Plans made meanwhile (in this thread or task) are only looked at to find an undo:
    :func:`plan_set` files no claim and writes nothing (see the module doc)."""
    token = _undoing.set(True)
    try:
        yield
    finally:
        _undoing.reset(token)


def read(executor: Executor, key: str, netns: str | None) -> str | None:
    """The value of ``key`` in ``netns``, or None when it does not exist (yet)."""
    result = executor.run(query("sysctl", "-n", key, netns=netns), check=False)
    return result.stdout.strip() if result.ok else None


def _real(executor: Executor) -> Executor:
    """The executor under a planning view (whose answers may be values only planned)."""
    while isinstance(executor, PlannedSysctls):
        executor = executor.inner
    return executor


# -- the lock -------------------------------------------------------------------------------
@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the claims lock of ledger directory ``directory`` (made if missing).

    ``flock`` on the directory itself: nothing to leave behind, and no lock file
    that could be removed while someone waits on it. Should the directory be
    replaced meanwhile, the lock is taken again on the new one.
    """
    while True:
        directory.mkdir(mode=0o755 if os.geteuid() == 0 else 0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(directory))
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)


def _tidy(path: Path, root: Path) -> None:
    """Remove ``path`` and the directories above it, up to ``root`` (not included), as
    long as they are empty (call it locked: a claimer makes them under the same lock)."""
    with contextlib.suppress(FileNotFoundError):
        (path / ".lock").unlink()  # the per-key lock file of versions before 0.2
    while path != root and root in path.parents:
        try:
            path.rmdir()
        except FileNotFoundError:
            pass
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return
            raise
        path = path.parent


# -- claims ----------------------------------------------------------------------------------
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
                _tidy(self.path, self.root)

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
        value, problem = _read_value(path)
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


def claim_owner(name: str) -> str | None:
    """The owner id in a claim file's name (``claim.OWNER.PID-N``, ``claim.OWNER.script``),
    or None when the name is no claim of any version."""
    found = _CLAIM.fullmatch(name)
    return found.group(1) if found is not None else None


def owner_of(claim: Path) -> str:
    """The owner id in the name of ``claim`` (a file :meth:`Claims.files` listed)."""
    owner = claim_owner(claim.name)
    if owner is None:
        raise ValueError(f"{claim}: not a claim file")
    return owner


# -- writing a switch, and reading it back ----------------------------------------------------
def write(executor: Executor, key: str, value: str, netns: str | None, *, undo: Command | None = None) -> None:
    """Write ``key=value`` (call it under the claims lock for a switch) and, for a
    switch, check that ``default`` and every interface followed (see the module doc)."""
    executor.run(change("sysctl", "-q", "-w", f"{key}={value}", netns=netns, undo=undo or ()))
    if key in SWITCHES:
        settle(executor, key, value, netns, everywhere=True)


def netconf(executor: Executor, family: str, netns: str | None) -> dict[str, bool] | None:
    """``{interface, "all", "default": forwarding}`` of IPv``family`` (``ip -j netconf show``,
    one process); None when it cannot be told."""
    result = executor.run(query("ip", f"-{family}", "-j", "netconf", "show", netns=netns), check=False)
    try:
        entries = result.json() if result.ok else []
    except ValueError:
        return None
    seen = {str(e.get("interface")): bool(e.get("forwarding")) for e in entries if isinstance(e, dict)}
    return seen if "all" in seen and "default" in seen else None


def disagreeing(executor: Executor, key: str, value: str, netns: str | None) -> list[str] | None:
    """The places (``default`` or an interface) whose forwarding is not ``value`` while
    switch ``key`` is; None when it cannot be told (no ``ip netconf`` answer)."""
    seen = netconf(executor, SWITCHES[key], netns)
    if seen is None:
        return None
    on = value.strip() not in ("0", "")
    return [name for name, forwards in seen.items() if name != "all" and forwards != on]


def settle(executor: Executor, key: str, value: str, netns: str | None, *, everywhere: bool) -> None:
    """Make ``default`` and the interfaces agree with switch ``key`` = ``value`` (call it
    locked). ``everywhere``: right after our write, every interface must agree; else only
    a ``default`` that disagrees is taken as the sign of a broken switch."""
    family = "ipv6" if SWITCHES[key] == "6" else "ipv4"
    off = disagreeing(executor, key, value, netns)
    if not off or (not everywhere and "default" not in off):
        return
    where = netns or "the host"
    log.warning("%s=%s in %s, but forwarding differs on %s: writing them again", key, value, where, ", ".join(off))
    for _ in range(_REPAIRS):
        for name in off:
            each = interface_key(family, name, "forwarding")
            executor.run(Command(("sysctl", "-q", "-w", f"{each}={value}"), netns=netns, missing_ok=True), check=False)
        off = disagreeing(executor, key, value, netns)
        if not off:
            return
    raise NetnsKitError(
        f"{key} is {value} in {where}, but forwarding stays {'off' if value == '1' else 'on'} on "
        f"{', '.join(off[:10])}{' ...' if len(off) > 10 else ''} after writing them again: something "
        f"else writes forwarding at the same time (run `netns-kit doctor`); to set every interface "
        f"again: sysctl -w {key}={'0' if value == '1' else '1'} && sysctl -w {key}={value}"
    )


# -- planning and releasing -------------------------------------------------------------------
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
    for :func:`release`; a switch (:data:`SWITCHES`) is then written here and
    now, under the claims lock, and nothing is returned (see the module doc).
    """

    if _undoing.get():
        return []  # only an undo is looked for: no claim filed, nothing to restore

    def now() -> str:
        found = read(executor, key, netns)
        if found is None and default is not None:
            found = read(executor, default, netns)
        return found if found is not None else "0"

    def setting(prior: str) -> Command:
        restore = Command(("sysctl", "-q", "-w", f"{key}={prior}"), netns=netns)
        return change("sysctl", "-q", "-w", f"{key}={value}", netns=netns, undo=restore)

    shared = Claims.of(executor, key, netns)
    if shared is None:  # a dry-run: its script restores what it changed
        prior = now()
        return [] if prior == value else [setting(prior)]
    real = _real(executor)
    joined = shared.join(executor.owner)
    if joined is None and netns is not None and read(real, IPV4_FORWARD, netns) is None:
        # in a namespace this plan creates: no one else can rely on it, and it goes with it
        prior = now()
        return [] if prior == value else [setting(prior)]
    if joined is not None:
        original, claim = joined
        if claims is not None:
            claims.append(claim)
        if key in SWITCHES:
            # written under the lock by the first claim; release() restores. Read once per
            # apply (the planning view remembers it): set again if changed by hand since
            if now() != value:
                with shared.locked():
                    if read(real, key, netns) != value:
                        write(real, key, value, netns)
            _remember(executor, key, value, netns)
            return []
        if now() == value:
            return []  # release() restores in the end
        return [setting(original)]
    with shared.locked():
        current = read(real, key, netns) if key in SWITCHES else now()
        current = current if current is not None else "0"
        filed = shared.add(executor.owner, value, current, real)
        if filed is None:
            if key in SWITCHES:
                settle(real, key, value, netns, everywhere=False)
                _remember(executor, key, value, netns)
            return []
        prior, claim = filed
        if claims is not None:
            claims.append(claim)
        if key in SWITCHES:
            if current != value:
                try:
                    write(real, key, value, netns, undo=setting(prior).undo[0])
                except BaseException:
                    _unclaim(shared, claim, claims, real, value)
                    raise
            _remember(executor, key, value, netns)
            return []
        if current == value:
            # already so (set by another claim holder, or planned earlier in this
            # apply): nothing to change; with a claim, release() restores in the end
            return []
    return [setting(prior)]


def _remember(executor: Executor, key: str, value: str, netns: str | None) -> None:
    """Tell a planning view that ``key`` holds ``value`` now (the next resources of the
    same apply read it from there, not with a process each)."""
    if isinstance(executor, PlannedSysctls):
        executor.learn([Command(("sysctl", "-q", "-w", f"{key}={value}"), netns=netns)])


def _unclaim(shared: Claims, claim: Path, claims: list[Path] | None, executor: Executor, value: str) -> None:
    """Take back a claim whose write failed (called locked), restoring if need be."""
    Claims.let_go([claim])
    if claims is not None and claim in claims:
        claims.remove(claim)
    original = shared.drop([claim])
    if original is not None and original != value:
        with contextlib.suppress(Exception):
            if read(executor, shared.key, shared.netns) not in (None, original):
                executor.run(shared.restore(original), check=False)


def release(claims: list[Path], undo: Sequence[Command]) -> list[Command]:
    """``undo`` with its sysctl restores replaced by what dropping ``claims`` calls for:
    the restore of the value found first, for each sysctl of which these were the last
    live claims (whether or not this resource's own change ran), and only while it
    still holds the value claimed. A switch is restored here and now, under the lock;
    other restores are returned, first.

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
        executor = next((h.executor for _, h in mine if h is not None and h.executor is not None), None)
        claimed = next((h.value for _, h in mine if h is not None), None)
        with shared.locked():
            if executor is None or shared.key not in SWITCHES:
                original = shared.drop([f for f, _ in mine])
                if original is not None:
                    restores.append(shared.restore(original))
                continue  # None: others rely on it, none was kept, or it was damaged (logged)

            def restore(
                original: str, executor: Executor = executor, claimed: str | None = claimed, shared: Claims = shared
            ) -> None:
                now = read(executor, shared.key, shared.netns)
                if now is None or now == original:
                    return
                if claimed is not None and now != claimed:
                    log.info(
                        "%s is %s, not the %s claimed: someone changed it since; left alone", shared.key, now, claimed
                    )
                    return
                write(executor, shared.key, original, shared.netns)

            shared.drop([f for f, _ in mine], restore)
    return restores + [c for c in undo if c.program != "sysctl"]


# -- cleanup of owners that are gone (or named) -----------------------------------------------
@attrs.frozen
class Leftover:
    """Claims of an owner in one place: ``run()`` drops them and restores the value
    found first when they were the last; it returns why it left the switch alone
    (None: done)."""

    what: str
    owner: Owner
    run: Callable[[], str | None]


def leftovers(executor: Executor, owner: Owner | None = None) -> list[Leftover]:
    """The claims ``owner`` left (every owner whose process is gone, when None): what
    ``netns_kit.cleanup()`` and ``netns-kit down`` restore from, also after a printed
    script (which writes no ledger, only the claim)."""
    directory = None if executor.dry_run else executor.ledger_dir
    if directory is None or not (directory / CLAIMS_DIR).is_dir():
        return []
    found: list[Leftover] = []
    for path in sorted((directory / CLAIMS_DIR).glob("*/*")):
        if not _sysctl_place(path):
            continue
        shared = Claims.at(path)
        owners: dict[str, Owner] = {}
        for claim in shared.files():
            name = owner_of(claim)
            try:
                who = Owner(name)
            except ValueError:
                continue
            gone = owner is None and who.pid is not None and not who.is_alive()
            if who == owner or gone:
                owners[name] = who
        for name, who in owners.items():
            where = f" in {shared.netns}" if shared.netns else ""
            found.append(
                Leftover(f"sysctl {shared.key}{where}: claim of {name}", who, _restorer(executor, shared, name))
            )
    return found


def _sysctl_place(path: Path) -> bool:
    """Whether ``path`` (``sysctl/PLACE/KEY``) may hold claims: a directory named as a key,
    in a place named as the host or a namespace (else it is not ours: left alone)."""
    place = path.parent.name
    if _KEY.fullmatch(path.name) is None or path.name.isdigit():
        return False
    if place != HOST:
        try:
            netns_name("the claims' place", place)
        except ValueError:
            return False
    return path.is_dir() and not path.is_symlink()


def _restorer(executor: Executor, shared: Claims, owner_id: str) -> Callable[[], str | None]:
    def run() -> str | None:
        with shared.locked():
            mine = [c for c in shared.files() if owner_of(c) == owner_id]
            values = set()
            for claim in mine:
                value, _ = _read_value(claim)
                if value is not None and valid_value(shared.key, value):
                    values.add(value)  # a damaged one says nothing: the prior decides
            why: list[str] = []

            def restore(original: str) -> None:
                now = read(executor, shared.key, shared.netns)
                if now is None or now == original:
                    return  # the interface it belonged to is gone, or it is back already
                if values and now not in values:
                    claimed = "/".join(sorted(values))
                    why.append(
                        f"sysctl {shared.key} is {now}, not the {claimed} {owner_id} set: someone changed it since"
                    )
                    return
                write(executor, shared.key, original, shared.netns)

            original = shared.drop(mine, restore)
            if original is None:
                if shared.relied_on:
                    return f"sysctl {shared.key}: still relied on by running owners, who restore it when done"
                if shared.damage is None:
                    return None  # nothing was kept to restore
                now = read(executor, shared.key, shared.netns)
                left = f"left at {now}" if now is not None else "left as it is"
                return f"sysctl {shared.key}: {left}: {shared.damage}; set it by hand if {now} is not what you want"
            return why[0] if why else None

    return run


# -- doctor ------------------------------------------------------------------------------------
def forwarding_problem(executor: Executor, netns: str | None = None) -> str | None:
    """What is wrong with the forwarding switches where ``executor`` acts, or None.

    A switch reads one value while ``conf/default`` (or every interface) holds the
    other: what racing writes of it leave. ``ip_forward`` reading 1 then forwards
    nothing (and a later ``sysctl -w ip_forward=1`` changes nothing); reading 0, the
    interfaces may still forward.
    """
    problems = []
    for key, family in SWITCHES.items():
        value = read(executor, key, netns)
        seen = netconf(executor, family, netns) if value is not None else None
        if value is None or seen is None:
            continue
        on = value not in ("0", "")
        interfaces = [n for n, forwards in seen.items() if n not in ("all", "default") and forwards != on]
        total = len(seen) - 2
        if seen["default"] == on and (not interfaces or len(interfaces) < total):
            continue  # none, or a few interfaces set apart on purpose
        state = "off" if on else "on"
        places = ([] if seen["default"] == on else ["conf/default"]) + interfaces[:5]
        more = f" and {len(interfaces) - 5} more" if len(interfaces) > 5 else ""
        effect = "nothing is forwarded" if on else "traffic may still be forwarded"
        problems.append(
            f"{key} reads {value}, but forwarding is {state} on {', '.join(places)}{more}: {effect}; "
            f"fix: sysctl -w {key}={'0' if on else '1'} && sysctl -w {key}={value} "
            "(which sets conf/default and every interface again)"
        )
    return "\n".join(problems) or None
