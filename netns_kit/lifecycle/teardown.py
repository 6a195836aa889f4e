"""Fast teardown: delete the namespaces, and let the kernel take what lives in them.

Deleting veths one by one costs ~20 ms each in the kernel. Deleting a
namespace takes every device in it along, and the other end of each veth
with it, but asynchronously: the names are free only once the kernel got
to them. So a journal that created namespaces is undone like this:

1. stop the processes in those namespaces (one look at ``/proc`` for all);
2. undo, in reverse, every resource that does NOT live in them (host
   firewall rules, sysctls, bridges), in as few processes as the executor
   batches them into: the bridges set down and the sysctls first, then the
   firewall rules while
3. the namespaces are deleted (one ``ip -batch`` of ``netns del``), the
   links outside them right after, and the devices the namespaces took
   along elsewhere (the host ends of veths) are waited for, with a
   deadline, until they are gone, so the same names can be used at once.

It applies only when every resource can say what it would undo without
running anything (:meth:`~netns_kit.lifecycle.resource.Resource.undo_plan`), on a
real run (a dry-run records the undo resource by resource); otherwise, or if it
fails, the journal undoes unit by unit as before (every undo is idempotent).

Nothing here names a resource kind: a namespace is a resource that declares it
holds others (:attr:`~netns_kit.lifecycle.resource.Resource.holds_others`, with
``held_name``, ``delete_whole`` and ``empty``), and every other resource says
whether it goes along (``vanishes_with``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence

import attrs

from netns_kit import shape
from netns_kit.batching.batch import is_delete
from netns_kit.command import Command, change, query
from netns_kit.errors import NetnsKitError
from netns_kit.executors.base import Executor, wait_until
from netns_kit.lifecycle.undoable import Undoable, Undoing, Unit

log = logging.getLogger("netns_kit")

#: commands that do not take the kernel's RTNL lock (nf_tables and x_tables have their own)
_OUTSIDE_RTNL = frozenset({"iptables", "ip6tables", "iptables-restore", "ip6tables-restore"})

#: how long to wait for devices the kernel frees after ``ip netns del`` (~40-90 ms usually)
GONE_TIMEOUT = 10.0


@attrs.frozen
class Whole:
    """A whole teardown, planned (from a journal, or read back from the record a completed
    ``up`` left in its ledger: :mod:`netns_kit.ops.quickdown`)."""

    #: the names of what holds others (namespaces), deleted whole
    holders: tuple[str, ...]
    #: what stops acting on traffic first (bridges set down)
    quiet: tuple[Command, ...]
    #: the undo of what lives outside the holders, last made first
    undo: tuple[Command, ...]
    #: the deletion of the holders, in the order they were made
    delete: tuple[Command, ...]
    #: ``(netns, device)`` elsewhere that the deletion takes along, waited for
    left: tuple[tuple[str | None, str], ...]
    #: ``(netns, argv)`` of the undo of each rule put at the end of its chain
    appended: frozenset[tuple[str | None, tuple[str, ...]]]


#: what a resource would undo for ``done`` (what of its plan took effect); None: it must run itself
UndoOf = Callable[[Undoable, list[Command]], "list[Command] | None"]


def plan(units: Sequence[Unit], undo_of: UndoOf) -> tuple[list[Undoable], Whole] | None:
    """The whole teardown of ``units`` and the holders it deletes; None when it cannot
    be planned (nothing holds others, or a resource must undo itself)."""
    # what holds others (namespaces): deleting it takes along what lives in it
    doomed = [u.resource for u in units if u.resource.holds_others and u.done]
    names = frozenset(holder.held_name() for holder in doomed)
    ids = {id(ns) for ns in doomed}
    if not names:
        return None
    undo: list[Command] = []
    quiet: list[Command] = []
    left: list[tuple[str | None, str]] = []
    for unit in reversed(units):
        if id(unit.resource) in ids:
            continue
        if not unit.done:
            # nothing of it ran, but its plan may have claimed shared state (sysctl claims)
            undo.extend(undo_of(unit.resource, []) or [])
            continue
        goes = unit.resource.vanishes_with(names)
        if goes is not None:
            left.extend(goes)
            continue
        done = [command for command, _ in unit.done]
        planned = undo_of(unit.resource, done)
        if planned is None:
            return None
        undo.extend(planned)
        quiet.extend(unit.resource.quiet_plan(done))
    appended = frozenset(
        (u.netns, u.argv)
        for unit in units
        for command, _ in unit.done
        if (fw := shape.planned_iptables(command.argv)) is not None and fw.verb == "-A"
        for u in command.undo
    )
    # in the order they were made: the kernel unmounts those first twice as fast
    delete = tuple(command for holder in doomed for command in holder.delete_whole())
    whole = Whole(
        tuple(holder.held_name() for holder in doomed), tuple(quiet), tuple(undo), delete, tuple(left), appended
    )
    return doomed, whole


def carry_out(executor: Executor, whole: Whole) -> list[Exception]:
    """Run ``whole`` (its holders emptied already); raises :class:`NetnsKitError` when a
    step fails (every undo is idempotent: the slow way finishes it); returns the devices
    that did not go in time."""
    errors: list[Exception] = []

    def delete_and_wait(after: list[Command]) -> None:
        executor.run_all(list(whole.delete))
        executor.run_all(after)
        try:
            wait_gone(executor, list(whole.left))
        except NetnsKitError as error:
            errors.append(error)

    _run_side_by_side(executor, list(whole.undo), delete_and_wait, whole.appended, whole.quiet)
    return errors


def rollback(journal: Undoing) -> list[Exception] | None:
    """Undo all of ``journal`` at once; None when it cannot (nothing was done then)."""
    executor = journal.executor
    units = journal.units
    if executor.dry_run or len(units) < 2:
        return None  # a dry-run records the undo resource by resource, as its script says
    planned = plan(units, lambda resource, done: resource.undo_plan(done))
    if planned is None:
        return None
    doomed, whole = planned
    try:
        _empty(executor, doomed)
        errors = carry_out(executor, whole)
    except NetnsKitError as error:
        log.debug("fast teardown failed (%s): undoing one resource at a time", error)
        return None
    if journal.ledger:
        journal.ledger.mark([(seq, "undone") for unit in units for _, seq in unit.done])
        journal.ledger.close(empty=not errors)
    units.clear()
    return errors


def _empty(executor: Executor, holders: Sequence[Undoable]) -> None:
    """Stop what runs inside ``holders``: each class's all at once (one look at ``/proc``)."""
    by_class: dict[type[Undoable], list[Undoable]] = {}
    for holder in holders:
        by_class.setdefault(type(holder), []).append(holder)
    for cls, group in by_class.items():
        cls.empty(executor, group)


