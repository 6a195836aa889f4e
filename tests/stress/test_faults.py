"""Faults: an error forced at step k of the soak topology, for every k, both ways:

* through a recorder handler (no process): the undo run is exactly the reverse of the
  undo of steps 1..k-1, and the error raised is the very object the handler raised;
* through real refusals in the sandbox (a name clash, no such device, a bad value made
  on the spot): the state afterwards equals the state before, and the error raised is
  the one the failing command produced, with its argv, exit code and stderr.

    pytest tests/stress/test_faults.py --stress full     # every step, both ways
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from netns_kit import Command, Recorder, Result
from netns_kit.errors import CommandError
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from tests.integration.crash_child import topology
from tests.integration.test_fault_injection import FailingAt

PLAN = topology().plan().commands
STEPS = len(PLAN)


def kind(command: Command) -> tuple[Any, ...]:
    """What sort of step: the tool and its object or operation, on the host or in a namespace."""
    what = command.argv[1:3] if command.argv[0] == "ip" else tuple(w for w in command.argv if w in ("-N", "-A", "-I"))
    return (command.netns is None, command.argv[0], what)


def steps(count: int) -> list[int]:
    """``count`` steps spread over 1..STEPS (all of them for 0), and the first step of
    each kind (so that a reduced run fails each kind of step at least once, on the host
    and in a namespace: each meets its own batch and its own way of failing)."""
    if count <= 0 or count >= STEPS:
        return list(range(1, STEPS + 1))
    spread = {1 + round(i * (STEPS - 1) / (count - 1)) for i in range(count)} if count > 1 else {STEPS}
    first: dict[tuple[Any, ...], int] = {}
    for k, command in enumerate(PLAN, start=1):
        first.setdefault(kind(command), k)
    return sorted(spread | set(first.values()))


def key(command: Command) -> tuple[Any, ...]:
    return (command.argv, command.netns)


def failing_at(k: int, error: CommandError) -> Callable[[Command], Result | str | None]:
    """A recorder handler raising ``error`` at the k-th change."""
    seen = 0

    def handler(command: Command) -> Result | str | None:
        nonlocal seen
        if command.mutating:
            seen += 1
            if seen == k:
                raise error
        return None

    return handler


def test_recorder_fault_at_every_step_undoes_exactly_what_was_done(
    sizes: dict[str, int], figures: Callable[[str], None]
) -> None:
    exact = 0
    chosen = steps(sizes["fault_steps"])
    for k in chosen:
        injected = CommandError(("ip", "fault", str(k)), 2, "out", f"stderr of step {k}")
        handler = failing_at(k, injected)
        recorder = Recorder(handler)
        with pytest.raises(CommandError) as info:
            topology().up(recorder)
        assert info.value is injected, f"step {k}: the original error was not re-raised"
        assert (info.value.argv, info.value.returncode, info.value.stderr) == (
            ("ip", "fault", str(k)),
            2,
            f"stderr of step {k}",
        )
        assert not getattr(info.value, "cleanup_errors", [])
        done, undone = recorder.commands[: k - 1], recorder.commands[k - 1 :]
        assert [key(c) for c in done] == [key(c) for c in PLAN[: k - 1]]
        expected = [key(u) for c in reversed(done) for u in c.undo]
        assert [key(c) for c in undone] == expected, f"step {k}: the undo is not the exact reverse"
        exact += 1
    figures(f"{len(chosen)}/{STEPS} steps failed through the recorder: exact rollback {exact}/{len(chosen)}")


def test_real_failure_at_every_step_rolls_back_exactly_and_raises_the_original_error(
    sb: Sandbox, sizes: dict[str, int], figures: Callable[[str], None]
) -> None:
    before = state.snapshot(sb)
    exact = 0
    chosen = steps(sizes["fault_steps"])
    kinds: set[str] = set()
    for k in chosen:
        box = FailingAt.attach(sb.pid)
        box.k = k
        with pytest.raises(CommandError) as info:
            topology().up(box)
        error = info.value
        assert error is box.raised, f"step {k}: not the error the failing command raised"
        assert box.failed is not None
        assert error.argv == box.failed.full_argv
        assert error.returncode > 0 and error.stderr.strip(), f"step {k}: {error!r}"
        assert not getattr(error, "cleanup_errors", []), error.cleanup_errors  # type: ignore[attr-defined]
        kinds.add(type(error).__name__)
        if box.unclash is not None:  # the object we clashed with survived the rollback
            sb.run(box.unclash)
        left = state.diff(before, state.snapshot(sb))
        assert left == [], f"step {k} ({box.failed.line}): {left}"
        exact += 1
    figures(
        f"{len(chosen)}/{STEPS} steps refused for real: exact rollback {exact}/{len(chosen)}, "
        f"errors raised: {', '.join(sorted(kinds))}"
    )
