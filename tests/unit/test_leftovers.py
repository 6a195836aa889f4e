"""cleanup(): what it removes and what it leaves alone, on a simulated machine (no privileges)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from netns_kit import Command, Owner, Recorder, Result, change
from netns_kit.lifecycle.ledger import Ledger
from netns_kit.ops.cleanup import CleanupInterrupted, cleanup

DEAD = Owner("999999999.1")  # no such pid: its process is gone
OTHER_DEAD = Owner("999999998.1")
NAMED = Owner("cli.lab")
ALIVE = Owner.current()


class Machine(Recorder):
    """A recorder that answers queries from a described state and keeps a ledger directory."""

    def __init__(self, directory: Path) -> None:
        super().__init__(self.answer)
        self.directory = directory
        self.namespaces: dict[str, str | None] = {}
        self.links: dict[str | None, list[dict[str, Any]]] = {None: []}
        self.saves: dict[tuple[str, str | None], str] = {}
        self.sysctls: dict[str, str] = {}

    @property
    def ledger_dir(self) -> Path:
        return self.directory

    def namespace(self, name: str, tag: str | None) -> None:
        self.namespaces[name] = tag
        self.links.setdefault(name, [])

    def link(self, name: str, netns: str | None = None, tag: str | None = None, kind: str = "bridge") -> None:
        data: dict[str, Any] = {"ifname": name, "linkinfo": {"info_kind": kind}}
        if tag:
            data["ifalias"] = tag
        self.links.setdefault(netns, []).append(data)

    def answer(self, command: Command) -> Result | str | None:
        argv = command.argv
        if command.mutating:
            return None
        if argv == ("ip", "-j", "netns", "list"):
            return json.dumps([{"name": n} for n in self.namespaces])
        if argv == ("ip", "-j", "-d", "link", "show"):
            lo: dict[str, Any] = {"ifname": "lo"}
            tag = self.namespaces.get(command.netns) if command.netns else None
            if tag:
                lo["ifalias"] = tag
            return json.dumps([lo, *self.links.get(command.netns, [])])
        if argv[0].endswith("tables-save"):
            return self.saves.get((argv[0][: -len("-save")], command.netns), "")
        if argv[:2] == ("sysctl", "-n"):
            return self.sysctls.get(argv[2], "0")
        return None

    @property
    def changes(self) -> list[str]:
        return self.lines


def ledger(
    directory: Path, owner: Owner, commands: list[Command], marks: list[str], absent: tuple[int, ...] = ()
) -> Path:
    book = Ledger(directory, owner)
    seqs = book.intend(commands, absent=absent)
    book.mark([(s, m) for s, m in zip(seqs, marks, strict=False)])
    book.close(empty=False)
    return book.path


NETNS = change("ip", "netns", "add", "red", undo=Command(("ip", "netns", "del", "red")))
BRIDGE = change("ip", "link", "add", "name", "br0", "type", "bridge", undo=Command(("ip", "link", "del", "dev", "br0")))


def tag_lo(owner: Owner) -> Command:
    return change("ip", "link", "set", "dev", "lo", "alias", owner.tag, "up", netns="red")


def tag_br(owner: Owner) -> Command:
    return change("ip", "link", "set", "dev", "br0", "alias", owner.tag, "up")


ADDR = change(
    "ip", "addr", "add", "10.0.0.1/24", "dev", "br0", undo=Command(("ip", "addr", "del", "10.0.0.1/24", "dev", "br0"))
)
FORWARD = change(
    "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", undo=Command(("sysctl", "-q", "-w", "net.ipv4.ip_forward=0"))
)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_undoes_a_dead_owners_changes_in_reverse_then_namespaces_then_links(machine: Machine) -> None:
    path = ledger(machine.directory, DEAD, [NETNS, tag_lo(DEAD), BRIDGE, tag_br(DEAD), ADDR, FORWARD], ["ok"] * 6)
    machine.namespace("red", DEAD.tag)
    machine.link("br0", tag=DEAD.tag)
    machine.sysctls["net.ipv4.ip_forward"] = "1"
    report = cleanup(machine)
    assert report.owners == [DEAD]
    assert machine.changes == [
        "sysctl -q -w net.ipv4.ip_forward=0",
        "ip addr del 10.0.0.1/24 dev br0",
        "ip link set dev br0 down",
        "ip netns del red",
        "ip link del dev br0",
    ]
    assert report.errors == [] and report.kept == []
    assert not path.exists()  # fully cleaned: the ledger goes too


def test_leaves_live_and_named_owners_alone_unless_named(machine: Machine) -> None:
    machine.namespace("live", ALIVE.tag)
    machine.namespace("lab", NAMED.tag)
    assert cleanup(machine).owners == []
    assert machine.changes == []
    report = cleanup(machine, owner="cli.lab")
    assert report.owners == [NAMED]
    assert machine.changes == ["ip netns del lab"]


def test_never_touches_untagged_or_foreign_objects(machine: Machine) -> None:
    machine.namespace("mine", None)
    machine.namespace("theirs", ALIVE.tag)
    machine.link("docker0")
    machine.link("br-live", tag=ALIVE.tag)
    machine.link("br-dead", tag=DEAD.tag)
    cleanup(machine)
    assert machine.changes == ["ip link del dev br-dead"]


def test_in_flight_creation_of_an_untagged_same_name_object_is_left_alone_and_reported(machine: Machine) -> None:
    ledger(machine.directory, DEAD, [BRIDGE, tag_br(DEAD)], [])  # died with br0's creation in flight
    machine.link("br0")  # an untagged br0: the one being created, or one that was there before
    report = cleanup(machine)
    assert machine.changes == []
    assert any("br0 (bridge in the host): has no tag" in line for line in report.kept)


def test_in_flight_creation_of_a_name_seen_free_just_before_is_proven_ours(machine: Machine) -> None:
    # the ledger noted that br0 and red did not exist when the batch was written ahead
    ledger(machine.directory, DEAD, [NETNS, BRIDGE, tag_br(DEAD)], [], absent=(0, 1))
    machine.namespace("red", None)
    machine.link("br0")
    report = cleanup(machine)
    assert "ip link del dev br0" in machine.changes
    assert "ip netns del red" in machine.changes
    assert not any("has no tag" in line for line in report.kept)


def test_created_but_not_yet_tagged_is_proven_ours_by_the_ok_mark(machine: Machine) -> None:
    ledger(machine.directory, DEAD, [BRIDGE, tag_br(DEAD)], ["ok"])  # killed between create and tag
    machine.link("br0")
    cleanup(machine)
    assert machine.changes == ["ip link del dev br0"]


def test_an_object_replaced_since_is_left_alone(machine: Machine) -> None:
    ledger(machine.directory, DEAD, [BRIDGE, tag_br(DEAD)], ["ok", "ok"])
    machine.link("br0")  # we tagged ours, this one has no tag: someone made it since
    report = cleanup(machine)
    assert machine.changes == []
    assert any("made by someone else since" in line for line in report.kept)


def test_in_flight_entries_before_a_tag_seen_in_place_count_as_done(machine: Machine) -> None:
    # unmarked (a batch that ran whole), but br0 carries the tag: the address add before it ran too
    ledger(machine.directory, DEAD, [BRIDGE, tag_br(DEAD), ADDR], [])
    machine.link("br0", tag=DEAD.tag)
    cleanup(machine)
    assert machine.changes == ["ip link del dev br0"]  # ADDR came after the tag: not proven, and goes with br0


def test_unproven_in_flight_change_is_reported_not_undone(machine: Machine) -> None:
    host_route = change(
        "ip",
        "route",
        "add",
        "10.9.0.0/16",
        "dev",
        "eth0",
        undo=Command(("ip", "route", "del", "10.9.0.0/16", "dev", "eth0")),
    )
    ledger(machine.directory, DEAD, [host_route], [])
    report = cleanup(machine)
    assert machine.changes == []
    assert report.kept == [
        "ip route add 10.9.0.0/16 dev eth0: was in flight when 999999999.1 died and may not have run"
    ]


def test_sysctl_is_restored_only_while_it_holds_the_value_we_set(machine: Machine) -> None:
    ledger(machine.directory, DEAD, [FORWARD], ["ok"])
    machine.sysctls["net.ipv4.ip_forward"] = "0"  # someone set it back (or to something else) since
    report = cleanup(machine)
    assert machine.changes == []
    assert "sysctl net.ipv4.ip_forward is 0, not the 1 999999999.1 set: someone changed it since" in report.kept


def test_tagged_rules_and_the_nk_chains_they_empty_are_removed(machine: Machine) -> None:
    machine.saves[("iptables", None)] = f"""*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:NK-nat-1 - [0:0]
