"""Our nft tables in the inventory, ``status``/``inspect``/``ls``, the leak check, the cleanup
report and the errors; the warning of ``up`` with ``firewall="nft"`` where another table drops.

The nft texts are what nft 1.0.6 printed (kernel 6.18) in a private network namespace
holding our table ``inet netns_kit_42.7`` (a NAT: two base chains, three rules), Docker's
``ip docker-bridges`` (forward, policy drop) and a decoy ``inet netns_kitten`` whose rule
even carries our tag.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit import NatRule, PortForward, Result, cli
from netns_kit.cli import data, records
from netns_kit.cli import place as cliplace
from netns_kit.command import Command
from netns_kit.errors import PermissionDeniedError, classify
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall import nft, nftread
from netns_kit.lifecycle import ledger
from netns_kit.ops import doctor_firewall, inventory, leakcheck, state
from netns_kit.ops.cleanup_plan import said
from netns_kit.ops.inventory import NftChain, NftTable
from netns_kit.owner import Owner

from .cli_schemas import NFT_TABLE, assert_valid, problems
from .fakes import FakeHost

META = '{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}'
LIST_TABLES = "table ip docker-bridges\ntable inet netns_kitten\ntable inet netns_kit_42.7\n"
OUR_TABLE = (
    '{"nftables": [' + META + ', {"table": {"family": "inet", "name": "netns_kit_42.7", "handle": 3}}, '
    '{"chain": {"family": "inet", "table": "netns_kit_42.7", "name": "NK-NAT-x-POST", "handle": 1, "type": "nat", '
    '"hook": "postrouting", "prio": 100, "policy": "accept"}}, '
    '{"chain": {"family": "inet", "table": "netns_kit_42.7", "name": "NK-NAT-x-FWD", "handle": 3, "type": "filter", '
    '"hook": "forward", "prio": 0, "policy": "accept"}}, '
    '{"rule": {"family": "inet", "table": "netns_kit_42.7", "chain": "NK-NAT-x-POST", "handle": 2, '
    '"comment": "netns_kit:42.7", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", '
    '"field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 24}}}}, {"match": {"op": "==", '
    '"left": {"meta": {"key": "oifname"}}, "right": "eth0"}}, {"masquerade": null}]}}, '
    '{"rule": {"family": "inet", "table": "netns_kit_42.7", "chain": "NK-NAT-x-FWD", "handle": 4, '
    '"comment": "netns_kit:42.7", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", '
    '"field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 24}}}}, {"match": {"op": "==", '
    '"left": {"meta": {"key": "iifname"}}, "right": "br0"}}, {"match": {"op": "==", "left": {"meta": '
    '{"key": "oifname"}}, "right": "eth0"}}, {"accept": null}]}}, '
    '{"rule": {"family": "inet", "table": "netns_kit_42.7", "chain": "NK-NAT-x-FWD", "handle": 5, '
    '"comment": "netns_kit:42.7", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", '
    '"field": "daddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 24}}}}, {"match": {"op": "==", '
    '"left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"match": {"op": "==", "left": {"meta": '
    '{"key": "oifname"}}, "right": "br0"}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, '
    '"right": ["established", "related"]}}, {"accept": null}]}}]}'
)
CHAINS = (
    '{"nftables": [' + META + ', {"chain": {"family": "ip", "table": "docker-bridges", "name": "filter-FORWARD", '
    '"handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, '
    '{"chain": {"family": "inet", "table": "netns_kitten", "name": "c", "handle": 1, "type": "filter", '
    '"hook": "input", "prio": 0, "policy": "accept"}}, '
    '{"chain": {"family": "inet", "table": "netns_kit_42.7", "name": "NK-NAT-x-POST", "handle": 1, "type": "nat", '
    '"hook": "postrouting", "prio": 100, "policy": "accept"}}, '
    '{"chain": {"family": "inet", "table": "netns_kit_42.7", "name": "NK-NAT-x-FWD", "handle": 3, '
    '"type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}]}'
)
DOCKER_FORWARD = (
    '{"nftables": [' + META + ', {"chain": {"family": "ip", "table": "docker-bridges", "name": "filter-FORWARD", '
    '"handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, '
    '{"rule": {"family": "ip", "table": "docker-bridges", "chain": "filter-FORWARD", "handle": 2, "expr": '
    '[{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, '
    '{"accept": null}]}}]}'
)
#: ``nft -s list ruleset`` of the same namespace, as ops.state normalizes it (owner ids masked)
RULESET = """table ip docker-bridges {
\tchain filter-FORWARD {
\t\ttype filter hook forward priority filter; policy drop;
\t\tct state established,related accept
\t}
}
table inet netns_kitten {
\tchain c {
\t\ttype filter hook input priority filter; policy accept;
\t\tcounter comment "netns_kit:42.7"
\t}
}
table inet netns_kit_42.7 { # progname nft
\tflags owner
\tchain NK-NAT-x-POST {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "netns_kit:42.7"
\t}

\tchain NK-NAT-x-FWD {
\t\ttype filter hook forward priority filter; policy accept;
\t\tip saddr 10.0.0.0/24 iifname "br0" oifname "eth0" accept comment "netns_kit:42.7"
\t\tip daddr 10.0.0.0/24 iifname "eth0" oifname "br0" ct state established,related accept comment "netns_kit:42.7"
\t}
}
"""
OURS = NftTable(
    None,
    "inet",
    "netns_kit_42.7",
    (NftChain("NK-NAT-x-POST", "postrouting", 100, 1), NftChain("NK-NAT-x-FWD", "forward", 0, 2)),
)


def nft_answers(command: Command, netns: str | None = None) -> str | None:
    """The nft queries of one namespace (``netns``) holding the tables above."""
    if command.netns != netns:
        return None
    return {
        ("nft", "list", "tables"): LIST_TABLES,
        ("nft", "-j", "list", "table", "inet", "netns_kit_42.7"): OUR_TABLE,
        ("nft", "-j", "list", "chains"): CHAINS,
        ("nft", "-j", "list", "chain", "ip", "docker-bridges", "filter-FORWARD"): DOCKER_FORWARD,
    }.get(command.argv)


# -- the inventory ------------------------------------------------------------------


def test_our_tables_are_read_whole_with_nft_j_and_decoys_never() -> None:
    asked: list[tuple[str, ...]] = []

    def handler(command: Command) -> str | None:
        asked.append(command.argv)
        return nft_answers(command, "red")

    assert inventory.read_nft_tables(Recorder(handler), "red") == [attrs_evolve_netns(OURS, "red")]
    # the list of tables, then only ours whole: never docker-bridges, never netns_kitten
    assert asked == [("nft", "list", "tables"), ("nft", "-j", "list", "table", "inet", "netns_kit_42.7")]
    assert str(OURS) == "nft table inet netns_kit_42.7 (in the host): 2 chains, 3 rules"
    assert str(OURS.chains[1]) == "chain NK-NAT-x-FWD (forward hook, priority 0, 2 rules)"
    assert OURS.owner == Owner("42.7")


def attrs_evolve_netns(table: NftTable, netns: str | None) -> NftTable:
    return NftTable(netns, table.family, table.name, table.chains)


def test_no_nft_or_no_table_is_no_table() -> None:
    def missing(command: Command) -> Result | None:
        return Result(command, 127) if command.program == "nft" else None

    assert inventory.read_nft_tables(Recorder(missing), None) == []
    assert inventory.read_nft_tables(Recorder(), None) == []


def test_scan_lists_the_tables_in_the_host_and_every_namespace_with_their_owner() -> None:
    def handler(command: Command) -> str | None:
        if command.argv == ("ip", "-j", "netns", "list"):
            return json.dumps([{"name": "red"}])
        return nft_answers(command, "red") or nft_answers(command, None)

    found = inventory.scan(Recorder(handler))
    assert found.nft_tables == [OURS, attrs_evolve_netns(OURS, "red")]
    assert Owner("42.7") in found.owners()
    summary = inventory.summary(found, Owner("42.7"))
    assert summary["nft_tables"][0] == (
        "nft table inet netns_kit_42.7 (in the host): 2 chains, 3 rules\n"
        "      chain NK-NAT-x-POST (postrouting hook, priority 100, 1 rule)\n"
        "      chain NK-NAT-x-FWD (forward hook, priority 0, 2 rules)"
    )
    assert inventory.summary(found, Owner("42.8"))["nft_tables"] == []
    # without the firewall (cleanup's own scan, which deletes tables by name): not read
    assert inventory.scan(Recorder(handler), firewall=False).nft_tables == []


def test_scan_enters_only_namespaces_where_a_table_of_ours_can_be(tmp_path: Path) -> None:
    owner = Owner("42.7")
    table = nft.Table.of(owner)
    _ledger(tmp_path, owner, nft.Transaction((table.create("inet"),)).command("red", undo=table.delete()))
    found = inventory.Inventory(
        namespaces={"red": owner.tag, "blue": owner.tag, "theirs": None},
        ledgers=inventory.read_ledgers(FakeHost(tmp_path)),
    )
    # the host, ours where nft ran (red), and someone else's; not blue (ours, no nft in its ledger)
    assert inventory.nft_places(found) == [None, "red", "theirs"]


def test_the_json_of_a_table_is_its_chains_with_hooks_and_rule_counts() -> None:
    found = inventory.Inventory(nft_tables=[OURS, attrs_evolve_netns(OURS, "red")])
    objects = data.objects(found, [Owner("42.7")])
    assert objects["nft_tables"][0] == {
        "family": "inet",
        "name": "netns_kit_42.7",
        "netns": None,
        "chains": [
            {"name": "NK-NAT-x-POST", "hook": "postrouting", "priority": 100, "rules": 1},
            {"name": "NK-NAT-x-FWD", "hook": "forward", "priority": 0, "rules": 2},
        ],
        "rules": 3,
    }
    assert [t["netns"] for t in objects["nft_tables"]] == [None, "red"]
    assert all(problems(t, NFT_TABLE) == [] for t in objects["nft_tables"])
    assert data.objects(found, [Owner("42.77")])["nft_tables"] == []


@pytest.fixture
def attached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`--attach 42` reaches a FakeHost holding our table in its host, with a ledger of 42.7."""

    class Host(FakeHost):
        def answer(self, command: Command) -> Result | str | None:
            return nft_answers(command) or super().answer(command)

    monkeypatch.setattr(cliplace, "open_executor", lambda args, owner: Host(tmp_path / "run", owner=Owner("1.1")))
    monkeypatch.setattr(Owner, "is_alive", lambda self: False)
    return tmp_path / "run"


