"""Reading ``nft -j`` back: tables, chains and rules; ours by name; who drops forwarded traffic.

The JSON texts are what nft 1.0.6 printed for these tables (kernel 6.18).
"""

from __future__ import annotations

import pytest

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit.command import Command
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall import nftread
from netns_kit.firewall.nftread import Drop, Ruleset, Table
from netns_kit.owner import Owner

META = '{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}'

TABLES = (
    '{"nftables": [' + META + ', {"table": {"family": "inet", "name": "netns_kit_4242.77", "handle": 1}}, '
    '{"table": {"family": "inet", "name": "netns_kitten", "handle": 2}}, '
    '{"table": {"family": "ip", "name": "docker-bridges", "handle": 3}}, '
    '{"table": {"family": "ip", "name": "netns_kit_dry-run", "handle": 4}}, '
    # nft 1.0.6 prints an owned table's flags wrong (its release name): kept verbatim, not trusted
    '{"table": {"family": "inet", "name": "netns_kit_55.3", "handle": 5, "flags": "Lester Gooch #5"}}]}'
)

OUR_TABLE = (
    '{"nftables": [' + META + ', {"table": {"family": "inet", "name": "netns_kit_4242.77", "handle": 1}}, '
    '{"chain": {"family": "inet", "table": "netns_kit_4242.77", "name": "NK-NAT-x-POST", "handle": 1, '
    '"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}, '
    '{"rule": {"family": "inet", "table": "netns_kit_4242.77", "chain": "NK-NAT-x-POST", "handle": 2, '
    '"comment": "netns_kit:4242.77", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", '
    '"field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 24}}}}, {"match": {"op": "==", '
    '"left": {"meta": {"key": "oifname"}}, "right": "eth0"}}, {"masquerade": null}]}}]}'
)

CHAINS = (
    '{"nftables": [' + META + ', {"chain": {"family": "inet", "table": "netns_kit_4242.77", "name": "NK-NAT-x-FWD", '
    '"handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}, '
    '{"chain": {"family": "ip", "table": "docker-bridges", "name": "filter-FORWARD", "handle": 1, '
    '"type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, '
    '{"chain": {"family": "ip", "table": "docker-bridges", "name": "nat-POSTROUTING", "handle": 4, '
    '"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}, '
    '{"chain": {"family": "inet", "table": "firewalld", "name": "filter_FORWARD", "handle": 9, '
    '"type": "filter", "hook": "forward", "prio": 10, "policy": "accept"}}]}'
)

DOCKER_FORWARD = (
    '{"nftables": [' + META + ', {"chain": {"family": "ip", "table": "docker-bridges", "name": "filter-FORWARD", '
    '"handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, '
    '{"rule": {"family": "ip", "table": "docker-bridges", "chain": "filter-FORWARD", "handle": 2, "expr": '
    '[{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, '
    '{"accept": null}]}}, '
    '{"rule": {"family": "ip", "table": "docker-bridges", "chain": "filter-FORWARD", "handle": 3, '
    '"comment": "DROP DIRECT ACCESS", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, '
    '"right": "docker0"}}, {"drop": null}]}}]}'
)

FIREWALLD_FORWARD = (
    '{"nftables": [' + META + ', {"chain": {"family": "inet", "table": "firewalld", "name": "filter_FORWARD", '
    '"handle": 9, "type": "filter", "hook": "forward", "prio": 10, "policy": "accept"}}, '
    '{"rule": {"family": "inet", "table": "firewalld", "chain": "filter_FORWARD", "handle": 12, "expr": '
    '[{"reject": {"type": "icmpx", "expr": "admin-prohibited"}}]}}]}'
)


def test_tables_come_back_with_handles() -> None:
    tables = Ruleset.from_json(TABLES).tables
    assert tables[0] == Table("inet", "netns_kit_4242.77", 1)
    assert tables[4].flags == ("Lester Gooch #5",)
    assert Ruleset.from_json("").tables == ()


