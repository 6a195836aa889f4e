"""The nft renderer: iptables rule specs as ONE nft transaction per change, exact texts."""

from __future__ import annotations

import pytest

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall import nft
from netns_kit.firewall.base import Firewall
from netns_kit.firewall.iptables import Chain, Hook, Rule
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.portforward import PortForward
from netns_kit.owner import Owner
from netns_kit.topology import scenarios

TAG = "netns_kit:dry-run"
TABLE = nft.Table.of(Owner.dry_run())


def _seed001_chains() -> list[Chain]:
    return [c for f in scenarios.seed001_nat().of_type(Firewall) for c in f.chains()]


def test_seed001_nat_and_port_forward_match_golden_files(golden) -> None:
    chains = _seed001_chains()
    golden("seed001_nat.up.nft", TABLE.add(chains, TAG).text)
    golden("seed001_nat.down.nft", TABLE.remove(chains).text)


def test_seed001_masquerade_is_scoped_like_the_iptables_rule() -> None:
    nat = NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0")
    assert TABLE.add(nat.chains()[:1], TAG).lines == (
        "add table inet netns_kit_dry-run",
        "add chain inet netns_kit_dry-run NK-NAT-2a7a2e2a23-POST "
        "{ type nat hook postrouting priority srcnat; policy accept; }",
        'add rule inet netns_kit_dry-run NK-NAT-2a7a2e2a23-POST ip saddr 192.168.1.0/24 oifname "eth0" '
        'masquerade comment "netns_kit:dry-run"',
    )


def test_one_table_line_per_family_and_one_transaction_for_a_resource() -> None:
    forward = PortForward(8080, "192.168.1.1", 80, bridge="v-net-0")
    command = TABLE.plan(forward.chains(), TAG)
    assert command.argv == ("nft", "-f", "-")
    assert command.stdin == TABLE.add(forward.chains(), TAG).text
    assert command.stdin.count("add table ") == 1
    (undo,) = command.undo
    assert undo.argv == ("nft", "-f", "-") and undo.missing_ok
    assert undo.stdin == (
        "flush chain inet netns_kit_dry-run NK-PF-5a5a25d417-FWD\n"
        "delete chain inet netns_kit_dry-run NK-PF-5a5a25d417-FWD\n"
        "flush chain inet netns_kit_dry-run NK-PF-5a5a25d417-OUT\n"
        "delete chain inet netns_kit_dry-run NK-PF-5a5a25d417-OUT\n"
        "flush chain inet netns_kit_dry-run NK-PF-5a5a25d417-PRE\n"
        "delete chain inet netns_kit_dry-run NK-PF-5a5a25d417-PRE\n"
    )


def test_a_dry_run_prints_the_transaction_as_a_here_document() -> None:
    recorder = Recorder()
    recorder.run(TABLE.plan(NatRule("10.0.0.0/24", bridge="br0", forward=False, name="lan").chains(), TAG))
    assert recorder.script().endswith(
        "nft -f - <<'EOF'\n"
        "add table inet netns_kit_dry-run\n"
        "add chain inet netns_kit_dry-run NK-NAT-lan-POST "
        "{ type nat hook postrouting priority srcnat; policy accept; }\n"
        'add rule inet netns_kit_dry-run NK-NAT-lan-POST ip saddr 10.0.0.0/24 oifname != "br0" '
        'masquerade comment "netns_kit:dry-run"\n'
        "EOF\n"
    )


def test_teardown_of_the_owner_is_deleting_its_table() -> None:
    assert TABLE.delete().text == "add table inet netns_kit_dry-run\ndelete table inet netns_kit_dry-run\n"
    split = nft.Table.of(Owner("42.7"), split=True)
    assert split.delete().lines == (
        "add table ip netns_kit_42.7",
        "delete table ip netns_kit_42.7",
        "add table ip6 netns_kit_42.7",
        "delete table ip6 netns_kit_42.7",
    )


def test_an_owned_table_keeps_its_flag_in_every_transaction() -> None:
    owned = nft.Table.of(Owner("42.7"), owned=True)
    assert owned.add([], TAG).lines == ()
    chain = Chain(4, "filter", "NK-X-a-FWD", (Rule(("-s", "10.0.0.0/8"), ("-j", "ACCEPT")),), (Hook("FORWARD"),))
    assert owned.add([chain], TAG).lines[0] == "add table inet netns_kit_42.7 { flags owner ; }"
    assert owned.delete().lines[0] == "add table inet netns_kit_42.7 { flags owner ; }"