def test_status_lists_the_table_by_owner_for_people_and_in_json(
    attached: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", "--attach", "42"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert (
        "42.7  [dead] its process is gone: `netns-kit cleanup --attach 42` removes this\n"
        "  nft tables (1):\n"
        "    nft table inet netns_kit_42.7 (in the host): 2 chains, 3 rules\n"
        "      chain NK-NAT-x-POST (postrouting hook, priority 100, 1 rule)\n"
        "      chain NK-NAT-x-FWD (forward hook, priority 0, 2 rules)\n"
    ) in out
    assert "netns_kitten" not in out and "docker" not in out
    assert cli.main(["status", "--attach", "42", "--json"]) == cli.EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert_valid(document, "status")
    (owner,) = document["owners"]
    assert (owner["owner"], [t["name"] for t in owner["nft_tables"]]) == ("42.7", ["netns_kit_42.7"])


def _ledger(directory: Path, owner: Owner, *commands: Command) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    writer = ledger.Ledger(directory, owner)
    writer.mark([(seq, "ok") for seq in writer.intend(commands)])


def test_ls_names_the_tables_the_ledger_records_making(
    attached: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = Owner("cli.lab")
    table = nft.Table.of(owner)
    made = nft.Transaction((table.create("inet"),)).command("red", undo=table.delete())
    rule = table.plan(NatRule("10.0.0.0/24", out_interface="eth0").chains(), owner.tag)
    _ledger(attached, owner, made, rule, table.delete().command())  # a bare delete (no undo) makes nothing
    monkeypatch.setattr(records, "gone", lambda *args, **kwargs: False)
    assert cli.main(["ls", "--attach", "42", "--json"]) == cli.EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert_valid(document, "ls")
    assert document["topologies"][0]["nft_tables"] == [
        {"family": "inet", "name": "netns_kit_cli.lab", "netns": None},
        {"family": "inet", "name": "netns_kit_cli.lab", "netns": "red"},
    ]


def test_inspect_reads_the_table_back(attached: Path, capsys: pytest.CaptureFixture[str]) -> None:
    owner = Owner("42.7")
    table = nft.Table.of(owner)
    _ledger(attached, owner, nft.Transaction((table.create("inet"),)).command(undo=table.delete()))
    assert cli.main(["inspect", "--attach", "42", "42.7"]) == cli.EXIT_OK
    assert capsys.readouterr().out.endswith(
        "as read back:\n"
        "  nft table inet netns_kit_42.7 (in the host): 2 chains, 3 rules\n"
        "    chain NK-NAT-x-POST (postrouting hook, priority 100, 1 rule)\n"
        "    chain NK-NAT-x-FWD (forward hook, priority 0, 2 rules)\n"
    )
    assert cli.main(["inspect", "--attach", "42", "--json", "42.7"]) == cli.EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert_valid(document, "inspect")
    assert [t["rules"] for t in document["read_back"]["nft_tables"]] == [3]


def test_a_topology_whose_table_is_still_there_is_not_gone(tmp_path: Path) -> None:
    owner = Owner("cli.lab")
    table = nft.Table.of(owner)
    _ledger(tmp_path, owner, nft.Transaction((table.create("inet"),)).command(undo=table.delete()))
    here = cliplace.Place(FakeHost(tmp_path, owner=owner), "in the sandbox", "--attach 42", 42)
    ledgers = inventory.read_ledgers(here.executor)
    there = inventory.Inventory(ledgers=ledgers, nft_tables=[NftTable(None, "inet", "netns_kit_cli.lab")])
    assert not records.gone(here, owner, there)
    assert records.gone(here, owner, inventory.Inventory(ledgers=ledgers))


# -- the leak check -----------------------------------------------------------------


def test_the_shared_leak_check_counts_the_owners_table_and_its_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leakcheck.binaries, "which", lambda name: f"/usr/sbin/{name}")
    executor = Recorder(nft_answers, owner=Owner("42.7"))
    assert leakcheck.owned(executor) == {
        "the host, nft table inet netns_kit_42.7 (in the host): 2 chains, 3 rules",
        "the host, nft table inet netns_kit_42.7: chain NK-NAT-x-POST (postrouting hook, priority 100, 1 rule)",
        "the host, nft table inet netns_kit_42.7: chain NK-NAT-x-FWD (forward hook, priority 0, 2 rules)",
    }
    # another owner's table (and the decoy carrying 42.7's tag) is never this owner's leak
    assert leakcheck.owned(Recorder(nft_answers, owner=Owner("42.8"))) == set()


