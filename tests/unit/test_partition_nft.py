"""Partitions and the loss fallback on the nft backend, through the recorder: one transaction per
namespace on the owner's table, undone by flushing and deleting its own chains only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from netns_kit import (
    Command,
    LinkImpairment,
    Namespace,
    NatRule,
    Partition,
    Recorder,
    Topology,
    ValidationError,
    VethPair,
    cli,
)
from netns_kit.firewall import droprule, nft
from netns_kit.ops.cleanup import cleanup
from netns_kit.owner import Owner
from netns_kit.topology.tomlfile import loads

from .test_partition import addresses
from .test_topofile import PIPE as TWO_NAMESPACES

T = "inet netns_kit_dry-run"
TAG = 'comment "netns_kit:dry-run"'
DELETE = f"add table {T}\ndelete table {T}\n"


def test_a_partition_on_nft_is_one_transaction_per_namespace_in_the_owners_table() -> None:
    rec = Recorder(addresses)
    cut = Partition("red", "blue", backend="nft").create(rec)
    c = cut.chain
    assert c.startswith("NK-PART-") and c.endswith("-IN") and len(c) + 2 <= 28
    hook = "{ type filter hook input priority filter; policy accept; }"
    assert [(cmd.netns, cmd.argv, cmd.stdin) for cmd in rec.commands] == [
        (
            "red",
            ("nft", "-f", "-"),
            f"add table {T}\n"
            f"add chain {T} {c} {hook}\n"
            f"add rule {T} {c} ip saddr 10.0.0.2 counter drop {TAG}\n"
            f"add chain {T} {c}-6 {hook}\n"
            f"add rule {T} {c}-6 ip6 saddr fe80::2 counter drop {TAG}\n",
        ),
        (
            "blue",
            ("nft", "-f", "-"),
            f"add table {T}\n"
            f"add chain {T} {c} {hook}\n"
            f"add rule {T} {c} ip saddr 10.0.0.1 counter drop {TAG}\n"
            f"add chain {T} {c}-6 {hook}\n"
            f"add rule {T} {c}-6 ip6 saddr fd00::1 counter drop {TAG}\n"
            f"add rule {T} {c}-6 ip6 saddr fe80::1 counter drop {TAG}\n",
        ),
    ]
    cut.heal(rec)
    # its own chains; then the table, as nothing else made on its own or in a topology uses it
    remove = f"flush chain {T} {c}-6\ndelete chain {T} {c}-6\nflush chain {T} {c}\ndelete chain {T} {c}\n"
    assert [(cmd.netns, cmd.argv, cmd.stdin) for cmd in rec.commands[2:]] == [
        ("blue", ("nft", "-f", "-"), remove),
        ("red", ("nft", "-f", "-"), remove),
        ("red", ("nft", "-f", "-"), DELETE),
        ("blue", ("nft", "-f", "-"), DELETE),
    ]
    assert all(cmd.missing_ok for cmd in rec.commands[2:])
    assert not any("iptables" in cmd.line for cmd in rec.commands)


def test_the_owners_table_goes_with_the_last_partition_or_firewall_using_it() -> None:
    rec = Recorder()
    first = Partition("a", "b", a_addresses="10.0.0.1", b_addresses="10.0.0.2", backend="nft").create(rec)
    second = Partition("a", "c", a_addresses="10.0.0.1", b_addresses="10.0.0.3", backend="nft").create(rec)
    nat = NatRule("10.0.0.0/24", out_interface="eth0", netns="c", backend="nft").create(rec)
    assert first.chain != second.chain

    def deletes(start: int) -> list[str | None]:
        return [cmd.netns for cmd in rec.commands[start:] if cmd.stdin == DELETE]

    mark = len(rec.commands)
    first.heal(rec)
    assert deletes(mark) == ["b"]  # a: the second partition still uses it
    mark = len(rec.commands)
    second.heal(rec)
    assert deletes(mark) == ["a"]  # c: the NAT rule still uses it
    mark = len(rec.commands)
    nat.delete(rec)
    assert deletes(mark) == ["c"]


def test_a_partition_in_a_topology_keeps_the_table_from_a_firewall_made_on_its_own() -> None:
    rec = Recorder()
    cut = Partition("a", "b", a_addresses="10.0.0.1", b_addresses="10.0.0.2")
    with Topology([Namespace("a"), Namespace("b"), cut], executor=rec, firewall="nft"):
        nat = NatRule("10.0.0.0/24", out_interface="eth0", netns="a", backend="nft").create(rec)
        mark = len(rec.commands)
        nat.delete(rec)
        assert not any(cmd.stdin == DELETE for cmd in rec.commands[mark:])  # the partition's drops stay


def test_a_side_with_one_family_gets_one_chain() -> None:
    rec = Recorder()
    Partition("a", "b", a_addresses="fd00::a", b_addresses="10.0.0.2", backend="nft").create(rec)
    stdin = [cmd.stdin or "" for cmd in rec.commands]
    assert "ip saddr 10.0.0.2 counter drop" in stdin[0] and "-6 " not in stdin[0]
    assert "ip6 saddr fd00::a counter drop" in stdin[1] and "hook input" in stdin[1] and f"{T} NK-PART-" in stdin[1]
    assert stdin[1].count("add chain") == 1


def test_the_iptables_backend_is_the_default_and_plans_exactly_as_before() -> None:
    plans = []
    for backend in (None, "iptables", "auto"):  # auto in a dry-run: iptables
        rec = Recorder(addresses)
        Partition("red", "blue", backend=backend).create(rec)
        plans.append(rec.lines)
    assert plans[0] == plans[1] == plans[2]
    assert (
        plans[0][0]
        == "ip netns exec red iptables -w -t filter -I INPUT -s 10.0.0.2 -m comment --comment netns_kit:dry-run -j DROP"
    )


def test_chain_names_derive_from_the_spec_not_the_backend() -> None:
    red_blue = Partition("red", "blue")
    assert Partition("red", "blue", backend="nft").chain == red_blue.chain
    assert Partition("red", "green").chain != red_blue.chain
    assert Partition("red", "blue", a_addresses="10.0.0.1").chain != red_blue.chain
    assert droprule.chain_name("PART", ("red", "blue", None, None), "IN") == red_blue.chain
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b")
    one, other = LinkImpairment.on(veth, {"loss": "5%"})
    assert one.loss_chain != other.loss_chain and one.loss_chain.startswith("NK-LOSS-")


def test_an_unknown_backend_is_refused_by_field() -> None:
    with pytest.raises(ValidationError) as info:
        Partition("red", "blue", backend="pf")
    assert info.value.field == "Partition.backend"
    with pytest.raises(ValidationError) as info:
        LinkImpairment("a-eth", {"loss": "5%"}, backend="ipfw")
    assert info.value.field == "LinkImpairment.backend"


def _ruleset(chains: dict[str, int], *, verdict: str = "drop") -> str:
    """``nft -j list table`` of the dry-run owner's table with these chains and tagged rules each."""
    items: list[dict[str, object]] = [{"table": {"family": "inet", "name": "netns_kit_dry-run", "handle": 1}}]
    for name, count in chains.items():
        items.append({"chain": {"family": "inet", "table": "netns_kit_dry-run", "name": name, "handle": 2}})
        items += [
            {
                "rule": {
                    "family": "inet",
                    "table": "netns_kit_dry-run",
                    "chain": name,
                    "handle": 3 + i,
                    "comment": "netns_kit:dry-run",
                    "expr": [{verdict: None}],
                }
            }
            for i in range(count)
        ]
    return json.dumps({"nftables": items})


