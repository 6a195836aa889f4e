"""Issue 19 for real, in the sandbox: the userspace link emulator delays, jitters, reorders,
duplicates and corrupts packets between two namespaces, and leaves nothing behind.

Every test asks for ``via="userspace"``, so it runs the emulator on any kernel (with netem
too). Times are medians over many pings; the tolerances hold on a loaded 2-core machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import netns_kit
from netns_kit import Command, LinkImpairment, Namespace, Topology, VethPair
from netns_kit.executors.capability import Probe, has_netem
from netns_kit.executors.sandbox import Sandbox
from netns_kit.linkemu import probe
from netns_kit.ops import state
from netns_kit.resources.namespace import _Place

from .helpers import PY, firewall_backend, our_chains, wait_listening
from .traffic import binomial_bound, bulk_mbit, ping_loss, start_sink

ADDRESS = "10.8.0.2"

RECEIVE = """
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(60)
got = []
try:
    while True:
        data, _ = s.recvfrom(2048)
        got.append(int(data[:8]))
        s.settimeout(float(sys.argv[2]))
except socket.timeout:
    pass
print(json.dumps(got))
"""

SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(b"%08d" % i + b"x" * 92, (sys.argv[1], int(sys.argv[2])))
    time.sleep(float(sys.argv[4]))
"""


def veth() -> VethPair:
    return VethPair(
        "a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses=ADDRESS + "/24"
    )


def pipe() -> Topology:
    return Topology([Namespace("a"), Namespace("b"), veth()], wait=True)


def emulated(settings: dict[str, str | int], end: str = "name") -> list[LinkImpairment]:
    return LinkImpairment.on(veth(), {**settings, "via": "userspace"}, end=end)


