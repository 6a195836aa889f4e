"""Partitions and pulled cables through the recorder."""

from __future__ import annotations

import json

import pytest

from netns_kit import Command, LinkDown, NetnsKitError, Partition, Recorder, Result, ValidationError, VethPair

ADDRS = {
    "red": [
        {"ifname": "lo", "addr_info": [{"local": "127.0.0.1"}, {"local": "::1"}]},
        {"ifname": "red-eth", "addr_info": [{"local": "10.0.0.1"}, {"local": "fd00::1"}, {"local": "fe80::1"}]},
    ],
    "blue": [{"ifname": "blue-eth", "addr_info": [{"local": "10.0.0.2"}, {"local": "fe80::2"}]}],
}


def addresses(command: Command) -> str | None:
    if command.argv == ("ip", "-j", "addr", "show"):
        return json.dumps(ADDRS.get(command.netns or "", []))
    return None


def test_partition_drops_what_arrives_from_the_other_side_in_both_namespaces() -> None:
    rec = Recorder(addresses)
    cut = Partition("red", "blue").create(rec)
    tag = "-m comment --comment netns_kit:dry-run -j DROP"
    # every address but loopback, link-local ones included, in both families
    assert rec.lines == [
        f"ip netns exec red iptables -w -t filter -I INPUT -s 10.0.0.2 {tag}",
        f"ip netns exec red ip6tables -w -t filter -I INPUT -s fe80::2 {tag}",
        f"ip netns exec blue iptables -w -t filter -I INPUT -s 10.0.0.1 {tag}",
        f"ip netns exec blue ip6tables -w -t filter -I INPUT -s fd00::1 {tag}",
        f"ip netns exec blue ip6tables -w -t filter -I INPUT -s fe80::1 {tag}",
    ]
    cut.heal(rec)
    assert rec.lines[5:] == [
        f"ip netns exec blue ip6tables -w -t filter -D INPUT -s fe80::1 {tag}",
        f"ip netns exec blue ip6tables -w -t filter -D INPUT -s fd00::1 {tag}",
        f"ip netns exec blue iptables -w -t filter -D INPUT -s 10.0.0.1 {tag}",
        f"ip netns exec red ip6tables -w -t filter -D INPUT -s fe80::2 {tag}",
        f"ip netns exec red iptables -w -t filter -D INPUT -s 10.0.0.2 {tag}",
    ]


def test_an_ipv4_only_side_is_cut_in_ipv6_too_by_its_link_local_addresses() -> None:
    """An IPv4 topology still speaks IPv6 on every link (fe80::, 169.254/16 when set):
    ``ping fe80::...%eth0`` must not pass a partition."""

    def v4_only(command: Command) -> str | None:
        links = {
            "a": [{"ifname": "a-eth", "addr_info": [{"local": "10.8.0.1"}, {"local": "fe80::a"}]}],
            "b": [
                {"ifname": "lo", "addr_info": [{"local": "127.0.0.1"}, {"local": "::1"}]},
                {"ifname": "b-eth", "addr_info": [{"local": "10.8.0.2"}, {"local": "fe80::b"}]},
                {"ifname": "b-eth2", "addr_info": [{"local": "169.254.7.7"}, {"local": "fe80::b"}]},
            ],
        }
        return json.dumps(links[command.netns or ""]) if command.argv[:2] == ("ip", "-j") else None

    rec = Recorder(v4_only)
    Partition("a", "b").create(rec)
    assert [(c.netns, c.argv[0], c.argv[c.argv.index("-s") + 1]) for c in rec.commands] == [
        ("a", "iptables", "10.8.0.2"),
        ("a", "ip6tables", "fe80::b"),  # once, though two links of b hold it
        ("a", "iptables", "169.254.7.7"),
        ("b", "iptables", "10.8.0.1"),
        ("b", "ip6tables", "fe80::a"),
    ]


def test_a_given_link_local_address_may_name_its_interface() -> None:
    rec = Recorder()
    Partition("a", "b", a_addresses=["10.8.0.1", "fe80::a%a-eth"], b_addresses="fe80::b").create(rec)
    assert [c.argv[c.argv.index("-s") + 1] for c in rec.commands] == ["fe80::b", "10.8.0.1", "fe80::a"]


def test_given_addresses_need_no_query_so_a_dry_run_can_print_them() -> None:
    rec = Recorder()
    Partition("red", "blue", a_addresses="10.0.0.1", b_addresses=["10.0.0.2", "10.0.1.2"]).create(rec)
    assert [line.split(" -m ")[0] for line in rec.lines] == [
        "ip netns exec red iptables -w -t filter -I INPUT -s 10.0.0.2",
        "ip netns exec red iptables -w -t filter -I INPUT -s 10.0.1.2",
        "ip netns exec blue iptables -w -t filter -I INPUT -s 10.0.0.1",
    ]
    assert rec.queries == []


def test_a_namespace_without_addresses_cannot_be_partitioned_and_says_how_to_fix_it() -> None:
    with pytest.raises(NetnsKitError, match=r"namespace blue has no address .*\(b_addresses="):
        Partition("red", "blue").create(Recorder())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"a": "red", "b": "red"}, "Partition.b"),
        ({"a": "red", "b": "blue", "a_addresses": "10.0.0.300"}, "Partition.a_addresses"),
        ({"a": "red", "b": "blue", "b_addresses": []}, "Partition.b_addresses"),
        ({"a": "red/x", "b": "blue"}, "Partition.a"),
    ],
)
def test_bad_partitions_are_refused_by_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Partition(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_partition_is_a_context_manager() -> None:
    rec = Recorder(addresses)
    with Partition("red", "blue", executor=rec):
        assert len(rec.commands) == 5
    assert len(rec.commands) == 10
    assert all(" -D INPUT " in c.line for c in rec.commands[5:])


def test_link_down_is_undone_by_link_up() -> None:
    rec = Recorder()
    pair = VethPair("red-eth", "blue-eth", netns="red", peer_netns="blue")
    with LinkDown.of(pair, executor=rec):
        assert rec.lines == ["ip -n red link set dev red-eth down"]
    assert rec.lines[1:] == ["ip -n red link set dev red-eth up"]


def test_link_down_heal_and_missing_device_on_heal() -> None:
    def gone(command: Command) -> Result | None:
        if command.argv[-1] == "up":
            return Result(command, 1, "", 'Cannot find device "red-eth"\n')
        return None

    rec = Recorder(gone)
    LinkDown("red-eth", netns="red").create(rec).heal(rec)  # the link went away: nothing to heal
    assert rec.lines == ["ip -n red link set dev red-eth down"]
