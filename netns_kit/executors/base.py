"""The executors' public face: :class:`Executor` (its one hook,
:meth:`~Executor.handle`, is in :mod:`netns_kit.executors.hook`), and which executor
is in effect: :func:`use` for a block of code, :func:`current` to ask."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from netns_kit.executors.hook import Executor, wait_until
from netns_kit.executors.inorder import OnDone, RunOne, in_order
from netns_kit.executors.local import ShExecutor

__all__ = ["Executor", "OnDone", "RunOne", "ShExecutor", "current", "in_order", "use", "wait_until"]

_current: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("netns_kit_executor", default=None)
_default: Executor | None = None


def current() -> Executor:
    """The executor in effect: the innermost :func:`use`, else a shared
    :class:`~netns_kit.executors.local.ShExecutor`."""
    executor = _current.get()
    if executor is not None:
        return executor
    global _default
    if _default is None:
        _default = ShExecutor()
    return _default


@contextlib.contextmanager
def use(executor: Executor) -> Iterator[Executor]:
    """Run every resource in this block through ``executor``::

        with netns_kit.use(netns_kit.Recorder()) as rec:
            Namespace("red").create()
        print(rec.script())

    Inside the block, :func:`current` returns ``executor``.
    """
    token = _current.set(executor)
    try:
        yield executor
    finally:
        _current.reset(token)
