"""A sandbox holder lives exactly as long as it holds something or its owner runs.

- `Sandbox.attach` accepts the holders netns_kit starts (root and rootless) and
  nothing else: not a process inside the sandbox, not another holder's token.
- A holder of `with Sandbox()` dies with its owner, even by SIGKILL, even when the
  owner had forked a child that outlives it; so does every process inside.
- A detached holder whose starter dies before recording it stops by itself.
- The CLI's recorded holder (`holder.session`) is stopped by the last command
  out when it holds nothing: made nothing, interrupted, emptied; never while
  another command is using it.

Every process these tests start is stopped by its pid at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Command
from netns_kit.errors import SandboxError
from netns_kit.executors import holder
from netns_kit.executors.base import wait_until
from netns_kit.executors.sandbox import Sandbox, verify_holder
from netns_kit.ops.inventory import holds_nothing
from netns_kit.owner import proc_stat

ROOT = Path(__file__).resolve().parents[2]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def gone(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is None or fields[0] == "Z"


def wait_gone(*pids: int, deadline: float = 30.0) -> list[int]:
    """The pids still running after waiting (at most ``deadline`` s) for all to end."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if all(gone(pid) for pid in pids):
            return []
        time.sleep(0.05)
    return [pid for pid in pids if not gone(pid)]


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Pids this test started, directly or not: SIGKILLed at the end if still there."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if gone(pid):
            continue
        try:  # a holder leads a process group of its own, with its `sleep` in it
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def child(code: str) -> subprocess.Popen[str]:
    """A Python child running ``code``; it reports on stdout, one JSON line."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def report(process: subprocess.Popen[str]) -> dict[str, int]:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the child said nothing (exit code {process.wait()})"
    data: dict[str, int] = json.loads(line)
    return data


# -- attach --------------------------------------------------------------------------
def test_attach_accepts_a_holder_the_library_started(sandbox: Sandbox) -> None:
    attached = Sandbox.attach(sandbox.pid)
    assert attached.rootless == sandbox.rootless
    assert attached.token == sandbox.token == verify_holder(sandbox.pid)
    assert Sandbox.attach(sandbox.pid, token=sandbox.token).pid == sandbox.pid
    result = attached.run(Command(("ip", "-j", "link", "show", "lo")))
    assert json.loads(result.stdout)[0]["ifname"] == "lo"


def test_attach_refuses_a_holder_with_another_token(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="it is another holder than the one recorded"):
        Sandbox.attach(sandbox.pid, token="0" * 32)


def test_attach_refuses_a_process_inside_the_sandbox(sandbox: Sandbox) -> None:
    """It sees the holder's marker on the private /run, but the marker names the holder."""
    inside = sandbox.popen(Command(("sleep", "1000")))
    try:
        # until it runs `sleep` it is still nsenter, outside the sandbox's /run (a race CI met once)
        wait_until(lambda: _comm(inside.pid) == "sleep", timeout=10, what="sleep to run inside the sandbox")
        with pytest.raises(SandboxError, match=rf"process {inside.pid} .* its /run/.netns_kit/holder names another"):
            Sandbox.attach(inside.pid)
    finally:
        inside.stop()


# -- the owner dies ------------------------------------------------------------------
OWNER = """
    import json, os, sys, time
    from netns_kit import Command
    from netns_kit.executors.sandbox import Sandbox

    box = Sandbox().start()
    inside = box.popen(Command(("sleep", "1000")))
    report = {"holder": box.pid, "inside": inside.pid}
    if "fork" in sys.argv[1:]:
        grandchild = os.fork()
        if grandchild == 0:  # holds a copy of every descriptor of its parent, and outlives it
            time.sleep(1000)
            os._exit(0)
        report["grandchild"] = grandchild
    print(json.dumps(report), flush=True)
    time.sleep(1000)
"""


@pytest.mark.parametrize("fork", [False, True], ids=["alone", "with-a-forked-child"])
def test_a_holder_dies_with_its_owner_killed_by_sigkill(fork: bool, started: list[int]) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(OWNER), *(["fork"] if fork else [])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(owner.pid)
    pids = report(owner)
    started.extend(pids.values())
    assert not gone(pids["holder"]) and not gone(pids["inside"])
    owner.kill()
    owner.wait()
    assert wait_gone(pids["holder"], pids["inside"]) == []
    if fork:
        assert not gone(pids["grandchild"])  # alive, and it did not keep the holder


KEEP_LATER = """
    import json, sys, time
    from netns_kit.executors.sandbox import Sandbox

    box = Sandbox().start(detached=True, keep_later=True)
    print(json.dumps({"holder": box.pid}), flush=True)
    if sys.stdin.readline().strip() == "keep":
        box.keep()
        print(json.dumps({"kept": box.pid}), flush=True)
    time.sleep(1000)
"""


