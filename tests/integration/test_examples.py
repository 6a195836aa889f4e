"""Every file in examples/: the `plan` output run by /bin/sh in a fresh sandbox gives the
same normalized state as `up` in another fresh sandbox, and `down` returns to the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state

from .cli import netns_kit

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_plan_run_by_sh_equals_up_and_down_returns_to_the_start(path: Path) -> None:
    plan = netns_kit("plan", str(path))
    teardown = netns_kit("plan", "--down", str(path))
    assert plan.returncode == 0 and teardown.returncode == 0, plan.stderr + teardown.stderr

    with Sandbox() as by_cli:
        empty = state.snapshot(by_cli)
        up = netns_kit("up", "--attach", str(by_cli.pid), str(path))
        assert up.returncode == 0, up.stderr
        built = state.snapshot(by_cli)
        assert state.diff(empty, built), "up built nothing"
        down = netns_kit("down", "--attach", str(by_cli.pid), str(path))
        assert down.returncode == 0, down.stderr
        assert "left alone" not in down.stdout and "FAILED" not in down.stdout
        assert state.diff(empty, state.snapshot(by_cli)) == []
        again = netns_kit("down", "--attach", str(by_cli.pid), str(path))
        assert "down: nothing to do" in again.stdout

    with Sandbox() as by_script:
        assert state.diff(empty, state.snapshot(by_script)) == []
        by_script.run_script(plan.stdout)
        assert state.diff(built, state.snapshot(by_script)) == []
        by_script.run_script(teardown.stdout)
        assert state.diff(empty, state.snapshot(by_script)) == []


def test_there_is_an_example_per_seed_scenario() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"seed001-pipe", "seed002-ns1-host", "seed004-red-blue"} <= names
