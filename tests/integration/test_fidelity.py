"""Dry-run fidelity: the printed script, run by /bin/sh in a fresh sandbox, builds the same state."""

from __future__ import annotations

from typing import Any

import pytest

import netns_kit
import netns_kit.executors.base
from netns_kit import Command, Owner
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.topology import scenarios


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
    def user_code() -> dict[str, Any]:
        with scenarios.seed001_pipe() as topo:
            topo["red"].wait_reachable("192.168.1.2")
            return state.snapshot(topo.executor or netns_kit.executors.base.current())

    recorder = netns_kit.Recorder()
    with netns_kit.use(recorder):
        user_code()
    plan = scenarios.seed001_pipe().plan()
    # set up exactly as planned, then every undo known up front, in reverse (idempotent)
    assert recorder.commands == plan.commands + [u.tolerant() for c in reversed(plan.commands) for u in c.undo]
    with Sandbox(owner=Owner.dry_run()) as sandbox, netns_kit.use(sandbox):
        empty = state.snapshot(sandbox)
        given: list[Command] = []
        attempt, run = sandbox.attempt, sandbox.run
        sandbox.attempt = lambda commands, **kw: (given.extend(commands), attempt(commands, **kw))[1]  # type: ignore[method-assign]
        sandbox.run = lambda c, **kw: (given.extend([c] if c.mutating else []), run(c, **kw))[1]  # type: ignore[method-assign]
        during = user_code()
        # the same Command values as the recorder's set-up (the teardown is the batching one)
        assert given[: len(plan.commands)] == plan.commands
        with Sandbox(owner=Owner.dry_run()) as by_script:
            by_script.run_script(plan.script())
            assert state.diff(state.snapshot(by_script), during) == []
            by_script.run_script(plan.teardown_script())
        assert state.diff(empty, state.snapshot(sandbox)) == []