def _place(nft_text: str) -> dict[str, Any]:
    return {"links": [], "iptables-save": {}, "ip6tables-save": {}, "nft": state.nft_tables(nft_text)}


def test_the_exclusive_leak_check_names_a_new_table_once_with_its_chains_and_rules() -> None:
    docker_only = RULESET.split("table inet netns_kitten", maxsplit=1)[0]
    before = {"netns": [], "<host>": _place(docker_only)}
    after = {"netns": [], "<host>": _place(RULESET)}
    assert leakcheck.describe(before, after) == [
        "the host, nft: new table inet netns_kit_* (2 chains, 3 rules)",
        "the host, nft: new table inet netns_kitten (1 chains, 1 rules)",
    ]
    assert leakcheck.describe(after, before) == [
        "the host, nft: gone table inet netns_kit_* (2 chains, 3 rules)",
        "the host, nft: gone table inet netns_kitten (1 chains, 1 rules)",
    ]
    assert leakcheck.describe(after, after) == []


# -- the cleanup report -------------------------------------------------------------


def test_the_report_says_which_table_or_chains_a_transaction_removes() -> None:
    table = nft.Table.of(Owner("42.7"))
    chains = NatRule("10.0.0.0/24", out_interface="eth0", name="x").chains()
    assert said([table.delete().command("red").tolerant()]) == "nft table inet netns_kit_42.7 (in red)"
    assert said([nft.Table.of(Owner("42.7"), split=True).delete().command()]) == (
        "nft tables ip netns_kit_42.7, ip6 netns_kit_42.7 (in the host)"
    )
    assert said([table.remove(chains).command()]) == (
        "nft chains NK-NAT-x-FWD, NK-NAT-x-POST of table inet netns_kit_42.7 (in the host)"
    )
    assert nftread.describe(table.plan(chains, "netns_kit:42.7")) == (
        "nft chains NK-NAT-x-POST, NK-NAT-x-FWD with 3 rules of table inet netns_kit_42.7 (in the host)"
    )
    made = nft.Transaction((table.create("inet"),)).command("red", undo=table.delete())
    assert nftread.describe(made) == "nft table inet netns_kit_42.7 (in red)"
    plain = Command(("ip", "netns", "del", "red"))
    assert said([plain]) == "ip netns del red"
    assert nftread.describe(Command(("nft", "list", "tables"))) is None


