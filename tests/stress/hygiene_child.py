"""Host hygiene, run as a child inside a throwaway network namespace of its own (see
test_host_hygiene.py): the REAL executor (ShExecutor, no sandbox prefix) brings the soak
topology with every opt-in up and down on what is, for it, the host; it prints the
host's settings before and after as JSON.

Usage: python -m tests.stress.hygiene_child IP_FORWARD CYCLES
"""

from __future__ import annotations

import json
import sys
from typing import Any

import netns_kit
from netns_kit import Command, Host, NatRule, PortForward, ShExecutor
from netns_kit.ops import state
from netns_kit.topology import scenarios
from tests.integration.helpers import request, serve

SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv4.conf.default.route_localnet",
)
#: what the host holds before netns_kit comes: a DROP policy (Docker's) and rules of others
PRESET = [
    ("iptables", "-w", "-P", "FORWARD", "DROP"),
    ("iptables", "-w", "-A", "FORWARD", "-s", "198.51.100.0/24", "-j", "ACCEPT"),
    ("iptables", "-w", "-I", "FORWARD", "-d", "198.51.100.9/32", "-j", "DROP"),
    ("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "198.51.100.0/24", "-j", "MASQUERADE"),
    (
        "iptables",
        "-w",
        "-t",
        "nat",
        "-A",
        "PREROUTING",
        "-p",
        "tcp",
        "--dport",
        "9999",
        "-j",
        "DNAT",
        "--to-destination",
        "198.51.100.1:80",
    ),
    ("iptables", "-w", "-t", "raw", "-A", "PREROUTING", "-d", "198.51.100.2/32", "-j", "DROP"),
    ("ip6tables", "-w", "-A", "FORWARD", "-s", "2001:db8::/64", "-j", "ACCEPT"),
]


def settings(host: ShExecutor) -> dict[str, Any]:
    def out(*argv: str) -> str:
        return host.run(Command(argv, mutating=False)).stdout

    untagged = {
        tool: [line for line in out(tool).splitlines() if line.startswith("-A ") and "netns_kit:" not in line]
        for tool in ("iptables-save", "ip6tables-save")
    }
    return {
        "sysctl": {key: out("sysctl", "-n", key).strip() for key in SYSCTLS},
        "forward_policy": [
            line.split()[:2]
            for line in out("iptables-save", "-t", "filter").splitlines()
            if line.startswith(":FORWARD")
        ],
        "untagged_rules": untagged,
        "state": state.snapshot(host),
    }


def main() -> None:
    forward, cycles = sys.argv[1], int(sys.argv[2])
    host = ShExecutor()  # the real executor: this process's namespaces are its host
    host.run(Command(("ip", "link", "set", "dev", "lo", "up")))
    host.run(Command(("sysctl", "-q", "-w", f"net.ipv4.ip_forward={forward}")))
    for argv in PRESET:
        host.run(Command(argv))
    before = settings(host)
    answers, during = [], []
    with netns_kit.use(host):
        for _ in range(cycles):
            topo = scenarios.seed001_nat().add(*scenarios.outside())
            topo.resources = [r for r in topo.resources if not isinstance(r, NatRule | PortForward)]
            topo.add(
                NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0"),
                PortForward(
                    8080, "192.168.1.1", 80, bridge="v-net-0", bridge_port="veth-red", localhost=True, hairpin=True
                ),
            )
            with topo:
                serve(topo["red"], 80, "red")
                answers.append(request(Host(), "127.0.0.1", 8080))
                answers.append(request(topo[scenarios.OUTSIDE], scenarios.HOST_OUTSIDE_ADDRESS, 8080))
                during.append(
                    [Host().sysctl(k) for k in ("net.ipv4.ip_forward", "net.ipv4.conf.v-net-0.route_localnet")]
                )
    after = settings(host)
    print(json.dumps({"before": before, "after": after, "answers": answers, "during": during}))


if __name__ == "__main__":
    main()