def _run_side_by_side(
    executor: Executor,
    undo: list[Command],
    delete_and_wait: Callable[[list[Command]], None],
    appended: Collection[tuple[str | None, tuple[str, ...]]] = (),
    quiet: Sequence[Command] = (),
) -> None:
    """Undo what lives outside the doomed namespaces while they are being deleted.

    Nothing outside needs them: a command whose device the deletion takes
    along finds nothing to do (every undo is ``missing_ok``). And the kinds
    of state do not need each other to go (a rule names an interface by its
    name; a sysctl is a value), so for a whole teardown each kind is undone
    in its own order, at the time that suits the kernel:

    * ``quiet`` first (bridges set down): a bridge floods the multicast its ports send (the
      IPv6 duplicate-address probes, router solicitations and MLD reports of
      links that came up in the last seconds) to every other port, and a
      bridge that is down forwards nothing while the rest goes (W(500):
      softirq time during teardown 0.33-0.50 s -> 0.09-0.13 s);
    * sysctls next: the kernel frees the namespaces' devices under the RTNL
      lock, which a sysctl write spins on (and ``ip_forward`` visits every
      device of the host); forwarding also goes off before the rules do;
    * firewall rules (nf_tables and x_tables do not take that lock) while
      the namespaces are deleted, the rules each nearest the head of its
      chain first (:func:`head_first`);
    * links, routes and the rest right after the namespaces were deleted,
      while the kernel frees their devices (it takes the bridge's ports
      along either way).

    W(200): the sysctl write took 0.1 s during the kernel's work and takes
    4 ms before it; the bridge deletion took 0.04-0.09 s after it.
    """
    first = [*quiet, *(c for c in undo if c.program == "sysctl")]
    meanwhile = head_first([c for c in undo if c.program in _OUTSIDE_RTNL], appended)
    after = [c for c in undo if c.program != "sysctl" and c.program not in _OUTSIDE_RTNL]
    executor.run_all(first)
    if not meanwhile:
        delete_and_wait(after)
        return

    def rules() -> None:
        executor.run_all(meanwhile)

    # the executor runs them at once when it runs several processes at once
    executor.side_by_side(rules, lambda: delete_and_wait(after))