def test_rules_come_back_with_handles_and_comments_verbatim() -> None:
    ruleset = Ruleset.from_json(OUR_TABLE)
    (chain,) = ruleset.chains
    assert (chain.name, chain.type, chain.hook, chain.prio, chain.policy) == (
        "NK-NAT-x-POST",
        "nat",
        "postrouting",
        100,
        "accept",
    )
    (rule,) = ruleset.tagged("netns_kit:4242.77")
    assert (rule.chain, rule.handle, rule.comment, rule.verdicts) == (
        "NK-NAT-x-POST",
        2,
        "netns_kit:4242.77",
        {"masquerade"},
    )
    assert ruleset.tagged("netns_kit:4242.7") == []


def test_our_tables_by_owner_and_never_a_decoy() -> None:
    tables = Ruleset.from_json(TABLES).tables
    ours = nftread.our_tables(tables)
    assert {owner.id: [t.name for t in mine] for owner, mine in ours.items()} == {
        "4242.77": ["netns_kit_4242.77"],
        "dry-run": ["netns_kit_dry-run"],
        "55.3": ["netns_kit_55.3"],
    }


def test_dead_tables_are_those_of_process_owners_not_alive_and_only_ours() -> None:
    tables = Ruleset.from_json(TABLES).tables
    live = {Owner("4242.77")}
    dead = nftread.dead_tables(tables, alive=lambda owner: owner in live)
    # a named owner's table (dry-run, cli.NAME) is never "gone": removed only when named
    assert [(t.family, t.name) for t in dead] == [("inet", "netns_kit_55.3")]


def test_dead_tables_by_default_asks_whether_the_process_runs() -> None:
    me = Owner.current()
    tables = [Table("inet", f"netns_kit_{me.id}"), Table("inet", "netns_kit_1.1"), Table("inet", "netns_kitten")]
    assert [t.name for t in nftread.dead_tables(tables)] == ["netns_kit_1.1"]


def test_cleanup_deletes_the_dead_tables_in_one_transaction() -> None:
    dead = [Table("ip", "netns_kit_1.1"), Table("ip6", "netns_kit_1.1")]
    command = nftread.delete_tables(dead, netns="red")
    assert isinstance(command, Command)
    assert (command.argv, command.netns) == (("nft", "-f", "-"), "red")
    assert command.stdin == (
        "add table ip netns_kit_1.1\ndelete table ip netns_kit_1.1\n"
        "add table ip6 netns_kit_1.1\ndelete table ip6 netns_kit_1.1\n"
    )
    assert nftread.delete_tables([]) is None


def test_forward_drops_name_the_table_chain_and_why_and_skip_ours() -> None:
    chains = Ruleset.from_json(CHAINS).chains
    rules = Ruleset.from_json(DOCKER_FORWARD).rules + Ruleset.from_json(FIREWALLD_FORWARD).rules
    drops = nftread.forward_drops(Ruleset(chains=chains, rules=rules))
    assert drops == [
        Drop("nft", "ip docker-bridges", "filter-FORWARD", "policy drop"),
        Drop("nft", "ip docker-bridges", "filter-FORWARD", "rule handle 3 drops (DROP DIRECT ACCESS)"),
        Drop("nft", "inet firewalld", "filter_FORWARD", "rule handle 12 drops (no comment)"),
    ]
    assert str(drops[0]) == "nft table ip docker-bridges chain filter-FORWARD: policy drop"


def test_iptables_forward_policy_drop_and_drop_rules() -> None:
    save = (
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A FORWARD -o docker0 -j DROP\n-A INPUT -j DROP\n-A FORWARD -j ACCEPT\nCOMMIT\n"
    )
    assert nftread.iptables_forward_drops(save) == [
        Drop("iptables", "filter", "FORWARD", "policy DROP"),
        Drop("iptables", "filter", "FORWARD", "-A FORWARD -o docker0 -j DROP"),
    ]
    assert nftread.iptables_forward_drops("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n") == []


