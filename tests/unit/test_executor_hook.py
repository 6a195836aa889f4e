"""The one hook of an executor, ``handle(commands) -> Outcome``, and the typed progress it returns.

A toy executor that implements only the hook (a dict plays the machine) works with
every entry point and with a whole topology, as the recorder does; what took effect is
an :class:`~netns_kit.batching.outcome.Progress` read with plain attribute access.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import pytest

import netns_kit
from netns_kit import Command, Recorder, Result, change, query
from netns_kit.batching.outcome import Outcome, Progress
from netns_kit.errors import AlreadyExistsError, BinaryNotFoundError, NotFoundError
from netns_kit.executors import capability
from netns_kit.executors.base import Executor, OnDone, in_order
from netns_kit.lifecycle.overlay import PlannedSysctls
from netns_kit.topology import scenarios


class Toy(Executor):
    """An executor with nothing but the hook, which touches nothing (as the recorder)."""

    dry_run = True

    def __init__(self, fail: str = "", interrupt: str = "") -> None:
        super().__init__(netns_kit.Owner.dry_run())
        self.ran: list[Command] = []
        self.fail = fail
        self.interrupt = interrupt

    def handle(
        self,
        commands: Sequence[Command],
        *,
        input: str | None = None,
        timeout: float | None = None,
        on_done: OnDone | None = None,
    ) -> Outcome:
        return in_order(commands, self.one, input=input, timeout=timeout, on_done=on_done)

    def one(self, command: Command, input: str | None, timeout: float | None) -> Result:
        if self.interrupt and self.interrupt in command.line:
            raise KeyboardInterrupt
        if self.fail and self.fail in command.line:
            return Result(command, 2, "", "RTNETLINK answers: File exists")
        if command.mutating:
            self.ran.append(command)
        return Result(command, 0, "0\n" if command.argv[:2] == ("sysctl", "-n") else "", "")


def test_run_and_run_all_work_through_the_hook_alone() -> None:
    toy = Toy(fail="add dev b")
    assert toy.run(query("ip", "-j", "link")).ok
    done = toy.run_all([change("ip", "link", "add", "dev", "a"), change("ip", "link", "set", "dev", "a", "up")])
    assert [r.command.line for r in done] == ["ip link add dev a", "ip link set dev a up"]
    with pytest.raises(AlreadyExistsError) as info:  # classified from the result the hook gave
        toy.run(change("ip", "link", "add", "dev", "b"))
    assert toy.run(change("ip", "link", "add", "dev", "b"), check=False).returncode == 2
    with pytest.raises(AlreadyExistsError) as info:
        toy.run_all([change("ip", "link", "add", "dev", "c"), change("ip", "link", "add", "dev", "b")])
    assert [r.command.line for r in info.value.completed] == ["ip link add dev c"]


def test_a_toy_executor_brings_a_topology_up_and_down_as_the_recorder_does() -> None:
    toy, recorder = Toy(), Recorder()
    scenarios.seed001_bridge().up(toy).down()
    scenarios.seed001_bridge().up(recorder).down()
    assert toy.ran == recorder.commands


def test_progress_is_a_value_positions_that_took_effect_failed_or_may_have() -> None:
    commands = [change("ip", "link", "add", "dev", n) for n in "abcd"]
    failed = Toy(fail="dev c").attempt(commands)
    assert isinstance(failed.error, AlreadyExistsError)
    assert failed.progress == Progress(completed=(0, 1), inflight=(), failed=2)
    assert [r.command for r in failed.completed] == commands[:2]
    assert failed.results[2].returncode == 2  # the failed command's own result
    interrupted = Toy(interrupt="dev b").attempt(commands)
    assert isinstance(interrupted.error, KeyboardInterrupt)
    assert interrupted.progress == Progress(completed=(0,), inflight=(1,), failed=None)
    assert Toy().attempt(commands) == Outcome(
        {i: Result(c, 0, "", "") for i, c in enumerate(commands)}, Progress((0, 1, 2, 3))
    )


def test_a_missing_ok_command_that_finds_nothing_counts_as_done() -> None:
    class Gone(Toy):
        def one(self, command: Command, input: str | None, timeout: float | None) -> Result:
            return Result(command, 1, "", 'Cannot find device "x"')

    outcome = Gone().attempt([Command(("ip", "link", "del", "dev", "x"), missing_ok=True)])
    assert outcome.error is None and outcome.progress.completed == (0,)
    with pytest.raises(NotFoundError):
        Gone().run(Command(("ip", "link", "del", "dev", "x")))


def test_a_program_that_could_not_start_raises_even_unchecked() -> None:
    class Missing(Toy):
        def one(self, command: Command, input: str | None, timeout: float | None) -> Result:
            raise BinaryNotFoundError(command.argv, 127)

    with pytest.raises(BinaryNotFoundError):
        Missing().run(query("tc", "qdisc"), check=False)
    assert Missing().attempt([change("tc", "qdisc", "add")]).progress == Progress(failed=0)


def test_a_hook_that_raises_leaves_what_it_did_not_report_in_flight() -> None:
    class Raises(Toy):
        def handle(self, commands, *, input=None, timeout=None, on_done=None):  # type: ignore[no-untyped-def]
            assert on_done is not None
            on_done([1])
            raise KeyboardInterrupt

    outcome = Raises().attempt([change("true"), change("true"), change("true")])
    assert isinstance(outcome.error, KeyboardInterrupt)
    assert outcome.progress == Progress(completed=(1,), inflight=(0, 2))


def test_an_executor_without_the_hook_says_so() -> None:
    with pytest.raises(NotImplementedError, match=r"must implement Executor\.handle"):
        Executor().run(query("true"))


def test_a_planning_view_answers_for_what_it_wraps() -> None:
    toy = Toy()
    view = PlannedSysctls(toy)
    assert view.underlying is toy and toy.underlying is toy
    view.learn([change("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")])
    assert view.run(query("sysctl", "-n", "net.ipv4.ip_forward")).stdout == "1\n"  # planned: no run
    assert view.run(query("sysctl", "-n", "net.ipv4.conf.all.rp_filter")).stdout == "0\n"  # the toy's
    assert capability.netem(view) is capability.netem(toy)  # probed once, for the machine


@pytest.mark.parametrize("parallel", [1, 2])
def test_side_by_side_runs_two_jobs_at_once_only_when_the_executor_does(parallel: int) -> None:
    toy = Toy()
    toy.parallel = parallel
    where: list[tuple[str, str]] = []
    toy.side_by_side(
        lambda: where.append(("first", threading.current_thread().name)),
        lambda: where.append(("second", threading.current_thread().name)),
    )
    main = threading.main_thread().name
    if parallel == 1:
        assert where == [("first", main), ("second", main)]
    else:
        assert dict(where)["first"] == main and dict(where)["second"].startswith("netns_kit")


def _processes(make, **options) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """How many processes a real executor starts for ``make()`` up, then down."""
    started: list[tuple[str, ...]] = []

    def execute(self, argv, *, input, timeout, netns=None):  # type: ignore[no-untyped-def]
        started.append(tuple(argv))
        return 0, "0\n" if "sysctl" in argv else "", ""

    with (
        tempfile.TemporaryDirectory() as directory,
        mock.patch.object(netns_kit.ShExecutor, "_execute", execute),
        mock.patch.object(
            netns_kit.ShExecutor, "ledger_dir", new_callable=mock.PropertyMock, return_value=Path(directory)
        ),
    ):
        real = netns_kit.ShExecutor(**options)
        real.owner = netns_kit.Owner.dry_run()
        topology = make().up(real)
        up = len(started)
        topology.down()
        return up, len(started) - up


@pytest.mark.parametrize("parallel", [1, 4])
def test_a_w200_topology_starts_as_few_processes_as_before(parallel: int) -> None:
    # measured before executors had one hook (commit 9893002~1): 210 up, 5 down
    assert _processes(lambda: scenarios.workload(200), parallel=parallel) == (210, 5)
    assert _processes(scenarios.seed001_nat, parallel=parallel) == (11, 5)