@pytest.mark.parametrize(
    ("listing", "there"),
    [
        (lambda c: _ruleset({c: 1, f"{c}-6": 1}), True),
        (lambda c: _ruleset({c: 1}), False),  # the IPv6 chain is gone
        (lambda c: _ruleset({c: 1, f"{c}-6": 0}), False),  # emptied
        (lambda c: _ruleset({c: 1, f"{c}-6": 1}, verdict="accept"), False),  # not a drop
        (None, False),  # no table
    ],
)
def test_exists_on_nft_reads_the_chains_back(listing, there: bool) -> None:
    cut = Partition("a", "b", a_addresses=["10.0.0.1", "fe80::1"], b_addresses=["10.0.0.2", "fe80::2"], backend="nft")
    asked = []

    def nft_state(command: Command) -> str | None:
        asked.append(command.argv)
        if command.argv == ("nft", "list", "tables"):
            return "" if listing is None else "table inet netns_kit_dry-run\n"
        if command.argv == ("nft", "-j", "list", "table", "inet", "netns_kit_dry-run"):
            return listing(cut.chain)
        return None

    assert cut.exists(Recorder(nft_state)) is there
    assert not any(argv[0] == "iptables" or "-C" in argv for argv in asked)


# -- the loss fallback ------------------------------------------------------------------------

