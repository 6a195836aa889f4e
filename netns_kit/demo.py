"""``netns-kit demo``: the seed-001 story built for real in a sandbox, checked with traffic,
torn down: three namespaces on bridge v-net-0, NAT to an outside namespace, and the
host's port 8080 forwarded to red's port 80."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TextIO

from netns_kit.executors.base import use
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.resources.namespace import Host, _Place
from netns_kit.topology import scenarios
from netns_kit.topology.topology import Topology

#: a TCP server answering "<name> <peer address>" to each connection
_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
while True:
    c, peer = s.accept()
    c.sendall(f"{sys.argv[2]} {peer[0]}".encode())
    c.close()
"""
_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
print(c.recv(200).decode())
"""


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def check(self, what: str, ok: Callable[[], bool]) -> None:
        started = time.monotonic()
        try:
            passed = ok()
        except Exception as error:
            passed, what = False, f"{what} ({error})"
        mark = "ok  " if passed else "FAIL"
        self.say(f"  [{mark}] {what}  ({(time.monotonic() - started) * 1000:.0f} ms)")
        self.failures += not passed


def run(out: TextIO) -> int:
    """Run the demo; returns the exit code (0: every check passed)."""
    report = _Report(out)
    topo = scenarios.seed001_story()
    topo.wait = True
    report.say("netns_kit demo: seed 001, three namespaces on bridge v-net-0, NAT to an outside")
    report.say("namespace through the host's eth0, host port 8080 forwarded to red:80; built in a sandbox\n")
    report.say("The equivalent shell script (netns-kit plan):\n")
    plan = topo.plan()
    report.say("    " + plan.script().rstrip().replace("\n", "\n    "))
    report.say()
    with Sandbox() as sandbox, use(sandbox):
        kind = "rootless (user namespace)" if sandbox.rootless else "as root"
        report.say(f"Sandbox holder pid {sandbox.pid}, {kind}; nothing touches this machine's network.")
        before = state.snapshot(sandbox)
        started = time.monotonic()
        with topo:
            report.say(f"Built {len(plan.commands)} commands in {time.monotonic() - started:.2f} s. Checks:")
            _check_bridge(report, topo)
            _check_nat(report, topo)
        after = state.snapshot(sandbox)
        problems = state.diff(before, after)
        report.check(
            "torn down: state (links, routes, iptables, sysctls) equals the state before", lambda: not problems
        )
        for problem in problems:
            report.say(f"    {problem}")
    report.say()
    report.say("All checks passed." if not report.failures else f"{report.failures} check(s) FAILED.")
    return 1 if report.failures else 0


def _check_bridge(report: _Report, topo: Topology) -> None:
    names = scenarios.SEED001_NAMESPACES
    addresses = {name: f"192.168.1.{i}" for i, name in enumerate(names, start=1)}
    for a, b in itertools.permutations(names, 2):
        report.check(f"{a} -> {b} ({addresses[b]})", partial(_reach, topo[a], addresses[b]))
    for name in names:
        report.check(f"{name} -> host (192.168.1.254)", partial(_reach, topo[name], "192.168.1.254"))
        report.check(f"host -> {name} ({addresses[name]})", partial(_reach, Host(), addresses[name]))


def _check_nat(report: _Report, topo: Topology) -> None:
    outside, red = topo[scenarios.OUTSIDE], topo["red"]
    out_addr, host_addr = scenarios.OUTSIDE_ADDRESS, scenarios.HOST_OUTSIDE_ADDRESS
    outside.popen([sys.executable, "-c", _SERVER, "9000", "outside"])
    red.popen([sys.executable, "-c", _SERVER, "80", "red"])
    for name in scenarios.SEED001_NAMESPACES:
        report.check(
            f"{name} -> outside server {out_addr}:9000, which sees the host's {host_addr} (MASQUERADE)",
            partial(_answers, topo[name], out_addr, 9000, f"outside {host_addr}"),
        )
    report.check(
        f"outside -> host {host_addr}:8080 is answered by red:80 (port forward)",
        partial(_answers, outside, host_addr, 8080, f"red {out_addr}"),
    )
    report.check(
        f"host itself -> {host_addr}:8080 is answered by red:80 (OUTPUT DNAT)",
        partial(_answers, Host(), host_addr, 8080, f"red {host_addr}"),
    )


def _reach(place: _Place, address: str) -> bool:
    place.wait_reachable(address, timeout=5.0)
    return True


def _answers(place: _Place, address: str, port: int, expected: str, timeout: float = 10.0) -> bool:
    """True once a TCP client here gets ``expected`` (servers may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        result = place.run([sys.executable, "-c", _CLIENT, address, str(port)], check=False)
        if result.ok:
            answer = result.stdout.strip()
            if answer != expected:
                raise AssertionError(f"answer {answer!r}, expected {expected!r}")
            return True
        if time.monotonic() >= deadline:
            raise AssertionError(f"no answer from {address}:{port} within {timeout:g} s")
        time.sleep(0.05)
