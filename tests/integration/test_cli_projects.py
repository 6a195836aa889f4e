"""Projects from the command line: two topologies up at once in the CLI's sandbox, seen by
`ls` and `inspect`, named with `-p`, taken down with `down --all`; every `--json`
document validated against its documented schema; `| head` and Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..unit.cli_schemas import assert_valid
from .cli import netns_kit, stop_recorded_holder

ROOT = Path(__file__).resolve().parents[2]
PIPE = (ROOT / "examples" / "seed001-pipe.toml").read_text()
HOST = str(ROOT / "examples" / "seed002-ns1-host.toml")


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    yield directory
    stop_recorded_holder(directory)


def document(state_dir: Path, command: str, *argv: str, code: int = 0) -> dict[str, Any]:
    """`netns-kit COMMAND --json ARGV...`: its document, checked against the schema."""
    done = netns_kit(command, "--json", *argv, state_dir=state_dir)
    assert done.returncode == code, done.stdout + done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    assert_valid(found, command)
    return found


@pytest.fixture
def projects(state_dir: Path, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """Project one: p1/net.toml (seed001-pipe, unnamed); project two: seed002 as `-p two`."""
    (tmp_path / "p1").mkdir()
    net = tmp_path / "p1" / "net.toml"
    net.write_text(PIPE.replace('[topology]\nname = "seed001-pipe"\n', ""))
    one = document(state_dir, "up", "--sandbox", str(net))
    two = document(state_dir, "up", "--sandbox", "-p", "two", HOST)
    assert one["where"] == two["where"] and one["where"]["kind"] == "sandbox"
    assert (one["changes"], two["changes"], two["owner"]) == (9, 7, "cli.two")
    assert two["down"] == "netns-kit down --sandbox -p two"
    yield net, one["where"]["holder_pid"]
    netns_kit("down", "--sandbox", "--all", "--yes", state_dir=state_dir)


def test_ls_and_inspect_show_two_projects_at_once(state_dir: Path, projects: tuple[Path, int]) -> None:
    net, pid = projects
    listed = document(state_dir, "ls", "--sandbox")["topologies"]
    assert [row["owner"].split("-")[0] for row in listed] == ["cli.net", "cli.two"]
    one, two = listed
    assert (one["file"], one["state"], one["namespaces"], one["changes"]) == (str(net), "up", ["blue", "red"], 9)
    assert (two["file"], two["name"], two["namespaces"], two["changes"]) == (HOST, "two", ["ns1"], 7)
    assert {"name": "veth-host", "netns": None} in two["links"]
    assert one["where"] == two["where"] == {"kind": "sandbox", "holder_pid": pid}
    # without --sandbox: the machine and the sandbox both (the sandbox's two are there)
    every = document(state_dir, "ls")["topologies"]
    assert [row for row in every if row["where"]["kind"] == "sandbox"] == listed
    text = netns_kit("ls", state_dir=state_dir).stdout.splitlines()
    assert text[0].split() == ["OWNER", "STATE", "WHERE", "NAMESPACES", "LINKS", "CHANGES", "SINCE", "FILE"]
    assert any(line.split()[:5] == ["cli.two", "up", "sandbox", "holder", str(pid)] for line in text), text

    inspected = document(state_dir, "inspect", "--sandbox", "two")
    assert [(e["table"], e["kind"], e["fields"]["name"]) for e in inspected["described"]] == [
        ("namespaces", "Namespace", "ns1"),
        ("veths", "VethPair", "veth-ns1"),
    ]
    assert inspected["described"][1]["fields"]["addresses"] == ["10.0.0.1/24"]
    back = inspected["read_back"]
    assert back["namespaces"] == ["ns1"]
    assert back["addresses"] == {"ns1": [{"ifname": "veth-ns1", "state": "UP", "addresses": ["10.0.0.1/24"]}]}
    assert sorted((link["name"], link["netns"]) for link in back["links"]) == [("veth-host", None), ("veth-ns1", "ns1")]
    # by its file, without --sandbox (found there), for people
    shown = netns_kit("inspect", str(net), state_dir=state_dir)
    assert shown.returncode == 0, shown.stderr
    assert f"from {net}" in shown.stdout and "as its file describes it (3 entries):" in shown.stdout
    assert "  namespace red: veth-red 192.168.1.1/24" in shown.stdout
    missing = netns_kit("inspect", "--sandbox", "three", state_dir=state_dir)
    assert missing.returncode == 1 and "cli.three is not up in the sandbox" in missing.stderr


def test_every_command_prints_its_documented_json(state_dir: Path, projects: tuple[Path, int]) -> None:
    net, pid = projects
    plan = document(state_dir, "plan", str(net))
    assert plan["owner"] == document(state_dir, "ls", "--sandbox")["topologies"][0]["owner"]
    status = document(state_dir, "status", "--sandbox")
    owners = {o["owner"]: o for o in status["owners"]}
    assert owners["cli.two"]["namespaces"] == ["ns1"] and owners["cli.two"]["state"] == "named"
    assert {"name": "veth-host", "netns": None, "kind": "veth", "peer_netns": "ns1"} in owners["cli.two"]["links"]
    assert document(state_dir, "doctor", "--sandbox")["ok"] is True
    assert document(state_dir, "cleanup", "--sandbox", "--dry-run")["owners"] == []
    removed = document(state_dir, "cleanup", "--sandbox", "--owner", "cli.two")
    assert (removed["owners"], removed["namespaces"], removed["errors"]) == (["cli.two"], ["ns1"], [])
    assert {"name": "veth-host", "netns": None, "kind": "veth", "peer_netns": "ns1"} in removed["links"]
    down = document(state_dir, "down", "--sandbox", str(net))
    (gone,) = down["topologies"]
    assert (gone["file"], gone["namespaces"], gone["errors"]) == (str(net), ["blue", "red"], [])
    assert down["where"] == {"kind": "sandbox", "holder_pid": pid}
    assert document(state_dir, "ls", "--sandbox")["topologies"] == []  # and the holder is stopped
    assert document(state_dir, "status", "--sandbox")["where"] is None


def test_down_all_lists_them_and_takes_them_all_down(state_dir: Path, projects: tuple[Path, int]) -> None:
    down = document(state_dir, "down", "--sandbox", "--all")  # not a terminal: no question
    assert [t["owner"].split("-")[0] for t in down["topologies"]] == ["cli.net", "cli.two"]
    assert [t["namespaces"] for t in down["topologies"]] == [["blue", "red"], ["ns1"]]
    again = netns_kit("down", "--sandbox", "--all", state_dir=state_dir)
    assert again.returncode == 3 and "no sandbox is running" in again.stderr  # emptied: its holder stopped


def test_the_same_file_up_as_a_project_is_named_by_its_project(state_dir: Path, projects: tuple[Path, int]) -> None:
    """seed002 is up as `-p two`: up of the file without -p clashes on its names, and the
    message (and down of the file) says `down -p two`, not `down FILE`."""
    again = netns_kit("up", "--sandbox", HOST, state_dir=state_dir)
    assert again.returncode == 4, again.stdout + again.stderr
    assert "(owner cli.two): take it down first: netns-kit down --sandbox -p two" in again.stderr
    down = netns_kit("down", "--sandbox", HOST, state_dir=state_dir)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "down: note: cli.two is up from this file as a project: netns-kit down --sandbox -p two" in down.stdout
    assert [row["owner"] for row in document(state_dir, "ls", "--sandbox")["topologies"]][1] == "cli.two"


def on_a_terminal(state_dir: Path, argv: list[str], answer: bytes) -> tuple[int, str]:
    """Run the command on a pseudo-terminal; answer its question; its exit code and output."""
    pid, fd = pty.fork()
    if pid == 0:
        env = dict(os.environ, NETNS_KIT_STATE_DIR=str(state_dir))
        os.execve(sys.executable, [sys.executable, "-m", "netns_kit", *argv], env)
    seen = b""
    deadline = time.monotonic() + 120
    while b"[y/N] " not in seen:
        assert time.monotonic() < deadline, seen
        if select.select([fd], [], [], 1)[0]:
            seen += os.read(fd, 4096)
    os.write(fd, answer)
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode()


def test_down_all_asks_on_a_terminal(state_dir: Path, projects: tuple[Path, int]) -> None:
    code, said = on_a_terminal(state_dir, ["down", "--sandbox", "--all"], b"n\n")
    assert code == 0, said
    assert "down --all: 2 topologies are up in sandbox holder" in said and "take them all down? [y/N]" in said
    assert "down: nothing done" in said
    assert len(document(state_dir, "ls", "--sandbox")["topologies"]) == 2
    code, said = on_a_terminal(state_dir, ["down", "--sandbox", "--all"], b"y\n")
    assert code == 0, said
    assert "down: cli.two: 1 removed" in said and "stopped: it holds nothing any more" in said


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "--sandbox"],
        ["ls", "--sandbox", "--json"],
        ["inspect", "--sandbox", "two"],
        ["status", "--sandbox", "--json"],
        ["completion", "bash"],
        ["plan", "--json", HOST],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_into_a_closed_pipe_the_command_exits_141_quietly(
    state_dir: Path, projects: tuple[Path, int], argv: list[str]
) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # `| head -0`: nobody reads
    env = dict(os.environ, NETNS_KIT_STATE_DIR=str(state_dir))
    done = subprocess.run(
        [sys.executable, "-m", "netns_kit", *argv],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(writer)
    assert (done.returncode, done.stderr) == (141, "")


@pytest.mark.parametrize("argv", [["ls", "--sandbox"], ["inspect", "--sandbox", "two"]], ids=["ls", "inspect"])
def test_ctrl_c_while_reading_exits_130(
    state_dir: Path, projects: tuple[Path, int], tmp_path: Path, argv: list[str]
) -> None:
    """The Ctrl-C lands while the command waits for `ip` (a slow one, first on PATH)."""
    slow = tmp_path / "slow-bin"
    slow.mkdir()
    marker = tmp_path / "asked"
    (slow / "ip").write_text(f"#!/bin/sh\ntouch {marker}\nexec sleep 60\n")
    (slow / "ip").chmod(0o755)
    env = dict(os.environ, NETNS_KIT_STATE_DIR=str(state_dir), PATH=f"{slow}:{os.environ['PATH']}")
    with subprocess.Popen(
        [sys.executable, "-m", "netns_kit", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as process:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert err == "netns-kit: interrupted\n"
