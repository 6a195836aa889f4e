"""Which firewall backend a resource that names none takes: its topology's ``firewall=``, else
its executor's ``firewall=``, else ``$NETNS_KIT_FIREWALL``, else iptables (exact commands
through the Recorder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit import cli
from netns_kit.command import Command, change
from netns_kit.errors import ValidationError
from netns_kit.executors.base import Executor, use
from netns_kit.executors.hook import FIREWALLS
from netns_kit.executors.local import ShExecutor
from netns_kit.executors.recorder import Recorder
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import backend, nft
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.nftheld import Held
from netns_kit.firewall.portforward import PortForward
from netns_kit.lifecycle.overlay import PlannedSysctls
from netns_kit.lifecycle.resource import Resource
from netns_kit.owner import Owner
from netns_kit.resources.namespace import Namespace
from netns_kit.resources.partition import Partition
from netns_kit.topology import scenarios
from netns_kit.topology.topology import Topology

TABLE = nft.Table.of(Owner.dry_run())
SEED001_TOML = Path(__file__).parents[2] / "examples" / "seed001-bridge-nat.toml"


def _nat(backend: str | None = None) -> NatRule:
    return NatRule("10.0.0.0/24", out_interface="eth0", backend=backend)


def _programs(commands: Sequence[Command]) -> set[str]:
    """Which firewall programs ``commands`` start (nft or iptables)."""
    return {c.argv[0] for c in commands if c.argv[0] in ("nft", "iptables", "ip6tables")}


def _made_by(executor: Recorder, resource: Resource) -> set[str]:
    resource.create(executor)
    return _programs(executor.commands)


def _plan_of(topology: Topology) -> list[Command]:
    return topology.plan().commands


# -- each rule of the precedence ------------------------------------------------------


def test_nothing_said_anywhere_is_iptables() -> None:
    assert _made_by(Recorder(), _nat()) == {"iptables"}
    assert backend.default(None) == "iptables" and backend.effective(None, Recorder()) == "iptables"


def test_the_environment_variable_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nft")
    rec = Recorder()
    _nat().create(rec)
    assert _programs(rec.commands) == {"nft"}
    assert rec.commands[0].stdin == TABLE.add(_nat().chains(), rec.owner.tag).text


def test_an_empty_environment_variable_is_no_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "")
    assert _made_by(Recorder(), _nat()) == {"iptables"}


def test_the_executor_says_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _made_by(Recorder(firewall="nft"), _nat()) == {"nft"}
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nft")
    assert _made_by(Recorder(firewall="iptables"), _nat()) == {"iptables"}


def test_the_topology_says_over_the_executor() -> None:
    rules = scenarios.seed001_nat().resources
    assert _programs(Topology(rules, executor=Recorder(firewall="nft")).plan().commands) == {"nft"}
    assert _programs(Topology(rules, firewall="iptables", executor=Recorder(firewall="nft")).plan().commands) == {
        "iptables"
    }
    rec = Recorder(firewall="iptables")
    Topology(rules, firewall="nft").up(rec)
    assert _programs(rec.commands) == {"nft"}


def _seed001(nat: str | None, forward: str | None) -> list[Resource]:
    """Seed 001 with its NatRule's and PortForward's ``backend``."""
    given = {NatRule: nat, PortForward: forward}
    return [
        attrs.evolve(r, backend=given[type(r)]) if type(r) in given else r  # type: ignore[call-arg]
        for r in scenarios.seed001_nat().resources
    ]


def test_the_resource_says_over_the_topology(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nft")
    topo = Topology(_seed001("iptables", None), firewall="nft", executor=Recorder(firewall="nft"))
    (nat,), (forward,) = topo.of_type(NatRule), topo.of_type(PortForward)
    commands = topo.plan().commands
    assert any(c.argv[:4] == ("iptables", "-w", "-t", "nat") and nat.chain("POST") in c.argv for c in commands)
    nft_text = "".join(c.stdin or "" for c in commands if c.argv[0] == "nft")
    assert forward.chain("PRE") in nft_text and nat.chain("POST") not in nft_text


def test_plan_prints_what_up_would_do_with_the_executor_in_effect() -> None:
    rules = scenarios.seed001_nat().resources
    with use(Recorder(firewall="nft")):
        assert _programs(Topology(rules).plan().commands) == {"nft"}
    assert _programs(Topology(rules).plan().commands) == {"iptables"}


def test_the_executor_firewall_can_be_set_later() -> None:
    rec = Recorder()
    rec.firewall = "nft"
    assert _made_by(rec, _nat()) == {"nft"}


# -- bad values -----------------------------------------------------------------------


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nftables")
    with pytest.raises(ValidationError, match=r"NETNS_KIT_FIREWALL: 'nftables' must be one of auto, iptables, nft"):
        _nat().create(Recorder())
    assert _made_by(Recorder(firewall="iptables"), _nat()) == {"iptables"}  # not read when not needed


@pytest.mark.parametrize("make", [Recorder, ShExecutor, Sandbox])
def test_a_bad_executor_value_is_refused(make: type[Executor]) -> None:
    with pytest.raises(ValidationError, match=rf"{make.__name__}\.firewall: 'pf' must be one of auto, iptables, nft"):
        make(firewall="pf")
    executor = make()
    with pytest.raises(ValidationError, match=r"\.firewall: 'ipfw'"):
        executor.firewall = "ipfw"


def test_the_executors_values_are_the_backends() -> None:
    assert FIREWALLS == backend.BACKENDS


@pytest.mark.parametrize("make", [ShExecutor, Sandbox])
def test_the_real_executors_take_it(make: type[Executor]) -> None:
    assert make(firewall="nft").firewall == "nft"
    assert make().firewall is None


# -- views over an executor -----------------------------------------------------------


def test_a_view_over_an_executor_says_its_default() -> None:
    inner = Recorder(firewall="nft")
    view = PlannedSysctls(inner)
    assert view.firewall == "nft"
    assert _made_by_view(view, inner) == {"nft"}
    view.firewall = "iptables"
    assert view.firewall == "iptables" and inner.firewall == "nft"


def test_the_wrapper_holding_nft_tables_says_its_inners_default() -> None:
    inner = Recorder(firewall="nft")
    held = Held(inner)
    assert held.firewall == "nft"
    assert _made_by_view(held, inner) == {"nft"}
    assert Held(Recorder()).firewall is None


def _made_by_view(view: Executor, inner: Recorder) -> set[str]:
    _nat().create(view)
    return _programs(inner.commands)


# -- the owner's table ----------------------------------------------------------------


def test_the_owner_table_comes_with_an_nft_executor_default() -> None:
    rules = scenarios.seed001_nat().resources
    rec = Recorder(firewall="nft")
    topo = Topology(rules)
    topo.up(rec)
    first = next(c for c in rec.commands if c.argv[0] == "nft")
    assert first.stdin == f"add table inet {TABLE.name}\n"
    topo.down()
    last = [c for c in rec.commands if c.argv[0] == "nft"][-1]
    assert last.stdin == TABLE.delete().text
    tables = backend.owner_tables(topo.of_type(NatRule), Recorder(firewall="nft"))
    assert [(t.netns, t.backend) for t in tables] == [(None, "nft")]
    assert backend.owner_tables(topo.of_type(NatRule), Recorder()) == []


def test_the_owner_table_comes_with_the_environment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nft")
    commands = Topology(scenarios.seed001_nat().resources).plan().commands
    nft_commands = [c for c in commands if c.argv[0] == "nft"]
    assert nft_commands[0].stdin == f"add table inet {TABLE.name}\n"


def test_no_owner_table_when_every_rule_says_iptables() -> None:
    topo = Topology(_seed001("iptables", "iptables"), executor=Recorder(firewall="nft"))
    assert _programs(topo.plan().commands) == {"iptables"}


# -- the topology gives its backend to any resource with the field --------------------


@attrs.frozen(kw_only=True)
class Gate(Resource):
    """A toy resource kind with a ``backend`` field that is no firewall."""

    name: str = "g"
    backend: str | None = None
    rank: ClassVar[int] = 9

    def plan(self, executor: Executor) -> list[Command]:
        return [change("echo", self.name, backend.effective(self.backend, executor))]


def test_the_topology_gives_its_backend_to_any_kind_with_the_field() -> None:
    topo = Topology([Gate(), Gate(name="h", backend="iptables")], firewall="nft")
    assert [g.backend for g in topo.of_type(Gate)] == ["nft", "iptables"]
    rec = Recorder(firewall="auto")
    topo.up(rec)
    assert [c.argv for c in rec.commands] == [("echo", "g", "nft"), ("echo", "h", "iptables")]
    topo.down()
    topo.firewall = None
    assert [g.backend for g in topo.of_type(Gate)] == [None, "iptables"]


# -- the command line -----------------------------------------------------------------


def test_plan_on_the_command_line_takes_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nft")
    assert cli.main(["plan", str(SEED001_TOML)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "add table inet netns_kit_cli.seed001-bridge-nat" in out and "iptables" not in out
    assert cli.main(["plan", "--firewall", "iptables", str(SEED001_TOML)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "iptables -w" in out and "nft -f" not in out
    pinned = tmp_path / "pinned.toml"  # the file's key says over the environment
    pinned.write_text(SEED001_TOML.read_text().replace("[topology]\n", '[topology]\nfirewall = "iptables"\n'))
    assert cli.main(["plan", str(pinned)]) == cli.EXIT_OK
    assert "nft -f" not in capsys.readouterr().out


def test_plan_on_the_command_line_names_a_bad_environment_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nftables")
    assert cli.main(["plan", str(SEED001_TOML)]) != cli.EXIT_OK
    assert "NETNS_KIT_FIREWALL: 'nftables' must be one of auto, iptables, nft" in capsys.readouterr().err


def test_a_partition_takes_the_topology_backend_and_else_the_executors() -> None:
    cut = Partition("red", "blue", a_addresses=["10.0.0.1"], b_addresses=["10.0.0.2"])
    topo = Topology([Namespace("red"), Namespace("blue"), cut], firewall="nft")
    assert [p.backend for p in topo.of_type(Partition)] == ["nft"]
    rec = Recorder(firewall="iptables")
    topo.up(rec)
    assert _programs(rec.commands) == {"nft"}
    topo.down()
    topo.firewall = None
    rec = Recorder(firewall="nft")
    topo.up(rec)
    assert _programs(rec.commands) == {"nft"}
    topo.down()
    rec = Recorder()
    topo.up(rec)
    assert _programs(rec.commands) == {"iptables"}