def test_the_creation_line_says_the_flag_as_asked_else_as_the_table_is() -> None:
    plain, owned = nft.Table.of(Owner("42.7")), nft.Table.of(Owner("42.7"), owned=True)
    assert plain.create("inet", owned=True) == owned.create("inet") == "add table inet netns_kit_42.7 { flags owner ; }"
    assert owned.create("ip", owned=False) == plain.create("ip") == "add table ip netns_kit_42.7"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("add table inet netns_kit_42.7 { flags owner ; }", ("add", "table", "inet", "netns_kit_42.7")),
        ("add chain ip6 t NK-X { type filter hook forward priority filter; }", ("add", "chain", "ip6", "t")),
        ('add rule inet t c ip saddr 10.0.0.0/8 comment "x"', ("add", "rule", "inet", "t")),
        ("flush chain inet t c", ("flush", "chain", "inet", "t")),
        ("delete table inet t", ("delete", "table", "inet", "t")),
        ("add table t", None),  # the family left out
        ("list ruleset", None),
        ("", None),
    ],
)
def test_target_of_a_line(line: str, expected: tuple[str, str, str, str] | None) -> None:
    assert nft.target(line) == expected


def test_localhost_hairpin_and_guard_of_a_udp_port_forward() -> None:
    forward = PortForward(
        8080, "192.168.1.1", 80, protocol="udp", bridge="v-net-0", bridge_port="veth-red", localhost=True, hairpin=True
    )
    rules = [line.split(" ", 5)[5] for line in TABLE.add(forward.chains(), TAG).lines if line.startswith("add rule")]
    chains = [line.split()[5:] for line in TABLE.add(forward.chains(), TAG).lines if line.startswith("add chain")]
    comment = f' comment "{TAG}"'
    assert [r.removesuffix(comment) for r in rules] == [
        "ip daddr != 127.0.0.0/8 fib daddr type local udp dport 8080 dnat ip to 192.168.1.1:80",
        "ip daddr != 127.0.0.0/8 fib daddr type local udp dport 8080 dnat ip to 192.168.1.1:80",
        "ip daddr 127.0.0.0/8 udp dport 8080 dnat ip to 192.168.1.1:80",
        'ip saddr 127.0.0.0/8 ip daddr 192.168.1.1 oifname "v-net-0" udp dport 80 masquerade',
        "ip saddr 192.168.1.1 ip daddr 192.168.1.1 udp dport 80 masquerade",
        'ip daddr 192.168.1.1 oifname "v-net-0" udp dport 80 ct status dnat accept',
        'ip saddr 192.168.1.1 iifname "v-net-0" udp sport 80 ct state related,established accept',
        'iifname "v-net-0" ip daddr 127.0.0.0/8 drop',
    ]
    assert all(r.endswith(comment) for r in rules)
    assert [c[:7] for c in chains] == [
        ["{", "type", "nat", "hook", "prerouting", "priority", "dstnat;"],
        ["{", "type", "nat", "hook", "output", "priority", "-100;"],
        ["{", "type", "nat", "hook", "postrouting", "priority", "srcnat;"],
        ["{", "type", "filter", "hook", "forward", "priority", "filter;"],
        ["{", "type", "filter", "hook", "prerouting", "priority", "raw;"],
    ]


def test_ipv6_chains_are_named_apart_in_an_inet_table_and_dnat_says_its_family() -> None:
    forward = PortForward(8080, "fd00:1::1", 80, address="fd00::9", in_interface="eth0", forward=False, name="six")
    assert TABLE.add(forward.chains(), TAG).lines[1:3] == (
        "add chain inet netns_kit_dry-run NK-PF-six-PRE-6 { type nat hook prerouting priority dstnat; policy accept; }",
        'add rule inet netns_kit_dry-run NK-PF-six-PRE-6 iifname "eth0" ip6 daddr fd00::9 tcp dport 8080 '
        'dnat ip6 to [fd00:1::1]:80 comment "netns_kit:dry-run"',
    )
    split = nft.Table("netns_kit_dry-run", split=True)
    assert split.add(forward.chains(), TAG).lines[:3] == (
        "add table ip6 netns_kit_dry-run",
        "add chain ip6 netns_kit_dry-run NK-PF-six-PRE { type nat hook prerouting priority dstnat; policy accept; }",
        'add rule ip6 netns_kit_dry-run NK-PF-six-PRE iifname "eth0" ip6 daddr fd00::9 tcp dport 8080 '
        'dnat to [fd00:1::1]:80 comment "netns_kit:dry-run"',
    )


@pytest.mark.parametrize(
    ("words", "version", "expected"),
    [
        # the loss fallback: a random share, and no address, so the family is said
        (
            ("-i", "peer", "-m", "statistic", "--mode", "random", "--probability", "0.05", "-j", "DROP"),
            4,
            'meta nfproto ipv4 iifname "peer" numgen random mod 1000000 < 50000 drop',
        ),
        (
            ("-i", "peer", "-m", "statistic", "--mode", "random", "--probability", "0.125", "-j", "DROP"),
            6,
            'meta nfproto ipv6 iifname "peer" numgen random mod 1000000 < 125000 drop',
        ),
        # a partition
        (("-s", "fe80::1", "-j", "DROP"), 6, "ip6 saddr fe80::1 drop"),
        # the userspace emulator's queue
        (("-o", "veth0", "-j", "NFQUEUE", "--queue-num", "7"), 4, 'meta nfproto ipv4 oifname "veth0" queue num 7'),
        (("-p", "udp", "-j", "ACCEPT"), 4, "meta nfproto ipv4 meta l4proto udp accept"),
        (
            ("!", "-o", "br0", "-s", "10.0.0.0/8", "-j", "MASQUERADE"),
            4,
            'oifname != "br0" ip saddr 10.0.0.0/8 masquerade',
        ),
    ],
)
def test_translate(words: tuple[str, ...], version: int, expected: str) -> None:
    assert nft.translate(words, version) == expected


