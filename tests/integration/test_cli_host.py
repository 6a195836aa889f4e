"""`netns-kit` on the machine itself: no --sandbox, no --attach, no NETNS_KIT_STATE_DIR.

The "machine" is a private one: `unshare --net --mount --propagation private` and a
fresh tmpfs on /run (as an ordinary user also `--user --map-root-user`), so
/run/netns, /run/netns_kit and /run/xtables.lock are its own. The command runs there
as root with the environment it gets on a real machine, and takes the real path: the
ShExecutor, the default state directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit.executors.local import ShExecutor
from netns_kit.ops import state
from netns_kit.owner import start_time

EXAMPLES = Path(__file__).parents[2] / "examples"
PIPE = str(EXAMPLES / "seed001-pipe.toml")
DOCKER0 = str(EXAMPLES / "docker0.toml")
REQUIRE_ENV = "NETNS_KIT_REQUIRE_SANDBOX"

_MACHINE = r"""
set -e
mount -t tmpfs -o mode=0755 netns_kit_test_run /run
ip link set dev lo up
echo ready
read -r _
"""


class Machine:
    """A private network "machine" kept by a holder process; commands run as its root."""

    def __init__(self, pid: int, rootless: bool) -> None:
        self.pid = pid
        user = ("--user", "--preserve-credentials") if rootless else ()
        self.enter = ("nsenter", f"--target={pid}", *user, "--net", "--mount", "--")
        #: reads its state (`ip -j`, `iptables-save`) from the outside
        self.executor = ShExecutor(prefix=self.enter)

    def path(self, inside: str) -> Path:
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "NETNS_KIT_STATE_DIR"}
        return subprocess.run(
            [*self.enter, sys.executable, "-m", "netns_kit.cli", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    def ledgers(self) -> list[str]:
        return sorted(p.name for p in self.path("/run/netns_kit").glob("*.jsonl"))


def _cannot_run(reason: str) -> None:
    message = f"cannot make a private machine (unshare --net --mount) here: {reason}"
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(message, pytrace=False)
    pytest.skip(f"{message} ({REQUIRE_ENV}=1 to fail instead)")


@pytest.fixture
def machine() -> Iterator[Machine]:
    rootless = os.geteuid() != 0
    argv = ["unshare", *(["--user", "--map-root-user"] if rootless else []), "--net", "--mount"]
    argv += ["--propagation", "private", "--", "sh", "-c", _MACHINE]
    holder = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    assert holder.stdout is not None and holder.stdin is not None
    if holder.stdout.readline() != b"ready\n":
        _, err = holder.communicate(timeout=10)
        _cannot_run(err.decode().strip() or f"exit code {holder.returncode}")
    box = Machine(holder.pid, rootless)
    try:
        yield box
    finally:
        # a sandbox holder started in there is detached: stop it if a test left it
        try:
            record = json.loads(box.path("/run/netns_kit/sandbox.json").read_text())
            if start_time(record["pid"]) == record["start"]:
                os.kill(record["pid"], 15)
        except (OSError, ValueError, KeyError):
            pass
        holder.stdin.close()
        holder.wait(10)


def host_run_netns_kit() -> set[str]:
    """What this machine's own /run/netns_kit holds (it must not change)."""
    directory = Path("/run/netns_kit")
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


def test_up_status_down_on_the_machine_itself(machine: Machine) -> None:
    before = state.snapshot(machine.executor)
    host_before = host_run_netns_kit()

    up = machine.cli("up", DOCKER0)
    assert up.returncode == 0, up.stderr
    assert "on this machine, owner cli.docker0" in up.stdout
    assert f"take it down with: netns-kit down {DOCKER0}" in up.stdout
    built = state.snapshot(machine.executor)
    assert built["netns"] == ["c1", "c2"]
    assert built["<host>"]["sysctl"]["net.ipv4.ip_forward"] == "1"
    assert any("MASQUERADE" in line for line in built["<host>"]["iptables-save"]["nat"])
    # the default state directory of root: the machine's /run/netns_kit
    assert [name.split(".")[:2] for name in machine.ledgers()] == [["cli", "docker0"]]
    origin = json.loads(machine.path("/run/netns_kit/cli.docker0.origin.json").read_text())
    assert origin["file"] == str(Path(DOCKER0).resolve())

    status = machine.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["where"] == {"kind": "machine", "holder_pid": None}
    (owner,) = data["owners"]
    assert (owner["owner"], owner["state"], owner["namespaces"]) == ("cli.docker0", "named", ["c1", "c2"])
    assert owner["file"] == str(Path(DOCKER0).resolve())

    again = machine.cli("up", DOCKER0)
    assert again.returncode == 4
    assert f"take it down first: netns-kit down {DOCKER0}" in again.stderr

    down = machine.cli("down", DOCKER0)
    assert down.returncode == 0, down.stderr
    assert "FAILED" not in down.stdout and "left alone" not in down.stdout
    assert state.diff(before, state.snapshot(machine.executor)) == []  # ip_forward back to 0 too
    assert machine.ledgers() == []
    assert not machine.path("/run/netns_kit/cli.docker0.origin.json").exists()
    assert "down: nothing to do" in machine.cli("down", DOCKER0).stdout
    assert host_run_netns_kit() == host_before  # nothing of this reached the real machine


def test_commands_on_the_machine_say_where_the_sandbox_holds_topologies(machine: Machine) -> None:
    up = machine.cli("up", "--sandbox", PIPE)
    assert up.returncode == 0, up.stderr
    pid = json.loads(machine.path("/run/netns_kit/sandbox.json").read_text())["pid"]
    reach = f"the sandbox (holder {pid}) holds cli.seed001-pipe: add --sandbox to reach it"

    status = machine.cli("status")
    assert status.returncode == 0
    assert status.stdout == f"netns_kit owns nothing on this machine\n{reach} (netns-kit status --sandbox)\n"
    assert json.loads(machine.cli("status", "--json").stdout)["elsewhere"].startswith(reach)

    down = machine.cli("down", PIPE)
    assert down.returncode == 3, down.stdout + down.stderr
    assert (
        f"down: cli.seed001-pipe is up in sandbox holder {pid}: add --sandbox to reach it: "
        f"netns-kit down --sandbox {PIPE}"
    ) in down.stdout

    cleanup = machine.cli("cleanup")
    assert cleanup.returncode == 0
    assert f"cleanup: {reach}" in cleanup.stdout

    down = machine.cli("down", "--sandbox", PIPE)
    assert down.returncode == 0, down.stderr
    assert f"sandbox holder {pid} stopped" in down.stdout
    assert machine.cli("status").stdout == "netns_kit owns nothing on this machine\n"
