"""Leftovers of owners that are gone, and their cleanup (``netns_kit.cleanup()``).

``netns_kit.cleanup()`` (and ``netns-kit cleanup``) works through any
executor, from two sources:

* the **write-ahead ledgers** of the owners in question: every change is
  written there before it runs and marked ``ok`` once it took effect, so the
  changes that took effect are undone exactly (routes, addresses, sysctls
  restored to their prior value when they still hold the value we set);
* the **tags**: links whose alias, namespaces whose ``lo`` alias, and
  iptables/ip6tables rules whose ``--comment`` is the owner's tag, plus the
  ``NK-`` chains left empty by removing those rules.

An entry still *in flight* when its owner died may or may not have taken
effect. It is acted on only when that is proven: the object carries the
owner's tag, or a later entry of the same ledger is seen to have taken effect
(commands run in order and stop at the first failure). So an object of the
same name that existed before is never removed: untagged objects are never
touched, except one the ledger proves this owner created and had not tagged
yet. Running cleanup twice is a no-op.

Owners in scope: process owners (``PID.STARTTIME``) whose process is gone,
or exactly the owner asked for. Named owners (``cli.NAME``, ``dry-run``) are
never "gone": they are removed only when named.

The plan is made by :mod:`~netns_kit.ops.cleanup_plan` (from what
:mod:`~netns_kit.ops.cleanup_evidence` proves of the ledgers) and carried out by
:mod:`~netns_kit.ops.cleanup_run`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from netns_kit import signals
from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor, current
from netns_kit.firewall import nftread
from netns_kit.ops import inventory as inv
from netns_kit.ops.cleanup_plan import stale_owners
from netns_kit.ops.cleanup_report import CleanupInterrupted, CleanupReport
from netns_kit.ops.cleanup_run import Removal
from netns_kit.owner import Owner

__all__ = ["CleanupInterrupted", "CleanupReport", "cleanup", "stale_owners"]


def cleanup(
    executor: Executor | None = None,
    *,
    owner: Owner | str | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CleanupReport:
    """Remove what belongs to owners that are gone (or to ``owner``); see the module doc.

    ``dry_run=True`` only reports what would be removed. ``progress(done, total)``
    is called as the removals are carried out (first with ``done`` = 0), ``total``
    being the number of objects and changes to remove.

    Once the removal has begun, a Ctrl-C or SIGTERM (in the main thread) is held
    until it is complete, then raised (:func:`netns_kit.signals.shielded`); a
    second one stops it at once: a Ctrl-C raises :class:`CleanupInterrupted`.
    """
    executor = executor or current()
    wanted = Owner(owner) if isinstance(owner, str) else owner
    scan = inv.scan(executor, firewall=False, skip_links=_deleted_whole(wanted), host_firewall=True)
    report = CleanupReport(dry_run=dry_run)
    if wanted is not None and wanted.is_alive():
        report.kept.append(f"note: owner {wanted.id} is still running; removing its objects as asked")
    targets = [wanted] if wanted is not None else stale_owners(scan)
    work = Removal(executor, scan, targets, report, more_owners=wanted is None)
    work.plan()
    with signals.terminate_cleanly(), signals.shielded():
        try:
            work.execute(progress)
            goes = _deleted_whole(wanted)
            places = [n for n in inv.nft_places(scan) if n is not None and not goes(n, scan.namespaces.get(n))]
            _nft_tables(executor, wanted, report, places)
        except KeyboardInterrupt as error:
            raise CleanupInterrupted(report, work.done, work.total) from error
        except signals.Terminated as error:
            error.add_note(f"cleanup stopped after {work.done} of {work.total} removals: run it again to finish it")
            raise
    return report


def _nft_tables(
    executor: Executor, wanted: Owner | None, report: CleanupReport, namespaces: Sequence[str] = ()
) -> None:
    """Delete the nft tables of owners that are gone (or of ``wanted``) whole, by name, one
    transaction per namespace: in the host and in ``namespaces``, those left standing where
    one may be (:func:`~netns_kit.ops.inventory.nft_places`: a partition's or a loss
    fallback's drops sit in namespaces others made); tables of no owner of ours are never
    touched."""
    for netns in (None, *namespaces):
        try:
            tables = nftread.list_tables(executor, netns)
        except CommandError:  # no nft here (or no nftables in this kernel, or the namespace went)
            continue
        doomed = [t for t in tables if t.owner == wanted] if wanted is not None else nftread.dead_tables(tables)
        command = nftread.delete_tables(doomed, netns)
        if command is None:
            continue
        report.removed.extend(f"nft table {t.family} {t.name} (in {netns or 'the host'})" for t in doomed)
        if not report.dry_run:
            executor.run(command)


def _deleted_whole(wanted: Owner | None) -> Callable[[str, str | None], bool]:
    """Whether a namespace with this tag goes whole (so its links need not be listed):
    it is ``wanted``'s, or (no owner asked for) that of a process owner that is gone."""
    alive: dict[str, bool] = {}

    def goes(name: str, tag: str | None) -> bool:
        if wanted is not None:
            return tag == wanted.tag
        owner = Owner.from_tag(tag or "")
        if owner is None or owner.pid is None:
            return False
        if owner.id not in alive:
            alive[owner.id] = owner.is_alive()
        return not alive[owner.id]

    return goes
