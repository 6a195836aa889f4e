"""Per-namespace files through the recorder: written by the executor, in the script, removed again."""

from __future__ import annotations

import pytest

from netns_kit import Command, NetnsFile, NetnsKitError, Recorder, Result, ValidationError, hosts_files
from netns_kit.topology import scenarios


def test_a_file_is_written_from_a_here_document_and_removed_with_its_directory() -> None:
    rec = Recorder()
    NetnsFile("red", "resolv.conf", "nameserver 10.0.0.53\n").create(rec)
    assert rec.script().splitlines()[3:] == [
        "mkdir -p /etc/netns/red",
        "install -m 0644 /dev/stdin /etc/netns/red/resolv.conf <<'EOF'",
        "nameserver 10.0.0.53",
        "EOF",
    ]
    assert rec.teardown_script().splitlines()[3:] == [
        "rm -f /etc/netns/red/resolv.conf",
        "rmdir --ignore-fail-on-non-empty /etc/netns/red",
    ]
    assert rec.commands[1].stdin == "nameserver 10.0.0.53\n"


def existing(*paths: str):
    def handler(command: Command) -> Result | None:
        if command.argv[0] == "find":
            return Result(command, 1, "".join(f"{p}\n" for p in paths if p in command.argv), "")
        return None

    return handler


def test_an_existing_directory_is_neither_made_nor_removed() -> None:
    rec = Recorder(existing("/etc/netns/red"))
    NetnsFile("red", "hosts", "").create(rec)
    assert rec.lines == ["install -m 0644 /dev/stdin /etc/netns/red/hosts"]
    assert [c.line for c in rec.undo_commands()] == ["rm -f /etc/netns/red/hosts"]


def test_a_file_netns_kit_did_not_write_is_never_overwritten_unless_adopted() -> None:
    rec = Recorder(existing("/etc/netns/red", "/etc/netns/red/hosts"))
    with pytest.raises(NetnsKitError, match=r"already exists .* adopt=True"):
        NetnsFile("red", "hosts", "x\n").create(rec)
    adopted = NetnsFile("red", "hosts", "x\n", adopt=True).create(rec)
    adopted.delete(rec)
    assert rec.commands == []


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("red", "../passwd", "x\n"), "NetnsFile.name"),
        (("red", "hosts", "no newline"), "NetnsFile.content"),
        (("red", "hosts", "a\0b\n"), "NetnsFile.content"),
        (("red/..", "hosts", "x\n"), "NetnsFile.netns"),
    ],
)
def test_bad_files_are_refused_by_field(args: tuple[str, str, str], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        NetnsFile(*args)
    assert info.value.field == field


def test_hosts_and_resolv_conf_render_the_usual_formats() -> None:
    hosts = NetnsFile.hosts("red", {"blue": ["10.0.0.2", "fd00::2/64"], "db": ["10.0.0.9"]})
    assert hosts.content == (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.2\tblue\nfd00::2\tblue\n10.0.0.9\tdb\n"
    )
    resolv = NetnsFile.resolv_conf("red", ["10.0.0.53"], search=["test.internal"])
    assert resolv.content == "nameserver 10.0.0.53\nsearch test.internal\n"
    with pytest.raises(ValidationError, match=r"NetnsFile\.hosts"):
        NetnsFile.hosts("red", {"blue": ["not-an-address"]})
    with pytest.raises(ValidationError, match=r"NetnsFile\.hosts"):
        NetnsFile.hosts("red", {"two words": ["10.0.0.1"]})
    with pytest.raises(ValidationError, match=r"NetnsFile\.nameservers"):
        NetnsFile.resolv_conf("red", [])


def test_hosts_files_name_every_namespace_of_a_topology_in_each_one() -> None:
    topo = scenarios.seed001_bridge()
    files = hosts_files(topo, extra={"gateway": ["192.168.1.254"]})
    assert [f.netns for f in files] == ["red", "blue", "green"]
    assert {f.content for f in files} == {files[0].content}
    assert files[0].content.splitlines()[2:] == [
        "192.168.1.1\tred",
        "192.168.1.2\tblue",
        "192.168.1.3\tgreen",
        "192.168.1.254\tgateway",
    ]
    topo.add(*files)
    script = topo.plan().script()
    assert "install -m 0644 /dev/stdin /etc/netns/green/hosts <<'EOF'\n127.0.0.1\tlocalhost\n" in script
