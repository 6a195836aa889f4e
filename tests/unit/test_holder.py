"""The CLI's sandbox record (netns_kit.executors.holder): believed only as far as the process proves it.

No sandbox is started here (tests/integration/test_holder_lifetime.py does): these
are the records that must NOT lead anywhere. Damaged, stale, reused and foreign
records are dropped, never attached to; `Sandbox.attach` refuses any process that
is not a netns_kit sandbox holder.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from netns_kit.errors import SandboxError
from netns_kit.executors import holder
from netns_kit.executors.sandbox import Sandbox, verify_holder
from netns_kit.owner import start_time
from netns_kit.statedir import StateDirError

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(directory))
    return directory


def no_such_pid() -> int:
    """A pid no process can have: pids are below kernel.pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def me() -> tuple[int, str]:
    started = start_time(os.getpid())
    assert started is not None
    return os.getpid(), started


def write(state: Path, data: object) -> Path:
    path = state / holder.RECORD
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    path.chmod(0o600)
    return path


def record(pid: int, start: str, **extra: object) -> dict[str, object]:
    return {"version": holder.VERSION, "pid": pid, "start": start, "token": TOKEN, "rootless": False, **extra}


def test_no_record_finds_nothing(state: Path) -> None:
    assert holder.find() is None
    with pytest.raises(SandboxError, match=r"no sandbox is running .*netns-kit up --sandbox FILE"):
        holder.require()


def test_a_record_written_and_read_back_is_the_same() -> None:
    written = holder.Record(1234, "5678", TOKEN, True)
    assert holder.Record.parse(written.dumps()) == written


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "garbage",
        "\x00\x00\x00\x00",
        '{"version": 1, "pid": 12',  # half written
        '{"version": 1, "pid": 123, "start": "45", "token": "' + TOKEN + '", "rootless": fa',
        "[1, 2, 3]",
        "null",
        json.dumps(record(123, "45") | {"pid": "123"}),
        json.dumps(record(123, "45") | {"pid": -1}),
        json.dumps(record(123, "45") | {"pid": True}),
        json.dumps(record(123, "45") | {"start": 45}),
        json.dumps(record(123, "45") | {"start": "soon"}),
        json.dumps(record(123, "45") | {"token": "../../etc"}),
        json.dumps(record(123, "45") | {"rootless": "yes"}),
        json.dumps({k: v for k, v in record(123, "45").items() if k != "token"}),
        json.dumps(record(123, "45") | {"version": 2}),
        json.dumps({"pid": 123, "start": "45", "rootless": False}),  # the format before tokens
    ],
)
def test_a_damaged_record_is_dropped_with_a_warning_never_a_crash(
    state: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(state, text)
    with caplog.at_level(logging.WARNING, logger="netns_kit"):
        assert holder.read_record() is None
        assert holder.find() is None
    assert not path.exists()
    assert f"the sandbox record {path} is damaged" in caplog.text


def test_a_damaged_record_naming_a_live_process_says_a_holder_may_be_left(
    state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pid, _ = me()
    write(state, json.dumps({"pid": pid, "start": "1", "rootless": False}))  # an older version's record
    with caplog.at_level(logging.WARNING, logger="netns_kit"):
        assert holder.find() is None
    assert f"a sandbox holder may be left running as pid {pid} (check it, stop it with kill {pid})" in caplog.text


def test_a_stale_record_whose_process_is_gone_is_dropped(state: Path) -> None:
    path = write(state, record(no_such_pid(), "12345"))
    assert holder.find() is None
    assert not path.exists()


def test_a_record_of_a_reused_pid_is_dropped_without_attaching(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same pid, another start time: another process now has the holder's pid."""
    pid, started = me()
    path = write(state, record(pid, str(int(started) + 1)))

    def attach(*args: object, **kwargs: object) -> Sandbox:
        raise AssertionError("a reused pid must not be attached to")

    monkeypatch.setattr(Sandbox, "attach", attach)
    assert holder.find() is None
    assert not path.exists()


def test_a_record_of_a_process_that_is_no_holder_is_refused_and_dropped(
    state: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The right pid and start time, but this test's own process: no sandbox holder."""
    pid, started = me()
    path = write(state, record(pid, started))
    with caplog.at_level(logging.WARNING, logger="netns_kit"):
        assert holder.find() is None
    assert not path.exists()
    assert f"process {pid} (" in caplog.text and "is not a netns_kit sandbox holder" in caplog.text


def test_a_record_that_is_a_symbolic_link_is_not_trusted(state: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(record(*me())))
    (state / holder.RECORD).symlink_to(elsewhere)
    with pytest.raises(StateDirError, match="is a symbolic link"):
        holder.find()


def test_a_record_writable_by_others_is_not_trusted(state: Path) -> None:
    path = write(state, record(*me()))
    path.chmod(0o666)
    with pytest.raises(StateDirError, match=r"mode 0666\): netns_kit does not trust it; remove it"):
        holder.find()


def test_attach_refuses_an_ordinary_process() -> None:
    """Issue 15 (5): `--attach $$` used to be taken for a sandbox holder."""
    pid = os.getpid()
    with pytest.raises(SandboxError) as caught:
        Sandbox.attach(pid)
    message = str(caught.value)
    assert f"process {pid} (" in message
    assert "is not a netns_kit sandbox holder: it has no /run/.netns_kit/holder" in message
    assert "netns-kit status --sandbox" in message


def test_attach_refuses_a_pid_with_no_process() -> None:
    pid = no_such_pid()
    with pytest.raises(SandboxError, match=f"no process with pid {pid}"):
        Sandbox.attach(pid)


def test_attach_refuses_process_1() -> None:
    with pytest.raises(SandboxError, match=r"process 1 .* is not a netns_kit sandbox holder"):
        Sandbox.attach(1)


@pytest.mark.parametrize("pid", [0, -1])
def test_verify_holder_refuses_pids_that_are_not_processes(pid: int) -> None:
    with pytest.raises(SandboxError, match=f"no process with pid {pid}"):
        verify_holder(pid)
