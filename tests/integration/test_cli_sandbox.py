"""`netns-kit --sandbox`: a detached holder keeps the sandbox between commands; objects made
by `up` belong to the named owner cli.NAME and outlive the command that made them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import query
from netns_kit.executors import holder
from netns_kit.executors.sandbox import Sandbox
from netns_kit.owner import start_time

from .cli import netns_kit, stop_recorded_holder

EXAMPLES = Path(__file__).parents[2] / "examples"
PIPE = str(EXAMPLES / "seed001-pipe.toml")
HOST = str(EXAMPLES / "seed002-ns1-host.toml")


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    stop_recorded_holder(tmp_path)


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
    assert owners["cli.seed002-ns1-host"]["links"] == [
        {"name": "veth-host", "netns": None, "kind": "veth", "peer_netns": "ns1"},
        {"name": "veth-ns1", "netns": "ns1", "kind": "veth", "peer_netns": None},
    ]

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
    assert f"sandbox holder {pid_of(up)} stopped: it holds nothing any more" in up.stdout
    assert_stopped(state_dir, pid_of(up))


def pid_of(result: subprocess.CompletedProcess[str]) -> int:
    """The holder a command's output names ("sandbox holder PID stopped ...")."""
    match = re.search(r"sandbox holder (\d+) stopped", result.stdout)
    assert match, result.stdout + result.stderr
    return int(match.group(1))


def ledgers_in(pid: int) -> list[Path]:
    return list(Path(f"/proc/{pid}/root/run/netns_kit").glob("*.jsonl"))


def assert_stopped(state_dir: Path, pid: int) -> None:
    assert not (state_dir / holder.RECORD).exists()
    assert start_time(pid) is None or not os.path.exists(f"/proc/{pid}/ns/net")