def test_a_detached_holder_stops_when_its_starter_dies_before_keeping_it(started: list[int]) -> None:
    starter = child(KEEP_LATER)
    started.append(starter.pid)
    pid = report(starter)["holder"]
    started.append(pid)
    starter.kill()
    starter.wait()
    assert wait_gone(pid) == []


def test_a_kept_detached_holder_outlives_its_starter(started: list[int]) -> None:
    starter = child(KEEP_LATER)
    started.append(starter.pid)
    pid = report(starter)["holder"]
    started.append(pid)
    assert starter.stdin is not None
    starter.stdin.write("keep\n")
    starter.stdin.flush()
    assert report(starter) == {"kept": pid}
    starter.kill()
    starter.wait()
    assert wait_gone(starter.pid) == []
    assert not gone(pid)
    Sandbox.attach(pid)  # still a holder
    os.kill(pid, signal.SIGTERM)
    assert wait_gone(pid) == []


def in_netns_of(pid: int) -> list[int]:
    """The other processes in the network namespace of process ``pid``."""
    netns = os.readlink(f"/proc/{pid}/ns/net")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pid:
            try:
                if os.readlink(entry / "ns/net") == netns:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_detached_holder_killed_by_sigkill_leaves_no_process_behind(started: list[int]) -> None:
    """It waits without a child process (a `sleep` would keep its namespaces for an hour)."""
    box = Sandbox().start(detached=True)
    started.append(box.pid)
    assert in_netns_of(box.pid) == []
    os.kill(box.pid, signal.SIGKILL)
    assert wait_gone(box.pid) == []
    box.close()


# -- the CLI's recorded holder ---------------------------------------------------------
@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[int]) -> Iterator[Path]:
    directory = tmp_path / "state"
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(directory))
    yield directory
    try:
        record = holder.read_record()
    except SandboxError:
        record = None
    if record is not None:
        started.append(record.pid)


def recorded() -> int | None:
    record = holder.read_record()
    return record.pid if record is not None else None


def test_a_session_that_made_nothing_stops_the_holder_it_started(state: Path) -> None:
    stopped: list[int] = []
    with holder.session(start=True, on_stop=stopped.append, empty=holds_nothing) as sandbox:
        pid = sandbox.pid
        assert recorded() == pid
    assert stopped == [pid]
    assert gone(pid)
    assert recorded() is None
    assert not (state / holder.RECORD).exists()


def test_an_interrupted_session_stops_the_empty_holder_and_lets_the_interrupt_through(state: Path) -> None:
    with pytest.raises(KeyboardInterrupt), holder.session(start=True, empty=holds_nothing) as sandbox:
        pid = sandbox.pid
        sandbox.run(Command(("ip", "netns", "add", "half")))
        sandbox.run(Command(("ip", "netns", "del", "half")))  # the rollback
        raise KeyboardInterrupt
    assert gone(pid)
    assert recorded() is None


def test_a_holder_that_holds_something_stays_until_it_is_emptied(state: Path) -> None:
    with holder.session(start=True, empty=holds_nothing) as sandbox:
        pid = sandbox.pid
        sandbox.run(Command(("ip", "netns", "add", "kept")))
    assert not gone(pid) and recorded() == pid
    with holder.session(empty=holds_nothing) as again:
        assert again.pid == pid
        again.run(Command(("ip", "netns", "del", "kept")))
    assert gone(pid)
    assert recorded() is None
    with pytest.raises(SandboxError, match="no sandbox is running"), holder.session(empty=holds_nothing):
        pass


USER = """
    import sys
    from netns_kit.executors import holder
    from netns_kit.ops.inventory import holds_nothing

    with holder.session(empty=holds_nothing) as sandbox:
        print(sandbox.pid, flush=True)
        sys.stdin.readline()
"""


def test_a_holder_in_use_by_another_command_is_not_stopped(state: Path, started: list[int]) -> None:
    with holder.session(start=True, empty=holds_nothing) as sandbox:
        pid = sandbox.pid
        other = child(USER)
        started.append(other.pid)
        assert other.stdout is not None
        assert int(other.stdout.readline()) == pid  # the other command is in
    assert not gone(pid) and recorded() == pid  # empty, but in use
    assert other.stdin is not None
    other.stdin.close()  # the other command ends: the last one out stops it
    assert other.wait(60) == 0
    assert wait_gone(pid) == []
    assert recorded() is None


def test_a_starter_killed_before_recording_leaves_no_holder(state: Path, started: list[int]) -> None:
    """`up --sandbox` SIGKILLed while starting its holder: nothing is left running."""
    code = """
        import json
        from netns_kit.executors import holder

        def record_then_hang(record):
            print(json.dumps({"holder": record.pid}), flush=True)
            input()  # killed here, before the record exists
        holder.write_record = record_then_hang
        holder.start()
    """
    starter = child(code)
    started.append(starter.pid)
    pid = report(starter)["holder"]
    started.append(pid)
    starter.kill()
    starter.wait()
    assert wait_gone(pid) == []
    assert recorded() is None
