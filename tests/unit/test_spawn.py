"""Starting a process inside a namespace without nsenter, and falling back to nsenter.

The real ``setns`` needs privileges: here it is replaced by a fake that records
which file each call entered, so what is tested is the bookkeeping (which thread
goes in, that it comes back, what happens when it cannot). The real thing is
tested in tests/integration/test_batch.py.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

import netns_kit
from netns_kit import Command
from netns_kit.executors import spawn


class FakeSetns:
    """Records each setns as the file its fd was opened from; fails where told."""

    def __init__(self, fail: Callable[[str], OSError | None] = lambda where: None) -> None:
        self.entered: list[tuple[str, str]] = []  # (thread name, file)
        self.fail = fail

    def __call__(self, fd: int) -> None:
        where = os.readlink(f"/proc/self/fd/{fd}")
        error = self.fail(where)
        if error is not None:
            raise error
        self.entered.append((threading.current_thread().name, where))


def _in_a_worker(call: Callable[[], Any]) -> Any:
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(call())
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=work, name="worker")
    worker.start()
    worker.join()
    return outcome[0]


def test_a_worker_thread_goes_in_starts_the_process_and_comes_back(mocker: MockerFixture, tmp_path: Path) -> None:
    fake = FakeSetns()
    mocker.patch.object(spawn, "_setns", fake)
    netns = tmp_path / "red"
    netns.write_text("")
    home = os.readlink("/proc/self/ns/net")
    assert _in_a_worker(lambda: spawn.run(["echo", "hi"], netns=netns)) == (0, "hi\n", "")
    assert [where for _, where in fake.entered] == [str(netns), home]
    assert {thread for thread, _ in fake.entered} == {"worker"}


def test_the_main_thread_sends_a_thread_that_never_comes_back(mocker: MockerFixture, tmp_path: Path) -> None:
    # a Ctrl-C between going in and coming back would leave the main thread inside
    fake = FakeSetns()
    mocker.patch.object(spawn, "_setns", fake)
    netns = tmp_path / "red"
    netns.write_text("")
    assert spawn.run(["true"], netns=netns) == (0, "", "")
    assert fake.entered == [("netns_kit-enter", str(netns))]


def test_a_namespace_that_cannot_be_entered_starts_nothing(mocker: MockerFixture, tmp_path: Path) -> None:
    popen = mocker.patch("subprocess.Popen")
    fake = FakeSetns(lambda where: PermissionError(errno.EPERM, "Operation not permitted"))
    mocker.patch.object(spawn, "_setns", fake)
    (tmp_path / "red").write_text("")
    for where in (tmp_path / "red", tmp_path / "gone"):
        found = _in_a_worker(lambda where=where: spawn.run(["true"], netns=where))
        assert isinstance(found, spawn.NotEntered)
        assert found.errno == (errno.EPERM if where.name == "red" else errno.ENOENT)
        assert str(where) in str(found)
    with pytest.raises(spawn.NotEntered):  # the main thread's way too
        spawn.run(["true"], netns=tmp_path / "red")
    popen.assert_not_called()


def test_a_thread_that_cannot_come_back_starts_nothing_until_it_has(mocker: MockerFixture, tmp_path: Path) -> None:
    netns = tmp_path / "red"
    netns.write_text("")
    home = os.readlink("/proc/self/ns/net")
    refusals = [OSError(errno.ENOMEM, "Cannot allocate memory")] * 2
    fake = FakeSetns(lambda where: refusals.pop() if where == home and refusals else None)
    mocker.patch.object(spawn, "_setns", fake)

    def three_runs() -> list[Any]:
        seen: list[Any] = []
        for argv in (["echo", "in"], ["echo", "out"], ["echo", "out"]):
            try:
                seen.append(spawn.run(argv, netns=netns if argv[1] == "in" else None))
            except RuntimeError as error:
                seen.append(str(error))
        return seen

    first, second, third = _in_a_worker(three_runs)
    # the process started inside and ran; the thread could not come back after it
    assert first == (0, "in\n", "")
    # so the next run on that thread tries again first, and starts nothing while it cannot
    assert "cannot go back to its network namespace" in second
    # then it can: it is back home, and runs
    assert third == (0, "out\n", "")
    assert [where for _, where in fake.entered] == [str(netns), home]


def _executor_whose_setns(fails: OSError | None, mocker: MockerFixture) -> tuple[netns_kit.ShExecutor, list[str]]:
    started: list[str] = []

    def execute(argv: tuple[str, ...], *, input: str | None, timeout: float | None, netns: Path | None = None):  # type: ignore[no-untyped-def]
        if netns is not None and fails is not None:
            raise spawn.NotEntered(fails.errno, f"cannot enter {netns}: {fails.strerror}")
        started.append(" ".join(argv) + (f" (in {netns})" if netns else ""))
        return 0, "", ""

    executor = netns_kit.ShExecutor()
    mocker.patch.object(executor, "_execute", side_effect=execute)
    return executor, started


@pytest.mark.parametrize(
    ("refusal", "tries_again"),
    [
        (PermissionError(errno.EPERM, "Operation not permitted"), False),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), True),
    ],
)
def test_the_executor_falls_back_to_nsenter(mocker: MockerFixture, refusal: OSError, tries_again: bool) -> None:
    executor, started = _executor_whose_setns(refusal, mocker)
    process = Command(("ip", "-batch", "-"), netns="red")
    assert executor._execute_batch(process, "link set dev lo up\n") == (0, "", "")
    assert started == ["nsenter --net=/run/netns/red -- ip -batch -"]
    # refused for want of privileges: never tried again; a namespace gone: tried next time
    assert executor.enter_directly is tries_again


def test_the_executor_enters_directly_only_without_a_prefix(mocker: MockerFixture) -> None:
    process = Command(("ip", "-batch", "-"), netns="red")
    executor, started = _executor_whose_setns(None, mocker)
    executor._execute_batch(process, "")
    executor._execute_batch(Command(("ip", "-batch", "-")), "")
    assert started == ["ip -batch - (in /run/netns/red)", "ip -batch -"]
    sudo = netns_kit.ShExecutor(("sudo", "-n"))
    assert sudo.enter_directly is False
    assert sudo.batch_argv_for(process) == ("sudo", "-n", "nsenter", "--net=/run/netns/red", "--", "ip", "-batch", "-")


# -- stdin, stdout and stderr are in-memory files -------------------------------------


def test_large_input_and_output_go_through_whole_and_apart() -> None:
    big = "".join(f"line {n}\n" for n in range(40000))  # ~400 kB: many times a pipe's buffer
    assert spawn.run(["cat"], input=big) == (0, big, "")
    code, out, err = spawn.run(["sh", "-c", "seq 1 50000; echo oops >&2; exit 3"])
    assert (code, out.split("\n")[-2], err) == (3, "50000", "oops\n")
    assert len(out.splitlines()) == 50000


def test_without_memfd_an_unlinked_temporary_file_does(mocker: MockerFixture) -> None:
    mocker.patch("os.memfd_create", side_effect=OSError(errno.ENOSYS, "Function not implemented"))
    assert spawn.run(["cat"], input="through a file\n") == (0, "through a file\n", "")


def test_no_descriptor_is_left_open() -> None:
    before = set(os.listdir("/proc/self/fd"))
    for _ in range(20):
        spawn.run(["cat"], input="x")
        spawn.run(["sh", "-c", "exit 1"])
    with pytest.raises(netns_kit.BinaryNotFoundError):
        spawn.run(["/nonexistent/netns-kit-binary"], input="x")
    assert set(os.listdir("/proc/self/fd")) == before


def test_a_background_child_holding_stdout_does_not_keep_run_waiting() -> None:
    # with pipes, reading to the end waits for every holder of the write end: 60 s here
    code, out, _ = spawn.run(["sh", "-c", "sleep 60 & echo $!"], timeout=10)
    os.kill(int(out), signal.SIGTERM)  # the sleep we started, by its pid
    assert code == 0


# -- the door takes Commands ---------------------------------------------------------


@pytest.mark.parametrize("executor", [netns_kit.ShExecutor(), netns_kit.Recorder()], ids=["ShExecutor", "Recorder"])
@pytest.mark.parametrize("argv", [["ip", "link", "show"], ("ip", "link", "show"), "ip link show"])
def test_a_plain_argv_is_refused_with_what_to_pass_instead(executor: netns_kit.Executor, argv: Any) -> None:
    """Whether it changes anything cannot be guessed (a dry-run would answer a change as a
    query and leave it out of the script): a TypeError that names query() and Command()."""
    with pytest.raises(TypeError) as info:
        executor.run(argv)
    message = str(info.value)
    assert message.startswith("Executor.run() takes a netns_kit Command, not ")
    words = "'ip', 'link', 'show'"
    assert f"pass query({words}) for a command that only reads" in message
    assert f"or Command(({words},)) for one that changes something" in message
    with pytest.raises(TypeError, match=r"^Executor\.run_all\(\) takes a netns_kit Command"):
        executor.run_all([Command(("true",)), argv])
    if isinstance(executor, netns_kit.Recorder):
        assert executor.commands == []  # nothing ran, nothing recorded


def test_anything_else_is_refused_too() -> None:
    with pytest.raises(TypeError, match=r"^Executor\.run\(\) takes a netns_kit Command, not int 3$"):
        netns_kit.ShExecutor().run(3)  # type: ignore[arg-type]