VETH = VethPair("a-eth", "b-eth", netns="a", peer_netns="b")


def _loss(loss: str) -> str:
    (lossy,) = LinkImpairment.on(VETH, {"loss": loss, "loss_via": "iptables"}, end="name", backend="nft")
    c = lossy.loss_chain
    hook = "{ type filter hook prerouting priority raw; policy accept; }"
    share = round(float(loss.rstrip("%")) * 10_000)
    return (
        f"add table {T}\n"
        f"add chain {T} {c} {hook}\n"
        f'add rule {T} {c} meta nfproto ipv4 iifname "b-eth" numgen random mod 1000000 < {share} counter drop {TAG}\n'
        f"add chain {T} {c}-6 {hook}\n"
        f'add rule {T} {c}-6 meta nfproto ipv6 iifname "b-eth" numgen random mod 1000000 < {share} counter drop {TAG}\n'
    )


def test_the_loss_fallback_on_nft_drops_a_share_at_the_peers_raw_prerouting() -> None:
    rec = Recorder()
    (lossy,) = LinkImpairment.on(VETH, {"loss": "20%", "loss_via": "iptables"}, end="name", backend="nft")
    lossy.create(rec)
    c = lossy.loss_chain
    assert [(cmd.netns, cmd.argv, cmd.stdin) for cmd in rec.commands] == [("b", ("nft", "-f", "-"), _loss("20%"))]
    lossy.delete(rec)
    remove = f"flush chain {T} {c}-6\ndelete chain {T} {c}-6\nflush chain {T} {c}\ndelete chain {T} {c}\n"
    assert [(cmd.netns, cmd.stdin) for cmd in rec.commands[1:]] == [("b", remove), ("b", DELETE)]


def test_changing_the_loss_on_nft_replaces_its_transaction() -> None:
    """Two transactions have the same argv (``nft -f -``): a change compares what they say."""
    rec = Recorder()
    (lossy,) = LinkImpairment.on(VETH, {"loss": "20%", "loss_via": "iptables"}, end="name", backend="nft")
    lossy.create(rec)
    c = lossy.loss_chain
    remove = f"flush chain {T} {c}-6\ndelete chain {T} {c}-6\nflush chain {T} {c}\ndelete chain {T} {c}\n"
    lossy.change({"loss": "10%", "loss_via": "iptables"}, rec)
    assert [cmd.stdin for cmd in rec.commands[1:]] == [remove, _loss("10%")]
    lossy.change({"loss": "10%", "loss_via": "iptables"}, rec)  # the same: nothing to do
    assert len(rec.commands) == 3
    lossy.delete(rec)
    assert [cmd.stdin for cmd in rec.commands[3:]] == [remove, DELETE]