@pytest.mark.parametrize(
    "words",
    [
        ("-m", "addrtype", "--dst-type", "NONSENSE", "-j", "ACCEPT"),
        ("-m", "mark", "--mark", "1", "-j", "ACCEPT"),
        ("--dport", "80", "-j", "ACCEPT"),
        ("-j", "LOG"),
        ("-m", "conntrack", "--ctstate", "DNAT,ESTABLISHED", "-j", "ACCEPT"),
        ("-s",),
    ],
)
def test_what_it_cannot_translate_is_refused_by_name(words: tuple[str, ...]) -> None:
    with pytest.raises(nft.Untranslatable):
        nft.translate(words, 4)


def test_a_chain_hooked_twice_gets_a_base_chain_per_hook_with_the_hook_matches() -> None:
    chain = Chain(
        4,
        "filter",
        "NK-X-a-IN",
        (Rule(("-s", "10.0.0.1"), ("-j", "DROP")),),
        (Hook("INPUT"), Hook("FORWARD", matches=("-o", "br0"))),
    )
    assert TABLE.add([chain], TAG).lines[1:] == (
        "add chain inet netns_kit_dry-run NK-X-a-IN-INPUT { type filter hook input priority filter; policy accept; }",
        'add rule inet netns_kit_dry-run NK-X-a-IN-INPUT ip saddr 10.0.0.1 drop comment "netns_kit:dry-run"',
        "add chain inet netns_kit_dry-run NK-X-a-IN-FORWARD "
        "{ type filter hook forward priority filter; policy accept; }",
        'add rule inet netns_kit_dry-run NK-X-a-IN-FORWARD oifname "br0" ip saddr 10.0.0.1 drop '
        'comment "netns_kit:dry-run"',
    )


@pytest.mark.parametrize(
    ("name", "owner"),
    [
        ("netns_kit_4242.77", "4242.77"),
        ("netns_kit_dry-run", "dry-run"),
        ("netns_kitten", None),
        ("docker-bridges", None),
        ("netns_kit_", None),
        ("netns_kit_a/b", None),
        ("NETNS_KIT_1.2", None),
    ],
)
def test_owner_of_a_table_name(name: str, owner: str | None) -> None:
    found = nft.owner_of(name)
    assert (found.id if found else None) == owner


def test_transaction_one_line_for_an_interactive_session() -> None:
    transaction = nft.Transaction(("add table inet t", "add chain inet t c"))
    assert transaction.one_line == "add table inet t ; add chain inet t c"
    assert transaction.text == "add table inet t\nadd chain inet t c\n"
    assert (transaction + nft.Transaction(("delete table inet t",))).lines[-1] == "delete table inet t"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0x1/0x1", "meta mark & 0xfffffffe | 0x1"),
        ("0x10/0xf0", "meta mark & 0xffffff0f | 0x10"),
        ("0x0/0x1", "meta mark & 0xfffffffe"),
        ("0x5", "0x5"),
        ("7/0xff", "meta mark & 0xffffff00 | 0x7"),
        ("0x3/0x1", None),  # bits outside the mask
        ("0x1/0", None),
        ("mark", None),
        ("0x100000000", None),
    ],
)
def test_accept_mark_sets_only_the_bits_of_its_mask(value: str, expected: str | None) -> None:
    assert nft._mark(value) == expected


def test_with_an_accept_mark_forward_accepts_mark_their_packets_before_the_others_filter_chains() -> None:
    table = nft.Table.of(Owner("42.7"), accept_mark="0x1/0x1")
    forward = PortForward(8080, "192.168.1.1", 80, bridge="v-net-0", name="web")
    lines = table.add(forward.chains(), TAG).lines
    assert lines[5:] == (
        "add chain inet netns_kit_42.7 NK-PF-web-FWD { type filter hook forward priority filter - 1; policy accept; }",
        'add rule inet netns_kit_42.7 NK-PF-web-FWD ip daddr 192.168.1.1 oifname "v-net-0" tcp dport 80 ct status dnat '
        'meta mark set meta mark & 0xfffffffe | 0x1 accept comment "netns_kit:dry-run"',
        'add rule inet netns_kit_42.7 NK-PF-web-FWD ip saddr 192.168.1.1 iifname "v-net-0" tcp sport 80 '
        'ct state related,established meta mark set meta mark & 0xfffffffe | 0x1 accept comment "netns_kit:dry-run"',
    )
    # the NAT chains are as without the mark
    assert lines[:5] == nft.Table.of(Owner("42.7")).add(forward.chains(), TAG).lines[:5]
    with pytest.raises(ValueError):
        nft.Table.of(Owner("42.7"), accept_mark="0x3/0x1")
