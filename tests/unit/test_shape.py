"""The one reader of argv shapes (netns_kit.shape): program, namespace, ip, iptables, sysctl."""

from __future__ import annotations

from netns_kit import shape
from netns_kit.command import Command, change, query
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall.nat import NatRule
from netns_kit.lifecycle.ledger import created_by
from netns_kit.resources.link import VethPair
from netns_kit.resources.namespace import Namespace
from netns_kit.resources.partition import Partition
from netns_kit.resources.route import Address


def test_program_and_arguments() -> None:
    assert shape.program(("ip", "link")) == "ip"
    assert shape.program(()) == ""
    assert shape.arguments(("ip", "link", "show")) == ("link", "show")
    assert Command(("tc", "qdisc")).program == "tc"


def test_in_netns_reads_both_ways_of_entering_a_namespace() -> None:
    assert shape.in_netns(("ip", "-n", "ns1", "link", "show")) == ("ns1", ("ip", "link", "show"))
    assert shape.in_netns(("tc", "-n", "ns1", "qdisc")) == ("ns1", ("tc", "qdisc"))
    assert shape.in_netns(("ip", "netns", "exec", "ns1", "sysctl", "-n", "k")) == ("ns1", ("sysctl", "-n", "k"))
    assert shape.in_netns(("ip", "netns", "add", "ns1")) == (None, ("ip", "netns", "add", "ns1"))
    for command in (query("iptables-save", netns="x"), query("ip", "-j", "link", netns="x"), query("ss", netns=None)):
        assert shape.in_netns(command.full_argv) == (command.netns, command.argv)


def test_iptables_shapes() -> None:
    fw = shape.iptables(("ip6tables", "-w", "-t", "nat", "-D", "PREROUTING", "-j", "NK-x"))
    assert fw == shape.Iptables("ip6tables", "nat", "-D", "PREROUTING", ("-j", "NK-x"))
    assert fw is not None and fw.family == 6
    assert shape.iptables(("iptables", "-N", "NK-y")) == shape.Iptables("iptables", "filter", "-N", "NK-y", ())
    assert shape.iptables(("iptables", "-w", "-t", "raw", "-F")) == shape.Iptables("iptables", "raw", "-F", None, ())
    assert shape.iptables(("iptables", "--table=mangle", "--append", "OUTPUT", "-j", "X")) == shape.Iptables(
        "iptables", "mangle", "-A", "OUTPUT", ("-j", "X")
    )
    assert shape.iptables(("iptables", "-S", "-v")) == shape.Iptables("iptables", "filter", "-S", None, ("-v",))
    assert shape.iptables(("iptables", "-V")) is None
    assert shape.iptables(("ip", "link")) is None
    assert shape.firewall_family(("iptables-legacy-save",)) == 4
    assert shape.firewall_family(("/usr/sbin/ip6tables-nft",)) == 6
    assert shape.firewall_family(("ip",)) is None


def test_iptables_reads_every_rule_command_a_nat_runs() -> None:
    rec = Recorder()
    NatRule("192.168.1.0/24", out_interface="eth0", executor=rec).create()
    read = [shape.iptables(c.argv) for c in rec.commands if c.program == "iptables"]
    assert read and all(r is not None and r.table in ("nat", "filter") for r in read)
    assert {r.verb for r in read if r is not None} >= {"-N", "-A"}
    assert all(r.chain is not None for r in read if r is not None)


def test_ip_shapes() -> None:
    read = shape.ip(("ip", "-6", "-n", "x", "addr", "add", "fd00::1/64", "dev", "v0"))
    assert read == shape.Ip(("-6", "-n", "x"), "addr", "add", ("fd00::1/64", "dev", "v0"))
    assert read is not None and read.device == "v0"
    assert shape.ip(("ip", "netns", "add", "n1")) == shape.Ip((), "netns", "add", ("n1",))
    assert shape.ip(("ip", "link")) == shape.Ip((), "link", None, ())
    assert shape.ip(("ip", "-j")) is None
    assert shape.ip(("tc", "qdisc")) is None
    assert shape.ip(("ip", "link", "show")) is not None
    assert shape.Ip((), "link", "show", ()).device is None