def test_the_loss_fallback_on_iptables_is_unchanged() -> None:
    for backend in (None, "iptables"):
        rec = Recorder()
        LinkImpairment.on(VETH, {"loss": "20%", "loss_via": "iptables"}, end="name", backend=backend)[0].create(rec)
        tail = "-m statistic --mode random --probability 0.2 -m comment --comment netns_kit:dry-run -j DROP"
        assert rec.lines == [
            f"ip netns exec b iptables -w -t raw -I PREROUTING -i b-eth {tail}",
            f"ip netns exec b ip6tables -w -t raw -I PREROUTING -i b-eth {tail}",
        ]


def test_loss_drops_reads_the_fallback_back() -> None:
    (lossy,) = LinkImpairment.on(VETH, {"loss": "20%", "loss_via": "iptables"}, end="name", backend="nft")

    def nft_state(command: Command) -> str | None:
        if command.argv == ("nft", "list", "tables"):
            return "table inet netns_kit_dry-run\n"
        if command.argv[:3] == ("nft", "-j", "list"):
            return _ruleset({lossy.loss_chain: 1, f"{lossy.loss_chain}-6": 1})
        return None

    assert lossy.loss_drops(Recorder(nft_state)) is True
    assert lossy.loss_drops(Recorder()) is False  # no table
    plain = LinkImpairment.on(VETH, {"loss": "20%", "loss_via": "iptables"}, end="name")[0]
    checks: list[tuple[str, ...]] = []
    plain.loss_drops(Recorder(lambda cmd: checks.append(cmd.argv)))  # type: ignore[func-returns-value]
    assert [argv[:6] for argv in checks] == [
        ("iptables", "-w", "-t", "raw", "-C", "PREROUTING"),
        ("ip6tables", "-w", "-t", "raw", "-C", "PREROUTING"),
    ]


# -- topologies and files ---------------------------------------------------------------------

PIPE = (
    TWO_NAMESPACES
    + """
[[partitions]]
a = "red"
b = "blue"
a_addresses = ["192.168.1.1"]
b_addresses = ["192.168.1.2"]
"""
)