def head_first(commands: list[Command], appended: Collection[tuple[str | None, tuple[str, ...]]]) -> list[Command]:
    """``commands`` (firewall undo, last made first) with every rule deletion moved to
    the front, in the order that finds each rule nearest the head of its chain.

    iptables finds the rule a ``-D`` names by walking its chain from the head:
    deleting 200 jumps of a built-in chain last made first walks 200 * 200 / 2
    rules (W(200): 0.1 s of 0.13 s). Rules put at the end (``-A``, their
    undo's ``(netns, argv)`` in ``appended``) are deleted oldest first, rules
    put at the head (``-I``) newest first, and every deletion comes before the
    flush and deletion of chains (a chain goes only once nothing jumps to it).
    """
    deletes = [c for c in commands if is_delete(c)]
    tail = [c for c in reversed(deletes) if (c.netns, c.argv) in appended]
    head = [c for c in deletes if (c.netns, c.argv) not in appended]
    return head + tail + [c for c in commands if not is_delete(c)]


def wait_gone(executor: Executor, devices: list[tuple[str | None, str]], *, timeout: float = GONE_TIMEOUT) -> None:
    """Block until none of ``devices`` (``(netns, name)``) exists any more."""
    if not devices or executor.dry_run:
        return
    pending: dict[str | None, set[str]] = {}
    for netns, name in devices:
        pending.setdefault(netns, set()).add(name)

    def gone() -> bool:
        for netns in list(pending):
            present = executor.host_devices() if netns is None else None
            if present is None:  # no file to read: ask ip (one process per look)
                result = executor.run(query("ip", "-j", "link", "show", netns=netns), check=False)
                present = {link.get("ifname") for link in result.json()} if result.ok else set()
            if not (pending[netns] & present):
                del pending[netns]
        return not pending

    what = ", ".join(sorted(name for names in pending.values() for name in names)[:5])
    wait_until(
        gone,
        timeout=timeout,
        what=f"devices freed by deleting their namespaces to go ({what} ...)",
        interval=0.002,
        max_interval=0.01,
    )


def stop_processes_in(executor: Executor, names: Sequence[str], *, timeout: float = 3.0) -> None:
    """Stop every process in the named namespaces (SIGTERM, then SIGKILL), found by one
    look at all of them (:meth:`Executor.netns_pids`)."""

    def left() -> list[int]:
        return sorted(pid for pids in executor.netns_pids(names).values() for pid in pids)

    pids = left()
    if not pids:
        return
    log.debug("stopping processes left in namespaces %s: %s", names, pids)
    for signal_name in ("TERM", "KILL"):
        executor.run(change("kill", f"-{signal_name}", *map(str, pids)), check=False)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            time.sleep(0.01)
            pids = left()
        if not pids:
            return
    raise NetnsKitError(f"processes {pids} in namespaces {list(names)} survived SIGKILL")
