"""An executor over another one: :class:`View`.

A view changes what it handles of the commands (the planning view answers planned
sysctls itself, :class:`~netns_kit.lifecycle.overlay.PlannedSysctls`; the nft holder
sends the owner's table's transactions to ``nft -i``,
:class:`~netns_kit.firewall.nftheld.Held`) and hands everything else, and every
question about where it acts, to ``inner``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netns_kit.batching.outcome import Outcome
from netns_kit.command import Command
from netns_kit.executors.hook import Executor
from netns_kit.executors.inorder import OnDone
from netns_kit.executors.process import Process


class View(Executor):
    """``inner``, seen through this: the same owner, dry-run or not, the same place."""

    def __init__(self, inner: Executor) -> None:
        super().__init__(inner.owner)
        self.inner = inner
        self.dry_run = inner.dry_run

    def handle(
        self,
        commands: Sequence[Command],
        *,
        input: str | None = None,
        timeout: float | None = None,
        on_done: OnDone | None = None,
    ) -> Outcome:
        return self.inner.handle(commands, input=input, timeout=timeout, on_done=on_done)

    @property
    def underlying(self) -> Executor:
        return self.inner.underlying

    def argv_for(self, command: Command) -> tuple[str, ...]:
        return self.inner.argv_for(command)

    @property
    def ledger_dir(self) -> Path | None:
        return self.inner.ledger_dir

    def popen(self, command: Command, **kwargs: Any) -> Process:
        return self.inner.popen(command, **kwargs)

    def host_devices(self) -> set[str] | None:
        return self.inner.host_devices()

    def netns_pids(self, names: Sequence[str]) -> dict[str, list[int]]:
        return self.inner.netns_pids(names)