# -- errors -------------------------------------------------------------------------

#: what nft 1.0.6 said, as root, to a transaction on a table an ``nft -i`` holder made with ``flags owner``
OWNED_EPERM = (
    "/dev/stdin:1:16-29: Error: Could not process rule: Operation not permitted\n"
    "add chain inet netns_kit_42.7 c { type filter hook forward priority 0; }\n"
    "               ^^^^^^^^^^^^^^\n"
)


def test_an_nft_eperm_on_a_table_says_it_may_be_another_processs_owned_table() -> None:
    error = classify(("nft", "-f", "-"), 1, "", OWNED_EPERM)
    assert isinstance(error, PermissionDeniedError)
    assert "table inet netns_kit_42.7 has `flags owner` and another process holds it" in error.hint
    assert error.hint.startswith("this needs CAP_NET_ADMIN")
    deleted = "Error: Could not process rule: Operation not permitted\ndelete table ip docker-bridges\n   ^^^\n"
    assert "table ip docker-bridges has `flags owner`" in classify(("nft", "delete", "table"), 1, "", deleted).hint
    # not root, reading: no table named, the plain hint
    cache = "Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed\n"
    assert "flags owner" not in classify(("nft", "list", "tables"), 1, "", cache).hint


# -- up with firewall="nft" where another table drops -------------------------------


