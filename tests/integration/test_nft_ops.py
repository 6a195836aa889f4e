"""Our nft tables seen by the ops surfaces, in a sandbox of each test's own: the inventory,
``status`` (for people and ``--json``), the leak check (shared and exclusive) and the cleanup
report see a topology's table (firewall="nft") while it is up, nothing after ``down``;
decoy tables made by hand (``netns_kitten``, ``docker-bridges``) are never listed as ours
and survive. ``up --firewall nft`` where Docker's table drops forwarded traffic warns; an
owned table's EPERM says why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit.errors import PermissionDeniedError
from netns_kit.executors.base import use
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft, nftread
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.nftowner import OwnerHolder
from netns_kit.ops import cleanup as opscleanup
from netns_kit.ops import inventory
from netns_kit.ops.leakcheck import LeakCheck
from netns_kit.topology import scenarios

from .cli import netns_kit

ROOT = Path(__file__).parents[2]
NAT_FILE = str(ROOT / "examples" / "seed001-bridge-nat.toml")


@pytest.fixture
def sb(fresh_sandbox: Sandbox) -> Iterator[Sandbox]:
    """A sandbox of this test's own: the exclusive leak check reads its whole state."""
    with use(fresh_sandbox):
        yield fresh_sandbox


def decoys(sb: Sandbox, *, docker_policy: str = "accept") -> None:
    """Tables made by hand that are not ours: a name that only starts like ours (with a rule
    that even carries our tag) and Docker 29's ``docker-bridges``."""
    lines = (
        "add table inet netns_kitten",
        "add chain inet netns_kitten c { type filter hook input priority 0; policy accept; }",
        f'add rule inet netns_kitten c counter comment "{sb.owner.tag}"',
        "add table ip docker-bridges",
        "add chain ip docker-bridges filter-FORWARD { type filter hook forward priority 0; "
        f"policy {docker_policy}; }}",
        "add rule ip docker-bridges filter-FORWARD ct state established,related accept",
    )
    sb.run(nft.Transaction(lines).command())


def remove_decoys(sb: Sandbox) -> None:
    sb.run(nft.Transaction(("delete table inet netns_kitten", "delete table ip docker-bridges")).command())


def tables(sb: Sandbox) -> set[str]:
    return {f"{t.family} {t.name}" for t in nftread.list_tables(sb)}


def test_status_inventory_leak_check_and_cleanup_see_the_table_until_down(sb: Sandbox) -> None:
    decoys(sb)
    shared, exclusive = LeakCheck(sb, exclusive=False), LeakCheck(sb, exclusive=True)
    name = nft.table_name(sb.owner)
    topo = scenarios.seed001_story()
    topo.firewall = "nft"
    topo.up(sb)
    try:
        # what nft -j says is there, ours by name
        read = nftread.list_table(sb, "inet", name)
        assert len(read.chains) == 5 and len(read.rules) == len(read.tagged(sb.owner.tag)) > 0
        found = inventory.scan(sb)
        (table,) = found.nft_tables
        assert (table.netns, table.family, table.name, table.owner) == (None, "inet", name, sb.owner)
        assert [c.name for c in table.chains] == [c.name for c in read.chains]
        assert table.rules == len(read.rules)
        assert sb.owner in found.owners()

        status = netns_kit("status", "--attach", str(sb.pid))
        assert status.returncode == 0, status.stderr
        assert f"  nft tables (1):\n    nft table inet {name} (in the host): 5 chains, {table.rules} rules\n" in (
            status.stdout
        )
        assert "netns_kitten" not in status.stdout and "docker-bridges" not in status.stdout
        document = json.loads(netns_kit("status", "--attach", str(sb.pid), "--json").stdout)
        (entry,) = [o for o in document["owners"] if o["owner"] == sb.owner.id]
        assert [(t["family"], t["name"], t["netns"], t["rules"]) for t in entry["nft_tables"]] == [
            ("inet", name, None, table.rules)
        ]
        assert {c["hook"] for c in entry["nft_tables"][0]["chains"]} == {
            "postrouting",
            "forward",
            "prerouting",
            "output",
        }

        leaks = shared.leaks()
        assert f"the host, nft table inet {name} (in the host): 5 chains, {table.rules} rules" in leaks
        assert sum(1 for line in leaks if line.startswith(f"the host, nft table inet {name}: chain ")) == 5
        assert not any("nft -f -" in line for line in leaks)
        assert f"the host, nft: new table inet netns_kit_* (5 chains, {table.rules} rules)" in exclusive.leaks()

        report = opscleanup.cleanup(sb, owner=sb.owner, dry_run=True)
        lines = report.lines()
        assert f"would remove: nft table inet {name} (in the host)" in lines
        assert not any("nft -f -" in line for line in lines), lines
    finally:
        topo.down()
    assert inventory.scan(sb).nft_tables == []
    assert shared.leaks() == [] and exclusive.leaks() == []
    document = json.loads(netns_kit("status", "--attach", str(sb.pid), "--json").stdout)
    assert all(o["nft_tables"] == [] for o in document["owners"])
    assert tables(sb) == {"inet netns_kitten", "ip docker-bridges"}  # the decoys survive, untouched
    remove_decoys(sb)


