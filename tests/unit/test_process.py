"""Supervised processes: what can be checked without starting one."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from netns_kit import Command, Namespace, NetnsKitError, Recorder, ValidationError, use
from netns_kit.executors.process import with_env


def test_env_and_cwd_go_into_the_argv_so_every_executor_keeps_them() -> None:
    command = with_env(Command(("server", "--port", "80"), netns="red"), {"MODE": "a b", "X": ""}, "/srv")
    assert command.line == "ip netns exec red env -C /srv 'MODE=a b' X= server --port 80"
    assert with_env(Command(("true",))) == Command(("true",))


@pytest.mark.parametrize(
    ("env", "cwd", "field"),
    [({"": "x"}, None, "env"), ({"A=B": "x"}, None, "env"), ({"A": "x\0"}, None, "env['A']"), (None, "", "cwd")],
)
def test_bad_env_or_cwd_is_refused_before_anything_starts(
    env: dict[str, str] | None, cwd: str | None, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        with_env(Command(("true",)), env, cwd)
    assert info.value.field == field


def test_a_dry_run_refuses_to_start_a_server_even_with_a_port_to_wait_for() -> None:
    with use(Recorder()), pytest.raises(NetnsKitError, match="a dry-run starts no process"):
        Namespace("red").popen(["server"], port=80, env={"A": "1"})


def live_in_group(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that have not exited (zombies excluded), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            after_comm = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgrp = after_comm[0], int(after_comm[2])
        if pgrp == pgid and state not in ("Z", "X"):
            found.append(int(stat.parent.name))
    return found


def test_stop_returns_once_the_children_are_gone_too() -> None:
    """A process of this user's own, no namespace: SIGTERM ignored, so SIGKILL to the group;
    when stop() returns, none of the group runs any more (not even a moment later)."""
    from netns_kit.executors.process import Process

    stubborn = Process.start(["sh", "-c", "trap '' TERM; sleep 600 & sleep 600 & wait"])
    deadline = time.monotonic() + 5
    while len(live_in_group(stubborn.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(live_in_group(stubborn.pid)) == 3
    assert stubborn.stop(timeout=0.2) == -signal.SIGKILL
    assert live_in_group(stubborn.pid) == []


def test_the_whole_output_is_there_once_wait_returns() -> None:
    """wait() returned while the threads reading its output were still at it: stdout read
    right after was empty about one time in five."""
    from netns_kit.executors.process import PIPE, Process

    outputs = []
    for i in range(50):
        process = Process.start(["sh", "-c", f"echo out {i}; echo err {i} >&2"], stdout=PIPE, stderr=PIPE)
        assert process.wait(10) == 0
        outputs.append((process.stdout, process.stderr))
    assert outputs == [(f"out {i}\n", f"err {i}\n") for i in range(50)]
