"""``netns-kit down`` of a topology whose ``up`` completed: the teardown it recorded.

When ``up`` completes, the CLI seals its ledger (:func:`netns_kit.ops.seal.seal`) with the topology's
whole teardown, planned as :meth:`Topology.down() <netns_kit.Topology.down>` plans
it (:func:`netns_kit.lifecycle.teardown.plan`): the namespaces deleted whole, what
lives outside them undone in as few processes as the executor batches them into.
``down`` then reads that last line alone, not the thousands of entries above it nor
the machine's rules and links, and carries it out (:func:`down`), trusting it as
``Topology.down()`` trusts its journal, once these hold:

* the record is still the last line of the owner's only ledger (nothing was
  recorded since ``up`` completed: no half-made change, no second process);
* every namespace it deletes still carries the owner's tag (``lo``'s alias, read
  for all of them at once: :meth:`~netns_kit.executors.hook.Executor.loopback_aliases`), so a
  namespace someone made again under the same name is never deleted;
* the executor is a real one (not a dry-run).

The firewall rules it deletes name the owner's tag (a ``-D`` of a rule without
it matches nothing); sysctls are restored from their claims, as by the full
cleanup. Otherwise, or when a step fails, :func:`down` says why not and the full
cleanup (:func:`netns_kit.ops.cleanup.cleanup`) proves and removes what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netns_kit import signals
from netns_kit.command import Command
from netns_kit.errors import NetnsKitError
from netns_kit.executors.base import Executor
from netns_kit.lifecycle import ledger, teardown
from netns_kit.lifecycle.sysctl_leftovers import leftovers
from netns_kit.ops.cleanup_report import CleanupReport
from netns_kit.owner import Owner


def down(
    executor: Executor, owner: Owner, *, progress: Callable[[int, int], None] | None = None
) -> CleanupReport | str:
    """Take ``owner``'s topology down by the teardown its ``up`` sealed in; else (it
    cannot be trusted, or a step failed) why not: the full cleanup finishes it then."""
    if executor.dry_run:
        return "a dry-run"
    directory = executor.ledger_dir
    if directory is None:
        return "no ledger directory"
    paths = [path for who, path in ledger.files(directory) if who == owner]
    if len(paths) != 1:
        return f"{len(paths)} ledgers of {owner.id}, not one"
    try:
        record = ledger.sealed(paths[0])
    except OSError as error:
        return f"its ledger cannot be read: {error}"
    read = None if record is None else _read(record)
    if read is None:
        return "its ledger does not end with the teardown of a completed up"
    whole, removed = read
    tags = executor.loopback_aliases(whole.holders) or {}
    strangers = [name for name in whole.holders if tags.get(name) != owner.tag]
    if strangers:
        return f"namespace {strangers[0]} does not carry the tag {owner.tag}"
    report = CleanupReport(owners=[owner])
    claims = leftovers(executor, owner)
    total = len(removed) + len(claims)
    if progress is not None:
        progress(0, total)
    with signals.terminate_cleanly(), signals.shielded():
        try:
            teardown.stop_processes_in(executor, whole.holders)
            for claim in claims:  # first: a sysctl write waits while the kernel frees devices
                why = claim.run()
                (report.removed if why is None else report.kept).append(claim.what if why is None else why)
            errors = teardown.carry_out(executor, whole)
        except NetnsKitError as error:
            return f"the recorded teardown failed ({error})"
        report.removed.extend(removed)
        report.errors.extend(str(error) for error in errors)
        if not errors:
            paths[0].unlink(missing_ok=True)
    if progress is not None:
        progress(total, total)
    return report


def _commands(data: object) -> tuple[Command, ...] | None:
    if not isinstance(data, list):
        return None
    commands = [ledger.command_of(item) for item in data]
    return None if None in commands else tuple(c for c in commands if c is not None)


def _read(record: dict[str, Any]) -> tuple[teardown.Whole, list[str]] | None:
    """The teardown and report lines of a sealed record; None when it is not well-formed."""
    holders, left, appended, removed = (record.get(k, ()) for k in ("holders", "left", "appended", "removed"))
    quiet, undo, delete = (_commands(record.get(k)) for k in ("quiet", "undo", "delete"))
    if quiet is None or undo is None or delete is None:
        return None
    if not all(isinstance(part, list) for part in (holders, left, appended, removed)):
        return None
    try:
        names = tuple(str(name) for name in holders)
        devices = tuple((netns, str(device)) for netns, device in left)
        ends = frozenset((netns, tuple(map(str, argv))) for netns, argv in appended)
        lines = [str(line) for line in removed]
    except (TypeError, ValueError):
        return None
    if not names or any(netns is not None and not isinstance(netns, str) for netns, _ in (*devices, *ends)):
        return None
    return teardown.Whole(names, quiet, undo, delete, devices, ends), lines
