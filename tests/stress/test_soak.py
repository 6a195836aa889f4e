"""Soak: the seed-001 topology (3 namespaces on a bridge, NAT, a port forward) built and
torn down again and again with the SAME names, traffic through it every cycle; the
normalized state after each teardown equals the state before the first.

    pytest tests/stress/test_soak.py --stress full      # 200 cycles
"""

from __future__ import annotations

import time
from collections.abc import Callable

from netns_kit import Host
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.topology import scenarios
from tests.integration.helpers import request, serve


def test_build_and_teardown_cycles_with_the_same_names_leave_the_state_as_before(
    sb: Sandbox, sizes: dict[str, int], figures: Callable[[str], None]
) -> None:
    cycles = sizes["soak"]
    before = state.snapshot(sb)
    failures: list[str] = []
    timings: list[float] = []
    for cycle in range(cycles):
        start = time.monotonic()
        topo = scenarios.seed001_nat()
        try:
            with topo:
                serve(topo["red"], 80, f"red-{cycle}")
                # the host's own 192.168.1.254:8080 goes to red:80 (OUTPUT DNAT)
                answer = request(Host(), "192.168.1.254", 8080)
                if answer is None or not answer.startswith(f"red-{cycle} "):
                    failures.append(f"cycle {cycle}: port forward answered {answer!r}")
                if not topo["blue"].ping("192.168.1.1", timeout=2):
                    topo["blue"].wait_reachable("192.168.1.1")
        except Exception as error:  # counted, reported below with the cycle
            failures.append(f"cycle {cycle}: {type(error).__name__}: {error}")
        left = state.diff(before, state.snapshot(sb))
        if left:
            failures.append(f"cycle {cycle}: left behind {left}")
        timings.append(time.monotonic() - start)
    mean = sum(timings) / len(timings)
    figures(
        f"{cycles} cycles, {len(failures)} failures, state after == before in "
        f"{cycles - sum('left behind' in f for f in failures)}/{cycles}; "
        f"{mean:.2f} s per cycle (max {max(timings):.2f} s)"
    )
    assert failures == []
