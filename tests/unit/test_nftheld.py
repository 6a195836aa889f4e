"""The held executor (:class:`~netns_kit.firewall.nftheld.Held`): which commands go to an
``nft -i`` holder (the owner's table's transactions, with ``flags owner``) and which to the
executor it wraps (everything else, unchanged, in order), against a stand-in ``nft -i`` that
answers as nft 1.0.6 does. The kernel's side is in tests/integration/test_nft_owner.py.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit.batching.outcome import Outcome
from netns_kit.command import Command, Result, change, query
from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor, OnDone, in_order
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall import nft, nftheld
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.nftheld import Held
from netns_kit.owner import Owner
from netns_kit.topology import scenarios
from netns_kit.topology.topology import Topology

OWNER = Owner("42.7")
TABLE = nft.Table.of(OWNER)
OURS = "netns_kit_42.7"
MARK = "netns-kit-sync-"

#: reads lines like nft -i; logs each to argv[1]; refuses what argv[2] names (and the sync marks)
FAKE_NFT = r"""
import sys
log = open(sys.argv[1], "a")
refuse = sys.argv[2]
for line in sys.stdin:
    line = line.rstrip("\n")
    log.write(line + "\n"); log.flush()
    if line.startswith("netns-kit-sync-"):
        sys.stderr.write("Error: syntax error, unexpected newline\n" + line + "\n" + " " * len(line) + "^\n\n")
    elif refuse and refuse in line:
        sys.stderr.write("Error: Could not process rule: " + sys.argv[3] + "\n" + line + "\n^^^^\n")
    sys.stderr.flush()
