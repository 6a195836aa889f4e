"""`netns-kit --sandbox`: a detached holder keeps the sandbox between commands; objects made
by `up` belong to the named owner cli.NAME and outlive the command that made them."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import holder
from netns_kit.owner import start_time

from .cli import netns_kit

EXAMPLES = Path(__file__).parents[2] / "examples"
PIPE = str(EXAMPLES / "seed001-pipe.toml")
HOST = str(EXAMPLES / "seed002-ns1-host.toml")


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    record = tmp_path / holder.RECORD
    if record.exists():  # a failed test must not leave its holder running
        data = json.loads(record.read_text())
        if start_time(data["pid"]) == data["start"]:
            os.kill(data["pid"], signal.SIGTERM)


def holder_pid(state_dir: Path) -> int:
    return int(json.loads((state_dir / holder.RECORD).read_text())["pid"])


def test_up_status_cleanup_down_through_a_kept_sandbox(state_dir: Path) -> None:
    up = netns_kit("up", "--sandbox", PIPE, state_dir=state_dir)
    assert up.returncode == 0, up.stderr
    pid = holder_pid(state_dir)
    assert f"in sandbox holder {pid}, owner cli.seed001-pipe" in up.stdout
    assert netns_kit("up", "--sandbox", HOST, state_dir=state_dir).returncode == 0
    assert holder_pid(state_dir) == pid  # the same sandbox is reused

    again = netns_kit("up", "--sandbox", PIPE, state_dir=state_dir)
    assert again.returncode == 4
    assert "seed001-pipe is already up" in again.stderr

    status = netns_kit("status", "--sandbox", "--json", state_dir=state_dir)
    owners = {o["owner"]: o for o in json.loads(status.stdout)["owners"]}
    assert set(owners) == {"cli.seed001-pipe", "cli.seed002-ns1-host"}
    assert owners["cli.seed001-pipe"]["state"] == "named"
    assert owners["cli.seed001-pipe"]["namespaces"] == ["blue", "red"]
    assert owners["cli.seed002-ns1-host"]["links"] == ["veth-host (veth in the host)", "veth-ns1 (veth in ns1)"]

    # the commands that made them are gone, but a named owner is never "gone": cleanup keeps them
    clean = netns_kit("cleanup", "--sandbox", state_dir=state_dir)
    assert "nothing to clean up" in clean.stdout
    named = netns_kit("cleanup", "--sandbox", "--owner", "cli.seed002-ns1-host", state_dir=state_dir)
    assert named.returncode == 0
    assert "removed: namespace ns1" in named.stdout

    down = netns_kit("down", "--sandbox", PIPE, state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    assert "removed: namespace red" in down.stdout
    assert f"sandbox holder {pid} stopped: it holds nothing any more" in down.stdout
    assert start_time(pid) is None or not os.path.exists(f"/proc/{pid}/ns/net")
    assert not (state_dir / holder.RECORD).exists()
    assert netns_kit("status", "--sandbox", state_dir=state_dir).stdout.startswith("no sandbox is running")


def test_a_failed_up_is_undone_and_exits_1(state_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    # valid as a file, but the kernel refuses the route: everything before it is undone
    broken.write_text(
        (EXAMPLES / "seed001-pipe.toml").read_text()
        + '[[routes]]\ndestination = "10.9.0.0/16"\nvia = "192.168.1.99"\ndev = "veth-blue"\nnetns = "red"\n'
    )
    up = netns_kit("up", "--sandbox", str(broken), state_dir=state_dir)
    assert up.returncode == 1
    assert "command failed" in up.stderr and "hint:" in up.stderr
    status = netns_kit("status", "--sandbox", state_dir=state_dir)
    assert "netns_kit owns nothing" in status.stdout
    netns_kit("cleanup", "--sandbox", state_dir=state_dir)  # stops the empty holder


def test_verbose_shows_each_command(state_dir: Path) -> None:
    up = netns_kit("up", "-v", "--sandbox", PIPE, state_dir=state_dir)
    assert up.returncode == 0
    assert "+ run ip netns add red" in up.stderr
    assert "+ run ip -n red addr add 192.168.1.1/24 dev veth-red" in up.stderr
    down = netns_kit("down", "--sandbox", PIPE, state_dir=state_dir)
    assert down.returncode == 0


def test_doctor_in_the_sandbox(state_dir: Path) -> None:
    netns_kit("up", "--sandbox", PIPE, state_dir=state_dir)
    doctor = netns_kit("doctor", "--sandbox", state_dir=state_dir)
    assert doctor.returncode == 0, doctor.stdout
    assert "netns_kit can run here." in doctor.stdout
    netns_kit("down", "--sandbox", PIPE, state_dir=state_dir)
