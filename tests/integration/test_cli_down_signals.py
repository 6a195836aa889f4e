"""`netns-kit down` under Ctrl-C (issue 15, defect 4): one Ctrl-C is held until the
teardown is complete; a second one stops it, and running `down` again finishes it.

The Ctrl-C lands while the teardown runs, every time: a process in one of the
topology's namespaces survives the SIGTERM the teardown sends it (it writes a marker
file when it gets it, then carries on), so the teardown waits for it, up to its
deadline, before it sends SIGKILL. The Ctrl-C is sent once the marker is there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Command
from netns_kit.cli.place import ORIGIN_SUFFIX
from netns_kit.executors import holder
from netns_kit.executors.process import Process
from netns_kit.executors.sandbox import Sandbox
from netns_kit.owner import proc_stat, start_time

from .cli import netns_kit, stop_recorded_holder

N = 30
EXAMPLES = Path(__file__).parents[2] / "examples"
OTHER = str(EXAMPLES / "seed001-pipe.toml")  # up beside it all along: never touched


def w_file(path: Path, n: int) -> Path:
    """W(n) as a topology file: n namespaces on bridge br0, NAT and a port forward each."""
    parts = ['[topology]\nname = "w-signals"\n', '[[bridges]]\nname = "br0"\naddresses = ["10.200.255.254/16"]\n']
    for i in range(n):
        address = f"10.200.{i // 250}.{i % 250 + 1}"
        parts.append(f'[[namespaces]]\nname = "w{i}"\n')
        parts.append(
            f'[[veths]]\nname = "wh{i}"\nbridge = "br0"\npeer = "eth0"\npeer_netns = "w{i}"\n'
            f'peer_addresses = ["{address}/16"]\n'
        )
        parts.append(f'[[routes]]\ndestination = "default"\nvia = "10.200.255.254"\nnetns = "w{i}"\n')
        parts.append(f'[[port_forwards]]\nport = {10000 + i}\nto = "{address}"\nto_port = 80\nbridge = "br0"\n')
    parts.append('[[nat_rules]]\nsource = "10.200.0.0/16"\nbridge = "br0"\n')
    path.write_text("\n".join(parts))
    return path


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "state"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(directory))
    yield directory
    stop_recorded_holder(directory)


def stubborn(sandbox: Sandbox, netns: str, marker: Path) -> Process:
    """A process in ``netns`` that outlives SIGTERM, and says it got one in ``marker``."""
    script = f"trap 'echo term > {marker}' TERM; while :; do sleep 0.05; done"
    return sandbox.popen(Command(("sh", "-c", script), netns=netns))


def down_interrupted(state_dir: Path, topology: Path, marker: Path, ctrl_cs: int) -> subprocess.CompletedProcess[str]:
    """`netns-kit down` with ``ctrl_cs`` Ctrl-Cs sent as its teardown stops the processes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "netns_kit.cli", "down", "--sandbox", str(topology)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal
        env={**os.environ, "NETNS_KIT_STATE_DIR": str(state_dir)},
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, f"down ended before its teardown stopped the processes: {process.communicate()}"
        assert time.monotonic() < deadline, "the teardown never sent SIGTERM to the namespace's process"
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    seen = ""
    if ctrl_cs == 2:
        # the second once the first was taken (two sent at once may arrive as one)
        assert process.stderr is not None
        while "received while undoing" not in seen:
            line = process.stderr.readline()
            assert line, f"down ended without holding the Ctrl-C: {seen}{process.communicate()}"
            seen += line
        os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, seen + err)


def leftovers(sandbox: Sandbox) -> list[str]:
    """What of W is still in the sandbox: its namespaces, links and tagged rules."""
    from netns_kit.ops import inventory

    found = inventory.scan(sandbox)
    left = [f"namespace {name}" for name in found.namespaces if name.startswith("w")]
    left += [str(link) for link in found.links if link.alias and "cli.w-signals" in link.alias]
    left += [str(link) for link in found.links if link.name == "br0" or link.name.startswith("wh")]
    left += [str(rule) for rule in found.rules if rule.comment and "w-signals" in rule.comment]
    return left