def test_up_of_a_file_without_resources_starts_no_holder(state_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text('[topology]\nname = "empty"\n')
    up = netns_kit("up", "--sandbox", str(empty), state_dir=state_dir)
    assert up.returncode == 0, up.stderr
    assert "nothing to do" in up.stdout
    assert not (state_dir / holder.RECORD).exists()


def test_down_into_a_closed_pipe_finishes_and_stops_the_holder(state_dir: Path) -> None:
    assert netns_kit("up", "--sandbox", PIPE, state_dir=state_dir).returncode == 0
    pid = holder_pid(state_dir)
    reader, writer = os.pipe()
    os.close(reader)  # `| head -0`: nobody reads
    env = dict(os.environ, NETNS_KIT_STATE_DIR=str(state_dir))
    down = subprocess.run(
        [sys.executable, "-m", "netns_kit.cli", "down", "--sandbox", PIPE],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(writer)
    assert (down.returncode, down.stderr) == (141, "")
    assert_stopped(state_dir, pid)


def test_ctrl_c_during_up_undoes_it_and_stops_the_holder(state_dir: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text(
        "".join(
            f'[[namespaces]]\nname = "n{i}"\n[[veths]]\nname = "a{i}"\nnetns = "n{i}"\n'
            f'addresses = ["10.{i // 200}.{i % 200}.1/30"]\npeer = "b{i}"\n'
            for i in range(300)
        )
    )
    env = dict(os.environ, NETNS_KIT_STATE_DIR=str(state_dir))
    with subprocess.Popen(
        [sys.executable, "-m", "netns_kit.cli", "up", "--sandbox", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as up:
        # Ctrl-C once the changes are under way: their ledger is written before they run
        record = state_dir / holder.RECORD
        while not record.exists() or not list(
            Path(f"/proc/{holder_pid(state_dir)}/root/run/netns_kit").glob("*.jsonl")
        ):
            assert up.poll() is None, up.communicate()
            time.sleep(0.005)
        pid = holder_pid(state_dir)
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=120)
    assert up.returncode == 130, out + err
    assert "netns-kit: interrupted" in err and "Traceback" not in err
    assert f"sandbox holder {pid} stopped" in out
    assert_stopped(state_dir, pid)


def test_two_projects_with_files_of_the_same_name_are_two_owners(state_dir: Path, tmp_path: Path) -> None:
    text = (EXAMPLES / "seed001-pipe.toml").read_text().replace('[topology]\nname = "seed001-pipe"\n', "")
    files = []
    for project in ("p1", "p2"):
        (tmp_path / project).mkdir()
        files.append(tmp_path / project / "net.toml")
        files[-1].write_text(text)
    p1, p2 = (str(f) for f in files)
    assert netns_kit("up", "--sandbox", p1, state_dir=state_dir).returncode == 0
    pid = holder_pid(state_dir)

    # the same names: refused, naming the file that holds them and how to take it down
    up = netns_kit("up", "--sandbox", p2, state_dir=state_dir)
    assert up.returncode == 4, up.stderr
    taken = "namespace red, namespace blue, veth-red (veth in red), veth-blue (veth in blue)"
    assert f"{taken}: up from {files[0].resolve()} (owner cli.net-" in up.stderr
    assert f"take it down first: netns-kit down --sandbox {files[0].resolve()}" in up.stderr

    down = netns_kit("down", "--sandbox", p2, state_dir=state_dir)
    assert down.returncode == 0 and "down: nothing to do" in down.stdout
    status = json.loads(netns_kit("status", "--sandbox", "--json", state_dir=state_dir).stdout)
    (owner,) = status["owners"]
    assert owner["owner"].startswith("cli.net-") and owner["file"] == str(files[0].resolve())
    assert owner["namespaces"] == ["blue", "red"]  # p1's topology is untouched

    down = netns_kit("down", "--sandbox", p1, state_dir=state_dir)
    assert down.returncode == 0 and "removed: namespace red" in down.stdout
    assert_stopped(state_dir, pid)


def test_up_in_an_attached_sandbox_says_how_to_take_it_down_there(tmp_path: Path) -> None:
    with Sandbox() as box:
        up = netns_kit("up", "--attach", str(box.pid), PIPE)
        assert up.returncode == 0, up.stderr
        assert f"take it down with: netns-kit down --attach {box.pid} {PIPE}" in up.stdout
        again = netns_kit("up", "--attach", str(box.pid), PIPE)
        assert again.returncode == 4
        assert f"take it down first: netns-kit down --attach {box.pid} {PIPE}" in again.stderr
        assert netns_kit("down", "--attach", str(box.pid), PIPE).returncode == 0


def test_verbose_shows_each_command(state_dir: Path) -> None:
    up = netns_kit("up", "-v", "--sandbox", PIPE, state_dir=state_dir)
    assert up.returncode == 0
    lines = up.stderr.splitlines()
    assert lines.count("+ run ip netns add red") == 1  # once: no planning pass shows
    assert lines.count("+ run ip -n red addr add 192.168.1.1/24 dev veth-red") == 1
    assert len([line for line in lines if line.startswith("+ run ")]) == 9
    assert "up: seed001-pipe: 9 changes" in up.stdout
    down = netns_kit("down", "--sandbox", PIPE, state_dir=state_dir)
    assert down.returncode == 0


def test_doctor_in_the_sandbox(state_dir: Path) -> None:
    netns_kit("up", "--sandbox", PIPE, state_dir=state_dir)
    doctor = netns_kit("doctor", "--sandbox", state_dir=state_dir)
    assert doctor.returncode == 0, doctor.stdout
    assert "netns_kit can run here." in doctor.stdout
    netns_kit("down", "--sandbox", PIPE, state_dir=state_dir)


NAT = str(EXAMPLES / "seed001-bridge-nat.toml")


def test_up_again_after_the_printed_teardown(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`netns-kit up FILE`, then `netns-kit plan --down FILE | sh`: nothing of it is left, so
    its records are stale; status says so, and up again brings it up (its ledger replaced)."""
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(state_dir))
    owner = "cli.seed001-bridge-nat"
    up = netns_kit("up", "--sandbox", NAT, state_dir=state_dir)
    assert up.returncode == 0, up.stdout + up.stderr
    sandbox = holder.find()
    assert sandbox is not None
    teardown = netns_kit("plan", "--down", NAT)
    assert teardown.returncode == 0, teardown.stderr
    sandbox.run_script(teardown.stdout)  # netns-kit plan --down FILE | sh, in the sandbox
    assert sandbox.run(query("ip", "-j", "netns", "list")).json() in (None, [])

    status = netns_kit("status", "--sandbox", "--json", state_dir=state_dir)
    [gone] = json.loads(status.stdout)["owners"]
    assert (gone["owner"], gone["gone"], gone["namespaces"], gone["links"], gone["rules"]) == (owner, True, [], [], [])
    text = netns_kit("status", "--sandbox", state_dir=state_dir).stdout
    assert f"{owner}  [gone] recorded as up, but nothing of it is there any more" in text, text

    again = netns_kit("up", "--sandbox", NAT, state_dir=state_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"up: note: {owner} was recorded as up in sandbox holder {sandbox.pid}, but nothing of it" in again.stdout
    status = netns_kit("status", "--sandbox", "--json", state_dir=state_dir)
    [up_again] = json.loads(status.stdout)["owners"]
    assert (up_again["owner"], up_again["gone"]) == (owner, False)
    assert up_again["namespaces"] == ["blue", "green", "red"] and len(up_again["ledger_files"]) == 1, up_again

    down = netns_kit("down", "--sandbox", NAT, state_dir=state_dir)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"sandbox holder {sandbox.pid} stopped: it holds nothing any more" in down.stdout


def test_a_topology_still_there_is_not_gone_and_up_again_is_refused(state_dir: Path) -> None:
    up = netns_kit("up", "--sandbox", NAT, state_dir=state_dir)
    assert up.returncode == 0, up.stdout + up.stderr
    status = netns_kit("status", "--sandbox", "--json", state_dir=state_dir)
    assert [o["gone"] for o in json.loads(status.stdout)["owners"]] == [False]
    again = netns_kit("up", "--sandbox", NAT, state_dir=state_dir)
    assert again.returncode == 4 and "is already up" in again.stderr, again.stdout + again.stderr
    assert netns_kit("down", "--sandbox", NAT, state_dir=state_dir).returncode == 0