class Machine(FakeHost):
    """A real run (not a dry-run) on a machine with nft 1.0.6, Docker's table and iptables-nft."""

    def answer(self, command: Command) -> Result | str | None:
        argv = command.argv
        if argv == ("nft", "--version"):
            return "nftables v1.0.6 (Lester Gooch #5)\n"
        if argv[:2] == ("nft", "-c"):
            return Result(command, 0)
        if argv == ("iptables", "-V"):
            return "iptables v1.8.9 (nf_tables)\n"
        if argv == ("iptables-save",):
            return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
        return nft_answers(command) or super().answer(command)


def test_nft_by_name_where_another_table_drops_warns_naming_it_and_what_to_do(tmp_path: Path) -> None:
    nat = NatRule("10.0.0.0/24", out_interface="eth0", backend="nft")
    forward = PortForward(8080, "10.0.0.1", 80, backend="nft")
    (warning,) = doctor_firewall.nft_warnings(Machine(tmp_path), [nat, forward])
    assert warning.startswith(
        'firewall="nft" in the host: its forwarded traffic will be dropped by '
        "nft table ip docker-bridges chain filter-FORWARD: policy drop. "
        "An accept in netns_kit's rules cannot override a drop in another table."
    )
    assert "dockerd --bridge-accept-fwmark" in warning and "netns-kit --sandbox" in warning


def test_no_warning_for_auto_iptables_a_dry_run_or_a_machine_that_forwards(tmp_path: Path) -> None:
    def nat(backend: str | None) -> NatRule:
        return NatRule("10.0.0.0/24", out_interface="eth0", backend=backend)

    for backend in ("auto", "iptables", None):  # auto refuses by itself; iptables' accepts go first
        assert doctor_firewall.nft_warnings(Machine(tmp_path), [nat(backend)]) == []
    assert doctor_firewall.nft_warnings(Recorder(nft_answers), [nat("nft")]) == []

    class Open(Machine):
        def answer(self, command: Command) -> Result | str | None:
            if command.argv == ("nft", "list", "tables"):
                return "table inet netns_kit_42.7\n"
            if command.argv == ("nft", "-j", "list", "chains"):
                return '{"nftables": [' + META + "]}"
            return super().answer(command)

    assert doctor_firewall.nft_warnings(Open(tmp_path), [nat("nft")]) == []


NAT_FILE = """[topology]
name = "lab"

[[bridges]]
name = "v-net-0"
addresses = ["192.168.1.254/24"]

[[nat_rules]]
source = "192.168.1.0/24"
out_interface = "eth0"
bridge = "v-net-0"
"""


def test_up_with_firewall_nft_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the library logs it (OwnerTable.plan); the CLI says it on stderr (test_cli.py:
    # a warning during up is said, not swallowed; tests/integration/test_nft_ops.py)
    file = tmp_path / "lab.toml"
    file.write_text(NAT_FILE)
    monkeypatch.setattr(cliplace, "open_executor", lambda args, owner: Machine(tmp_path / "run", owner=owner))
    monkeypatch.setattr(records, "gone", lambda *args, **kwargs: False)
    caplog.set_level(logging.WARNING, logger="netns_kit")
    assert cli.main(["up", "--attach", "42", "--firewall", "nft", "-p", "lab", str(file)]) == cli.EXIT_OK
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    warnings = [w for w in said if w.startswith('firewall="nft"')]  # (and: no eth0 here)
    assert len(warnings) == 1
    assert warnings[0].startswith('firewall="nft" in the host: its forwarded traffic will be dropped by nft table ip ')
    # asked for iptables, or auto (which picks iptables here by itself): nothing to warn of
    caplog.clear()
    assert cli.main(["up", "--attach", "42", "--firewall", "iptables", "-p", "lab2", str(file)]) == cli.EXIT_OK
    assert [r for r in caplog.records if 'firewall="nft"' in r.getMessage()] == []
