"""The one reader of argv shapes (netns_kit.shape): program, namespace, ip, iptables, sysctl."""

from __future__ import annotations

from netns_kit import shape
from netns_kit.command import Command, change, query
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall.nat import NatRule
from netns_kit.resources.link import VethPair
from netns_kit.resources.namespace import Namespace


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
