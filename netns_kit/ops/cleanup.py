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
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from netns_kit import shape, signals
from netns_kit.command import Command, change, query
from netns_kit.errors import NetnsKitError
from netns_kit.executors.base import Executor, current
from netns_kit.lifecycle import sysctl
from netns_kit.lifecycle.ledger import Entry, created_by
from netns_kit.lifecycle.teardown import wait_gone
from netns_kit.linkemu import orphans
from netns_kit.linkemu.plan import MODULE as LINK_EMULATOR
from netns_kit.ops import inventory as inv
from netns_kit.owner import Owner
from netns_kit.resources.namespace import Namespace, stop_processes

log = logging.getLogger("netns_kit")

_TAKEN = ("ok",)
_MAYBE = ("in-flight",)


@attrs.define
class CleanupReport:
    """What :func:`cleanup` removed, what it left alone and why, and what failed."""

    owners: list[Owner] = attrs.field(factory=list)
    removed: list[str] = attrs.field(factory=list)
    kept: list[str] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)
    dry_run: bool = False

    @property
    def nothing_done(self) -> bool:
        return not self.removed and not self.errors

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        out = [f"{verb}: {what}" for what in self.removed]
        out += [f"left alone: {what}" for what in self.kept]
        out += [f"FAILED: {what}" for what in self.errors]
        return out


class CleanupInterrupted(KeyboardInterrupt):
    """A second Ctrl-C forced :func:`cleanup` out before it was done.

    ``report`` says what was removed; ``done`` of ``total`` steps were carried
    out. Running the cleanup again finishes it (what is gone is not looked for).
    """

    def __init__(self, report: CleanupReport, done: int, total: int) -> None:
        super().__init__(f"interrupted after {done} of {total} removals: run the cleanup again to finish it")
        self.report = report
        self.done = done
        self.total = total


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
    work = _Cleanup(executor, scan, targets, report, more_owners=wanted is None)
    work.plan()
    with signals.terminate_cleanly(), signals.shielded():
        try:
            work.execute(progress)
        except KeyboardInterrupt as error:
            raise CleanupInterrupted(report, work.done, work.total) from error
        except signals.Terminated as error:
            error.add_note(f"cleanup stopped after {work.done} of {work.total} removals: run it again to finish it")
            raise
    return report


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


def stale_owners(scan: inv.Inventory) -> list[Owner]:
    """Process owners named by tags or ledgers whose process is gone."""
    return [o for o in scan.owners() if o.pid is not None and not o.is_alive()]


@attrs.define
class _Step:
    what: str
    run: Callable[[], Any]
    owner: Owner
    #: the commands ``run`` runs, when that is all it does: run with others in few processes
    commands: list[Command] = attrs.field(factory=list)


