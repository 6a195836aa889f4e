"""A forwarding switch several owners rely on is restored only by the last one to go,
to the value found before the first (no privileges: a fake kernel in a recorder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import Bridge, NatRule, Topology
from netns_kit.owner import Owner

from .fakes import FakeHost


def nat(n: int) -> Topology:
    return Topology([Bridge(f"br{n}", addresses=f"10.{n}.0.1/24"), NatRule(f"10.{n}.0.0/24", bridge=f"br{n}")])


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def test_the_first_to_leave_does_not_switch_forwarding_off_under_the_other(host: FakeHost) -> None:
    a, b = nat(1).up(host), nat(2).up(host)
    assert host.values["net.ipv4.ip_forward"] == "1"
    a.down()
    assert host.values["net.ipv4.ip_forward"] == "1"
    b.down()
    assert host.values["net.ipv4.ip_forward"] == "0"
    # the second finds it on already: it claims it and changes nothing
    assert host.writes() == ["net.ipv4.ip_forward=1", "net.ipv4.ip_forward=0"]


def test_whichever_leaves_last_restores_the_value_found_first(host: FakeHost) -> None:
    a, b = nat(1).up(host), nat(2).up(host)
    b.down()
    assert host.values["net.ipv4.ip_forward"] == "1"
    a.down()
    assert host.values["net.ipv4.ip_forward"] == "0"


def test_forwarding_that_was_on_before_is_never_written_nor_switched_off(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, **{"net.ipv4.ip_forward": "1"})
    a, b = nat(1).up(host), nat(2).up(host)
    a.down()
    b.down()
    assert host.writes() == []
    assert host.values["net.ipv4.ip_forward"] == "1"


def test_claims_of_a_process_that_is_gone_do_not_count(host: FakeHost, tmp_path: Path) -> None:
    gone = FakeHost(tmp_path, owner=Owner("999999999.1"))
    gone.values = host.values  # the same kernel
    nat(1).up(gone)  # its process is "gone": never torn down
    b = nat(2).up(host)
    b.down()
    assert host.values["net.ipv4.ip_forward"] == "0"  # the value before the gone owner's change


def test_a_dry_run_files_no_claim_and_restores_in_its_script(tmp_path: Path) -> None:
    script = nat(1).plan().teardown_script()
    assert "sysctl -q -w net.ipv4.ip_forward=0" in script
    assert not list(tmp_path.iterdir())


def claim_files(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("sysctl/*/*/claim.*"))


def test_one_process_files_one_claim_however_many_of_its_resources_rely_on_it(host: FakeHost, tmp_path: Path) -> None:
    topologies = [nat(n).up(host) for n in range(1, 5)]
    assert len(claim_files(tmp_path)) == 1
    for topology in topologies[:-1]:
        topology.down()
        assert host.values["net.ipv4.ip_forward"] == "1"
        assert len(claim_files(tmp_path)) == 1
    topologies[-1].down()
    assert host.values["net.ipv4.ip_forward"] == "0"
    assert claim_files(tmp_path) == []
    assert host.writes() == ["net.ipv4.ip_forward=1", "net.ipv4.ip_forward=0"]


def test_a_claim_file_removed_behind_the_process_back_is_filed_again(host: FakeHost, tmp_path: Path) -> None:
    a = nat(1).up(host)
    (removed,) = claim_files(tmp_path)
    removed.unlink()  # as `netns-kit cleanup --owner` naming this process would
    b = nat(2).up(host)
    assert len(claim_files(tmp_path)) == 1
    b.down()
    a.down()
    assert host.values["net.ipv4.ip_forward"] == "0"
    assert claim_files(tmp_path) == []
