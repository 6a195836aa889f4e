"""A forwarding switch several owners rely on is restored only by the last one to go,
to the value found before the first (no privileges: a fake kernel in a recorder)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from netns_kit import Bridge, Command, NatRule, Result, Topology, cleanup
from netns_kit.errors import NetnsKitError
from netns_kit.lifecycle import sysctl
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


def test_a_dry_run_files_no_claim_and_its_scripts_claim_and_release_as_the_library_does(tmp_path: Path) -> None:
    plan = nat(1).plan()
    up, down = plan.script(), plan.teardown_script()
    assert not list(tmp_path.iterdir())
    # the prior value kept where the library keeps it, a claim of the script's owner, under the same lock
    assert (
        "d=/run/netns_kit/sysctl/-host-/net.ipv4.ip_forward\n"
        'mkdir -p "$d"\n'
        "exec 9</run/netns_kit\n"
        "flock 9\n"
        '[ -n "$(ls "$d")" ] || sysctl -n net.ipv4.ip_forward >"$d/prior"\n'
        'echo 1 >"$d"/claim.dry-run.script\n'
        "sysctl -q -w net.ipv4.ip_forward=1\n"
        "exec 9<&-\n"
    ) in up
    # no constant: the last claim out restores what was kept, only while it is still the 1 set
    assert "net.ipv4.ip_forward=0" not in down
    assert (
        'rm -f "$d"/claim.dry-run.*\n'
        """    if [ -f "$d/prior" ] && ! ls "$d" | grep -q '^claim\\.'; then\n"""
        '        prior=$(cat "$d/prior")\n'
        '        case "$prior" in\n'
        '            0|1) [ "$(sysctl -n net.ipv4.ip_forward)" != 1 ] || sysctl -q -w net.ipv4.ip_forward="$prior" ;;\n'
        "            *) echo 'netns_kit: /run/netns_kit/sysctl/-host-/net.ipv4.ip_forward/prior holds no value of "
        "net.ipv4.ip_forward: left as it is' >&2 ;;\n"
        "        esac\n"
        '        rm "$d/prior"\n'
    ) in down


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


# -- a shared switch is decided and written in one step, under the lock ----------------------
class Kernel(FakeHost):
    """A fake host whose ``ip_forward`` the kernel copies to ``default`` and the interfaces
    (``ip -4 -j netconf show``), and which notes whether the claims lock was held at
    each write of it. ``stuck``: that many writes of ``all`` copy nothing (a race's leftover)."""

    def __init__(self, directory: Path, *, stuck: int = 0, **values: str) -> None:
        super().__init__(directory, **values)
        self.places = {"default": self.values["net.ipv4.ip_forward"], "lo": self.values["net.ipv4.ip_forward"]}
        self.stuck = stuck
        self.locked_at_write: list[bool] = []

    def lock_is_held(self) -> bool:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def answer(self, command: Command) -> Result | str | None:
        argv = command.argv
        if argv[:2] == ("sysctl", "-n") and argv[2] not in self.values:
            return Result(command, 255, "", f"sysctl: cannot stat /proc/sys/{argv[2]}: No such file or directory")
        if argv[:4] == ("ip", "-4", "-j", "netconf"):
            entries = [("all", self.values["net.ipv4.ip_forward"]), *self.places.items()]
            return json.dumps([{"interface": name, "forwarding": value == "1"} for name, value in entries])
        if argv[:3] == ("sysctl", "-q", "-w"):
            key, _, value = argv[3].partition("=")
            if key == "net.ipv4.ip_forward":
                self.locked_at_write.append(self.lock_is_held())
                if self.stuck:
                    self.stuck -= 1
                elif self.values[key] != value:
                    self.places = dict.fromkeys(self.places, value)
            elif key.startswith("net.ipv4.conf.") and key.endswith(".forwarding"):
                if not self.stuck:
                    self.places[key.split(".")[3]] = value
                return ""
        return super().answer(command)


def test_forwarding_is_written_under_the_claims_lock_when_claimed_and_when_restored(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path)
    a, b = nat(1).up(kernel), nat(2).up(kernel)
    a.down()
    b.down()
    assert kernel.writes() == ["net.ipv4.ip_forward=1", "net.ipv4.ip_forward=0"]
    assert kernel.locked_at_write == [True, True]


def test_no_empty_claims_directory_is_left_behind(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path)
    topology = nat(1).up(kernel)
    assert claim_files(tmp_path) != []
    topology.down()
    assert list(tmp_path.iterdir()) == []


def test_default_and_interfaces_that_did_not_follow_the_write_are_written_again(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path, stuck=1)  # the first write of ip_forward copies nothing
    topology = nat(1).up(kernel)
    assert kernel.places == {"default": "1", "lo": "1"}
    assert kernel.writes() == [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.default.forwarding=1",
        "net.ipv4.conf.lo.forwarding=1",
    ]
    topology.down()
    assert kernel.places == {"default": "0", "lo": "0"}


def test_forwarding_that_cannot_be_repaired_is_a_clear_error_and_nothing_stays_claimed(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path, stuck=100)
    with pytest.raises(NetnsKitError, match=r"net.ipv4.ip_forward is 1 in the host, but forwarding stays off on"):
        nat(1).up(kernel)
    assert claim_files(tmp_path) == []


def test_forwarding_found_on_but_off_on_default_is_repaired_when_relied_on(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path, **{"net.ipv4.ip_forward": "1"})
    kernel.places = {"default": "0", "lo": "0"}  # what racing writes leave: reads 1, forwards nothing
    topology = nat(1).up(kernel)
    assert kernel.places == {"default": "1", "lo": "1"}
    topology.down()
    assert kernel.values["net.ipv4.ip_forward"] == "1"


def test_forwarding_problem_names_the_places_and_the_fix(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path, **{"net.ipv4.ip_forward": "1"})
    assert sysctl.forwarding_problem(kernel) is None
    kernel.places = {"default": "0", "lo": "0"}
    assert sysctl.forwarding_problem(kernel) == (
        "net.ipv4.ip_forward reads 1, but forwarding is off on conf/default, lo: nothing is forwarded; "
        "fix: sysctl -w net.ipv4.ip_forward=0 && sysctl -w net.ipv4.ip_forward=1 "
        "(which sets conf/default and every interface again)"
    )


# -- cleanup restores from the claims (a printed script's, or a process's gone) -----------------
def test_cleanup_of_a_named_owner_restores_what_its_claim_holds(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path)
    place = tmp_path / "sysctl" / "-host-" / "net.ipv4.ip_forward"
    place.mkdir(parents=True)
    (place / "prior").write_text("0\n")  # as a printed set-up script leaves them
    (place / "claim.cli.net.script").write_text("1\n")
    kernel.values["net.ipv4.ip_forward"] = "1"
    report = cleanup(kernel, owner="cli.net")
    assert report.removed == ["sysctl net.ipv4.ip_forward: claim of cli.net"]
    assert kernel.values["net.ipv4.ip_forward"] == "0"
    assert list(tmp_path.iterdir()) == []


def test_cleanup_leaves_a_switch_someone_changed_since(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path, **{"net.ipv4.ip_forward": "2"})  # neither the prior 0 nor the 1 claimed
    place = tmp_path / "sysctl" / "-host-" / "net.ipv4.ip_forward"
    place.mkdir(parents=True)
    (place / "prior").write_text("0")
    (place / "claim.cli.net.script").write_text("1")
    report = cleanup(kernel, owner="cli.net")
    assert report.kept == ["sysctl net.ipv4.ip_forward is 2, not the 1 cli.net set: someone changed it since"]
    assert kernel.writes() == []
    assert list(tmp_path.iterdir()) == []  # the claim is gone all the same


def test_cleanup_restores_for_a_process_that_died_holding_the_last_claim(tmp_path: Path) -> None:
    gone = Kernel(tmp_path)
    gone.owner = Owner("999999999.1")
    nat(1).up(gone)  # forwarding written and claimed; the process "dies" (no ledger entry for it)
    assert gone.values["net.ipv4.ip_forward"] == "1"
    report = cleanup(gone)
    assert "sysctl net.ipv4.ip_forward: claim of 999999999.1" in report.removed
    assert gone.values["net.ipv4.ip_forward"] == "0"
    assert not (tmp_path / "sysctl").exists()


def test_forwarding_switched_off_by_hand_is_set_again_by_the_next_topology_of_the_process(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path)
    a = nat(1).up(kernel)
    kernel.values["net.ipv4.ip_forward"] = "0"  # by hand, while a relies on it
    b = nat(2).up(kernel)
    assert kernel.values["net.ipv4.ip_forward"] == "1"
    assert kernel.locked_at_write == [True, True]
    b.down()
    a.down()
    assert kernel.values["net.ipv4.ip_forward"] == "0"


def test_many_resources_relying_on_forwarding_read_it_once_per_apply(tmp_path: Path) -> None:
    kernel = Kernel(tmp_path)
    bridges = [Bridge(f"br{n}", addresses=f"10.{n}.0.1/24") for n in range(1, 6)]
    rules = [NatRule(f"10.{n}.0.0/24", bridge=f"br{n}") for n in range(1, 6)]
    topology = Topology([*bridges, *rules]).up(kernel)
    reads = [c for c in kernel.queries if c.argv == ("sysctl", "-n", "net.ipv4.ip_forward")]
    assert len(reads) == 1
    topology.down()


def test_the_restore_is_written_while_the_claim_and_prior_still_record_it(tmp_path: Path) -> None:
    """Write-ahead: a process killed between restoring the switch and dropping its claim
    leaves the claim and ``prior`` for cleanup; the other order (found by the batched
    SIGKILL stress test) could leave ip_forward on with nothing saying it was 0."""
    from .fakes import FakeHost

    seen: list[tuple[bool, bool]] = []

    class Watching(FakeHost):
        def answer(self, command: Command) -> Result | str | None:
            if command.argv == ("sysctl", "-q", "-w", "net.ipv4.ip_forward=0"):
                place = tmp_path / "sysctl" / "-host-" / "net.ipv4.ip_forward"
                seen.append(((place / "prior").exists(), any(place.glob("claim.*"))))
            return super().answer(command)

    host = Watching(tmp_path)
    Topology([Bridge("br1", addresses="10.1.0.1/24"), NatRule("10.1.0.0/24", bridge="br1")]).up(host).down()
    assert seen == [(True, True)]
    assert host.values["net.ipv4.ip_forward"] == "0"
    assert not (tmp_path / "sysctl").exists()
