"""Rollback: a failure at step k undoes steps 1..k-1 exactly, in reverse, and re-raises."""

from __future__ import annotations

import pytest

from netns_kit import Command, Recorder, Result
from netns_kit.errors import CommandError, NotFoundError
from netns_kit.topology import scenarios


def _failing_at(k: int, stderr: str = "RTNETLINK answers: File exists"):
    count = {"n": 0}
    undo_errors: list[str] = []

    def handler(command: Command):
        if not command.mutating:
            return None
        count["n"] += 1
        if count["n"] == k:
            return Result(command, 2, "", stderr)
        return None

    return handler, undo_errors


def _steps() -> int:
    return len(scenarios.seed001_bridge().plan().commands)


@pytest.mark.parametrize("k", range(1, _steps() + 1))
def test_failure_at_every_step_undoes_exactly_what_was_done(k: int) -> None:
    handler, _ = _failing_at(k)
    recorder = Recorder(handler)
    with pytest.raises(CommandError) as info:
        scenarios.seed001_bridge().up(recorder)
    done = recorder.commands[: k - 1]
    expected_undo = [u.argv for c in reversed(done) for u in c.undo]
    undone = [c.argv for c in recorder.commands[k - 1 :]]
    # namespaces delete their veths first (none here: the recorder reports none)
    assert undone == expected_undo
    assert info.value.returncode == 2
    assert "File exists" in info.value.stderr


def test_cleanup_errors_are_attached_never_masking_the_original() -> None:
    def handler(command: Command):
        if command.netns == "red" and command.argv[:3] == ("ip", "route", "add"):
            return Result(command, 2, "", "Error: Nexthop has invalid gateway.")
        if command.argv[:3] == ("ip", "link", "del") and command.argv[-1] == "veth-red":
            return Result(command, 2, "", "RTNETLINK answers: Operation not permitted")
        return None

    with pytest.raises(CommandError) as info:
        scenarios.seed001_bridge().up(Recorder(handler))
    error = info.value
    assert "Nexthop" in error.stderr
    assert len(error.cleanup_errors) == 1
    assert "Operation not permitted" in str(error.cleanup_errors[0])
    assert any("while undoing" in note for note in error.__notes__)


def test_down_twice_is_a_no_op() -> None:
    recorder = Recorder()
    topo = scenarios.seed001_pipe().up(recorder)
    topo.down()
    n = len(recorder.commands)
    topo.down()
    assert len(recorder.commands) == n


def test_missing_objects_on_undo_are_fine() -> None:
    def handler(command: Command):
        if command.argv[:3] == ("ip", "netns", "del"):
            return Result(command, 1, "", 'Cannot remove namespace file "/run/netns/x": No such file or directory')
        return None

    topo = scenarios.seed001_pipe().up(Recorder(handler))
    topo.down()
    assert not topo.is_up
    assert issubclass(NotFoundError, CommandError)


# -- a SIGTERM landing after every command ran, before the topology knew it was up -----


def _torn_down_after_up() -> list[tuple[str, ...]]:
    """What a normal up() then down() of seed001_bridge runs, undo included."""
    recorder = Recorder()
    scenarios.seed001_bridge().up(recorder).down()
    return [c.argv for c in recorder.commands]


def test_a_signal_right_after_the_run_still_undoes_everything() -> None:
    from netns_kit.signals import Terminated

    class LateSignal(Recorder):
        # every command ran and was reported; the signal lands as the first run returns
        signalled = False

        def handle(self, commands, *, input=None, timeout=None, on_done=None):  # type: ignore[no-untyped-def]
            outcome = super().handle(commands, input=input, timeout=timeout, on_done=on_done)
            if self.signalled or len(commands) < 2:
                return outcome
            self.signalled = True
            raise Terminated

    recorder = LateSignal()
    with pytest.raises(Terminated):
        scenarios.seed001_bridge().up(recorder)
    assert [c.argv for c in recorder.commands] == _torn_down_after_up()


def test_a_signal_after_the_journal_is_done_still_undoes_everything(mocker) -> None:  # type: ignore[no-untyped-def]
    from netns_kit.lifecycle.journal import Journal
    from netns_kit.signals import Terminated

    expected = _torn_down_after_up()
    apply_all = Journal.apply_all

    def then_a_signal(self, resources):  # type: ignore[no-untyped-def]
        apply_all(self, resources)
        raise Terminated

    mocker.patch.object(Journal, "apply_all", then_a_signal)
    recorder = Recorder()
    topo = scenarios.seed001_bridge()
    with pytest.raises(Terminated):
        topo.up(recorder)
    assert not topo.is_up
    assert [c.argv for c in recorder.commands] == expected


def test_a_signal_as_enter_returns_still_tears_down(mocker) -> None:  # type: ignore[no-untyped-def]
    from netns_kit import Topology
    from netns_kit.signals import Terminated

    expected = _torn_down_after_up()
    up = Topology.up

    def up_then_a_signal(self, executor=None):  # type: ignore[no-untyped-def]
        up(self, executor)
        raise Terminated  # lands in __enter__, after up() returned: the with block never starts

    recorder = Recorder()
    topo = scenarios.seed001_bridge()
    topo.executor = recorder
    mocker.patch.object(Topology, "up", up_then_a_signal)
    with pytest.raises(Terminated), topo:
        pytest.fail("the block must not run")
    assert not topo.is_up
    assert [c.argv for c in recorder.commands] == expected
