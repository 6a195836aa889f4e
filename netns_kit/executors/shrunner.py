"""The ``sh`` runner (``ShExecutor(runner="sh")``, background :class:`~netns_kit.executors.process.Process`):
running a command to its end with the ``sh`` package, and the package itself, loaded on first use."""

from __future__ import annotations

import contextlib
import functools
import importlib
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from netns_kit.errors import CommandError


@functools.cache
def sh_package() -> Any:
    """The ``sh`` package, loaded on its first use: importing it costs ~85 ms (threads,
    ptys, asyncio), which a CLI command or a test that starts no background process
    and uses the default runner never pays."""
    return importlib.import_module("sh")


def run(
    argv: Sequence[str],
    *,
    input: str | None,
    timeout: float | None,
    env: Mapping[str, str] | None,
    path: str | None,
    start: Callable[..., Any],
) -> tuple[int, str, str]:
    """:func:`netns_kit.executors.spawn.run` with the ``sh`` package (``ShExecutor(runner="sh")``):
    the process is started by ``start`` (:func:`netns_kit.executors.spawn.start`, the one door)."""
    kwargs: dict[str, Any] = {
        # a command killed by a signal (negative code) is a failure classified by the caller
        "_ok_code": range(-64, 256),
        "_bg": True,
        "_bg_exc": False,
        # a process group of its own: Ctrl-C in a terminal reaches this process only,
        # which lets a command in flight finish instead of killing it half-way
        "_new_group": True,
        "_tty_out": False,
        "_tty_in": False,
    }
    if input is not None:
        kwargs["_in"] = input
    if timeout is not None:
        kwargs["_timeout"] = timeout
    if env is not None:
        kwargs["_env"] = dict(env)
    # sh forks and runs Python in the child until the exec: a Ctrl-C or SIGTERM landing
    # there would raise in a copy of this program; held back until the child has its
    # own process group (see _default_signals)
    kwargs["_preexec_fn"] = _default_signals
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
    try:
        done = start(argv, runner="sh", path=path, **kwargs)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    try:
        done.wait()
    except sh_package().TimeoutException as exc:
        raise CommandError(argv, -9, "", "", f"timed out after {timeout} s") from exc
    except BaseException:
        # interrupted here (SIGTERM, Ctrl-C): let the command finish first, so that
        # an undo never runs before the change it undoes has landed
        with contextlib.suppress(Exception):
            done.wait(timeout=10)
        raise
    return done.exit_code, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")


#: the signals that stop a program (Ctrl-C, kill)
_STOPPING = frozenset({signal.SIGINT, signal.SIGTERM})


def _default_signals() -> None:
    """In a forked child, once in its own process group, before its exec: one held back
    while it was still in ours was meant for us (we got it too), so it is dropped; then
    the default action for SIGINT and SIGTERM, as any exec'd program has."""
    for signum in _STOPPING:
        signal.signal(signum, signal.SIG_IGN)  # a pending one is discarded on unblock
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
    for signum in _STOPPING:
        signal.signal(signum, signal.SIG_DFL)