def test_ip_reads_what_resources_run() -> None:
    rec = Recorder()
    Namespace("n1", executor=rec).create()
    VethPair("v0", "v1", netns="n1", peer_netns="n1", executor=rec).create()
    read = [shape.ip(c.argv) for c in rec.commands if c.program == "ip"]
    assert read[0] == shape.Ip((), "netns", "add", ("n1",))
    assert ("link", "add") in [(r.object, r.verb) for r in read if r is not None]


def test_sysctl_reads_and_writes() -> None:
    assert shape.sysctl(("sysctl", "-n", "net.ipv4.ip_forward")) == shape.Sysctl("net.ipv4.ip_forward", None)
    assert shape.sysctl(change("sysctl", "-q", "-w", "net.ipv4.ip_forward=1").argv) == shape.Sysctl(
        "net.ipv4.ip_forward", "1"
    )
    assert shape.sysctl(("sysctl", "-w", "k=")) == shape.Sysctl("k", "")
    assert shape.sysctl(("sysctl", "-a")) is None
    assert shape.sysctl(("ip", "k=1")) is None


def test_planned_iptables_reads_only_the_planned_shape() -> None:
    argv = ("ip6tables", "-w", "-t", "nat", "-A", "PREROUTING", "-i", "v0", "-j", "NK-x")
    fw = shape.planned_iptables(argv)
    assert fw == shape.Iptables("ip6tables", "nat", "-A", "PREROUTING", ("-i", "v0", "-j", "NK-x"))
    assert fw is not None and fw.family == 6 and fw.last == "NK-x" and fw == shape.iptables(argv)
    assert fw.from_verb == ("-A", "PREROUTING", "-i", "v0", "-j", "NK-x")
    assert shape.Iptables("iptables", "raw", "-F", None, ()).from_verb == ("-F",)
    assert [shape.Iptables(tool, "raw", "-F", None, ()).family for tool in ("iptables", "ip6tables")] == [4, 6]
    assert [shape.Iptables(t, "raw", "-F", None, ()).family for t in ("/sbin/ip6tables-nft", "iptables-legacy")] == [
        6,
        4,
    ]
    deleted = shape.planned_iptables(("iptables", "-w", "-t", "filter", "-X", "NK-y"))
    assert deleted is not None and deleted.last == "NK-y" and deleted.spec == ()
    for other in (
        ("iptables", "-w", "-t", "nat", "--append", "X", "-j", "Y"),  # long verb: not planned
        ("iptables", "-t", "nat", "-w", "-A", "X", "-j", "Y"),
        ("iptables", "-w", "-t", "nat", "-F"),
        ("iptables-save", "-w", "-t", "nat", "-A", "X"),
        ("ip", "-w", "-t", "nat", "-A", "X"),
    ):
        assert shape.planned_iptables(other) is None, other


def test_planned_iptables_reads_every_rule_a_nat_plans() -> None:
    rec = Recorder()
    NatRule("192.168.1.0/24", out_interface="eth0", executor=rec).create()
    rules = [c.argv for c in rec.commands if c.program == "iptables"]
    assert rules and all(shape.planned_iptables(argv) == shape.iptables(argv) for argv in rules)


def test_with_verb_swaps_the_verb_only() -> None:
    argv = ("iptables", "-w", "-t", "filter", "-A", "FORWARD", "-s", "10.0.0.1", "-j", "DROP")
    assert shape.with_verb(argv, "-C") == (
        "iptables",
        "-w",
        "-t",
        "filter",
        "-C",
        "FORWARD",
        "-s",
        "10.0.0.1",
        "-j",
        "DROP",
    )
    assert shape.with_verb(("iptables", "-D", "-A", "-j", "X"), "-C") == ("iptables", "-C", "-A", "-j", "X")
    assert shape.with_verb(("iptables", "-t", "-A", "-I", "X"), "-C") == ("iptables", "-t", "-A", "-C", "X")
    assert shape.with_verb(("iptables", "-V"), "-C") is None