@contextlib.contextmanager
def applied(impairments: list[LinkImpairment]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for impairment in impairments:
            stack.enter_context(impairment)
        yield


def emulators(tag: str) -> list[int]:
    """The pids of link emulators of this owner still running (the sandbox shares our pid namespace)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "netns_kit.linkemu" in argv and tag in argv and "--stop" not in argv:
            found.append(int(entry.name))
    return found


def queue_rules(netns: str) -> list[list[str]]:
    """The NFQUEUE rules in ``netns``'s mangle tables. iptables on either firewall backend
    (NETNS_KIT_FIREWALL=nft too): the emulator's queue rule has no nft form here, as this
    kernel's nf_tables has no ``queue`` (nft_queue), so the library keeps it on iptables."""
    out = []
    for tool in ("iptables-save", "ip6tables-save"):
        text = Namespace(netns).run([tool, "-t", "mangle"]).stdout
        out += [shlex.split(line) for line in text.splitlines() if "NFQUEUE" in line]
    return out


def rtts(place: _Place, count: int, interval: float = 0.02) -> list[float]:
    argv = ["ping", "-n", "-c", str(count), "-i", f"{interval:g}", "-W", "5", ADDRESS]
    out = place.run(argv, check=False, timeout=120).stdout
    return [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]


def udp_run(topo: Topology, count: int, gap: float = 0.001, port: int = 9500) -> list[int]:
    """Send ``count`` numbered datagrams from a to b; the numbers b received, in arrival order."""
    receiver = topo["b"].popen([PY, "-c", RECEIVE, str(port), "1.5"])
    wait_listening(topo["b"], port, udp=True)
    topo["a"].run([PY, "-c", SEND, ADDRESS, str(port), str(count), str(gap)], timeout=120)
    receiver.wait(90)
    return list(json.loads(receiver.stdout))


def snmp(netns: str) -> dict[str, dict[str, int]]:
    lines = Namespace(netns).run(["cat", "/proc/net/snmp"]).stdout.splitlines()
    out = {}
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        kind, *keys = names.split()
        out[kind.rstrip(":")] = dict(zip(keys, map(int, values.split()[1:]), strict=True))
    return out


@pytest.fixture(autouse=True)
def no_emulator_left(sb: Sandbox) -> Iterator[None]:
    yield
    left = emulators(sb.owner.tag)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"link emulators left running: {left}"


@pytest.mark.parametrize("delay", [20, 50, 100])
def test_rtt_rises_by_twice_the_delay_set_on_both_ends(sb: Sandbox, delay: int) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        base = statistics.median(rtts(topo["a"], 50))
        with applied(emulated({"delay": f"{delay}ms"}, end="both")):
            samples = rtts(topo["a"], 60)
        assert len(samples) == 60
        median = statistics.median(samples)
        print(f"delay {delay} ms both ways: RTT median {median:.2f} ms (no delay: {base:.3f} ms), "
              f"min {min(samples):.2f} max {max(samples):.2f}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
        assert abs(median - base - 2 * delay) <= 2.0, (median, base, samples)


def test_jitter_spreads_the_rtt_uniformly_around_the_delay(sb: Sandbox) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        with applied(emulated({"delay": "50ms", "jitter": "10ms"})):
            samples = rtts(topo["a"], 200)
        assert len(samples) == 200
        spread = statistics.pstdev(samples)
        print(f"50ms +- 10ms: RTT median {statistics.median(samples):.2f}, sd {spread:.2f} "
              f"(uniform: 5.77), min {min(samples):.2f}, max {max(samples):.2f}")  # fmt: skip
        assert 40 <= min(samples) < 43 and 58 < statistics.quantiles(samples, n=20)[-1] < 63
        assert 4.5 <= spread <= 7.5  # a loaded machine adds its own spread
        assert abs(statistics.median(samples) - 50) <= 2.5


def test_reordering_shows_as_out_of_order_arrivals_of_a_udp_sequence(sb: Sandbox) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        with applied(emulated({"delay": "20ms", "reorder": "25%", "gap": 5})):
            got = udp_run(topo, 400)
        assert sorted(got) == list(range(400))  # nothing lost, nothing doubled
        early = sum(1 for i, n in enumerate(got) if any(m < n for m in got[i + 1 :]))
        print(f"reorder 25% gap 5: {early} of 400 datagrams overtook others")
        # gap 5: at most one in 5 is a candidate; about one in 8 jumps the queue (4 + 1/0.25)
        assert 400 / 20 <= early <= 400 / 5, early


def test_duplication_shows_as_duplicate_datagrams(sb: Sandbox) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        with applied(emulated({"delay": "5ms", "duplicate": "20%"})):
            got = udp_run(topo, 500)
        assert set(got) == set(range(500))
        doubled = len(got) - 500
        low, high = binomial_bound(0.2, 500)
        print(f"duplicate 20%: {doubled} of 500 datagrams arrived twice")
        assert low * 500 <= doubled <= high * 500, doubled
        assert max(got.count(n) for n in set(got)) == 2  # a copy is not copied again


def test_corruption_shows_as_failed_udp_checksums_at_the_receiver(sb: Sandbox) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        with applied(emulated({"corrupt": "20%"})):
            before = snmp("b")
            got = udp_run(topo, 500)
            after = snmp("b")
        lost = 500 - len(got)
        low, high = binomial_bound(0.2, 500)
        udp_errors = after["Udp"]["InErrors"] - before["Udp"]["InErrors"]
        csum_errors = after["Udp"]["InCsumErrors"] - before["Udp"]["InCsumErrors"]
        print(f"corrupt 20%: {lost} of 500 datagrams lost, Udp InErrors +{udp_errors}, InCsumErrors +{csum_errors}")
        assert low * 500 <= lost <= high * 500, lost
        assert udp_errors == lost  # every corrupted datagram is refused by UDP ...
        assert csum_errors >= lost * 0.8  # ... nearly all by its checksum (a few by a bad length field)
        assert after["Ip"]["InHdrErrors"] == before["Ip"]["InHdrErrors"]  # the IP header stays intact


def test_a_tcp_transfer_completes_through_delay_and_loss(sb: Sandbox) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        with applied(emulated({"delay": "20ms", "jitter": "2ms", "loss": "2%"}, end="both")):
            start_sink(topo["b"], 9000)
            mbit = bulk_mbit(topo["a"], ADDRESS, 9000, 2_000_000)  # asserts every byte arrived
        print(f"2 MB through 20ms +- 2ms and 2% loss each way: {mbit:.2f} Mbit/s")


def test_teardown_removes_the_queue_rules_and_stops_the_emulator(sb: Sandbox) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        (delayed,) = emulated({"delay": "30ms"})
        delayed.create()
        assert delayed.exists() and delayed.queue_rule()
        rules = queue_rules("a")
        assert len(rules) == 2
        for rule in rules:
            assert rule[rule.index("--comment") + 1] == sb.owner.tag
            assert rule[rule.index("--queue-num") + 1] == str(delayed.queue_num)
            assert "--queue-bypass" not in rule
        if firewall_backend(topo["a"]) == "nft":
            assert our_chains(topo["a"]) == {}  # nft the default: still nothing of the emulator in nft
        assert len(emulators(sb.owner.tag)) == 1
        delayed.delete()
        assert queue_rules("a") == [] and emulators(sb.owner.tag) == []
        assert not delayed.exists()
        sent, received = ping_loss(topo["a"], ADDRESS, count=20, interval=0.01)
        assert received == sent


def test_an_emulator_that_dies_leaves_the_link_dropping_not_undelayed(sb: Sandbox) -> None:
    """Fail-closed: with the emulator gone, its rule still sends packets to the queue, where
    nothing serves them: they are dropped (counted by the rule), never sent without their delay."""
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        (delayed,) = emulated({"delay": "20ms"})
        with delayed:
            assert len(rtts(topo["a"], 5)) == 5
            assert delayed.emulator_alive()
            (pid,) = emulators(sb.owner.tag)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while emulators(sb.owner.tag) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not delayed.emulator_alive() and delayed.queue_rule()
            before = queued("a")
            sent, received = ping_loss(topo["a"], ADDRESS, count=20, interval=0.05)
            assert (sent, received) == (20, 0)
            assert queued("a") - before >= 20  # each echo request reached the queue rule, and went no further
        # teardown of a dead emulator: its stop finds nothing to stop, the rules go
        assert queue_rules("a") == []
        sent, received = ping_loss(topo["a"], ADDRESS, count=10, interval=0.01)
        assert received == sent


def queued(netns: str) -> int:
    """Packets counted by the IPv4 NFQUEUE rule in ``netns``."""
    out = Namespace(netns).run(["iptables", "-w", "-t", "mangle", "-L", "POSTROUTING", "-v", "-x", "-n"]).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if "NFQUEUE" in line)


def emulated_topology() -> Topology:
    topo = Topology([Namespace("a"), Namespace("b"), veth()])
    topo.add(*LinkImpairment.on(veth(), {"delay": "30ms", "loss": "1%", "rate": "10mbit", "via": "userspace"}))
    return topo


def test_the_dry_run_script_starts_the_emulator_and_its_teardown_stops_it() -> None:
    plan = emulated_topology().plan()
    script = plan.script()
    assert "-m netns_kit.linkemu --queue" in script and "--background" in script
    assert "-m netns_kit.linkemu --stop --queue" in plan.teardown_script()
    tag = netns_kit.Owner.dry_run().tag
    with Sandbox(owner=netns_kit.Owner.dry_run()) as by_library:
        empty = state.snapshot(by_library)
        topo = emulated_topology().up(by_library)
        library_state = state.snapshot(by_library)
        assert len(emulators(tag)) == 2
        topo.down()
        assert emulators(tag) == []
        assert state.diff(empty, state.snapshot(by_library)) == []
    with Sandbox() as by_script:
        by_script.run_script(script)
        assert state.diff(library_state, state.snapshot(by_script)) == []
        assert len(emulators(tag)) == 2
        out = by_script.run(Command(("ping", "-n", "-c", "20", "-i", "0.02", "-W", "5", ADDRESS), netns="a")).stdout
        samples = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
        assert len(samples) >= 15 and abs(statistics.median(samples) - 60) <= 3, samples
        by_script.run_script(plan.teardown_script())
        assert emulators(tag) == []
        assert state.diff(empty, state.snapshot(by_script)) == []


#: the README's example, as written there (issue 19: it runs for real, in CI)
RETRY_EXAMPLE = """
import sys

import netns_kit
from netns_kit import LinkImpairment, Namespace, Topology, VethPair

SERVER = \"\"\"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    data, peer = s.recvfrom(64)
    s.sendto(data, peer)
\"\"\"
CLIENT = \"\"\"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)                                 # the retry logic under test: 1 s, 5 tries
answered, retries, fastest = 0, 0, 9.9
for n in range(20):
    start = time.monotonic()
    for attempt in range(5):
        s.sendto(b"%d" % n, ("10.0.0.2", 5353))
        try:
            while s.recv(64) != b"%d" % n:        # a late answer to an earlier request
                pass
        except TimeoutError:
            retries += 1
            continue
        answered += 1
        fastest = min(fastest, time.monotonic() - start)
        break
print(f"answered {answered}/20, no answer under 400 ms: {fastest >= 0.4}")
\"\"\"

veth = VethPair("app-eth", "dns-eth", netns="app", peer_netns="dns",
                addresses="10.0.0.1/24", peer_addresses="10.0.0.2/24")
slow = LinkImpairment.on(veth, {"delay": "200ms", "loss": "5%"})   # both ways: 400 ms round trips

with netns_kit.Sandbox() as sandbox, netns_kit.use(sandbox):
    with Topology([Namespace("app"), Namespace("dns"), veth, *slow], wait=True) as topo:
        topo["dns"].popen([sys.executable, "-c", SERVER]).wait_port(5353, udp=True)
        print(topo["app"].run([sys.executable, "-c", CLIENT]).stdout, end="")
"""


def test_the_retry_example_gets_every_answer_through_200ms_and_5_percent_loss() -> None:
    result = subprocess.run([PY, "-c", RETRY_EXAMPLE], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "answered 20/20, no answer under 400 ms: True\n", result.stdout


def test_the_probe_finds_nfqueue_working_in_the_sandbox(sb: Sandbox) -> None:
    assert probe.nfqueue(sb) == Probe(True)
    which, why = probe.backend(sb)
    assert which == ("netem" if has_netem(sb) else "userspace"), why


CRASHING_CHILD = """
import os, signal, sys
import netns_kit
from netns_kit import LinkImpairment, Namespace, Topology, VethPair
from netns_kit.executors.sandbox import Sandbox

box = Sandbox.attach(int(sys.argv[1]))
veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
extra = [LinkImpairment("a-eth", {"delay": "20ms", "via": "userspace"}, netns=sys.argv[2] or None, queue=9)]
if sys.argv[2] == "":  # the impaired end in the sandbox's own namespace: no namespace deletion stops it
    veth = VethPair("a-eth", "b-eth", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
Topology([Namespace("a"), Namespace("b"), veth, *extra]).up(box)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("where", ["a", ""])
def test_crash_cleanup_removes_the_queue_rules_and_the_emulator_goes(sb: Sandbox, where: str) -> None:
    """The owner is SIGKILLed holding an emulated link: `netns-kit cleanup` removes the tagged
    queue rules and the devices; the emulator is stopped with its namespace, or exits by itself
    once its device is gone (in the sandbox's own namespace)."""
    before = state.snapshot(sb)
    child = subprocess.run([PY, "-c", CRASHING_CHILD, str(sb.pid), where], capture_output=True, timeout=120,
                           check=False)  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert len(emulators_of_queue(9)) == 1
    result = subprocess.run([PY, "-m", "netns_kit.cli", "cleanup", "--attach", str(sb.pid)], capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 10
    while emulators_of_queue(9) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulators_of_queue(9) == []
    assert state.diff(before, state.snapshot(sb)) == []


def emulators_of_queue(queue: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "netns_kit.linkemu" in argv and "--background" in argv and argv[argv.index("--queue") + 1] == str(queue):
            found.append(int(entry.name))
    return found


def test_a_rollback_stops_the_emulator_and_removes_its_rules(sb: Sandbox) -> None:
    before = state.snapshot(sb)
    failing = LinkImpairment("no-such-dev", {"rate": "1mbit"}, netns="b")
    topo = Topology([Namespace("a"), Namespace("b"), veth(), *emulated({"delay": "20ms"}), failing])
    with pytest.raises(netns_kit.CommandError, match="no-such-dev"):
        topo.up()
    assert emulators(sb.owner.tag) == []
    assert state.diff(before, state.snapshot(sb)) == []


def test_change_restarts_the_emulator_with_the_new_delay_and_clear_removes_it(sb: Sandbox) -> None:
    with pipe() as topo:
        topo["a"].wait_reachable(ADDRESS)
        (delayed,) = emulated({"delay": "20ms"})
        with delayed:
            assert abs(statistics.median(rtts(topo["a"], 30)) - 20) <= 2
            (first,) = emulators(sb.owner.tag)
            delayed.change({"delay": "60ms", "via": "userspace"})
            assert emulators(sb.owner.tag) != [first] and len(emulators(sb.owner.tag)) == 1
            assert abs(statistics.median(rtts(topo["a"], 30)) - 60) <= 2
            delayed.clear()
            assert queue_rules("a") == [] and emulators(sb.owner.tag) == []
            assert statistics.median(rtts(topo["a"], 30)) < 2


def test_ipv6_packets_are_delayed_and_duplicated_too(sb: Sandbox) -> None:
    link = VethPair(
        "a-eth", "b-eth", netns="a", peer_netns="b", addresses="fd00:8::1/64", peer_addresses="fd00:8::2/64"
    )
    with Topology([Namespace("a"), Namespace("b"), link], wait=True) as topo:
        topo["a"].wait_reachable("fd00:8::2")
        impaired = LinkImpairment.on(link, {"delay": "25ms", "duplicate": "30%", "via": "userspace"}, end="name")
        with applied(impaired):
            argv = ["ping", "-6", "-n", "-c", "200", "-i", "0.02", "-W", "5", "fd00:8::2"]
            out = topo["a"].run(argv, check=False, timeout=120).stdout
        samples = [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]
        doubled = int(re.search(r"\+(\d+) duplicates", out).group(1)) if "duplicates" in out else 0  # type: ignore[union-attr]
        print(
            f"IPv6, 25ms and 30% duplicates one way: RTT median {statistics.median(samples):.2f}, {doubled} duplicates"
        )
        assert abs(statistics.median(samples) - 25) <= 2
        low, high = binomial_bound(0.3, 200)
        assert low * 200 <= doubled <= high * 200, out