def test_a_partitions_entry_takes_a_backend_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [cut] = [r for r in loads(PIPE + 'backend = "nft"\n').topology.resources if isinstance(r, Partition)]
    assert cut.backend == "nft"
    path = tmp_path / "cut.toml"
    path.write_text(PIPE + 'backend = "nft"\n')
    assert cli.main(["plan", str(path)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    owner = re.search(r'comment "netns_kit:(cli\.cut[^"]*)"', out)
    assert owner is not None
    table = nft.table_name(Owner(owner[1]))
    chain = cut.chain
    assert (
        f"ip netns exec red nft -f - <<'EOF'\nadd table inet {table}\n"
        f"add chain inet {table} {chain} {{ type filter hook input priority filter; policy accept; }}\n"
        f'add rule inet {table} {chain} ip saddr 192.168.1.2 counter drop comment "netns_kit:{owner[1]}"\nEOF\n'
    ) in out
    assert "iptables" not in out
    assert cli.main(["plan", "--down", str(path)]) == cli.EXIT_OK
    assert f"ip netns exec blue nft -f - <<'EOF'\nflush chain inet {table} {chain}\n" in capsys.readouterr().out
    with pytest.raises(Exception, match=r"partitions\[0\]\.backend"):
        loads(PIPE + 'backend = "pf"\n')


def test_a_topology_with_a_nat_on_nft_keeps_its_chains_when_a_partition_heals() -> None:
    """Healed while up: the NAT's chains in the same table stay, the table too."""
    rec = Recorder()
    nat = NatRule("10.0.0.0/24", out_interface="eth0", netns="red", backend="nft")
    with Topology([Namespace("red"), nat], executor=rec):
        cut = Partition("red", "blue", a_addresses="10.0.0.1", b_addresses="10.0.0.2", backend="nft").create(rec)
        cut.heal(rec)
        healed = [cmd.stdin or "" for cmd in rec.commands if cmd.netns == "red"][-1]
        assert healed.splitlines() == [
            f"flush chain {T} {cut.chain}",
            f"delete chain {T} {cut.chain}",
        ]
    down = [cmd.stdin for cmd in rec.commands if cmd.stdin]
    assert down[-1].startswith(f"add table {T}\ndelete table {T}")  # the topology's table goes last


def test_a_topology_gives_its_firewall_to_partitions_and_loss_fallbacks() -> None:
    cut = Partition("a", "b", a_addresses="10.8.0.1", b_addresses="10.8.0.2")
    lossy = LinkImpairment.on(VETH, {"loss": "20%", "loss_via": "iptables"}, end="name")[0]
    topo = Topology([Namespace("a"), Namespace("b"), VETH, cut, lossy], firewall="nft")
    assert [r.backend for r in (*topo.of_type(Partition), *topo.of_type(LinkImpairment))] == ["nft", "nft"]
    plan = topo.plan()
    assert not any(c.argv[0] in ("iptables", "ip6tables") for c in plan.commands)
    stdin = [c.stdin or "" for c in plan.commands]
    assert sum("hook input priority filter" in s for s in stdin) == 2  # in a and in b
    assert sum("hook prerouting priority raw" in s for s in stdin) == 1  # in b


def test_cleanup_deletes_a_dead_owners_table_in_a_namespace_it_did_not_make() -> None:
    """A partition's drops sit in namespaces another owner made: cleanup looks in each one left."""
    tables = {None: "table inet netns_kit_1.1\n", "a": "table inet netns_kit_1.1\ntable inet other\n"}

    def machine(command: Command) -> str | None:
        if command.argv == ("ip", "-j", "netns", "list"):
            return json.dumps([{"name": "a"}])
        if command.argv == ("nft", "list", "tables"):
            return tables.get(command.netns, "")
        return None

    rec = Recorder(machine)
    report = cleanup(rec)
    assert report.removed == ["nft table inet netns_kit_1.1 (in the host)", "nft table inet netns_kit_1.1 (in a)"]
    delete = "add table inet netns_kit_1.1\ndelete table inet netns_kit_1.1\n"
    assert [(c.netns, c.argv, c.stdin) for c in rec.commands] == [
        (None, ("nft", "-f", "-"), delete),
        ("a", ("nft", "-f", "-"), delete),
    ]


def test_the_executors_firewall_and_the_environment_choose_where_none_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def programs(rec: Recorder) -> set[str]:
        Partition("a", "b", a_addresses="10.0.0.1", b_addresses="10.0.0.2").create(rec)
        LinkImpairment.on(VETH, {"loss": "20%", "loss_via": "iptables"}, end="name")[0].create(rec)
        return {cmd.argv[0] for cmd in rec.commands}

    assert programs(Recorder(firewall="nft")) == {"nft"}
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nft")
    assert programs(Recorder()) == {"nft"}
    assert programs(Recorder(firewall="iptables")) == {"iptables", "ip6tables"}


def test_an_impairments_entry_takes_a_backend_key() -> None:
    text = PIPE + (
        '[[impairments]]\ndev = "veth-red"\nnetns = "red"\npeer = "veth-blue"\npeer_netns = "blue"\n'
        'impairment = { loss = "5%", loss_via = "iptables" }\nbackend = "nft"\n'
    )
    [lossy] = [r for r in loads(text).topology.resources if isinstance(r, LinkImpairment)]
    assert lossy.backend == "nft"
    stdin = [c.stdin or "" for c in loads(text).topology.plan().commands if c.netns == "blue"]
    assert any("numgen random mod 1000000 < 50000 counter drop" in s for s in stdin)


def test_split_tables_hold_each_family_in_its_own_table_under_one_chain_name() -> None:
    """Where the kernel lacks inet NAT, auto picks ip and ip6 tables: the drops follow them."""
    drops = droprule.Drops("NK-PART-x-IN", ((4, ("-s", "10.0.0.2")), (6, ("-s", "fe80::2"))), "red")
    command = drops.nft(nft.Table.of(Owner.dry_run(), split=True), "netns_kit:dry-run")
    hook = "{ type filter hook input priority filter; policy accept; }"
    assert command.stdin == (
        "add table ip netns_kit_dry-run\nadd table ip6 netns_kit_dry-run\n"
        f"add chain ip netns_kit_dry-run NK-PART-x-IN {hook}\n"
        f"add rule ip netns_kit_dry-run NK-PART-x-IN ip saddr 10.0.0.2 counter drop {TAG}\n"
        f"add chain ip6 netns_kit_dry-run NK-PART-x-IN {hook}\n"
        f"add rule ip6 netns_kit_dry-run NK-PART-x-IN ip6 saddr fe80::2 counter drop {TAG}\n"
    )
    assert [u.stdin for u in command.undo] == [
        "flush chain ip6 netns_kit_dry-run NK-PART-x-IN\ndelete chain ip6 netns_kit_dry-run NK-PART-x-IN\n"
        "flush chain ip netns_kit_dry-run NK-PART-x-IN\ndelete chain ip netns_kit_dry-run NK-PART-x-IN\n"
    ]


def test_a_partition_of_namespaces_a_topology_makes_needs_their_addresses_given() -> None:
    """Else up() made the namespaces, failed reading their addresses, and rolled back."""
    with pytest.raises(ValidationError) as info:
        Topology([Namespace("a"), Namespace("b"), VETH, Partition("a", "b", b_addresses="10.0.0.2")])
    assert info.value.field == "Partition.a_addresses"
    assert "a topology plans before it makes anything" in str(info.value)
    with pytest.raises(Exception, match=r"partitions\[0\]\.b_addresses"):
        loads(PIPE.replace('b_addresses = ["192.168.1.2"]\n', ""))
    # adopted namespaces exist when the topology plans: read then
    Topology([Namespace("a", adopt=True), Namespace("b", adopt=True), Partition("a", "b")])


def test_an_undo_planned_twice_still_deletes_the_table() -> None:
    """A teardown plans every undo, and when one resource cannot plan its own (a LinkImpairment)
    drops that plan and undoes one resource at a time: the table delete must not get lost."""
    rec = Recorder()
    cut = Partition("a", "b", a_addresses="10.0.0.1", b_addresses="10.0.0.2", backend="nft")
    done = cut.plan(rec)
    first, second = cut.undo_plan(done), cut.undo_plan(done)
    assert first == second and [c.stdin for c in first or []].count(DELETE) == 2
    other = Partition("a", "c", a_addresses="10.0.0.1", b_addresses="10.0.0.3", backend="nft")
    other.plan(rec)
    cut.plan(rec)  # held again: what the last let-go said is forgotten
    assert [c.netns for c in cut.undo_plan(done) or [] if c.stdin == DELETE] == ["b"]  # a: other holds it


def test_the_record_of_a_whole_teardown_deletes_the_table_in_adopted_namespaces() -> None:
    """`netns-kit up` seals the whole teardown for `down` (another process): a partition on
    nft between namespaces the topology adopted leaves no table of the owner behind there."""
    from netns_kit.lifecycle import teardown

    rec = Recorder()
    cut = Partition("a", "b", a_addresses="10.0.0.1", b_addresses="10.0.0.2")
    topology = Topology([Namespace("a", adopt=True), Namespace("b", adopt=True), cut], firewall="nft").up(rec)
    assert topology.journal is not None
    planned = teardown.plan(topology.journal.units, lambda resource, done: resource.undo_record(done))
    assert planned is not None
    _, whole = planned
    assert [(c.netns, c.stdin) for c in whole.undo if c.stdin == DELETE] == [("a", DELETE), ("b", DELETE)]
    # the record changes nothing in this process: the topology's own teardown still deletes them
    mark = len(rec.commands)
    topology.down()
    assert sorted(c.netns or "" for c in rec.commands[mark:] if c.stdin == DELETE) == ["a", "b"]
