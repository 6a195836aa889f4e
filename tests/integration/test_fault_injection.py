"""Fault injection: for a topology of S steps, a real failure at every step k (a name clash
or a bad value created on the spot, in the sandbox) leaves the normalized state exactly as
before: S out of S."""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs
import pytest

from netns_kit import Command
from netns_kit.batching.outcome import Outcome
from netns_kit.errors import CommandError
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state

from .crash_child import topology

STEPS = len(topology().plan().commands)


def sabotage(command: Command) -> tuple[Command | None, Command, Command | None]:
    """(a clash to create first, the command to run instead, what removes the clash) for a real failure."""
    argv = command.argv
    if argv[:3] == ("ip", "netns", "add"):  # the name is taken
        return Command(argv), command, Command(("ip", "netns", "del", argv[3]))
    if argv[:4] == ("ip", "link", "add", "name"):  # the name is taken, where the link is made
        clash = Command(("ip", "link", "add", "name", argv[4], "type", "bridge"), netns=command.netns)
        return clash, command, Command(("ip", "link", "del", "dev", argv[4]), netns=command.netns)
    if "-N" in argv:  # the chain exists
        return Command(argv), command, Command(tuple(a if a != "-N" else "-X" for a in argv))
    if argv[:4] == ("ip", "link", "set", "dev"):  # no such device
        return None, attrs.evolve(command, argv=(*argv[:4], "nk-nodev0", *argv[5:])), None
    if argv[:3] == ("ip", "addr", "add"):  # a bad address
        return None, attrs.evolve(command, argv=(*argv[:3], re.sub(r"/\d+$", "/33", argv[3]), *argv[4:])), None
    if argv[:3] == ("ip", "route", "add"):  # a gateway on no connected subnet
        bad = tuple("203.0.113.99" if a == str(argv[argv.index("via") + 1]) else a for a in argv)
        return None, attrs.evolve(command, argv=bad), None
    if argv[0] == "iptables" and "-j" in argv:  # a jump to a chain that does not exist
        target = argv.index("-j") + 1
        return None, attrs.evolve(command, argv=(*argv[:target], "NK-nochain", *argv[target + 1 :])), None
    if argv[0] == "sysctl":  # no such key
        return None, attrs.evolve(command, argv=(*argv[:-1], "net.ipv4.nk_nokey=1")), None
    raise AssertionError(f"no real failure known for {command.line}")


class FailingAt(Sandbox):
    """Makes the k-th change fail for real, in the kernel or in iptables (batched or not),
    and remembers the command that failed and the error the executor raised for it."""

    k = 0
    seen = 0
    clash: Command | None = None
    unclash: Command | None = None
    failed: Command | None = None
    raised: BaseException | None = None
    in_handle = False

    def _step(self, command: Command) -> Command:
        """Count a change; the k-th is sabotaged (its clash made first)."""
        self.seen += 1
        if self.seen != self.k:
            return command
        self.clash, command, self.unclash = sabotage(command)
        if self.clash is not None:
            super().run(self.clash)
        self.failed = command
        return command

    def handle(  # type: ignore[no-untyped-def]
        self, commands: Sequence[Command], *, input=None, timeout=None, on_done=None
    ) -> Outcome:
        """Every change is a step: those of a whole topology, and one made on its own (the
        forwarding switch is written while the topology is planned, under the sysctl lock,
        netns_kit.lifecycle.sysctl). What this executor runs meanwhile (a clash, the
        commands a batch replays one by one) is not."""
        if self.in_handle:
            return super().handle(commands, input=input, timeout=timeout, on_done=on_done)
        self.in_handle = True
        try:
            commands = [self._step(c) if c.mutating else c for c in commands]
            outcome = super().handle(commands, input=input, timeout=timeout, on_done=on_done)
        finally:
            self.in_handle = False
        if outcome.error is not None and self.failed is not None and self.raised is None:
            self.raised = outcome.error
        return outcome


def test_every_step_has_a_real_failure() -> None:
    assert STEPS >= 25
    for command in topology().plan().commands:
        sabotage(command)  # raises for a kind of step nobody knows how to break


@pytest.mark.parametrize("k", range(1, STEPS + 1))
def test_real_failure_at_step_k_leaves_the_state_as_before(sb: Sandbox, k: int) -> None:
    box = FailingAt.attach(sb.pid)
    box.k = k
    before = state.snapshot(sb)
    with pytest.raises(CommandError) as info:
        topology().up(box)
    assert box.seen >= k
    assert not getattr(info.value, "cleanup_errors", [])
    clash = box.clash
    if clash is not None:  # the object we clashed with survived the rollback untouched
        expected = state.snapshot(sb)
        sb.run(box.unclash)  # type: ignore[arg-type]
        assert state.diff(before, state.snapshot(sb)) == []
        assert expected != before
    assert state.diff(before, state.snapshot(sb)) == []