class _Cleanup:
    """Plans the removal for a set of owners, then carries it out in order."""

    def __init__(
        self,
        executor: Executor,
        scan: inv.Inventory,
        owners: Sequence[Owner],
        report: CleanupReport,
        *,
        more_owners: bool,
    ) -> None:
        #: also take in owners that are gone and known only by their iptables rules
        self.more_owners = more_owners
        self.executor = executor
        self.scan = scan
        self.owners = list(owners)
        self.report = report
        self.files = [lf for lf in scan.ledgers if lf.owner in self.owners]
        self.taken = {id(lf): _taken_entries(lf, scan) for lf in self.files}
        self.first_unproven = {
            id(lf): min((e.seq for e in lf.standing if e.seq not in self.taken[id(lf)]), default=0) for lf in self.files
        }
        self.doomed_netns: set[str] = set()
        self.doomed_links: list[inv.Link] = []
        self.ledger_chains: set[tuple[str, str | None, str, str]] = set()
        self.ledger_firewalls: set[tuple[str, str | None]] = set()
        self.failed_owners: set[Owner] = set()
        self._made_cache: dict[Owner, tuple[set[Any], set[Any], set[Any]]] = {}
        self.sysctls_seen: set[tuple[Owner, str | None, str]] = set()
        self.firewall_steps: list[_Step] = []
        self.chain_steps: list[_Step] = []
        self.undo_steps: list[_Step] = []
        self.link_steps: list[_Step] = []
        self.netns_steps: list[_Step] = []
        #: progress of execute(): steps carried out (or found needless, or failed) of all
        self.done = 0
        self.total = 0
        self.progress: Callable[[int, int], None] | None = None
        self._lock = threading.RLock()  # the firewall's steps run beside the namespaces'

    # -- planning ---------------------------------------------------------------
    def plan(self) -> None:
        for lf in self.files:
            if lf.foreign is not None:
                self.report.kept.append(
                    f"ledger {lf.path}: written in format {lf.foreign!r}, which this version of netns_kit "
                    "does not read: only what carries the tag was removed; the netns_kit that wrote it "
                    "can undo the rest"
                )
        for owner in self.owners:
            self._plan_namespaces(owner)
        for owner in self.owners:
            self._plan_links(owner)
        entries = [(entry.time, entry.seq, lf, entry) for lf in self.files for entry in lf.entries]
        # newest first: the exact reverse of the order the changes were made
        for _, _, lf, entry in sorted(entries, key=lambda t: (t[0], t[1]), reverse=True):
            step = self._ledger_step(lf, entry, entry.seq in self.taken[id(lf)])
            if step is not None:
                self.undo_steps.append(step)
        self._plan_claims()
        self._plan_firewall()
        if self._may_have_emulators():
            emulators = orphans.stops(self.executor, self.owners)  # link emulators left running, found by argv
            self.undo_steps += [_Step(what, self._runner([c]), o, [c]) for what, o, c in emulators]

    def _may_have_emulators(self) -> bool:
        """Whether a link emulator of these owners may be running: their ledgers (written
        ahead of every start) name one, or cannot tell (an owner without a ledger read
        whole). Looking costs a process of its own, which a topology without impairments
        need not pay."""
        read_whole = {lf.owner for lf in self.files if lf.foreign is None and not lf.skipped}
        if any(owner not in read_whole for owner in self.owners):
            return True
        return any(LINK_EMULATOR in entry.command.argv for lf in self.files for entry in lf.entries)

    def _plan_claims(self) -> None:
        """Restore the switches these owners claimed (netns_kit.lifecycle.sysctl): forwarding is
        written under the claims lock and recorded only by the claim, and a printed
        script writes no ledger; after the ledgers' own sysctl steps (which drop claims too)."""
        wanted = None if self.more_owners else self.owners[0] if self.owners else None
        if wanted is None and not self.more_owners:
            return
        for leftover in sysctl.leftovers(self.executor, wanted):

            def restore(run: Callable[[], str | None] = leftover.run) -> None:
                reason = run()
                if reason is not None:
                    raise _Keep(reason)

            self.undo_steps.append(_Step(leftover.what, restore, leftover.owner))

    def _owned(self, owner: Owner, alias: str | None, key: Any, what: str) -> bool:
        """Is the object ``key`` (a namespace name, a (link, netns)) this owner's?

        Yes when it carries the owner's tag; or when it carries no tag and the
        ledger proves this owner created it and had not tagged it yet.
        """
        if alias == owner.tag:
            return True
        created, tagged, maybe = self._made(owner)
        if key in created:
            if alias is None and key not in tagged:
                return True
            self.report.kept.append(
                f"{what}: {owner.id} created one of that name, but this one carries "
                f"{alias or 'no tag'} (made by someone else since)"
            )
        elif key in maybe and alias is None:
            self.report.kept.append(
                f"{what}: has no tag; {owner.id} was creating one of that name when it died, so it may be "
                "that one or one that was there before: check it and delete it yourself if it is left over"
            )
        return False

    def _made(self, owner: Owner) -> tuple[set[Any], set[Any], set[Any]]:
        """What the owner's ledgers prove it created, proved it tagged, and may have created."""
        if owner not in self._made_cache:
            files = [lf for lf in self.files if lf.owner == owner]
            taken = [(lf.owner, e) for lf in files for e in lf.entries if e.seq in self.taken[id(lf)]]
            standing = [(lf.owner, e) for lf in files for e in lf.standing]
            # an entry in flight proves its creation when what it creates was seen absent
            # just before (and exists now): nobody else could have made it in between
            proven = [(o, e) for o, e in standing if e.absent]
            self._made_cache[owner] = (
                {obj for _, e in taken + proven for obj in _created_by(e.command)},
                {_tag_key(t) for o, e in taken if (t := _tagging_target(e.command, o)) is not None},
                {obj for _, e in standing if not e.absent for obj in _created_by(e.command)},
            )
        return self._made_cache[owner]

    def _plan_namespaces(self, owner: Owner) -> None:
        for name, alias in sorted(self.scan.namespaces.items()):
            if name in self.doomed_netns or not self._owned(owner, alias, name, f"namespace {name}"):
                continue
            self.doomed_netns.add(name)
            delete = [Command(("ip", "netns", "del", name), missing_ok=True)]
            self.netns_steps.append(_Step(f"namespace {name}", self._namespace_deleter(name), owner, delete))

    def _plan_links(self, owner: Owner) -> None:
        for link in self.scan.links:
            if link.netns in self.doomed_netns or link.peer_netns in self.doomed_netns:
                continue  # goes with its namespace (a veth: with its peer's namespace)
            if not self._owned(owner, link.alias, (link.name, link.netns), str(link)):
                continue
            self.doomed_links.append(link)
            command = Command(("ip", "link", "del", "dev", link.name), netns=link.netns, missing_ok=True)
            self.link_steps.append(_Step(str(link), self._runner([command]), owner, [command]))

    def _ledger_step(self, lf: inv.LedgerFile, entry: Entry, taken: bool) -> _Step | None:
        owner = lf.owner
        command = entry.command
        family = shape.firewall_family(command.argv)
        if family is not None:
            tool = "ip6tables" if family == 6 else "iptables"
            self.ledger_firewalls.add((tool, command.netns))
            fw = shape.iptables(command.argv)
            if fw is not None and fw.verb == "-N" and fw.chain is not None:
                self.ledger_chains.add((tool, command.netns, fw.table, fw.chain))
            return None  # rules carry the tag: the tag scan removes them
        if _created_by(command) or not command.undo:
            return None  # namespaces and links: decided by tag and ledger above
        if command.netns in self.doomed_netns:
            return None  # goes with its namespace
        if not taken and command.program == "sysctl" and entry.state in _MAYBE:
            # the plan only sets a value the sysctl did not have: if it holds that value
            # now, the change ran (the restore checks, and respects live claims)
            return self._sysctl_step(owner, command)
        if not taken:
            if entry.state in _MAYBE and entry.seq == self.first_unproven.get(id(lf)):
                # the changes after it never started (commands run in order)
                self.report.kept.append(f"{command.line}: was in flight when {owner.id} died and may not have run")
            return None
        if command.program == "sysctl":
            return self._sysctl_step(owner, command)
        undo = [u.tolerant() for u in command.undo]
        return _Step("; ".join(u.line for u in undo), self._runner(undo), owner, undo)

    def _sysctl_step(self, owner: Owner, command: Command) -> _Step | None:
        """Restore a sysctl to the value it had before this owner's FIRST change of it,
        if it still holds the value of the owner's LAST change (the newest entry is met
        first: older changes of the same key are folded into it)."""
        written = shape.sysctl(command.argv)
        if written is None or written.value is None:
            return None
        key, value = written.key, written.value
        place = (owner, command.netns, key)
        if place in self.sysctls_seen:
            return None
        self.sysctls_seen.add(place)
        undo = self._first_sysctl_undo(place) or command.undo[0]

        def restore() -> None:
            shared = sysctl.Claims.of(self.executor, key, command.netns)
            with shared.locked() if shared is not None else contextlib.nullcontext():
                result = self.executor.run(query("sysctl", "-n", key, netns=command.netns), check=False)
                if not result.ok:
                    return  # the interface it belonged to is gone
                now = result.stdout.strip()
                if now != value:
                    raise _Keep(f"sysctl {key} is {now}, not the {value} {owner.id} set: someone changed it since")
                restore = undo
                if shared is not None:
                    live = shared.live()
                    original = shared.drop([c for c in live if sysctl.claim_owner(c.name) == owner.id])
                    if original is None and shared.live():
                        raise _Keep(f"sysctl {key}: still relied on by running owners, who restore it when done")
                    if original is not None:
                        restore = shared.restore(original)
                self.executor.run(restore.tolerant())

        return _Step(f"sysctl {key} restored: {undo.line}", restore, owner)

    def _first_sysctl_undo(self, place: tuple[Owner, str | None, str]) -> Command | None:
        owner, netns, key = place
        for lf in sorted((lf for lf in self.files if lf.owner == owner), key=lambda lf: lf.started):
            for entry in lf.entries:
                written = shape.sysctl(entry.command.argv)
                if (
                    entry.seq in self.taken[id(lf)]
                    and written is not None
                    and written.key == key
                    and written.value is not None
                    and entry.command.netns == netns
                    and entry.command.undo
                ):
                    return entry.command.undo[0]
        return None

    def _namespace_deleter(self, name: str) -> Callable[[], None]:
        def delete() -> None:
            # stops what runs inside, deletes its veths (freeing their names at once), then the namespace
            Namespace(name, executor=self.executor).undo(
                self.executor, [Command(("ip", "netns", "add", name))], complete=True
            )

        return delete

    def _runner(self, commands: list[Command]) -> Callable[[], None]:
        def run() -> None:
            self.executor.run_all(commands)

        return run

    def _plan_firewall(self) -> None:
        # read now, and only where no namespace is about to go
        read: set[str | None] = {fw.netns for fw in self.scan.firewalls}  # the host's, read by the scan
        inv.read_firewalls(self.executor, self.scan, skip=read | self.doomed_netns)
        if self.more_owners:
            self.owners += [o for o in stale_owners(self.scan) if o not in self.owners]
        self.report.owners = list(self.owners)
        tags = {owner.tag: owner for owner in self.owners}
        for firewall in self.scan.firewalls:
            if firewall.netns in self.doomed_netns:
                continue  # goes with its namespace
            if firewall.error is not None:
                if (firewall.tool, firewall.netns) in self.ledger_firewalls:
                    where = firewall.netns or "the host"
                    self.report.errors.append(f"{firewall.tool} rules in {where} unreadable: {firewall.error}")
                continue
            doomed = [rule for rule in firewall.rules if rule.comment in tags]
            left = [rule for rule in firewall.rules if rule.comment not in tags]
            touched = {(rule.table, rule.chain) for rule in doomed}
            for rule in doomed:
                delete = [rule.delete()]
                self.firewall_steps.append(_Step(str(rule), self._runner(delete), tags[rule.comment or ""], delete))
            for chain in firewall.chains:
                key = (chain.tool, chain.netns, chain.table, chain.name)
                if not chain.name.startswith(inv.CHAIN_PREFIX):
                    continue
                if (chain.table, chain.name) not in touched and key not in self.ledger_chains:
                    continue  # not known to be ours: never judged
                if any(r.table == chain.table and chain.name in (r.chain, r.target) for r in left):
                    self.report.kept.append(f"{chain}: still holds, or is reached by, untagged rules")
                    continue
                delete = [chain.delete()]
                self.chain_steps.append(_Step(str(chain), self._runner(delete), self.owners[0], delete))

    # -- doing ------------------------------------------------------------------
    @property
    def steps(self) -> list[_Step]:
        return [
            *self.firewall_steps,
            *self.chain_steps,
            *self.undo_steps,
            *self.netns_steps,
            *self.link_steps,
        ]

    def execute(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Carry the plan out in few processes (the fast teardown's way, :mod:`netns_kit.lifecycle.teardown`):

        1. the tagged rules, in one ``iptables-restore --noflush`` per tool and
           namespace, then the ``NK-`` chains they emptied;
        2. what the ledgers undo (sysctls, routes, addresses outside the doomed
           namespaces), newest first;
        3. the processes in the doomed namespaces stopped (one look at ``/proc``),
           the namespaces deleted in one ``ip -batch``, the links outside them in
           another, then a bounded wait until the devices the kernel frees
           asynchronously (the host ends of their veths) are gone, so the names
           can be used again at once.

        A batch that fails is finished one step at a time, so each failure is
        reported with its own object, and everything else is still removed.
        """
        self.total = len(self.steps)
        self.progress = progress
        self.done = 0
        self._tell()
        if self.report.dry_run:
            for step in self.steps:
                self.report.removed.append(step.what)
            self.done = self.total
            self._tell()
            return
        self._run(self.undo_steps)
        if self.executor.parallel < 2 or not self.firewall_steps + self.chain_steps or not self.netns_steps:
            self._run_firewall()
            self._run_namespaces()
        else:
            # nf_tables and x_tables do not take the RTNL lock the namespaces' deletion holds
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(1, thread_name_prefix="netns_kit") as pool:
                rules = pool.submit(self._run_firewall)
                try:
                    self._run_namespaces()
                finally:
                    rules.result()
        self._settle_ledgers()

    def _run_firewall(self) -> None:
        self._run(self.firewall_steps)
        self._run(self.chain_steps)  # once the rules in them and the jumps to them are gone

    def _run_namespaces(self) -> None:
        # a bridge floods what its ports send to the others while they go: set it down first
        # (W(200): its deletion after the namespaces' took 0.22 s, and 0.0x s down)
        quiet = [
            change("ip", "link", "set", "dev", link.name, "down", netns=link.netns, missing_ok=True)
            for link in self.doomed_links
            if link.kind == "bridge"
        ]
        if quiet and self.netns_steps:
            try:
                self.executor.run_all(quiet)
            except NetnsKitError as error:
                log.debug("cleanup: setting the bridges down failed (%s): deleting them anyway", error)
        if self.netns_steps:
            try:
                stop_processes(self.executor, [Namespace(name, executor=self.executor) for name in self.doomed_netns])
            except NetnsKitError as error:
                self._failed(self.netns_steps[0].owner, f"stopping the processes in the namespaces: {error}")
        self._run(self.netns_steps)
        self._run(self.link_steps)
        if self.netns_steps:
            # the other ends of the veths in those namespaces: freed by the kernel, a moment later
            doomed = self.doomed_netns
            going = [(link.netns, link.name) for link in self.scan.links if link.peer_netns in doomed]
            try:
                wait_gone(self.executor, going)
            except NetnsKitError as error:
                self._failed(self.netns_steps[0].owner, str(error))

    def _tell(self) -> None:
        if self.progress is not None:
            with self._lock:
                self.progress(self.done, self.total)

    def _run(self, steps: list[_Step]) -> None:
        """Run ``steps``: those that only run commands all at once (:meth:`Executor.run_all`),
        in order with the others; what a failed batch left is then run step by step."""
        batch: list[_Step] = []
        for step in steps:
            if step.commands:
                batch.append(step)
                continue
            self._run_batch(batch)
            batch = []
            self._run_one(step)
        self._run_batch(batch)

    def _run_batch(self, steps: list[_Step]) -> None:
        if len(steps) < 2:
            for step in steps:
                self._run_one(step)
            return
        commands = [command for step in steps for command in step.commands]
        which = [i for i, step in enumerate(steps) for _ in step.commands]
        left = [len(step.commands) for step in steps]
        finished: set[int] = set()

        def on_done(indexes: Sequence[int]) -> None:
            for index in indexes:
                i = which[index]
                left[i] -= 1
                if left[i] == 0:
                    finished.add(i)
                    self._removed(steps[i])

        try:
            self.executor.run_all(commands, on_done=on_done)
        except (NetnsKitError, OSError, ValueError) as error:
            log.debug("cleanup: a batch failed (%s): the rest one at a time", error)
            for i, step in enumerate(steps):
                if i not in finished:
                    self._run_one(step)

    def _run_one(self, step: _Step) -> None:
        try:
            step.run()
        except _Keep as keep:
            with self._lock:
                self.report.kept.append(str(keep))
                self.done += 1
            self._tell()
            return
        except (NetnsKitError, OSError, ValueError) as error:  # ValueError: a damaged state file
            log.debug("cleanup step failed: %s: %s", step.what, error)
            self._failed(step.owner, f"{step.what}: {error}")
            with self._lock:
                self.done += 1
            self._tell()
            return
        self._removed(step)

    def _removed(self, step: _Step) -> None:
        log.debug("cleanup removed %s", step.what)
        with self._lock:
            self.report.removed.append(step.what)
            self.done += 1
        self._tell()

    def _failed(self, owner: Owner, error: str) -> None:
        with self._lock:
            self.report.errors.append(error)
            self.failed_owners.add(owner)

    def _settle_ledgers(self) -> None:
        """Remove the ledgers of owners fully cleaned up (kept when a step failed, for a retry)."""
        for lf in self.files:
            if lf.foreign is not None:
                continue  # not read: it may record more than the tags prove (reported in plan())
            if lf.owner not in self.failed_owners:
                try:
                    lf.path.unlink()
                except FileNotFoundError:
                    pass


class _Keep(Exception):
    """A step that found it must leave the object alone (with the reason)."""


def _taken_entries(lf: inv.LedgerFile, scan: inv.Inventory) -> set[int]:
    """Entries that took effect: marked ok, or in flight and seen to have taken effect.

    No order is assumed between entries: a batching executor runs the commands of
    different namespaces side by side, so an entry in flight before one that took
    effect may not have run (its step is marked ok as soon as it is done).
    """
    return {e.seq for e in lf.entries if e.state in _TAKEN or (e.state in _MAYBE and _seen(e.command, lf.owner, scan))}


def _seen(command: Command, owner: Owner, scan: inv.Inventory) -> bool:
    """True when ``command`` (a tagging command) is seen to have taken effect."""
    target = _tagging_target(command, owner)
    if target is None:
        return False
    name, netns = target
    if name == "lo":
        return netns is not None and scan.namespaces.get(netns) == owner.tag
    link = scan.link(name, netns)
    return link is not None and link.alias == owner.tag


def _tagging_target(command: Command, owner: Owner) -> tuple[str, str | None] | None:
    ip = shape.ip(command.argv)
    if ip is None or (ip.object, ip.verb) != ("link", "set") or ip.options or ip.args[:1] != ("dev",):
        return None
    if "alias" in ip.args and owner.tag in ip.args and ip.device is not None:
        return ip.device, command.netns
    return None


def _tag_key(target: tuple[str, str | None]) -> Any:
    """The object a tagging command marks: a namespace name for ``lo``, else (link, netns)."""
    name, netns = target
    return netns if name == "lo" else target


def _created_by(command: Command) -> list[Any]:
    return created_by(command)
