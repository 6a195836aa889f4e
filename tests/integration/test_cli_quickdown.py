"""`netns-kit down` carries out the teardown a completed `up` recorded last in its ledger
(netns_kit.ops.quickdown), only while it can be trusted; else it proves what is left.

On a private "machine" (see test_cli_host.py): the CLI's real path, the default state
directory, root there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from netns_kit.executors import binaries
from netns_kit.ops import state

from .test_cli_host import Machine, machine  # noqa: F401  (the fixture)

EXAMPLES = Path(__file__).parents[2] / "examples"
NAT = str(EXAMPLES / "seed001-bridge-nat.toml")
TAG = "netns_kit:cli.seed001-bridge-nat"


def _last_line(box: Machine) -> dict[str, object]:
    (name,) = box.ledgers()
    lines = box.path(f"/run/netns_kit/{name}").read_text().splitlines()
    return json.loads(lines[-1])


def _inside(box: Machine, *argv: str) -> None:
    subprocess.run([*box.enter, *argv], check=True, capture_output=True, timeout=30)


def test_down_carries_out_the_teardown_up_recorded(machine: Machine) -> None:  # noqa: F811
    before = state.snapshot(machine.executor)
    up = machine.cli("up", NAT)
    assert up.returncode == 0, up.stderr
    sealed = _last_line(machine)
    assert sealed["netns_kit_sealed"] == 1
    teardown = sealed["teardown"]
    assert isinstance(teardown, dict)
    assert teardown["holders"] == ["red", "blue", "green"]
    assert "namespace red" in teardown["removed"]

    down = machine.cli("down", "-v", NAT)
    assert down.returncode == 0, down.stderr
    assert "down: carried out the teardown `up` recorded" in down.stdout
    assert "removed: namespace green" in down.stdout
    assert "removed: sysctl net.ipv4.ip_forward: claim of cli.seed001-bridge-nat" in down.stdout
    assert "FAILED" not in down.stdout and "left alone" not in down.stdout
    assert state.diff(before, state.snapshot(machine.executor)) == []  # rules, links, ip_forward
    assert machine.ledgers() == []


def test_a_change_recorded_after_up_is_proven_instead(machine: Machine) -> None:  # noqa: F811
    before = state.snapshot(machine.executor)
    assert machine.cli("up", NAT).returncode == 0
    (name,) = machine.ledgers()
    with machine.path(f"/run/netns_kit/{name}").open("a") as ledger:
        ledger.write('{"seq":999,"mark":"ok"}\n')  # anything after the seal: not trusted

    down = machine.cli("down", "-v", NAT)
    assert down.returncode == 0, down.stderr
    assert "proving what is left from tags (its ledger does not end with the teardown" in down.stdout
    assert state.diff(before, state.snapshot(machine.executor)) == []


def test_a_namespace_made_again_by_someone_else_is_left_alone(machine: Machine) -> None:  # noqa: F811
    assert machine.cli("up", NAT).returncode == 0
    # someone deletes blue and makes a blue of their own (untagged)
    _inside(machine, "ip", "netns", "del", "blue")
    _inside(machine, "ip", "netns", "add", "blue")

    down = machine.cli("down", "-v", NAT)
    assert down.returncode == 0, down.stderr
    assert f"proving what is left from tags (namespace blue does not carry the tag {TAG})" in down.stdout
    after = state.snapshot(machine.executor)
    assert after["netns"] == ["blue"]  # theirs: never touched
    assert not any(TAG in line for table in after["<host>"]["iptables-save"].values() for line in table)
    _inside(machine, "ip", "netns", "del", "blue")


def test_a_topology_whose_namespaces_were_deleted_by_hand_goes_the_slow_way(machine: Machine) -> None:  # noqa: F811
    before = state.snapshot(machine.executor)
    assert machine.cli("up", NAT).returncode == 0
    for name in ("red", "blue", "green"):
        _inside(machine, "ip", "netns", "del", name)

    down = machine.cli("down", "-v", NAT)
    assert down.returncode == 0, down.stderr
    assert "proving what is left from tags (namespace red does not carry the tag" in down.stdout
    assert state.diff(before, state.snapshot(machine.executor)) == []


CUT = """[topology]
name = "cut"
firewall = "nft"

[[namespaces]]
name = "pa"
adopt = true

[[namespaces]]
name = "pb"
adopt = true

[[namespaces]]
name = "pc"

[[partitions]]
a = "pa"
b = "pb"
a_addresses = ["10.9.0.1"]
b_addresses = ["10.9.0.2"]
"""


def _tables(box: Machine, netns: str) -> list[str]:
    nft = binaries.which("nft")  # /usr/sbin: not on a login user's PATH on Debian
    assert nft is not None
    argv = [*box.enter, "ip", "netns", "exec", netns, nft, "list", "tables"]
    listed = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.splitlines()


def test_a_partition_on_nft_between_adopted_namespaces_leaves_no_table(machine: Machine, tmp_path: Path) -> None:  # noqa: F811
    """The partitioned namespaces outlive the topology (pc, which it makes, does not): the
    teardown `up` recorded deletes the owner's table in each."""
    for netns in ("pa", "pb"):
        _inside(machine, "ip", "netns", "add", netns)
    try:
        path = tmp_path / "cut.toml"
        path.write_text(CUT)
        up = machine.cli("up", str(path))
        assert up.returncode == 0, up.stderr
        assert _tables(machine, "pa") == ["table inet netns_kit_cli.cut"]
        down = machine.cli("down", "-v", str(path))
        assert down.returncode == 0, down.stderr
        assert "down: carried out the teardown `up` recorded" in down.stdout
        assert (_tables(machine, "pa"), _tables(machine, "pb")) == ([], [])
        assert machine.ledgers() == []
    finally:
        for netns in ("pa", "pb"):
            _inside(machine, "ip", "netns", "del", netns)
