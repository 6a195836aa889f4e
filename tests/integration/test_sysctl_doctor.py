"""``doctor`` reports forwarding that reads one value while conf/default and the interfaces
hold the other (what racing writes of ip_forward leave), with a fix that works."""

from __future__ import annotations

import shlex

from netns_kit import Command, query
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops.doctor import WARN, doctor


def forwarding(box: Sandbox) -> dict[str, bool]:
    return {e["interface"]: e["forwarding"] for e in box.run(query("ip", "-4", "-j", "netconf", "show")).json()}


def test_doctor_reports_ip_forward_on_that_forwards_nothing_and_its_fix_repairs_it() -> None:
    with Sandbox() as box:
        box.run(Command(("ip", "link", "add", "name", "veth-a", "type", "veth", "peer", "name", "veth-b")))
        assert doctor(box)["forwarding"].status == "ok"
        box.run(Command(("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")))
        assert doctor(box)["forwarding"].status == "ok"
        # the state a restore to 0 racing a set to 1 leaves: all=1, default and every interface 0
        for place in ("default", "lo", "veth-a", "veth-b"):
            box.run(Command(("sysctl", "-q", "-w", f"net.ipv4.conf.{place}.forwarding=0")))
        check = doctor(box)["forwarding"]
        assert check.status == WARN
        prefix, suffix = "net.ipv4.ip_forward reads 1, but forwarding is off on ", ": nothing is forwarded"
        assert check.summary.startswith(prefix) and check.summary.endswith(suffix)
        places = check.summary.removeprefix(prefix).removesuffix(suffix)
        assert sorted(places.split(", ")) == ["conf/default", "lo", "veth-a", "veth-b"]
        assert check.fix == (
            "sysctl -w net.ipv4.ip_forward=0 && sysctl -w net.ipv4.ip_forward=1 "
            "(which sets conf/default and every interface again)"
        )
        fix = check.fix.partition(" (")[0]
        for part in fix.split(" && "):
            box.run(Command(shlex.split(part)))
        assert set(forwarding(box).values()) == {True}
        assert doctor(box)["forwarding"].status == "ok"
        box.run(Command(("sysctl", "-q", "-w", "net.ipv4.ip_forward=0")))
        box.run(Command(("ip", "link", "del", "dev", "veth-a")))
