"""The helpers that say "blocked" (tests/integration/traffic.py) can fail: an open path, a silent
path with nothing dropped, and a dead control each fail them; the drop counters count exactly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netns_kit import Namespace, Partition, Topology, VethPair
from netns_kit.executors.sandbox import Sandbox

from .helpers import PY, request, serve
from .traffic import assert_dropped, assert_unanswered, dropped, nft_dropped

SEND6 = """
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    deadline = time.monotonic() + 10
    while True:  # the link-local source address is tentative for a moment after the link comes up
        try:
            s.sendto(b"x", ("ff02::1%a-eth", 9))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def pipe(sb: Sandbox) -> Iterator[Topology]:
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    with Topology([Namespace("a"), Namespace("b"), veth], wait=True) as topo:
        topo["a"].wait_reachable("10.8.0.2")
        yield topo


def test_dropped_counts_drop_rules_and_drop_policies_of_both_families(pipe: Topology) -> None:
    a, b = pipe["a"], pipe["b"]
    rule = ["INPUT", "-s", "10.8.0.1", "-j", "DROP"]
    b.run(["iptables", "-w", "-A", *rule], mutating=True)
    before = dropped(b)
    assert not a.ping("10.8.0.2", count=3, timeout=0.2)
    assert dropped(b) - before == 3
    b.run(["iptables", "-w", "-D", *rule], mutating=True)
    b.run(["iptables", "-w", "-P", "INPUT", "DROP"], mutating=True)
    before = dropped(b)
    assert not a.ping("10.8.0.2", count=2, timeout=0.2)
    assert dropped(b) - before == 2
    b.run(["iptables", "-w", "-P", "INPUT", "ACCEPT"], mutating=True)
    rule6 = ["INPUT", "-p", "udp", "--dport", "9", "-j", "DROP"]
    b.run(["ip6tables", "-w", "-A", *rule6], mutating=True)
    before = dropped(b)
    a.run([PY, "-c", SEND6, "1", "0"])
    assert dropped(b) - before == 1
    b.run(["ip6tables", "-w", "-D", *rule6], mutating=True)


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_dropped_counts_a_partitions_drops_on_either_backend_by_family(pipe: Topology, backend: str) -> None:
    """On nft the drops are the counters of the owner's table (IPv4 chain ``NK-PART-...-IN``,
    IPv6 ``...-IN-6``): counted there, by family, and never twice (iptables-nft's own tables
    are iptables'); on iptables that table is not there and counts nothing."""
    a, b = pipe["a"], pipe["b"]
    with Partition("a", "b", backend=backend):
        before4, before6 = dropped(b, families=[4]), dropped(b, families=[6])
        assert not a.ping("10.8.0.2", count=3, timeout=0.2)
        a.run([PY, "-c", SEND6, "2", "0"])  # from a's link-local address, which b's partition drops
        assert dropped(b, families=[4]) - before4 == 3
        assert dropped(b, families=[6]) - before6 == 2
        assert nft_dropped(b) == (dropped(b) if backend == "nft" else 0)


def test_assert_dropped_fails_on_an_open_path(pipe: Topology) -> None:
    serve(pipe["b"], 8000, "b")
    with pytest.raises(AssertionError, match=r"was reached: 'b 10\.8\.0\.1 hello'"):
        assert_dropped(pipe["a"], "10.8.0.2", 8000, by=[pipe["a"], pipe["b"]])


def test_assert_dropped_fails_where_nothing_answers_but_nothing_was_dropped(pipe: Topology) -> None:
    """10.8.0.99 does not exist: silence, with no rule to show for it."""
    with pytest.raises(AssertionError, match=r"only 0 packet\(s\) were dropped"):
        assert_dropped(pipe["a"], "10.8.0.99", by=[pipe["a"], pipe["b"]], tries=1)


def test_a_slow_answer_is_not_taken_for_a_blocked_path(pipe: Topology) -> None:
    """What the old checks (no answer within 0.3-1 s) called blocked: a server that answers in 1.5 s."""
    serve(pipe["b"], 8000, "b", slow=1.5)
    assert request(pipe["a"], "10.8.0.2", 8000, timeout=0.5, attempts=2) is None  # the old check: "blocked"
    with pytest.raises(AssertionError, match="nothing shows they were blocked rather than slow"):
        assert_dropped(pipe["a"], "10.8.0.2", 8000, by=[pipe["a"], pipe["b"]], tries=1)
    with pytest.raises(AssertionError, match=r"was reached: 'b 10\.8\.0\.1 hello'"):
        assert_unanswered(pipe["a"], "10.8.0.2", 8000, control=lambda: True)


def test_drops_of_the_other_family_do_not_stand_in_for_the_tries(pipe: Topology) -> None:
    """IPv6 packets dropped meanwhile (link chatter a partition also cuts) while IPv4 is only slow."""
    a, b = pipe["a"], pipe["b"]
    serve(b, 8000, "b", slow=1.5)
    b.run(["ip6tables", "-w", "-A", "INPUT", "-p", "udp", "--dport", "9", "-j", "DROP"], mutating=True)
    chatter = a.popen([PY, "-c", SEND6, "200", "0.05"])
    try:
        with pytest.raises(AssertionError, match="nothing shows they were blocked rather than slow"):
            assert_dropped(a, "10.8.0.2", 8000, by=[a, b], tries=1)
        assert dropped(b, families=[6]) > 0  # the chatter was dropped all along
    finally:
        chatter.stop()
        b.run(["ip6tables", "-w", "-D", "INPUT", "-p", "udp", "--dport", "9", "-j", "DROP"], mutating=True)


def test_assert_dropped_passes_through_a_partition(pipe: Topology) -> None:
    with Partition("a", "b"):
        assert_dropped(pipe["a"], "10.8.0.2", by=[pipe["a"], pipe["b"]])


def test_assert_unanswered_fails_on_an_open_path_or_a_dead_control(pipe: Topology) -> None:
    a = pipe["a"]
    with pytest.raises(AssertionError, match="was reached"):
        assert_unanswered(a, "10.8.0.2", control=lambda: True)
    with pytest.raises(AssertionError, match="control request on an open path went unanswered"):
        assert_unanswered(a, "10.8.0.99", control=lambda: a.ping("10.8.0.98", timeout=0.2), wait=0.5)
    assert_unanswered(a, "10.8.0.99", control=lambda: a.ping("10.8.0.2"), wait=0.5)
