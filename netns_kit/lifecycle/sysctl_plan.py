"""Planning a sysctl change under its claim (the decision and, for a switch, the write
under the lock), releasing it, and planning an undo that writes nothing
(see :mod:`netns_kit.lifecycle.sysctl`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path

from netns_kit.command import Command, change
from netns_kit.executors.base import Executor
from netns_kit.lifecycle.overlay import PlannedSysctls
from netns_kit.lifecycle.sysctl_claims import Claims
from netns_kit.lifecycle.sysctl_switch import read, settle, write
from netns_kit.sysctl_keys import IPV4_FORWARD, SWITCHES

log = logging.getLogger("netns_kit")

#: set while a plan is made only to find an undo (see :func:`planning_undo`)
_undoing: ContextVar[bool] = ContextVar("netns_kit_sysctl_planning_undo", default=False)


@contextlib.contextmanager
def planning_undo() -> Iterator[None]:
    """Plans made meanwhile (in this thread or task) are only looked at to find an undo:
    :func:`plan_set` files no claim and writes nothing (see the module doc)."""
    token = _undoing.set(True)
    try:
        yield
    finally:
        _undoing.reset(token)


def _real(executor: Executor) -> Executor:
    """The executor under a planning view (whose answers may be values only planned)."""
    while isinstance(executor, PlannedSysctls):
        executor = executor.inner
    return executor


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