:NK-keep - [0:0]
:NK-other - [0:0]
:DOCKER - [0:0]
-A POSTROUTING -m comment --comment {DEAD.tag} -j NK-nat-1
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A NK-nat-1 -s 192.168.1.0/24 ! -o v-net-0 -m comment --comment "{DEAD.tag}" -j MASQUERADE
-A NK-keep -s 10.1.0.0/16 -m comment --comment {DEAD.tag} -j ACCEPT
-A NK-keep -s 10.2.0.0/16 -j ACCEPT
-A NK-other -m comment --comment {ALIVE.tag} -j ACCEPT
COMMIT
"""
    report = cleanup(machine)
    assert machine.changes == [
        f"iptables -w -t nat -D POSTROUTING -m comment --comment {DEAD.tag} -j NK-nat-1",
        "iptables -w -t nat -D NK-nat-1 -s 192.168.1.0/24 '!' -o v-net-0 "
        f"-m comment --comment {DEAD.tag} -j MASQUERADE",
        f"iptables -w -t nat -D NK-keep -s 10.1.0.0/16 -m comment --comment {DEAD.tag} -j ACCEPT",
        "iptables -w -t nat -X NK-nat-1",
    ]
    assert "iptables -t nat chain NK-keep (in the host): still holds, or is reached by, untagged rules" in report.kept


def test_an_empty_nk_chain_the_ledger_created_is_removed(machine: Machine) -> None:
    new_chain = change(
        "iptables",
        "-w",
        "-t",
        "filter",
        "-N",
        "NK-fwd-1",
        undo=Command(("iptables", "-w", "-t", "filter", "-X", "NK-fwd-1")),
    )
    ledger(machine.directory, DEAD, [new_chain], ["ok"])
    machine.saves[("iptables", None)] = "*filter\n:INPUT ACCEPT [0:0]\n:NK-fwd-1 - [0:0]\n:NK-nobody - [0:0]\nCOMMIT\n"
    cleanup(machine)
    assert machine.changes == ["iptables -w -t filter -X NK-fwd-1"]  # NK-nobody: not known to be ours


def test_dry_run_changes_nothing_and_says_what_it_would_remove(machine: Machine) -> None:
    path = ledger(machine.directory, DEAD, [NETNS, tag_lo(DEAD)], ["ok", "ok"])
    machine.namespace("red", DEAD.tag)
    report = cleanup(machine, dry_run=True)
    assert machine.changes == []
    assert report.lines() == ["would remove: namespace red"]
    assert path.exists()


def test_a_failed_step_keeps_the_ledger_for_a_retry(machine: Machine) -> None:
    path = ledger(machine.directory, DEAD, [BRIDGE, tag_br(DEAD)], ["ok", "ok"])
    machine.link("br0", tag=DEAD.tag)
    inner = machine.handler

    def refuse(command: Command) -> Result | str | None:
        if command.argv[:3] == ("ip", "link", "del"):
            return Result(command, 2, "", "RTNETLINK answers: Operation not permitted")
        return inner(command) if inner else None

    machine.handler = refuse
    report = cleanup(machine)
    assert len(report.errors) == 1 and "Operation not permitted" in report.errors[0]
    assert path.exists()


def test_nothing_to_do_when_no_owner_is_gone(machine: Machine) -> None:
    report = cleanup(machine)
    assert report.nothing_done and report.owners == [] and report.lines() == []


def test_a_sysctl_changed_twice_is_restored_once_to_its_first_prior_value(machine: Machine) -> None:
    # NatRule and PortForward are planned together: both read 0 and both set 1
    localnet = change(
        "sysctl", "-q", "-w", "net.ipv4.ip_forward=2", undo=Command(("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
    )
    ledger(machine.directory, DEAD, [FORWARD, FORWARD, localnet], ["ok", "ok", "ok"])
    machine.sysctls["net.ipv4.ip_forward"] = "2"
    report = cleanup(machine)
    assert machine.changes == ["sysctl -q -w net.ipv4.ip_forward=0"]
    assert report.kept == [] and report.errors == []


def many(machine: Machine, n: int) -> None:
    """W(n)-like leftovers of DEAD: n namespaces, a bridge, two tagged rules per namespace."""
    machine.link("br0", tag=DEAD.tag)
    rules = []
    for i in range(n):
        machine.namespace(f"w{i}", DEAD.tag)
        machine.link(f"wh{i}", tag=DEAD.tag, kind="veth")
        rules.append(f"-A FORWARD -d 10.0.0.{i + 1}/32 -m comment --comment {DEAD.tag} -j ACCEPT")
        rules.append(f"-A FORWARD -s 10.0.0.{i + 1}/32 -m comment --comment {DEAD.tag} -j ACCEPT")
    machine.saves[("iptables", None)] = "*filter\n:FORWARD ACCEPT [0:0]\n" + "\n".join(rules) + "\nCOMMIT\n"


def test_the_removal_runs_in_few_batches_not_one_process_per_object(machine: Machine) -> None:
    # issue 15: `netns-kit down` of 100 namespaces started 1,007 processes (21 s)
    many(machine, 20)
    batches: list[int] = []
    run_all = machine.run_all

    def counting(commands: Any, **options: Any) -> Any:
        batches.append(len(commands))
        return run_all(commands, **options)

    machine.run_all = counting  # type: ignore[method-assign]
    report = cleanup(machine)
    assert report.errors == []
    assert len(report.removed) == 20 + 40 + 21  # namespaces, rules, links (br0, wh0..19)
    assert batches == [40, 1, 20, 21]  # rules; br0 set down; namespaces; links
    assert machine.changes[:2] == [
        f"iptables -w -t filter -D FORWARD -d 10.0.0.1/32 -m comment --comment {DEAD.tag} -j ACCEPT",
        f"iptables -w -t filter -D FORWARD -s 10.0.0.1/32 -m comment --comment {DEAD.tag} -j ACCEPT",
    ]


def test_progress_counts_every_removal(machine: Machine) -> None:
    many(machine, 5)
    seen: list[tuple[int, int]] = []
    report = cleanup(machine, progress=lambda done, total: seen.append((done, total)))
    total = len(report.removed)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [done for done, _ in seen] == list(range(total + 1))


def test_a_failure_inside_a_batch_fails_only_its_object(machine: Machine) -> None:
    many(machine, 5)
    inner = machine.handler

    def refuse(command: Command) -> Result | str | None:
        if command.argv == ("ip", "netns", "del", "w2"):
            return Result(command, 2, "", "RTNETLINK answers: Operation not permitted")
        return inner(command) if inner else None

    machine.handler = refuse
    report = cleanup(machine)
    assert len(report.errors) == 1 and report.errors[0].startswith("namespace w2: ")
    assert "ip netns del w4" in machine.changes  # the batch went on without it
    assert sorted(r for r in report.removed if r.startswith("namespace")) == [f"namespace w{i}" for i in (0, 1, 3, 4)]


def interrupting(machine: Machine, at: tuple[str, ...], times: int) -> None:
    """Make ``machine`` get ``times`` Ctrl-Cs (SIGINT to this process) while it runs ``at``."""
    inner = machine.handler

    def handler(command: Command) -> Result | str | None:
        if command.argv == at:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
        return inner(command) if inner else None

    machine.handler = handler


def test_a_ctrl_c_during_the_removal_is_held_until_it_is_complete(machine: Machine) -> None:
    # issue 15: one Ctrl-C aborted `netns-kit down` half done
    many(machine, 5)
    interrupting(machine, ("ip", "netns", "del", "w1"), 1)
    with pytest.raises(KeyboardInterrupt) as raised:
        cleanup(machine)
    assert type(raised.value) is KeyboardInterrupt  # the held one, raised once all was done
    assert [c for c in machine.changes if c.startswith("ip netns del")] == [f"ip netns del w{i}" for i in range(5)]
    assert machine.changes[-1] == "ip link del dev wh4"
    assert list(machine.directory.glob("*.jsonl")) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_stops_the_removal_and_says_how_to_finish(machine: Machine) -> None:
    many(machine, 5)
    path = ledger(machine.directory, DEAD, [NETNS], ["ok"])
    interrupting(machine, ("ip", "netns", "del", "w1"), 2)
    with pytest.raises(CleanupInterrupted) as raised:
        cleanup(machine)
    assert "ip netns del w4" not in machine.changes
    error = raised.value
    assert 0 < error.done < error.total
    assert str(error) == f"interrupted after {error.done} of {error.total} removals: run the cleanup again to finish it"
    assert path.exists()  # what is left is still known
    machine.handler = machine.answer
    rest = cleanup(machine)
    assert rest.errors == [] and "namespace w4" in rest.removed


def test_a_step_tripping_over_damaged_state_is_reported_not_raised(machine: Machine) -> None:
    # a state file of garbage read by a step (a sysctl claim, a JSON answer) raises ValueError
    many(machine, 3)
    inner = machine.handler

    def damaged(command: Command) -> Result | str | None:
        if command.argv == ("ip", "netns", "del", "w1"):
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return inner(command) if inner else None

    machine.handler = damaged
    report = cleanup(machine)
    assert len(report.errors) == 1 and report.errors[0].startswith("namespace w1: ")
    assert "ip netns del w2" in machine.changes
