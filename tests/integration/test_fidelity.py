"""Dry-run fidelity: the printed script, run by /bin/sh in a fresh sandbox, builds the same state."""

from __future__ import annotations

import pytest

import netns_kit
from netns_kit import Owner, scenarios, state
from netns_kit.sandbox import Sandbox


@pytest.mark.parametrize("name", ["seed001_pipe", "seed001_bridge", "seed002_host", "seed004_pipe"])
def test_script_gives_the_same_state_as_the_library(name: str) -> None:
    plan = getattr(scenarios, name)().plan()
    with Sandbox(owner=Owner.dry_run()) as by_library:
        empty = state.snapshot(by_library)
        topo = getattr(scenarios, name)().up(by_library)
        library_state = state.snapshot(by_library)
        topo.down()
        assert state.diff(empty, state.snapshot(by_library)) == []
    with Sandbox() as by_script:
        assert state.diff(empty, state.snapshot(by_script)) == []
        by_script.run_script(plan.script())
        assert state.diff(library_state, state.snapshot(by_script)) == []
        by_script.run_script(plan.teardown_script())
        assert state.diff(empty, state.snapshot(by_script)) == []


def test_recorder_under_use_and_sandbox_run_the_same_user_code() -> None:
    def user_code() -> None:
        with scenarios.seed001_pipe() as topo:
            topo["red"].wait_reachable("192.168.1.2")

    recorder = netns_kit.Recorder()
    with netns_kit.use(recorder):
        user_code()
    with Sandbox() as sandbox, netns_kit.use(sandbox):
        user_code()
    assert len(recorder.commands) > 9
