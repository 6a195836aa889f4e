"""SIGTERM and Ctrl-C: what netns_kit built is torn down, never left half-made.

Python turns Ctrl-C (SIGINT) into :class:`KeyboardInterrupt`, which unwinds
``with`` blocks and so tears a topology down; SIGTERM, by default, kills the
process on the spot and leaves everything behind. So while a
:class:`~netns_kit.Topology` is being brought up, and for as long as a
topology or resource is used as a context manager, netns_kit turns SIGTERM
into :class:`Terminated` (a :class:`SystemExit` with code 143, the shell's
128 + 15): the ``with`` blocks unwind, everything is torn down, and the
process exits with 143 and no traceback.

Python swallows an exception raised inside a finalizer (``__del__``, a weakref
callback) and only prints it; a SIGTERM that lands there is sent again, so it
is never lost.

It never takes a handler away from anyone: only when the SIGTERM handler is
the default one (``SIG_DFL``) and only in the main thread (Python runs
handlers nowhere else). A handler installed by the program is left alone,
and so is one installed while netns_kit's is active (it is not restored over).

While undoing (teardown, or the rollback after a failure) one SIGTERM or
Ctrl-C is held back until the undo is complete, then raised; a second one
during the same undo is raised at once (the way out of a hung teardown).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

log = logging.getLogger("netns_kit")

#: exit status of a process stopped by SIGTERM (as a shell reports it)
EXIT_CODE = 128 + signal.SIGTERM


class Terminated(SystemExit):
    """Raised where SIGTERM interrupted the program, so that ``with`` blocks tear down."""

    def __init__(self) -> None:
        super().__init__(EXIT_CODE)


_lock = threading.RLock()
_depth = 0  # how many guards are active; the handler is ours while > 0
_shield_depth = 0
_pending: list[int] = []


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _shield_depth and not _pending:
        # held first, said after: a second signal landing while the line is written is not held too
        _pending.append(signum)
        log.warning("netns_kit: %s received while undoing; finishing the undo first", signal.Signals(signum).name)
        return
    # the one held back (if any) is raised now, with this one: not again when the undo ends
    _pending.clear()
    _raise_for(signum)


def _unraisable(unraisable: Any) -> None:
    """A :class:`Terminated` swallowed in a finalizer: deliver SIGTERM again, to be raised elsewhere."""
    if isinstance(unraisable.exc_value, Terminated) and _depth:
        log.debug("netns_kit: SIGTERM landed in a finalizer (%r); sending it again", unraisable.object)
        # from another thread, a moment later: sent from here, it would land in here again
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return
    _previous_hook(unraisable)


_previous_hook = sys.unraisablehook


def _install_term() -> bool:
    """Install our SIGTERM handler if SIGTERM has its default action; True if ours is in place."""
    global _depth
    with _lock:
        if _depth:
            _depth += 1
            return True
        if not _main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _on_signal)
        global _previous_hook
        if sys.unraisablehook is not _unraisable:
            _previous_hook, sys.unraisablehook = sys.unraisablehook, _unraisable
        _depth = 1
        return True


def _uninstall_term() -> None:
    global _depth
    with _lock:
        _depth -= 1
        if _depth == 0 and signal.getsignal(signal.SIGTERM) is _on_signal:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if _depth == 0 and sys.unraisablehook is _unraisable:
            sys.unraisablehook = _previous_hook


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Within this block SIGTERM raises :class:`Terminated` (when nobody else handles it)."""
    installed = _install_term()
    try:
        yield
    finally:
        if installed:
            _uninstall_term()


class Guard:
    """:func:`terminate_cleanly` split in two, for ``__enter__``/``__exit__`` pairs."""

    def __init__(self) -> None:
        self._installed = False

    def enter(self) -> None:
        if not self._installed:
            self._installed = _install_term()

    def exit(self) -> None:
        if self._installed:
            self._installed = False
            _uninstall_term()


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold back one SIGTERM or Ctrl-C until the block (an undo) is done, then raise it.

    Only signals whose handler is ours or Python's default Ctrl-C handler are
    held back; a second one during the block is raised at once.
    """
    global _shield_depth
    if not _main_thread():
        yield
        return
    saved: dict[int, Any] = {}
    with _lock:
        if _shield_depth == 0:
            _pending.clear()
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                saved[signal.SIGINT] = signal.signal(signal.SIGINT, _on_signal)
        _shield_depth += 1
    try:
        yield
    finally:
        with _lock:
            _shield_depth -= 1
            done = _shield_depth == 0
            for signum, handler in saved.items():
                if signal.getsignal(signum) is _on_signal:
                    signal.signal(signum, handler)
            pending = list(_pending) if done else []
            if done:
                _pending.clear()
        if pending:
            _raise_for(pending[0])
