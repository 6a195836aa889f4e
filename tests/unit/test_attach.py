"""Someone else's namespace in a topology (``ip netns attach``): the commands up and down,
the TOML keys, and a container's PID read from a docker/podman on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from netns_kit import Command, Namespace, Result, Route, Topology, VethPair
from netns_kit.errors import NetnsKitError, ValidationError
from netns_kit.executors.recorder import Recorder
from netns_kit.resources.namespace import AttachedNamespace
from netns_kit.topology.tomlfile import TopologyFileError, loads

from .fakes import BatchingHost


def wired(container: AttachedNamespace) -> Topology:
    return Topology(
        [
            container,
            VethPair("v-c1", "eth1", peer_netns="c1", addresses="10.9.0.1/24", peer_addresses="10.9.0.2/24"),
            Route("10.99.0.0/24", via="10.9.0.1", netns="c1"),
        ]
    )


def test_up_attaches_and_never_adds_a_namespace_or_touches_lo() -> None:
    recorder = Recorder()
    wired(Namespace.attach("c1", pid=4242)).up(recorder)
    assert recorder.lines == [
        "ip netns attach c1 4242",
        "ip link add name v-c1 type veth peer name eth1 netns c1",
        f"ip link set dev v-c1 alias {recorder.owner.tag} up",
        f"ip -n c1 link set dev eth1 alias {recorder.owner.tag} up",
        "ip addr add 10.9.0.1/24 dev v-c1",
        "ip -n c1 addr add 10.9.0.2/24 dev eth1",
        "ip -n c1 route add 10.99.0.0/24 via 10.9.0.1",
    ]


def test_down_deletes_what_it_added_one_by_one_then_only_the_name(tmp_path: Path) -> None:
    host = BatchingHost(tmp_path)
    topology = wired(Namespace.attach("c1", pid=4242)).up(host)
    host.clear()
    topology.down()
    # the route and the veth are deleted as on the host (the veth's peer in c1 goes with
    # it, and the addresses with them), no process is stopped, and only the name goes, last
    assert host.lines == ["ip -n c1 route del 10.99.0.0/24 via 10.9.0.1", "ip link del dev v-c1", "ip netns del c1"]


def test_a_made_namespace_in_its_place_is_deleted_whole(tmp_path: Path) -> None:
    # the contrast: a namespace of our own takes its veth along, nothing deleted one by one
    host = BatchingHost(tmp_path)
    topology = Topology([Namespace("c1"), VethPair("v-c1", "eth1", peer_netns="c1")]).up(host)
    host.clear()
    topology.down()
    assert "ip netns del c1" in host.lines
    assert "ip link del dev v-c1" not in host.lines


def test_a_veth_from_a_namespace_of_ours_goes_with_it_and_the_attached_one_keeps_its_own(tmp_path: Path) -> None:
    host = BatchingHost(tmp_path)
    topology = Topology(
        [
            Namespace("a"),
            Namespace.attach("c1", pid=4242),
            VethPair("v-a", "eth1", netns="a", peer_netns="c1", addresses="10.9.0.1/24", peer_addresses="10.9.0.2/24"),
            Route("10.99.0.0/24", via="10.9.0.1", netns="c1"),
        ]
    ).up(host)
    host.clear()
    topology.down()
    assert host.lines == [
        "ip -n c1 route del 10.99.0.0/24 via 10.9.0.1",
        "ip -n a link del dev v-a",
        "ip netns del c1",
        "ip netns del a",
    ]


def test_pid_must_be_a_positive_integer_and_exactly_one_source() -> None:
    for bad in (0, -3, True, "12"):
        with pytest.raises(ValidationError):
            Namespace.attach("c1", pid=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="is missing: give exactly one of pid and container"):
        Namespace.attach("c1")
    with pytest.raises(ValidationError, match="cannot go with container"):
        Namespace.attach("c1", pid=3, container="web")
    assert not AttachedNamespace.holds_others
    assert AttachedNamespace.rank == Namespace.rank


def test_toml_pid_and_container_make_an_attached_namespace() -> None:
    topology = loads(
        '[[namespaces]]\nname = "c1"\npid = 1234\n[[namespaces]]\nname = "c2"\ncontainer = "web"\n'
        '[[namespaces]]\nname = "own"\n'
    )
    built = list(topology.topology.resources)
    assert built[0] == AttachedNamespace("c1", pid=1234)
    assert built[1] == AttachedNamespace("c2", container="web")
    assert type(built[2]) is Namespace


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('pid = 1234\ncontainer = "web"', r"namespaces\[0\]\.pid: 1234 cannot go with container"),
        ("pid = 0", r"namespaces\[0\]\.pid: 0 must be a positive integer"),
        ('pid = "1234"', r"namespaces\[0\]\.pid: '1234' must be an integer"),
        (
            "pidd = 3",
            r"namespaces\[0\]\.pidd: 3 is not a known key for Namespace \(did you mean 'pid'\?\); "
            r"known: adopt, container, name, pid",
        ),
    ],
)
def test_toml_errors_point_to_the_key(body: str, message: str) -> None:
    with pytest.raises(TopologyFileError, match=message):
        loads(f'[[namespaces]]\nname = "c1"\n{body}\n', source="net.toml")


def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def really(command: Command) -> Result | None:
    """Run docker/podman for real (the fake on PATH); answer every other query as a dry-run."""
    if command.program not in ("docker", "podman"):
        return None
    done = subprocess.run(command.argv, capture_output=True, text=True, env=os.environ, check=False)
    return Result(command, done.returncode, done.stdout, done.stderr)


DOCKER = """
[ "$1 $2 $3 $4" = "inspect -f {{.State.Pid}} web" ] && { echo %s; exit 0; }
echo "Error: No such object: $4" >&2; exit 1
"""


def test_a_container_pid_comes_from_docker_inspect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, monkeypatch, "docker", DOCKER % 5151)
    fake_tool(tmp_path, monkeypatch, "podman", "echo 1; exit 0\n")  # docker comes first
    recorder = Recorder(really)
    wired(Namespace.attach("c1", container="web")).up(recorder)
    assert recorder.lines[0] == "ip netns attach c1 5151"
    assert [q.line for q in recorder.queries if q.program == "docker"] == ["docker inspect -f '{{.State.Pid}}' web"]


def test_podman_when_there_is_no_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, monkeypatch, "podman", DOCKER % 77)
    recorder = Recorder(really)
    Topology([Namespace.attach("c1", container="web")]).up(recorder)
    assert recorder.lines == ["ip netns attach c1 77"]


def test_a_stopped_container_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, monkeypatch, "docker", DOCKER % 0)
    with pytest.raises(NetnsKitError, match="'web' is not running"):
        Topology([Namespace.attach("c1", container="web")]).up(Recorder(really))


def test_an_unknown_container_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, monkeypatch, "docker", DOCKER % 5)
    with pytest.raises(NetnsKitError, match=r"'db': not found by docker inspect .*No such object: db"):
        Topology([Namespace.attach("c1", container="db")]).up(Recorder(really))


def test_no_docker_nor_podman_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NetnsKitError, match="neither docker nor podman"):
        Topology([Namespace.attach("c1", container="web")]).up(Recorder(really))
