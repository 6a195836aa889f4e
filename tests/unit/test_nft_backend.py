"""The nft backend wired into the firewall resources and the topology: exact commands through
the Recorder, the printed scripts, the backend left out of the chain names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import attrs
import pytest

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit import cli
from netns_kit.command import Command
from netns_kit.errors import CommandError, ValidationError
from netns_kit.executors.local import ShExecutor
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall import backend, nft, nftchoice
from netns_kit.firewall.base import Firewall
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.nftchoice import Probe
from netns_kit.firewall.nftread import Drop
from netns_kit.firewall.portforward import PortForward
from netns_kit.ops import doctor_firewall, state
from netns_kit.ops.doctor import Probes
from netns_kit.ops.doctor_report import OK, WARN, Look
from netns_kit.owner import Owner
from netns_kit.topology import scenarios, tomlfile, tomlread
from netns_kit.topology.topology import Topology

TAG = "netns_kit:dry-run"
TABLE = nft.Table.of(Owner.dry_run())


def _seed001(firewall: str | None) -> Topology:
    return Topology(scenarios.seed001_nat().resources, firewall=firewall)


def test_the_backend_does_not_change_the_chain_names() -> None:
    nat = NatRule("10.0.0.0/24", out_interface="eth0")
    assert NatRule("10.0.0.0/24", out_interface="eth0", backend="nft").id == nat.id
    assert PortForward(8080, "10.0.0.1", 80, backend="auto").id == PortForward(8080, "10.0.0.1", 80).id


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValidationError, match="auto, iptables, nft"):
        NatRule("10.0.0.0/24", out_interface="eth0", backend="pf")
    with pytest.raises(ValidationError, match=r"Topology\.firewall"):
        Topology(firewall="ipfw")


def test_a_nat_rule_on_nft_is_one_transaction_undone_by_one() -> None:
    rec = Recorder()
    nat = NatRule("10.0.0.0/24", out_interface="eth0", backend="nft", netns="r")
    nat.create(rec)
    nat.delete(rec)
    add, sysctl_on = rec.commands[0], rec.commands[1]
    assert add.argv == ("ip", "netns", "exec", "r", "nft", "-f", "-") or add.argv[-3:] == ("nft", "-f", "-")
    assert add.stdin == TABLE.add(nat.chains(), TAG).text
    assert sysctl_on.argv[0] == "sysctl"
    removes = [c for c in rec.commands[2:] if c.stdin is not None]
    # made on its own, it was the last to use the owner's table: the table goes too, last
    assert [c.stdin for c in removes] == [TABLE.remove(nat.chains()).text, TABLE.delete().text]
    assert rec.commands[-1].stdin == TABLE.delete().text
    assert not any(c.argv[0] == "iptables" for c in rec.commands)


def test_the_default_is_iptables_and_auto_in_a_dry_run_too() -> None:
    for chosen in (None, "iptables", "auto"):
        rec = Recorder()
        NatRule("10.0.0.0/24", out_interface="eth0", backend=chosen).create(rec)
        assert rec.commands[0].argv[0] == "iptables" and not any(c.stdin for c in rec.commands)


def test_a_topology_gives_its_backend_to_firewalls_that_name_none() -> None:
    mine = NatRule("10.0.0.0/24", out_interface="eth0", backend="iptables")
    topo = Topology([mine, NatRule("10.0.1.0/24", out_interface="eth0")], firewall="nft")
    assert [f.backend for f in topo.of_type(Firewall)] == ["iptables", "nft"]


def test_seed001_on_nft_makes_the_table_first_and_deletes_it_last(golden) -> None:
    plan = _seed001("nft").plan()
    golden("seed001_nat_nft.up.sh", plan.script())
    golden("seed001_nat_nft.down.sh", plan.teardown_script())
    nft_stdin = [c.stdin for c in plan.commands if c.argv[-3:] == ("nft", "-f", "-")]
    assert nft_stdin[0] == "add table inet netns_kit_dry-run\n"
    assert len(nft_stdin) == 3 and not any(c.argv[0] == "iptables" for c in plan.commands)
    down = plan.teardown_script()
    assert down.rindex("delete table inet netns_kit_dry-run") > down.rindex("delete chain")


def test_seed001_on_iptables_is_unchanged_by_the_firewall_key() -> None:
    assert _seed001("iptables").plan().script() == scenarios.seed001_nat().plan().script()
    assert _seed001("auto").plan().script() == scenarios.seed001_nat().plan().script()


@pytest.mark.parametrize("which", ["script", "teardown_script"])
def test_the_printed_nft_scripts_parse_under_bin_sh(which: str) -> None:
    text = getattr(_seed001("nft").plan(), which)()
    subprocess.run(["/bin/sh", "-n"], input=text, text=True, check=True)


def test_owner_tables_one_per_namespace_that_uses_nft() -> None:
    firewalls = [
        NatRule("10.0.0.0/24", out_interface="eth0", backend="nft", netns="a"),
        PortForward(8080, "10.0.0.1", 80, backend="nft", netns="a"),
        NatRule("10.0.1.0/24", out_interface="eth0", netns="b"),
        NatRule("10.0.2.0/24", out_interface="eth0", backend="auto"),
    ]
    tables = backend.owner_tables(firewalls)
    assert [(t.netns, t.backend, t.needs) for t in tables] == [
        ("a", "nft", ("fib", "forward", "nat")),
        (None, "auto", ("forward", "nat")),
    ]


def test_exists_on_nft_lists_the_first_chain() -> None:
    asked = []

    def handler(command):
        asked.append(command)
        return None

    nat = NatRule("10.0.0.0/24", out_interface="eth0", backend="nft")
    nat.exists(Recorder(handler))
    assert asked[-1].argv == ("nft", "list", "chain", "inet", TABLE.name, nat.chains()[0].name)


def test_the_state_snapshot_keeps_native_tables_and_masks_the_owner() -> None:
    text = (
        "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n"
        "table inet netns_kit_4242.77 {\n\tchain NK-NAT-x-POST {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        '\t\tip saddr 10.0.0.0/24 masquerade comment "netns_kit:4242.77"\n\t}\n}\n'
        "table ip docker-bridges {\n}\n"
    )
    assert state.nft_tables(text) == {
        "inet netns_kit_*": [
            "chain NK-NAT-x-POST {",
            "type nat hook postrouting priority srcnat; policy accept;",
            'ip saddr 10.0.0.0/24 masquerade comment "netns_kit:*"',
        ],
        "ip docker-bridges": [],
    }


SEED001_TOML = Path(__file__).parents[2] / "examples" / "seed001-bridge-nat.toml"


def test_the_topology_file_key_sets_the_backend(tmp_path: Path) -> None:
    text = SEED001_TOML.read_text()
    for value, program in (("nft", "nft"), ("iptables", "iptables")):
        path = tmp_path / f"{value}.toml"
        path.write_text(text.replace("[topology]\n", f'[topology]\nfirewall = "{value}"\n'))
        loaded = tomlfile.load(str(path))
        firewall = {c.argv[0] for c in loaded.topology.plan().commands if c.argv[0] in ("nft", "iptables")}
        assert firewall == {program}
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("[topology]\n", '[topology]\nfirewall = "pf"\n'))
    with pytest.raises(tomlread.TopologyFileError, match="must be auto, iptables or nft"):
        tomlfile.load(str(path))


def test_plan_firewall_nft_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--firewall", "nft", str(SEED001_TOML)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "nft -f - <<'EOF'\nadd table inet netns_kit_cli.seed001-bridge-nat\nEOF\n" in out
    assert "iptables" not in out
    assert cli.main(["plan", "--down", "--firewall", "nft", str(SEED001_TOML)]) == cli.EXIT_OK
    assert "delete table inet netns_kit_cli.seed001-bridge-nat" in capsys.readouterr().out


def test_changing_the_topology_backend_changes_only_what_it_gave() -> None:
    mine = NatRule("10.0.1.0/24", out_interface="eth0", backend="iptables")
    topo = Topology([mine, NatRule("10.0.0.0/24", out_interface="eth0")], firewall="auto")
    topo.firewall = "nft"
    assert [f.backend for f in topo.of_type(Firewall)] == ["iptables", "nft"]
    topo.firewall = None
    assert [f.backend for f in topo.of_type(Firewall)] == ["iptables", None]


def test_doctor_names_the_table_that_drops_forwarded_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    docker = Drop("nft", "ip docker-bridges", "filter-FORWARD", "policy drop")
    seen = Probe(nft="v1.0.6", features=frozenset({"inet", "inet-nat", "masquerade", "fib"}), drops=(docker,))
    monkeypatch.setattr(nftchoice, "probe", lambda executor, netns=None: seen)
    look = Look(Probes(which=lambda name: f"/usr/sbin/{name}", executor=Recorder()), Recorder())
    check = doctor_firewall.nft_choice(look)
    assert check.status == WARN
    assert check.summary.startswith("none (no backend can work here: nft table ip docker-bridges chain filter-FORWARD")
    assert "bridge-accept-fwmark" in check.summary
    monkeypatch.setattr(nftchoice, "probe", lambda executor, netns=None: attrs.evolve(seen, drops=()))
    assert doctor_firewall.nft_choice(look).status == OK
    bare = Look(Probes(which=lambda name: None, executor=Recorder()), Recorder())
    assert doctor_firewall.nft_choice(bare).summary == "nft is not installed: auto takes iptables"


class FakeNft(ShExecutor):
    """A batching executor whose ``nft -f -`` fails (as a whole) on a line holding ``bad``."""

    def __init__(self) -> None:
        super().__init__(parallel=1)
        self.enter_directly = False
        self.processes: list[str] = []

    @property
    def ledger_dir(self) -> Path | None:
        return None

    def _execute(self, argv, *, input, timeout, netns=None):  # type: ignore[no-untyped-def]
        assert argv[-3:] == ("nft", "-f", "-")
        self.processes.append(input)
        return (1, "", "Error: Could not process rule: bad\n") if "bad" in input else (0, "", "")


def _nft(text: str) -> Command:
    return nft.Transaction((text,)).command()


def test_consecutive_nft_transactions_run_as_one_process() -> None:
    fake = FakeNft()
    fake.run_all([_nft("add table inet a"), _nft("add chain inet a x"), _nft("add chain inet a y")])
    assert fake.processes == ["add table inet a\nadd chain inet a x\nadd chain inet a y\n"]


def test_a_failed_nft_batch_reruns_one_by_one_and_names_the_bad_one() -> None:
    fake = FakeNft()
    with pytest.raises(CommandError) as info:
        fake.run_all([_nft("add table inet a"), _nft("add chain inet a bad"), _nft("add chain inet a y")])
    assert "bad" in str(info.value) or "bad" in (info.value.stderr or "")
    # nothing of the batch took effect (atomic): then the first alone, then the bad one alone
    assert fake.processes[1:] == ["add table inet a\n", "add chain inet a bad\n"]
