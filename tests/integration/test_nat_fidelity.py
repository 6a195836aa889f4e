"""Dry-run fidelity for the whole seed-001 story: bridge, default routes, NAT, port forward."""

from __future__ import annotations

import pytest

from netns_kit import Namespace
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.topology import scenarios

from .helpers import request, serve
from .test_fidelity import test_script_gives_the_same_state_as_the_library as same_state_as_the_library


@pytest.mark.parametrize("name", ["seed001_nat", "seed001_story"])
def test_printed_script_builds_the_same_state_as_the_library(name: str) -> None:
    """The foundation's fidelity check (script in a fresh sandbox == library run with
    the dry-run owner; teardown script back to empty), for the NAT scenarios."""
    same_state_as_the_library(name)


def test_the_printed_script_alone_gives_a_working_network() -> None:
    plan = scenarios.seed001_story().plan()
    with Sandbox() as box:
        empty = state.snapshot(box)
        box.run_script(plan.script())
        red, outside = Namespace("red", executor=box), Namespace(scenarios.OUTSIDE, executor=box)
        red.wait_reachable("192.168.1.254")
        serve(outside, 9000, "outside")
        serve(red, 80, "red")
        assert request(red, scenarios.OUTSIDE_ADDRESS, 9000) == "outside 203.0.113.1 hello"
        assert request(outside, scenarios.HOST_OUTSIDE_ADDRESS, 8080) == "red 203.0.113.2 hello"
        red.stop_processes()
        outside.stop_processes()
        box.run_script(plan.teardown_script())
        assert state.diff(empty, state.snapshot(box)) == []
        # the script's claim of ip_forward is gone, and so are the directories that held it
        assert not box.root_path("/run/netns_kit/sysctl").exists()
