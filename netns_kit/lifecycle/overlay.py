"""Planning many resources at once: sysctls answered from what is already planned.

A :class:`~netns_kit.topology.topology.Topology` plans every resource before any of
them runs. A :class:`~netns_kit.firewall.nat.NatRule` and a
:class:`~netns_kit.firewall.portforward.PortForward` both need ``net.ipv4.ip_forward=1``:
planned against the machine, both would read ``0`` and both set it (and the
second's undo would "restore" the ``1`` the first set). Planned through
:class:`PlannedSysctls`, the second reads the ``1`` the first will set and
plans nothing; the first one's undo restores the value from before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from netns_kit import shape
from netns_kit.batching.outcome import Outcome, Progress
from netns_kit.command import Command, Result
from netns_kit.executors.base import Executor, OnDone
from netns_kit.executors.view import View

log = logging.getLogger("netns_kit")


class PlannedSysctls(View):
    """An executor for planning: ``sysctl -n KEY`` answered from the sysctls planned so
    far (:meth:`learn`); everything else goes to ``inner`` (its :attr:`underlying`)."""

    def __init__(self, inner: Executor) -> None:
        super().__init__(inner)
        self._planned: dict[tuple[str | None, str], str] = {}

    def __repr__(self) -> str:
        return f"PlannedSysctls({self.inner!r})"

    def learn(self, commands: Iterable[Command]) -> None:
        """Remember the sysctls ``commands`` set (``sysctl -q -w KEY=VALUE``)."""
        for command in commands:
            written = shape.sysctl_write(command.argv)
            if written is not None:
                self._planned[(command.netns, written.key)] = written.value or ""

    def handle(
        self,
        commands: Sequence[Command],
        *,
        input: str | None = None,
        timeout: float | None = None,
        on_done: OnDone | None = None,
    ) -> Outcome:
        """A read of a planned sysctl answered here; anything else handled by ``inner``."""
        if len(commands) == 1:
            command = commands[0]
            key = None if command.mutating else shape.sysctl_read(command.argv)
            if key is not None:
                value = self._planned.get((command.netns, key))
                if value is not None:
                    log.debug("planned already: %s = %s", key, value)
                    return Outcome({0: Result(command, 0, value + "\n", "")}, Progress((0,)))
        return self.inner.handle(commands, input=input, timeout=timeout, on_done=on_done)
