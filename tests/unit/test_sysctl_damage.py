"""Damaged sysctl claim files (netns_kit.lifecycle.sysctl): empty, garbage, not text, of another
version. No reader crashes; a ``prior`` that is not a value of its switch is never
written back (the switch is left as it is, and that is said); a claim whose name does
not parse does not count as a live claim and is not deleted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from netns_kit import Bridge, NatRule, Topology, cleanup
from netns_kit.lifecycle import sysctl

from .fakes import FakeHost

KEY = "net.ipv4.ip_forward"

#: what a ``prior`` file may hold after a crash, a disk error or another program
DAMAGED = {
    "empty": b"",
    "blank line": b"\n",
    "garbage": b"garbage\n",
    "not text": b"\xff\xfe\x00\x01",
    "other version": b'{"version": 2, "value": "0"}\n',
    "two lines": b"0\n1\n",
    "out of range": b"7\n",
    "a directory": None,
}


def nat(n: int) -> Topology:
    return Topology([Bridge(f"br{n}", addresses=f"10.{n}.0.1/24"), NatRule(f"10.{n}.0.0/24", bridge=f"br{n}")])


def place(tmp_path: Path) -> Path:
    path = tmp_path / "sysctl" / "-host-" / KEY
    path.mkdir(parents=True, exist_ok=True)
    return path


def damage(path: Path, content: bytes | None) -> None:
    if path.exists():
        path.unlink()
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_cleanup_never_writes_back_a_damaged_prior_and_says_so(tmp_path: Path, content: bytes | None) -> None:
    host = FakeHost(tmp_path, **{KEY: "1"})
    here = place(tmp_path)
    damage(here / "prior", content)
    (here / "claim.cli.net.script").write_text("1\n")
    report = cleanup(host, owner="cli.net")
    assert host.writes() == []
    assert host.values[KEY] == "1"
    assert report.errors == []
    assert len(report.kept) == 1
    assert report.kept[0].startswith(f"sysctl {KEY}: left at 1: {here / 'prior'} ")
    assert report.kept[0].endswith(f"not a value of {KEY} (0 or 1); set it by hand if 1 is not what you want")
    assert not (here / "claim.cli.net.script").exists()


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_prior_found_when_claiming_is_not_kept_and_never_written_back(
    tmp_path: Path, content: bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    host = FakeHost(tmp_path, **{KEY: "1"})
    here = place(tmp_path)
    damage(here / "prior", content)
    other = here / "claim.cli.other.script"  # a named owner: always live
    other.write_text("1\n")
    with caplog.at_level(logging.WARNING, logger="netns_kit"):
        topology = nat(1).up(host)
    assert any(f"{here / 'prior'}" in r.getMessage() for r in caplog.records)
    other.unlink()  # the other owner went, without restoring (as a printed script's claim removed by hand)
    topology.down()
    assert host.writes() == []
    assert host.values[KEY] == "1"


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_prior_damaged_while_up_leaves_the_switch_as_it_is_on_down(
    tmp_path: Path, content: bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    host = FakeHost(tmp_path)
    topology = nat(1).up(host)
    assert host.values[KEY] == "1"
    damage(place(tmp_path) / "prior", content)
    with caplog.at_level(logging.WARNING, logger="netns_kit"):
        topology.down()
    assert host.writes() == [f"{KEY}=1"]
    assert any("not a value of" in r.getMessage() for r in caplog.records)


def test_a_valid_prior_with_a_newline_missing_or_spaces_is_restored(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, **{KEY: "1"})
    here = place(tmp_path)
    (here / "prior").write_bytes(b" 0")
    (here / "claim.cli.net.script").write_text("1")
    report = cleanup(host, owner="cli.net")
    assert report.kept == []
    assert host.writes() == [f"{KEY}=0"]


@pytest.mark.parametrize(
    ("key", "value", "valid"),
    [
        (KEY, "0", True),
        (KEY, "1", True),
        (KEY, "2", False),
        ("net.ipv6.conf.all.forwarding", "1", True),
        ("net.ipv4.conf.br0.route_localnet", "1", True),
        ("net.ipv4.conf.br0.route_localnet", "", False),
        ("net/ipv4/conf/eth0.10/forwarding", "01", False),
        ("net.ipv4.tcp_rmem", "4096\t131072\t6291456", True),
        ("net.ipv4.ip_local_port_range", "32768 60999", True),
        ("net.core.somaxconn", "-1", True),
        ("net.core.somaxconn", "4096; reboot", False),
        ("net.core.somaxconn", "1" * 21, False),
        ("net.core.somaxconn", "0x10", False),
        ("net.core.somaxconn", "\u0661", False),  # a digit, but not ASCII
    ],
)
def test_which_values_are_written_back(key: str, value: str, valid: bool) -> None:
    assert sysctl.valid_value(key, value) is valid


UNPARSED = [
    "claim.x",  # no owner and suffix
    "claim.",
    "claim.cli.net.garbage",  # a suffix no version writes
    "claim.bad owner.script",
    os.fsdecode(b"claim.\xff\xfe.1-1"),  # not text
]


@pytest.mark.parametrize("name", UNPARSED)
def test_a_claim_whose_name_does_not_parse_does_not_count_and_stays(tmp_path: Path, name: str) -> None:
    host = FakeHost(tmp_path)
    topology = nat(1).up(host)
    stranger = place(tmp_path) / name
    stranger.write_text("1\n")
    topology.down()
    assert host.values[KEY] == "0"  # restored: the stranger is no live claim
    assert stranger.exists()  # and not ours to delete
    report = cleanup(host)
    assert report.errors == []
    assert stranger.exists()


def test_a_claim_of_a_gone_process_in_an_older_format_still_counts_as_ours_and_goes(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, **{KEY: "1"})
    here = place(tmp_path)
    (here / "prior").write_text("0\n")
    (here / "claim.999999999.1.999999999-1").write_text("1\n")  # of a process that is gone
    report = cleanup(host)
    assert report.removed == ["sysctl net.ipv4.ip_forward: claim of 999999999.1"]
    assert host.values[KEY] == "0"


@pytest.mark.parametrize(
    "content", [b"", b"\xff\xfe", b"garbage", b'{"v": 2}'], ids=["empty", "bytes", "garbage", "json"]
)
def test_cleanup_survives_a_damaged_claim_file(tmp_path: Path, content: bytes) -> None:
    host = FakeHost(tmp_path, **{KEY: "1"})
    here = place(tmp_path)
    (here / "prior").write_text("0\n")
    (here / "claim.cli.net.script").write_bytes(content)
    report = cleanup(host, owner="cli.net")
    assert report.errors == []
    assert report.removed == ["sysctl net.ipv4.ip_forward: claim of cli.net"]
    assert host.values[KEY] == "0"  # the claim says nothing usable: the prior decides
    assert not (tmp_path / "sysctl").exists()


def test_a_claim_that_is_a_directory_is_ignored(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    topology = nat(1).up(host)
    odd = place(tmp_path) / "claim.cli.net.script"
    odd.mkdir()
    topology.down()
    assert host.values[KEY] == "0"
    report = cleanup(host, owner="cli.net")
    assert report.errors == []
    assert odd.is_dir()


def test_key_and_place_directories_that_are_no_sysctl_are_left_alone(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    for odd in (tmp_path / "sysctl" / "-host-" / "rm -rf", tmp_path / "sysctl" / os.fsdecode(b"\xff") / KEY):
        odd.mkdir(parents=True)
        (odd / "prior").write_text("0\n")
        (odd / "claim.cli.net.script").write_text("1\n")
    (tmp_path / "sysctl" / "-host-" / "a file").write_text("x")
    report = cleanup(host, owner="cli.net")
    assert report.errors == []
    assert host.writes() == []
    assert (tmp_path / "sysctl" / "-host-" / "rm -rf" / "prior").exists()


def test_owner_of_a_claim() -> None:
    assert sysctl.claim_owner("claim.cli.net.script") == "cli.net"
    assert sysctl.claim_owner("claim.123.456.123-7") == "123.456"
    assert sysctl.claim_owner("claim.x") is None


def test_cleanup_of_one_named_owner_drops_only_its_claims_not_those_of_a_longer_name(tmp_path: Path) -> None:
    """``cli.net`` and ``cli.net.v2`` are two owners: cleaning up one (through its ledger)
    leaves the other's claim, and forwarding on for it."""
    from netns_kit import Owner

    host = FakeHost(tmp_path, owner=Owner("cli.net"))
    nat(1).up(host)
    here = place(tmp_path)
    (here / "claim.cli.net.v2.script").write_text("1\n")
    cleanup(host, owner="cli.net")
    assert (here / "claim.cli.net.v2.script").exists()
    assert host.values[KEY] == "1"
