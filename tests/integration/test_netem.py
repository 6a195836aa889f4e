"""What needs the netem qdisc: delay, jitter, netem loss, duplication, reordering, corruption.

Every test here is marked ``needs("netem")``: tests/conftest.py probes the kernel in a
sandbox (the session header says what it found). Where netem is missing they FAIL,
unless ``NETNS_KIT_NO_NETEM=1`` leaves them out on purpose: then they are deselected
and the end of the run lists them under "NOT RUN". Nothing here is ever counted as
passing, or silently skipped, without running.
"""

from __future__ import annotations

import re
import statistics

import pytest

from netns_kit import Impairment, LinkImpairment, Namespace, Topology, VethPair
from netns_kit.executors.capability import has_netem
from netns_kit.executors.sandbox import Sandbox

from .traffic import binomial_bound, ping_loss

pytestmark = pytest.mark.needs("netem")


def pipe() -> tuple[Topology, VethPair]:
    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", addresses="10.8.0.1/24", peer_addresses="10.8.0.2/24")
    return Topology([Namespace("a"), Namespace("b"), veth], wait=True), veth


def rtts_ms(count: int = 20) -> list[float]:
    out = Namespace("a").run(["ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2", "10.8.0.2"], check=False)
    return [float(m) for m in re.findall(r"time=([\d.]+) ms", out.stdout)]


def test_the_probe_agrees_that_this_kernel_has_netem(sb: Sandbox) -> None:
    assert has_netem(sb)


def test_measured_rtt_rises_by_the_configured_delay_and_falls_after_a_change(sb: Sandbox) -> None:
    topo, veth = pipe()
    with topo:
        topo["a"].wait_reachable("10.8.0.2")
        base = min(rtts_ms())
        (delay,) = LinkImpairment.on(veth, {"delay": "100ms"}, end="name")
        with delay:
            slow = rtts_ms()
            assert len(slow) >= 15
            # netem never delivers early: every RTT is at least the delay; a loaded machine only adds
            assert min(slow) >= 100 * 0.98
            assert statistics.median(slow) <= base + 100 + 150, (base, slow)
            delay.change(Impairment(delay="20ms"))
            fast = rtts_ms()
            assert 20 * 0.98 <= min(fast) < 100 * 0.98, fast


def test_netem_loss_shows_in_a_ping_run_within_a_binomial_bound(sb: Sandbox) -> None:
    topo, veth = pipe()
    with topo:
        topo["a"].wait_reachable("10.8.0.2")
        with LinkImpairment.on(veth, {"loss": "20%", "loss_via": "netem"}, end="name")[0] as lossy:
            assert lossy.qdisc()["kind"] == "netem"
            sent, received = ping_loss(topo["a"], "10.8.0.2", count=600)
            low, high = binomial_bound(0.2, sent)
            assert low <= 1 - received / sent <= high, (sent, received)


def test_duplication_shows_as_duplicate_replies(sb: Sandbox) -> None:
    topo, veth = pipe()
    with topo:
        topo["a"].wait_reachable("10.8.0.2")
        with LinkImpairment.on(veth, {"duplicate": "50%"}, end="name")[0]:
            out = topo["a"].run(["ping", "-n", "-q", "-c", "400", "-i", "0.005", "-W", "1", "10.8.0.2"], check=False)
            match = re.search(r"\+(\d+) duplicates", out.stdout)
            duplicates = int(match.group(1)) if match else 0
            low, high = binomial_bound(0.5, 400)
            assert low <= duplicates / 400 <= high, out.stdout


def test_the_kernel_accepts_every_netem_setting_together(sb: Sandbox) -> None:
    topo, veth = pipe()
    settings = {
        "limit": 2000,
        "delay": "10ms",
        "jitter": "2ms",
        "delay_correlation": "25%",
        "distribution": "normal",
        "loss": "1%",
        "loss_correlation": "10%",
        "duplicate": "1%",
        "reorder": "5%",
        "gap": 3,
        "corrupt": "0.1%",
        "rate": "100mbit",
    }
    with topo, LinkImpairment.on(veth, settings, end="both")[1] as impaired:
        qdisc = impaired.qdisc()
        assert qdisc["kind"] == "netem"
        options = qdisc["options"]
        assert options["limit"] == 2000
        assert options["gap"] == 3
        assert options["delay"]["delay"] == 0.01
        assert options["delay"]["jitter"] == 0.002
        assert options["rate"]["rate"] == 12_500_000