def origin_record(sandbox: Sandbox) -> Path:
    """Where `up` recorded which file W came from (inside the holder's private /run)."""
    assert sandbox.ledger_dir is not None
    return sandbox.ledger_dir / f"cli.w-signals{ORIGIN_SUFFIX}"


def up(state_dir: Path, topology: Path, *, other: bool = True) -> Sandbox:
    for file in (OTHER, str(topology)) if other else (str(topology),):
        made = netns_kit("up", "--sandbox", file, state_dir=state_dir)
        assert made.returncode == 0, made.stdout + made.stderr
    sandbox = holder.find()
    assert sandbox is not None
    assert len(leftovers(sandbox)) > 3 * N
    return sandbox


def other_is_intact(sandbox: Sandbox) -> None:
    from netns_kit.ops import inventory

    found = inventory.scan(sandbox)
    assert {"red", "blue"} <= set(found.namespaces)


def test_one_ctrl_c_during_down_is_held_until_the_teardown_is_complete(state_dir: Path, tmp_path: Path) -> None:
    topology = w_file(tmp_path / "w.toml", N)
    sandbox = up(state_dir, topology)
    assert origin_record(sandbox).exists()
    marker = tmp_path / "term"
    stubborn(sandbox, "w7", marker)
    done = down_interrupted(state_dir, topology, marker, ctrl_cs=1)
    assert done.returncode == 130, done.stdout + done.stderr  # it landed (0: it came too late)
    assert "SIGINT received while undoing; finishing the undo first" in done.stderr
    assert leftovers(sandbox) == [], done.stdout + done.stderr
    other_is_intact(sandbox)
    # the rest of down ran too: its report, the origin record forgotten
    assert "removed: namespace w7" in done.stdout, done.stdout
    assert "down: w-signals: " in done.stdout and " removed in sandbox holder " in done.stdout, done.stdout
    assert not origin_record(sandbox).exists()
    again = netns_kit("down", "--sandbox", str(topology), state_dir=state_dir)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr


def test_a_second_ctrl_c_stops_down_and_down_again_finishes_it(state_dir: Path, tmp_path: Path) -> None:
    topology = w_file(tmp_path / "w.toml", N)
    sandbox = up(state_dir, topology)
    marker = tmp_path / "term"
    stubborn(sandbox, "w7", marker)
    done = down_interrupted(state_dir, topology, marker, ctrl_cs=2)
    assert done.returncode == 130, done.stdout + done.stderr
    assert f"down --sandbox {topology}" in done.stderr, done.stderr  # how to finish it
    assert "namespace w7" in " ".join(leftovers(sandbox))  # stopped before the namespaces went
    marker.unlink()
    finish = netns_kit("down", "--sandbox", str(topology), state_dir=state_dir)
    assert finish.returncode == 0, finish.stdout + finish.stderr
    assert leftovers(sandbox) == []
    other_is_intact(sandbox)


def test_one_ctrl_c_during_down_still_stops_the_holder_it_empties(state_dir: Path, tmp_path: Path) -> None:
    topology = w_file(tmp_path / "w.toml", N)
    sandbox = up(state_dir, topology, other=False)
    pid, started = sandbox.pid, start_time(sandbox.pid)
    marker = tmp_path / "term"
    stubborn(sandbox, "w7", marker)
    done = down_interrupted(state_dir, topology, marker, ctrl_cs=1)
    assert done.returncode == 130, done.stdout + done.stderr
    assert "SIGINT received while undoing; finishing the undo first" in done.stderr
    assert "down: w-signals: " in done.stdout, done.stdout
    assert f"sandbox holder {pid} stopped: it holds nothing any more" in done.stdout, done.stdout
    assert holder.find() is None
    stat = proc_stat(pid)
    assert stat is None or stat[19] != started or stat[0] == "Z", stat  # gone (a zombie, or the pid reused)
