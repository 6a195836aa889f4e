"""SIGTERM tears down what a `with` block built; one SIGTERM or Ctrl-C waits for an undo to
finish; a handler of the program's own is never replaced. No privileges: a recorder."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from netns_kit import Command, Namespace, Recorder, Result, Topology, VethPair, signals


@pytest.fixture(autouse=True)
def default_sigterm() -> Iterator[None]:
    saved = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, saved)


def topology(executor: Recorder | None = None) -> Topology:
    resources = [Namespace("red"), Namespace("blue"), VethPair("a", "b", netns="red", peer_netns="blue")]
    return Topology(resources, executor=executor)


def test_sigterm_inside_a_with_block_tears_the_topology_down() -> None:
    recorder = Recorder()
    with pytest.raises(signals.Terminated) as info, topology(recorder) as topo:
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        up = len(recorder.commands)
        os.kill(os.getpid(), signal.SIGTERM)
    assert info.value.code == 143
    assert not topo.is_up
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    torn = [c.line for c in recorder.commands[up:]]
    assert torn == ["ip -n red link del dev a", "ip netns del blue", "ip netns del red"]


@pytest.fixture(autouse=True)
def recorder_in_effect() -> Iterator[None]:
    import netns_kit

    with netns_kit.use(Recorder()):
        yield


def test_the_handler_is_ours_only_while_a_block_runs() -> None:
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with topology(), Namespace("green"):
        assert signal.getsignal(signal.SIGTERM) is signals._on_signal
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_handler_of_the_program_is_never_replaced() -> None:
    called: list[int] = []

    def mine(signum: int, frame: FrameType | None) -> None:
        called.append(signum)

    signal.signal(signal.SIGTERM, mine)
    with topology():
        assert signal.getsignal(signal.SIGTERM) is mine
        os.kill(os.getpid(), signal.SIGTERM)
    assert called == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is mine


def test_a_handler_installed_during_the_block_is_not_restored_over() -> None:
    def mine(signum: int, frame: FrameType | None) -> None:
        pass

    with topology():
        signal.signal(signal.SIGTERM, mine)
    assert signal.getsignal(signal.SIGTERM) is mine


def test_one_sigterm_during_teardown_waits_until_the_teardown_is_complete() -> None:
    sent = []

    def handler(command: Command) -> Result | str | None:
        if command.argv[:3] == ("ip", "netns", "del") and not sent:
            sent.append(command)
            os.kill(os.getpid(), signal.SIGTERM)  # lands in the middle of the teardown
        return None

    recorder = Recorder(handler)
    topo = Topology([Namespace("red"), Namespace("blue")], executor=recorder)
    with pytest.raises(signals.Terminated), topo:
        pass
    deleted = [c.argv[3] for c in recorder.commands if c.argv[:3] == ("ip", "netns", "del")]
    assert deleted == ["blue", "red"]  # both, though the signal came during the first


def test_a_sigterm_as_down_takes_the_journal_waits_until_the_teardown_is_complete(mocker) -> None:  # type: ignore[no-untyped-def]
    from netns_kit.lifecycle.journal import Journal

    close = Journal.close

    def signal_then_close(self: Journal) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # after down() took the journal, before the undo
        close(self)

    mocker.patch.object(Journal, "close", signal_then_close)
    recorder = Recorder()
    with pytest.raises(signals.Terminated), topology(recorder):
        pass
    assert [c.argv[3] for c in recorder.commands if c.argv[:3] == ("ip", "netns", "del")] == ["blue", "red"]


@pytest.mark.parametrize("kind", ["topology", "resource"])
def test_a_sigterm_before_the_undo_is_held_back_still_tears_down(mocker, kind: str) -> None:  # type: ignore[no-untyped-def]
    shielded = signals.shielded
    landed = []

    def signal_first(*args: object):  # type: ignore[no-untyped-def]
        if not landed:  # lands as the undo is about to hold signals back: raised at once
            landed.append(True)
            raise signals.Terminated
        return shielded(*args)

    recorder = Recorder()
    made = topology(recorder) if kind == "topology" else Namespace("red", executor=recorder)
    with pytest.raises(signals.Terminated), made:  # type: ignore[attr-defined]
        mocker.patch.object(signals, "shielded", signal_first)
    assert landed
    deleted = [c.argv[3] for c in recorder.commands if c.argv[:3] == ("ip", "netns", "del")]
    assert deleted == (["blue", "red"] if kind == "topology" else ["red"])


def test_a_second_ctrl_c_during_teardown_stops_it_at_once() -> None:
    count = []

    def handler(command: Command) -> Result | str | None:
        if command.argv[:3] == ("ip", "netns", "del"):
            count.append(command)
            os.kill(os.getpid(), signal.SIGINT)
            if len(count) == 1:
                os.kill(os.getpid(), signal.SIGINT)
        return None

    recorder = Recorder(handler)
    topo = Topology([Namespace("red"), Namespace("blue")], executor=recorder)
    with pytest.raises(KeyboardInterrupt), topo:
        pass
    assert len(count) == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_during_up_rolls_back_what_was_done() -> None:
    def handler(command: Command) -> Result | str | None:
        if command.argv[:3] == ("ip", "netns", "add") and command.argv[3] == "blue":
            os.kill(os.getpid(), signal.SIGTERM)
        return None

    recorder = Recorder(handler)
    with pytest.raises(signals.Terminated):
        topology().up(recorder)
    lines = recorder.lines
    assert lines[-2:] == ["ip netns del blue", "ip netns del red"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


class _Finalized:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs in here: Python swallows what it raises
        for _ in range(10000):
            pass


def test_a_sigterm_swallowed_by_a_finalizer_is_raised_again() -> None:
    with pytest.raises(signals.Terminated), signals.terminate_cleanly():
        _Finalized()  # dropped at once
        time.sleep(5)  # the SIGTERM sent again ends this
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_second_signal_is_raised_once_not_again_when_the_undo_block_ends() -> None:
    # the first (held) one went out with the second: raising it again at the block's end
    # would replace the error the second one caused (cleanup()'s CleanupInterrupted)
    raised = []
    with pytest.raises(ValueError, match="what the caller made of it"), signals.shielded():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # a handler runs between two bytecodes: this never ends by itself
        except KeyboardInterrupt:
            raised.append(1)
            raise ValueError("what the caller made of it") from None
    assert raised == [1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_landing_while_the_first_is_reported_is_not_held_too() -> None:
    """The held signal is recorded before it is logged: a second one that lands while the
    warning is written (a terminal's Ctrl-C Ctrl-C) stops the undo instead of being held."""
    import logging

    sent: list[int] = []

    class SecondCtrlC(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "received while undoing" in record.getMessage() and not sent:
                sent.append(1)
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # it lands here, while the first one is being reported

    logger = logging.getLogger("netns_kit")
    handler = SecondCtrlC()
    logger.addHandler(handler)
    finished = False
    try:
        with pytest.raises(KeyboardInterrupt), signals.shielded():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            finished = True
    finally:
        logger.removeHandler(handler)
    assert sent == [1]
    assert not finished  # stopped by the second one, not run to its end