def test_sysctl_read_and_write_take_the_exact_shapes() -> None:
    assert shape.sysctl_read(("sysctl", "-n", "net.ipv4.ip_forward")) == "net.ipv4.ip_forward"
    assert shape.sysctl_read(("sysctl", "-n", "a", "b")) is None
    assert shape.sysctl_read(("sysctl", "-q", "-w", "a=1")) is None
    assert shape.sysctl_write(("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")) == shape.Sysctl(
        "net.ipv4.ip_forward", "1"
    )
    assert shape.sysctl_write(("sysctl", "-q", "-w", "k")) == shape.Sysctl("k", "")
    assert shape.sysctl_write(("sysctl", "-w", "k=1")) is None
    assert shape.sysctl_write(("sysctl", "-q", "-w", "k=1", "j=2")) is None
    assert shape.sysctl_write(("ip", "-q", "-w", "k=1")) is None


def test_a_partition_asks_whether_each_drop_rule_is_there_with_its_check() -> None:
    addrs = {"red": "10.0.0.1", "blue": "10.0.0.2"}

    def answer(command: Command) -> str | None:
        if command.argv == ("ip", "-j", "addr", "show"):
            address = addrs[command.netns or ""]
            return f'[{{"ifname": "{command.netns}-eth", "addr_info": [{{"local": "{address}"}}]}}]'
        return None

    rec = Recorder(answer)
    assert Partition("red", "blue").exists(rec)
    tag = "-m comment --comment netns_kit:dry-run -j DROP"
    assert [c.line for c in rec.queries if "iptables" in c.argv] == [
        f"ip netns exec red iptables -w -t filter -C INPUT -s 10.0.0.2 {tag}",
        f"ip netns exec blue iptables -w -t filter -C INPUT -s 10.0.0.1 {tag}",
    ]


def test_the_ledger_reads_what_an_add_made() -> None:
    assert created_by(change("ip", "netns", "add", "n1")) == ["n1"]
    veth = change("ip", "link", "add", "name", "a", "type", "veth", "peer", "name", "b", "netns", "n2", netns="n1")
    assert created_by(veth) == [("a", "n1"), ("b", "n2")]
    assert created_by(change("ip", "link", "add", "name", "a", "type", "veth", "peer", "name", "b")) == [
        ("a", None),
        ("b", None),
    ]
    assert created_by(change("ip", "link", "add", "name", "br0", "type", "bridge", netns="n1")) == [("br0", "n1")]
    for other in (("ip", "-6", "netns", "add", "x"), ("ip", "netns", "add"), ("ip", "link", "add", "a"), ("tc", "x")):
        assert created_by(change(*other)) == [], other


def test_an_address_is_undone_by_deleting_what_was_added() -> None:
    rec = Recorder()
    Address("eth0", ["fd00::1/64"], netns="n1").create(rec)
    assert [u.line for c in rec.commands for u in c.undo] == ["ip -n n1 addr del fd00::1/64 dev eth0"]


def test_netns_attach_reads_the_name_and_pid_and_nothing_else() -> None:
    assert shape.netns_attach(("ip", "netns", "attach", "web", "4242")) == ("web", "4242")
    assert shape.netns_attach(("ip", "netns", "add", "web")) is None
    assert shape.netns_attach(("ip", "netns", "attach", "web")) is None
    assert shape.netns_attach(("ip", "-n", "x", "netns", "attach", "web", "1")) is None
    assert shape.netns_attach(("tc", "netns", "attach", "web", "1")) is None