def test_read_forward_drops_lists_chains_then_only_others_forward_chains() -> None:
    answers = {
        ("nft", "-j", "list", "chains"): CHAINS,
        ("nft", "-j", "list", "chain", "ip", "docker-bridges", "filter-FORWARD"): DOCKER_FORWARD,
        ("nft", "-j", "list", "chain", "inet", "firewalld", "filter_FORWARD"): FIREWALLD_FORWARD,
    }
    asked: list[tuple[str, ...]] = []

    def handler(command: Command) -> str:
        asked.append(command.argv)
        return answers[command.argv]

    drops = nftread.read_forward_drops(Recorder(handler=handler))
    assert asked == list(answers)  # not our table's chain, not a chain at another hook
    assert [(d.table, d.why) for d in drops] == [
        ("ip docker-bridges", "policy drop"),
        ("ip docker-bridges", "rule handle 3 drops (DROP DIRECT ACCESS)"),
        ("inet firewalld", "rule handle 12 drops (no comment)"),
    ]


@pytest.mark.parametrize("text", ["", "[]", '{"nftables": []}', '{"nftables": [' + META + "]}"])
def test_an_empty_answer_is_no_table(text: str) -> None:
    assert Ruleset.from_json(text) == Ruleset()


def test_an_owned_tables_spoiled_flags_are_dropped() -> None:
    # what nft 1.0.6 printed for a table made with "flags owner" (freed memory as the flags)
    spoiled = OUR_TABLE.replace('"handle": 1}}, {"chain"', '"handle": 1, "flags": "\x07}}\x01garbage"}}, {"chain"')
    assert Ruleset.from_json(spoiled) == Ruleset.from_json(OUR_TABLE)


def test_list_tables_reads_the_plain_text_list() -> None:
    text = "table inet netns_kit_4242.77\ntable ip docker-bridges\ntable inet netns_kitten\n"

    def handler(command: Command) -> str | None:
        return text if command.argv == ("nft", "list", "tables") else None

    assert nftread.list_tables(Recorder(handler=handler)) == [
        Table("inet", "netns_kit_4242.77"),
        Table("ip", "docker-bridges"),
        Table("inet", "netns_kitten"),
    ]


def test_a_table_whose_json_is_cut_short_is_read_chain_by_chain() -> None:
    post = (
        '{"chain": {"family": "inet", "table": "netns_kit_4242.77", "name": "NK-NAT-x-POST", "handle": 1, '
        '"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}'
    )
    firewalld = (
        '{"chain": {"family": "inet", "table": "firewalld", "name": "filter_FORWARD", "handle": 9, '
        '"type": "filter", "hook": "forward", "prio": 10, "policy": "accept"}}'
    )
    rule = OUR_TABLE[OUR_TABLE.index('{"rule"') :]
    answers = {
        # nft 1.0.6 stopped printing at an owned table's flags
        ("nft", "-j", "list", "table", "inet", "netns_kit_4242.77"): OUR_TABLE.split('"handle": 1}}')[0]
        + '"handle": 1, "flags": \n',
        ("nft", "-j", "list", "chains", "inet"): '{"nftables": [' + META + ", " + post + ", " + firewalld + "]}",
        ("nft", "-j", "list", "chain", "inet", "netns_kit_4242.77", "NK-NAT-x-POST"): '{"nftables": ['
        + META
        + ", "
        + post
        + ", "
        + rule,
    }
    asked: list[tuple[str, ...]] = []

    def handler(command: Command) -> str:
        asked.append(command.argv)
        return answers[command.argv]

    ruleset = nftread.list_table(Recorder(handler=handler), "inet", "netns_kit_4242.77")
    assert asked == list(answers)
    whole = Ruleset.from_json(OUR_TABLE)
    assert (ruleset.tables, ruleset.chains, ruleset.rules) == (
        (Table("inet", "netns_kit_4242.77"),),
        whole.chains,
        whole.rules,
    )