"""


class Machine(Executor):
    """A real (not dry-run) executor that runs nothing: it records each call of its hook;
    ``nft -i`` is the stand-in above; ``nft list table`` finds what ``tables`` says."""

    def __init__(self, log: Path, refuse: str = "", error: str = "Operation not supported") -> None:
        super().__init__(OWNER)
        self.log, self.refuse, self.error = log, refuse, error
        self.calls: list[list[Command]] = []
        self.tables: set[str] = set()

    def argv_for(self, command: Command) -> tuple[str, ...]:
        assert command.argv == ("env", "HOME=/dev/null", "nft", "-i")
        return (sys.executable, "-c", FAKE_NFT, str(self.log), self.refuse, self.error)

    def handle(
        self,
        commands: Sequence[Command],
        *,
        input: str | None = None,
        timeout: float | None = None,
        on_done: OnDone | None = None,
    ) -> Outcome:
        self.calls.append(list(commands))
        return in_order(commands, self.one, input=input, timeout=timeout, on_done=on_done)

    def one(self, command: Command, input: str | None, timeout: float | None) -> Result:
        if command.argv[:3] == ("nft", "list", "table"):
            return Result(command, 0 if command.argv[3] in self.tables else 1)
        return Result(command)

    def lines(self) -> list[str]:
        """What the stand-in nft -i read, without the sync marks."""
        if not self.log.exists():
            return []
        return [line for line in self.log.read_text().splitlines() if not line.startswith(MARK)]


def _nft(*lines: str, netns: str | None = None) -> Command:
    return change("nft", "-f", "-", netns=netns, stdin="".join(line + "\n" for line in lines))


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path / "nft-i.log")


def test_only_the_owners_table_goes_to_the_holder_the_rest_to_inner_in_order(machine: Machine) -> None:
    chains = NatRule("10.0.0.0/24", out_interface="eth0").chains()
    ours = TABLE.add(chains, OWNER.tag)
    machine.tables.add("inet")
    commands = [
        Command(("ip", "netns", "add", "blue")),
        ours.command(),  # the host: held
        _nft("add table inet docker-bridges"),  # another table
        _nft(f"add table inet {OURS}", "add table inet docker-bridges"),  # ours AND another: not ours alone
        ours.command("blue"),  # a namespace made through this executor: deleted whole anyway
        query("nft", "list", "table", "inet", OURS),  # reading is everyone's
        Command(("iptables", "-w", "-A", "FORWARD", "-j", "ACCEPT")),
        _nft(f"add chain inet {OURS} x"),  # the host again: held
    ]
    with Held(machine) as held:
        results = held.run_all(commands)
        holders = held.holders()
    assert [r.command for r in results] == commands
    assert machine.calls == [commands[:1], commands[2:7]]  # in order, around the held ones
    assert list(holders) == [None]
    create = f"add table inet {OURS} {{ flags owner ; }}"
    assert machine.lines() == [create, nft.Transaction((create, *ours.lines[1:])).one_line, f"add chain inet {OURS} x"]
    assert ours.lines[0] == f"add table inet {OURS}"  # the command itself is unchanged


def test_the_printed_script_never_carries_the_flag_and_a_dry_run_is_passed_through(golden) -> None:
    through = Recorder()
    assert nftheld.held(through) is through  # a dry-run holds nothing
    held = Held(through)
    Topology(scenarios.seed001_nat().resources, firewall="nft").up(held)
    assert held.dry_run and held.holders() == {}  # and Held over one passes everything through
    assert "flags owner" not in through.script() + through.teardown_script()
    golden("seed001_nat_nft.up.sh", through.script())
    golden("seed001_nat_nft.down.sh", through.teardown_script())


def test_held_of_a_held_executor_is_itself(machine: Machine) -> None:
    once = nftheld.held(machine)
    assert isinstance(once, Held) and nftheld.held(once) is once and once.inner is machine


def test_the_holder_stops_once_a_transaction_deletes_the_table_and_starts_again_later(machine: Machine) -> None:
    held = Held(machine)
    held.run(TABLE.add([], OWNER.tag).command())  # no chain: no table line either
    assert held.holders() == {}
    held.run(_nft(TABLE.create("inet")))
    pid = held.holders()[None]
    held.run(TABLE.delete().command())
    assert held.holders() == {}
    held.run(TABLE.remove(NatRule("10.0.0.0/24", out_interface="eth0").chains()).command().tolerant())
    assert held.holders() == {}  # a removal alone starts no holder: it goes to inner
    held.run(_nft(TABLE.create("inet")))
    assert held.holders()[None] != pid
    held.close()
    assert held.holders() == {}
    create = f"add table inet {OURS} {{ flags owner ; }}"
    assert machine.lines() == [create, create, f"{create} ; delete table inet {OURS}", create, create]
    assert [c.stdin for call in machine.calls for c in call] == [
        TABLE.add([], OWNER.tag).command().stdin,
        TABLE.remove(NatRule("10.0.0.0/24", out_interface="eth0").chains()).text,
    ]


def test_a_failed_transaction_is_the_commands_error_at_its_position(machine: Machine) -> None:
    bad = _nft(f"add chain inet {OURS} bogus")
    machine.refuse = "bogus"
    machine.error = "No such file or directory"
    held = Held(machine)
    commands = [Command(("ip", "link", "add", "a", "type", "veth")), _nft(TABLE.create("inet")), bad]
    outcome = held.attempt(commands)
    assert outcome.progress.completed == (0, 1) and outcome.progress.failed == 2
    assert isinstance(outcome.error, CommandError)
    assert outcome.error.stderr.startswith("Error: Could not process rule: No such file or directory")
    assert outcome.results[2].returncode == 1
    held.run(bad.tolerant())  # missing_ok: nothing to remove counts as done
    held.close()


def test_a_holder_that_died_is_replaced_by_the_next_creation(machine: Machine) -> None:
    held = Held(machine)
    held.run(_nft(TABLE.create("inet")))
    holder = held._holders[None]
    pid = holder.pid
    assert holder._process is not None
    holder._process.kill()
    holder._process.wait()
    held.run(_nft(f"flush chain inet {OURS} x"))  # the table went with it: plain, to inner
    assert machine.calls[-1][0].stdin == f"flush chain inet {OURS} x\n"
    held.run(_nft(TABLE.create("inet")))
    assert held.holders() and held.holders()[None] != pid
    held.close()


def test_where_the_flag_is_refused_transactions_run_plain_said_once_per_machine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    machine = Machine(tmp_path / "nft-i.log", refuse="flags owner")
    caplog.set_level(logging.WARNING, "netns_kit")
    first, second = Held(machine), Held(machine)
    first.run(_nft(TABLE.create("inet")))
    first.run(_nft(TABLE.create("inet"), f"add chain inet {OURS} x"))
    second.run(_nft(TABLE.create("inet")))
    assert first.holders() == {} == second.holders()
    assert machine.lines() == [f"add table inet {OURS} {{ flags owner ; }}"]  # tried once for the machine
    assert [c.stdin for call in machine.calls for c in call if c.mutating] == [
        f"add table inet {OURS}\n",
        f"add table inet {OURS}\nadd chain inet {OURS} x\n",
        f"add table inet {OURS}\n",
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "nft tables are not held (plain transactions instead): flags owner needs kernel >= 5.12 and "
        "nft >= 0.9.9 (Error: Could not process rule: Operation not supported)"
    ]


def test_a_table_there_already_without_the_flag_is_left_plain_in_its_namespace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    machine = Machine(tmp_path / "nft-i.log", refuse="flags owner")
    machine.tables.add("inet")
    caplog.set_level(logging.WARNING, "netns_kit")
    held = Held(machine)
    held.run(_nft(TABLE.create("inet")))
    assert held.holders() == {}
    assert [r.getMessage() for r in caplog.records] == [
        f"nft table {OURS} in the host is not held: table inet {OURS} is there already without flags owner "
        "(Error: Could not process rule: Operation not supported)"
    ]
    machine.tables.clear()
    machine.refuse = ""
    held.run(_nft(TABLE.create("inet")))
    Held(machine).run(_nft(TABLE.create("inet")))
    assert held.holders() == {}  # remembered for that namespace (by every Held over this machine)
    held.run(_nft(TABLE.create("inet"), netns="red"))
    assert list(held.holders()) == ["red"]  # not for the machine
    held.close()


def test_every_held_over_one_executor_shares_its_holders(machine: Machine, tmp_path: Path) -> None:
    first, second = Held(machine), Held(machine)
    first.run(_nft(TABLE.create("inet")))
    second.run(_nft(f"add chain inet {OURS} x"))
    assert first.holders() == second.holders() and list(first.holders()) == [None]
    assert machine.calls == []  # both to the one holder
    other = Machine(tmp_path / "other.log")
    assert Held(other).holders() == {}  # another executor: holders of its own
    second.close()
    assert first.holders() == {}


def test_split_tables_are_held_in_both_families(machine: Machine) -> None:
    split = nft.Table.of(OWNER, split=True)
    with Held(machine) as held:
        held.run(_nft(*(split.create(f) for f in split.families)))
        assert list(held.holders()) == [None]
        held.run(split.delete().command())
        assert held.holders() == {}
    own = [f"add table {f} {OURS} {{ flags owner ; }}" for f in ("ip", "ip6")]
    assert machine.lines()[:2] == [" ; ".join(own)] * 2


def test_the_view_answers_as_inner_does(machine: Machine) -> None:
    held = Held(machine)
    assert held.underlying is machine and held.owner is OWNER and not held.dry_run
    assert held.refuse == ""  # anything else: inner's
    with pytest.raises(AttributeError):
        held._nothing  # noqa: B018


def test_consecutive_transactions_go_as_one_line_and_one_by_one_when_it_fails(machine: Machine) -> None:
    adds = [_nft(TABLE.create("inet"), f"add chain inet {OURS} c{i}") for i in range(3)]
    with Held(machine) as held:
        ticks: list[list[int]] = []
        held.run_all([*adds, Command(("ip", "link", "set", "lo", "up")), *adds[:1]], on_done=ticks.append)
        assert [sorted(t) for t in ticks] == [[0, 1, 2], [3], [4]]
    create = f"add table inet {OURS} {{ flags owner ; }}"
    one = [f"{create} ; add chain inet {OURS} c{i}" for i in range(3)]
    assert machine.lines() == [create, " ; ".join(one), one[0]]
    machine.log.unlink()
    machine.refuse = "c1"  # the stand-in refuses every line naming c1: the merged one, then c1's own
    with Held(machine) as held:
        outcome = held.attempt(adds)
    assert outcome.progress.completed == (0,) and outcome.progress.failed == 1
    assert isinstance(outcome.error, CommandError) and outcome.results[1].returncode == 1
    assert machine.lines() == [create, " ; ".join(one), one[0], one[1]]


def test_a_line_to_the_holder_is_at_most_merged_bytes(machine: Machine) -> None:
    big = [_nft(TABLE.create("inet"), f"add chain inet {OURS} {'c' * 2000}{i}") for i in range(9)]
    with Held(machine) as held:
        held.run_all(big)
    assert [line.count("add chain") for line in machine.lines()[1:]] == [3, 3, 3]
    assert len("".join(c.stdin or "" for c in big[:3])) <= nftheld.MERGED < len("".join(c.stdin or "" for c in big[:4]))
