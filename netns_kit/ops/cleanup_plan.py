"""Planning :func:`netns_kit.cleanup`: what the tags and the ledgers of the owners in
question say must go, as steps in order (see :mod:`netns_kit.ops.cleanup`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from netns_kit import shape
from netns_kit.command import Command, query
from netns_kit.executors.base import Executor
from netns_kit.firewall import nftread
from netns_kit.lifecycle import sysctl
from netns_kit.lifecycle.ledger import Entry, created_by
from netns_kit.linkemu import orphans
from netns_kit.linkemu.plan import MODULE as LINK_EMULATOR
from netns_kit.ops import inventory as inv
from netns_kit.ops.cleanup_evidence import MAYBE, tag_key, tagging_target, taken_entries
from netns_kit.ops.cleanup_report import CleanupReport, Keep, Step
from netns_kit.owner import Owner
from netns_kit.resources.namespace import Namespace


def said(commands: list[Command]) -> str:
    """``commands`` for a report: each its shell line, but an ``nft -f -`` transaction what it
    removes (``nft table inet netns_kit_42.7 (in red)``), not ``nft -f -``."""
    return "; ".join(nftread.describe(c) or c.line for c in commands)


def attached(command: Command) -> str | None:
    """The name ``ip netns attach NAME PID`` gives someone else's namespace (else None)."""
    named = shape.netns_attach(command.argv)
    return named[0] if named else None


def stale_owners(scan: inv.Inventory) -> list[Owner]:
    """Process owners named by tags or ledgers whose process is gone."""
    return [o for o in scan.owners() if o.pid is not None and not o.is_alive()]


class Plan:
    """Plans the removal for a set of owners (:class:`~netns_kit.ops.cleanup_run.Removal` carries it out)."""

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
        self.taken = {id(lf): taken_entries(lf, scan) for lf in self.files}
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
        self.firewall_steps: list[Step] = []
        self.chain_steps: list[Step] = []
        self.undo_steps: list[Step] = []
        self.link_steps: list[Step] = []
        self.netns_steps: list[Step] = []
        #: names given to other people's namespaces (``ip netns attach``): removed last, after
        #: what was put inside them (only the name goes; the namespace and its processes stay)
        self.detach_steps: list[Step] = []
        #: progress of execute(): steps carried out (or found needless, or failed) of all
        self.done = 0
        self.total = 0
        self.progress: Callable[[int, int], None] | None = None
        self._lock = threading.RLock()  # the firewall's steps run beside the namespaces'

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
            self.undo_steps += [Step(what, self._runner([c]), o, [c]) for what, o, c in emulators]

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
                    raise Keep(reason)

            self.undo_steps.append(Step(leftover.what, restore, leftover.owner))

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
                {obj for _, e in taken + proven for obj in created_by(e.command)},
                {tag_key(t) for o, e in taken if (t := tagging_target(e.command, o)) is not None},
                {obj for _, e in standing if not e.absent for obj in created_by(e.command)},
            )
        return self._made_cache[owner]

    def _plan_namespaces(self, owner: Owner) -> None:
        for name, alias in sorted(self.scan.namespaces.items()):
            if name in self.doomed_netns or not self._owned(owner, alias, name, f"namespace {name}"):
                continue
            self.doomed_netns.add(name)
            delete = [Command(("ip", "netns", "del", name), missing_ok=True)]
            self.netns_steps.append(Step(f"namespace {name}", self._namespace_deleter(name), owner, delete))

    def _plan_links(self, owner: Owner) -> None:
        for link in self.scan.links:
            if link.netns in self.doomed_netns or link.peer_netns in self.doomed_netns:
                continue  # goes with its namespace (a veth: with its peer's namespace)
            if not self._owned(owner, link.alias, (link.name, link.netns), str(link)):
                continue
            self.doomed_links.append(link)
            command = Command(("ip", "link", "del", "dev", link.name), netns=link.netns, missing_ok=True)
            self.link_steps.append(Step(str(link), self._runner([command]), owner, [command]))

    def _ledger_step(self, lf: inv.LedgerFile, entry: Entry, taken: bool) -> Step | None:
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
        if created_by(command) or not command.undo:
            return None  # namespaces and links: decided by tag and ledger above
        if command.netns in self.doomed_netns:
            return None  # goes with its namespace
        if not taken and command.program == "sysctl" and entry.state in MAYBE:
            # the plan only sets a value the sysctl did not have: if it holds that value
            # now, the change ran (the restore checks, and respects live claims)
            return self._sysctl_step(owner, command)
        if not taken:
            if entry.state in MAYBE and entry.seq == self.first_unproven.get(id(lf)):
                # the changes after it never started (commands run in order)
                self.report.kept.append(f"{command.line}: was in flight when {owner.id} died and may not have run")
            return None
        if command.program == "sysctl":
            return self._sysctl_step(owner, command)
        undo = [u.tolerant() for u in command.undo]
        step = Step(said(undo), self._runner(undo), owner, undo)
        if attached(command) is not None:
            self.detach_steps.append(step)
            return None
        return step

    def _sysctl_step(self, owner: Owner, command: Command) -> Step | None:
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
                    raise Keep(f"sysctl {key} is {now}, not the {value} {owner.id} set: someone changed it since")
                restore = undo
                if shared is not None:
                    live = shared.live()
                    original = shared.drop([c for c in live if sysctl.claim_owner(c.name) == owner.id])
                    if original is None and shared.live():
                        raise Keep(f"sysctl {key}: still relied on by running owners, who restore it when done")
                    if original is not None:
                        restore = shared.restore(original)
                self.executor.run(restore.tolerant())

        return Step(f"sysctl {key} restored: {undo.line}", restore, owner)

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
                self.firewall_steps.append(Step(str(rule), self._runner(delete), tags[rule.comment or ""], delete))
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
                self.chain_steps.append(Step(str(chain), self._runner(delete), self.owners[0], delete))