def test_the_cleanup_report_names_the_tables_a_dead_owners_ledger_made(sb: Sandbox, tmp_path: Path) -> None:
    """``up`` by the command line (a named owner), then ``cleanup --owner``: what it says it removed."""
    decoys(sb)
    up = netns_kit("up", "--attach", str(sb.pid), "--firewall", "nft", "-p", "lab", NAT_FILE, state_dir=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    assert 'firewall="nft"' not in up.stderr  # docker-bridges accepts here
    assert "inet netns_kit_cli.lab" in tables(sb)
    listed = json.loads(netns_kit("ls", "--attach", str(sb.pid), "--json", state_dir=tmp_path).stdout)
    (row,) = listed["topologies"]
    assert row["nft_tables"] == [{"family": "inet", "name": "netns_kit_cli.lab", "netns": None}]
    cleanup = netns_kit("cleanup", "--attach", str(sb.pid), "--owner", "cli.lab", state_dir=tmp_path)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert "removed: nft table inet netns_kit_cli.lab (in the host)" in cleanup.stdout.splitlines()
    assert "nft -f -" not in cleanup.stdout
    assert tables(sb) == {"inet netns_kitten", "ip docker-bridges"}
    remove_decoys(sb)


def test_up_with_firewall_nft_warns_once_where_dockers_table_drops(sb: Sandbox, tmp_path: Path) -> None:
    decoys(sb, docker_policy="drop")
    up = netns_kit("up", "--attach", str(sb.pid), "--firewall", "nft", "-p", "lab", NAT_FILE, state_dir=tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        warnings = [line for line in up.stderr.splitlines() if line.startswith('warning: firewall="nft"')]
        assert len(warnings) == 1, up.stderr
        assert warnings[0].startswith(
            'warning: firewall="nft" in the host: its forwarded traffic will be dropped by '
            "nft table ip docker-bridges chain filter-FORWARD: policy drop. "
        )
        assert "dockerd --bridge-accept-fwmark" in warnings[0]
        assert "inet netns_kit_cli.lab" in tables(sb)  # asked for by name: used all the same
    finally:
        down = netns_kit("down", "--attach", str(sb.pid), "-p", "lab", state_dir=tmp_path)
    assert down.returncode == 0, down.stdout + down.stderr
    assert tables(sb) == {"inet netns_kitten", "ip docker-bridges"}
    remove_decoys(sb)


def test_a_table_another_process_holds_is_listed_and_refuses_others_with_a_hint(sb: Sandbox) -> None:
    table = nft.Table.of(sb.owner, owned=True)
    with OwnerHolder(sb, table) as holder:
        holder.apply(table.add(NatRule("192.168.1.0/24", out_interface="eth0").chains(), sb.owner.tag))
        with pytest.raises(PermissionDeniedError) as caught:
            sb.run(table.delete().command())
        assert f"table inet {table.name} has `flags owner` and another process holds it" in caught.value.hint
        assert f"table inet {table.name} has `flags owner`" in str(caught.value)
        # nft 1.0.6 spoils an owned table's JSON: the inventory reads it all the same
        (read,) = inventory.read_nft_tables(sb, None)
        assert (read.name, read.owner, read.rules) == (table.name, sb.owner, 3)
        assert sorted(c.name for c in read.chains) == sorted(
            c.name for c in NatRule("192.168.1.0/24", out_interface="eth0").chains()
        )
    assert table.name not in {t.name for t in nftread.list_tables(sb)}
