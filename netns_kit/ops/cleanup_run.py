"""Carrying out :func:`netns_kit.cleanup`'s plan in few processes, each failure
reported with its object (see :mod:`netns_kit.ops.cleanup`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from netns_kit.command import change
from netns_kit.errors import NetnsKitError
from netns_kit.lifecycle.teardown import wait_gone
from netns_kit.ops.cleanup_plan import Plan
from netns_kit.ops.cleanup_report import Keep, Step
from netns_kit.owner import Owner
from netns_kit.resources.namespace import Namespace, stop_processes

log = logging.getLogger("netns_kit")


class Removal(Plan):
    """A :class:`~netns_kit.ops.cleanup_plan.Plan` carried out, in order."""

    @property
    def steps(self) -> list[Step]:
        return [
            *self.firewall_steps,
            *self.chain_steps,
            *self.undo_steps,
            *self.netns_steps,
            *self.link_steps,
            *self.detach_steps,
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
           can be used again at once;
        4. the names given to other people's namespaces (``ip netns attach``): only
           the names, never the namespaces or what runs in them.

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
        if not self.firewall_steps + self.chain_steps or not self.netns_steps:
            self._run_firewall()
            self._run_namespaces()
        else:
            # nf_tables and x_tables do not take the RTNL lock the namespaces' deletion holds:
            # the executor runs both at once when it runs several processes at once
            self.executor.side_by_side(self._run_firewall, self._run_namespaces, background="first")
        # other people's namespaces lose the name we gave them last: the rules and links
        # put inside them were reached through it
        self._run(self.detach_steps)
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

    def _run(self, steps: list[Step]) -> None:
        """Run ``steps``: those that only run commands all at once (:meth:`Executor.run_all`),
        in order with the others; what a failed batch left is then run step by step."""
        batch: list[Step] = []
        for step in steps:
            if step.commands:
                batch.append(step)
                continue
            self._run_batch(batch)
            batch = []
            self._run_one(step)
        self._run_batch(batch)

    def _run_batch(self, steps: list[Step]) -> None:
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

    def _run_one(self, step: Step) -> None:
        try:
            step.run()
        except Keep as keep:
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

    def _removed(self, step: Step) -> None:
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
