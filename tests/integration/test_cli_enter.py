"""`netns-kit exec` and `netns-kit shell`: a process in a namespace of a running topology,
the real command line as a user runs it, in the CLI's kept sandbox (rootless as an
ordinary user too) and on a machine of its own (no sandbox)."""

from __future__ import annotations

import os
import pty
import pwd
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit.executors import binaries, holder
from netns_kit.executors.sandbox import Sandbox

from .cli import netns_kit, stop_recorded_holder
from .test_cli_host import Machine, machine  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]
PIPE = str(ROOT / "examples" / "seed001-pipe.toml")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Path]:
    """seed001-pipe (red 192.168.1.1 <-> blue 192.168.1.2) up in the CLI's sandbox."""
    up = netns_kit("up", "--sandbox", PIPE, state_dir=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    yield tmp_path
    down = netns_kit("down", "--sandbox", PIPE, state_dir=tmp_path)
    stop_recorded_holder(tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr


def cli(state_dir: Path, *argv: str, **options: object) -> subprocess.Popen[str]:
    env = dict(os.environ, NETNS_KIT_STATE_DIR=str(state_dir))
    process: subprocess.Popen[str] = subprocess.Popen(
        [sys.executable, "-m", "netns_kit", *argv], env=env, text=True, **options
    )  # type: ignore[call-overload]
    return process


def holder_pid(state_dir: Path) -> int:
    record = holder.Record.parse((state_dir / holder.RECORD).read_text())
    return record.pid


def test_exec_passes_the_exit_status_through(lab: Path) -> None:
    shown = netns_kit("exec", "--sandbox", "red", "--", "ip", "-br", "addr", "show", "veth-red", state_dir=lab)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[0] == "veth-red@if2" or shown.stdout.startswith("veth-red")
    assert "192.168.1.1/24" in shown.stdout
    assert netns_kit("exec", "--sandbox", "red", "--", "sh", "-c", "exit 3", state_dir=lab).returncode == 3
    missing = netns_kit("exec", "--sandbox", "red", "--", "no-such-program", state_dir=lab)
    assert missing.returncode == 127
    assert "no-such-program" in missing.stderr and "No such file or directory" in missing.stderr


def test_exec_passes_standard_input_output_and_error(lab: Path) -> None:
    with cli(
        lab,
        "exec",
        "--sandbox",
        "blue",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z; echo to-stderr >&2; exit 5",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        out, err = process.communicate("hello from stdin\n", timeout=60)
    assert (process.returncode, out, err) == (5, "HELLO FROM STDIN\n", "to-stderr\n")


def test_exec_reaches_the_other_end_with_traffic(lab: Path) -> None:
    # -w: up to 10 s for a reply (a fresh link may drop the first packets)
    ping = netns_kit(
        "exec", "--sandbox", "red", "--", "ping", "-c", "1", "-i", "0.2", "-w", "10", "192.168.1.2", state_dir=lab
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "1 received" in ping.stdout


def started_in(process: subprocess.Popen[str], program: str, netns: Path) -> None:
    """Wait until ``process`` has become ``program`` inside the namespace ``netns``."""
    deadline = time.monotonic() + 60
    want = os.stat(netns).st_ino
    while True:
        assert process.poll() is None, process.communicate()
        try:
            comm = Path(f"/proc/{process.pid}/comm").read_text().strip()
            inode = os.stat(f"/proc/{process.pid}/ns/net").st_ino
        except OSError:
            comm, inode = "", 0
        if comm == program and inode == want:
            return
        assert time.monotonic() < deadline, f"still {comm!r}"
        time.sleep(0.01)


@pytest.mark.parametrize(("number", "shell_says"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_exec_becomes_the_command_which_gets_the_signals(lab: Path, number: int, shell_says: int) -> None:
    with cli(lab, "exec", "--sandbox", "red", "--", "sleep", "60", start_new_session=True) as process:
        started_in(process, "sleep", Path(f"/proc/{holder_pid(lab)}/root/run/netns/red"))
        os.killpg(process.pid, number)  # a Ctrl-C in a terminal reaches the whole group
        process.wait(timeout=30)
    assert process.returncode == -number  # 128 + number for a shell
    # what a shell then says: the command (here a shell that signals itself) ended by the signal
    name = signal.Signals(number).name.removeprefix("SIG")
    inner = f"kill -{name} \\$\\$"
    command = f'{sys.executable} -m netns_kit exec --sandbox red -- sh -c "{inner}"; echo $?'
    said = subprocess.run(
        ["sh", "-c", command],
        env=dict(os.environ, NETNS_KIT_STATE_DIR=str(lab)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert said.stdout == f"{shell_says}\n", said.stderr


def test_exec_into_a_closed_pipe_ends_by_sigpipe(lab: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # `| head -0`
    with cli(lab, "exec", "--sandbox", "red", "--", "yes", stdout=writer, stderr=subprocess.PIPE) as process:
        os.close(writer)
        _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (-signal.SIGPIPE, "")  # 141 for a shell, as `yes | head` is


def test_exec_says_where_a_namespace_is(lab: Path) -> None:
    nowhere = netns_kit("exec", "--sandbox", "green", "--", "true", state_dir=lab)
    assert nowhere.returncode == 1
    assert f"no namespace green in sandbox holder {holder_pid(lab)}: `netns-kit ls` lists what is up" in nowhere.stderr
    outside = netns_kit("exec", "red", "--", "true", state_dir=lab)
    assert outside.returncode == 3
    assert f"namespace red is in the sandbox (holder {holder_pid(lab)}): add --sandbox to reach it" in outside.stderr


def read_all(fd: int, deadline: float) -> bytes:
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the shell is gone
            break
        if not chunk:
            break
        seen += chunk
    return seen


def on_a_terminal(argv: list[str], env: dict[str, str], typed: bytes) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal, type ``typed``; its exit code and what it showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal's side
        os.execve(argv[0], argv, env)
    os.write(fd, typed)
    seen = read_all(fd, time.monotonic() + 60).decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


def test_shell_under_a_terminal_names_the_namespace(lab: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, NETNS_KIT_STATE_DIR=str(lab), SHELL="/bin/bash", HOME=str(home))
    argv = [sys.executable, "-m", "netns_kit", "shell", "--sandbox", "red"]
    code, seen = on_a_terminal(argv, env, b"echo ns=$NETNS_KIT_NAMESPACE; ip -br link; exit 4\n")
    assert code == 4, seen
    assert "[netns red] " in seen  # the prompt
    assert "ns=red" in seen
    assert "veth-red" in seen and "veth-blue" not in seen.split("ns=red", 1)[1]


def ordinary_user() -> pwd.struct_passwd | None:
    """Who runs the rootless case: this user when not root, else `nobody` (as `runuser -u`)."""
    return None if os.geteuid() != 0 else pwd.getpwnam("nobody")


def test_exec_in_a_rootless_sandbox_as_an_ordinary_user() -> None:
    user = ordinary_user()
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state"
        state.mkdir(mode=0o700)
        prefix: list[str] = []
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
            os.chown(state, user.pw_uid, user.pw_gid)
            prefix = [binaries.which("runuser") or "runuser", "-u", user.pw_name, "--"]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": directory,
            "NETNS_KIT_STATE_DIR": str(state),
            "PYTHONPATH": str(ROOT),
            "LANG": "C.UTF-8",
        }

        def run(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*prefix, sys.executable, "-m", "netns_kit", *argv],
                env=env,
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )

        up = run("up", "--sandbox", PIPE)
        try:
            assert up.returncode == 0, up.stdout + up.stderr
            who = run("exec", "--sandbox", "blue", "--", "sh", "-c", "id -u; ip -br addr show veth-blue; exit 6")
            assert who.returncode == 6, who.stderr
            assert who.stdout.splitlines()[0] == "0"  # root inside its own user namespace
            assert "192.168.1.2/24" in who.stdout
            assert run("exec", "--sandbox", "red", "--", "ping", "-c", "1", "-w", "10", "192.168.1.2").returncode == 0
            shell = [*prefix, sys.executable, "-m", "netns_kit", "shell", "--sandbox", "red"]
            typed = b"id -u; echo ns=$NETNS_KIT_NAMESPACE; ip -br addr show veth-red; exit 4\n"
            code, seen = on_a_terminal(shell, {**env, "SHELL": "/bin/bash"}, typed)
            assert code == 4, seen
            assert "[netns red] " in seen and "ns=red" in seen and "192.168.1.1/24" in seen
        finally:
            down = run("down", "--sandbox", PIPE)
            stop_recorded_holder(state)
        assert down.returncode == 0, down.stdout + down.stderr


def test_exec_in_a_topology_on_the_machine_itself(machine: Machine) -> None:  # noqa: F811
    up = machine.cli("up", PIPE)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        shown = machine.cli("exec", "red", "--", "sh", "-c", "ip -br addr show veth-red; exit 3")
        assert shown.returncode == 3, shown.stderr
        assert "192.168.1.1/24" in shown.stdout
        ping = machine.cli("exec", "blue", "--", "ping", "-c", "1", "-w", "10", "192.168.1.1")
        assert ping.returncode == 0, ping.stdout + ping.stderr
    finally:
        down = machine.cli("down", PIPE)
    assert down.returncode == 0, down.stdout + down.stderr


def test_exec_in_an_attached_sandbox_and_not_in_any_other_process(tmp_path: Path) -> None:
    with Sandbox() as box:
        up = netns_kit("up", "--attach", str(box.pid), PIPE, state_dir=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        try:
            shown = netns_kit("exec", "--attach", str(box.pid), "blue", "--", "ip", "-br", "addr", "show", "veth-blue")
            assert shown.returncode == 0, shown.stderr
            assert "192.168.1.2/24" in shown.stdout
        finally:
            down = netns_kit("down", "--attach", str(box.pid), PIPE, state_dir=tmp_path)
        assert down.returncode == 0, down.stdout + down.stderr
    refused = netns_kit("exec", "--attach", str(os.getpid()), "blue", "--", "true")
    assert refused.returncode == 3
    assert f"process {os.getpid()} " in refused.stderr and "is not a netns_kit sandbox holder" in refused.stderr
