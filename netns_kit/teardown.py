"""Fast teardown: delete the namespaces, and let the kernel take what lives in them.

Deleting veths one by one costs ~20 ms each in the kernel. Deleting a
namespace takes every device in it along, and the other end of each veth
with it, but asynchronously: the names are free only once the kernel got
to them. So a journal that created namespaces is undone like this:

1. stop the processes in those namespaces (one look at ``/proc`` for all);
2. undo, in reverse, every resource that does NOT live in them (host
   firewall rules, sysctls, bridges), in as few processes as the executor
   batches them into, and meanwhile
3. delete the namespaces (one ``ip -batch`` of ``netns del``) and wait, with
   a deadline, until the devices they took along elsewhere (the host ends of
   veths) are gone, so the same names can be used at once.

It applies only when every resource can say what it would undo without
running anything (:meth:`~netns_kit.resource.Resource.undo_plan`) and the
executor batches; otherwise, or if it fails, the journal undoes unit by unit
as before (every undo is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .command import Command, query
from .errors import NetnsKitError
from .executor import Executor, wait_until
from .namespace import Namespace, stop_processes

if TYPE_CHECKING:
    from .journal import Journal

log = logging.getLogger("netns_kit")

#: how long to wait for devices the kernel frees after ``ip netns del`` (~40-90 ms usually)
GONE_TIMEOUT = 10.0


def rollback(journal: Journal) -> list[Exception] | None:
    """Undo all of ``journal`` at once; None when it cannot (nothing was done then)."""
    executor = journal.executor
    units = journal.units
    if not executor.batch or len(units) < 2:
        return None
    doomed = [u.resource for u in units if isinstance(u.resource, Namespace) and u.done]
    names = frozenset(ns.name for ns in doomed)
    ids = {id(ns) for ns in doomed}
    if not names:
        return None
    undo: list[Command] = []
    left: list[tuple[str | None, str]] = []
    for unit in reversed(units):
        if id(unit.resource) in ids:
            continue
        if not unit.done:
            # nothing of it ran, but its plan may have claimed shared state (sysctl claims)
            undo.extend(unit.resource.undo_plan([]) or [])
            continue
        goes = unit.resource.vanishes_with(names)
        if goes is not None:
            left.extend(goes)
            continue
        plan = unit.resource.undo_plan([command for command, _ in unit.done])
        if plan is None:
            return None
        undo.extend(plan)
    # in the order they were made: the kernel unmounts those first twice as fast
    delete = [Command(("ip", "netns", "del", ns.name), missing_ok=True) for ns in doomed]
    errors: list[Exception] = []

    def delete_and_wait() -> None:
        executor.run_all(delete)
        try:
            wait_gone(executor, left)
        except NetnsKitError as error:
            errors.append(error)

    try:
        stop_processes(executor, doomed)
        _run_side_by_side(executor, undo, delete_and_wait)
    except NetnsKitError as error:
        log.debug("fast teardown failed (%s): undoing one resource at a time", error)
        return None
    if journal.ledger:
        journal.ledger.mark([(seq, "undone") for unit in units for _, seq in unit.done])
        journal.ledger.close(empty=not errors)
    units.clear()
    return errors


def _run_side_by_side(executor: Executor, undo: list[Command], delete_and_wait: Callable[[], None]) -> None:
    """Undo what lives outside the doomed namespaces while they are being deleted.

    Nothing outside needs them: a command whose device the deletion takes
    along finds nothing to do (every undo is ``missing_ok``).
    """
    if executor.parallel < 2 or not undo:
        executor.run_all(undo)
        delete_and_wait()
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="netns_kit") as pool:
        deleting = pool.submit(delete_and_wait)
        try:
            executor.run_all(undo)
        finally:
            deleting.result()


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
