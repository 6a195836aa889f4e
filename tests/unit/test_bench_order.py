"""scripts/bench's method: the contenders' order rotates, and each waits for a quiet machine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("netns_kit_bench_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_each_contender_runs_first_in_turn() -> None:
    bench = _bench()
    names = ["a", "b", "c"]
    orders = [bench.rotated(names, run) for run in range(4)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert names == ["a", "b", "c"]  # not changed in place


def test_settle_waits_for_three_quiet_looks_in_a_row() -> None:
    bench = _bench()
    looks = [4, 1, 1, 2, 1, 1, 1, 9, 9]  # busy, quiet twice, busy, then quiet three times
    seen: list[int] = []

    def running() -> int:
        seen.append(looks[len(seen)])
        return seen[-1]

    bench.settle(running=running, pause=0)
    assert seen == looks[:7]


def test_settle_gives_up_at_its_limit() -> None:
    bench = _bench()
    looks: list[int] = []

    def busy() -> int:
        looks.append(5)
        assert len(looks) < 1000, "settle did not stop at its limit"
        return 5

    bench.settle(limit=0.05, running=busy, pause=0.001)
    assert looks  # it looked, and stopped by the limit though never quiet
