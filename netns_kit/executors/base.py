"""The ONE door to processes.

Every command netns_kit runs goes through an :class:`Executor`:

* :class:`~netns_kit.executors.local.ShExecutor` runs argv for real (never through a shell);
* :class:`~netns_kit.executors.recorder.Recorder` is the dry-run: it records mutating commands, answers
  queries itself and renders the shell script, without starting a process;
* :class:`~netns_kit.executors.sandbox.Sandbox` runs everything inside throwaway
  user+net+mount namespaces.

Pick one for a block of code with :func:`use`, or per object with the
``executor=`` argument every resource takes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netns_kit.command import Command, Result, query
from netns_kit.errors import CommandError, NotFoundError, classify, not_started
from netns_kit.owner import Owner

if TYPE_CHECKING:
    from netns_kit.executors.process import Process

log = logging.getLogger("netns_kit")


class Executor:
    """Base class: runs :class:`Command` values and gives back :class:`Result` values."""

    #: True for executors that never touch the system (the recorder).
    dry_run: bool = False
    #: True when :meth:`run_all` may run many commands in one process (``ip -batch``,
    #: ``iptables-restore``); see :mod:`netns_kit.batching.batch`.
    batch: bool = False
    #: how many batch processes may run at once (steps that do not depend on each other)
    parallel: int = 1

    def __init__(self, owner: Owner | None = None) -> None:
        self.owner = owner or Owner.current()

    # -- to be provided by subclasses -------------------------------------
    def _execute(self, argv: Sequence[str], *, input: str | None, timeout: float | None) -> tuple[int, str, str]:
        raise NotImplementedError

    def popen(
        self,
        command: Command,
        *,
        stdout: str | Path | int | None = None,
        stderr: str | Path | int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> Process:
        """Start ``command`` in the background and return its :class:`Process`."""
        raise NotImplementedError

    @property
    def ledger_dir(self) -> Path | None:
        """Where the write-ahead ledger of this executor's changes lives."""
        return None

    def argv_for(self, command: Command) -> tuple[str, ...]:
        """The argv that is really started for ``command`` (with any prefix)."""
        return command.full_argv

    def batch_argv_for(self, command: Command) -> tuple[str, ...]:
        """The argv started for a batch process (``ip -batch -``, ``iptables-restore``)."""
        return self.argv_for(command)

    def _execute_batch(self, process: Command, input: str) -> tuple[int, str, str]:
        """Run one batch process (``process``, a :meth:`~netns_kit.batching.schedule.Step.process`)
        with ``input`` on its stdin. Raises :class:`~netns_kit.errors.BinaryNotFoundError`
        when it could not be started (nothing of it ran)."""
        argv = self.batch_argv_for(process)
        returncode, stdout, stderr = self._execute(argv, input=input, timeout=None)
        missing = not_started(argv, returncode, stdout, stderr) if returncode in (1, 127) else None
        if missing is not None:
            raise missing
        return returncode, stdout, stderr

    # -- the public surface -----------------------------------------------
    def run(
        self,
        command: Command,
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run one command. Raises the classified :class:`CommandError` on failure
        unless ``check`` is false (a ``missing_ok`` command that finds nothing
        to act on succeeds). ``input`` defaults to the command's ``stdin``.

        A program that could not be started at all (not installed) raises
        :class:`~netns_kit.errors.BinaryNotFoundError` even with ``check=False``:
        there is no exit code of it to look at, and nothing ran.

        ``command`` is a :class:`Command`: ``query("ip", "-j", "link")`` for one that
        only reads, ``Command(("ip", "link", "add", ...))`` for a change (which a
        dry-run records). A plain list or tuple of words is refused with a
        ``TypeError`` saying so: whether it changes anything cannot be guessed, and a
        dry-run that guessed "only reads" would leave a change out of its script.
        """
        _require_command(command, "run")
        log.debug("%s %s", "run" if command.mutating else "query", command)  # formatted only if shown
        if input is None:
            input = command.stdin
        result = self._run_command(command, input=input, timeout=timeout)
        if result.ok or not check:
            return result
        error = classify(command.full_argv, result.returncode, result.stdout, result.stderr)
        if command.missing_ok and isinstance(error, NotFoundError):
            log.debug("nothing to do (already gone): %s", command.line)
            return result
        raise error

    def _run_command(self, command: Command, *, input: str | None, timeout: float | None) -> Result:
        argv = self.argv_for(command)
        returncode, stdout, stderr = self._execute(argv, input=input, timeout=timeout)
        if returncode in (1, 127) and not_started(argv, returncode, stdout, stderr) is not None:
            # a wrapper (nsenter, ip netns exec, env) found the program nowhere: nothing ran
            raise classify(command.full_argv, returncode, stdout, stderr)
        return Result(command, returncode, stdout, stderr)

    def run_all(
        self, commands: Sequence[Command], *, on_done: Callable[[Sequence[int]], None] | None = None
    ) -> list[Result]:
        """Run commands, stopping at the first failure.

        The error raised says exactly what took effect, so an undo journal
        can reverse it: ``completed`` (the results, in the order they ran),
        ``completed_indexes`` (their positions in ``commands``),
        ``inflight_indexes`` (positions that may have taken effect: a command
        interrupted by Ctrl-C, say) and ``failed_index``. A batching executor
        (``batch=True``) may run commands that do not depend on each other out
        of order, so ``completed_indexes`` need not be a prefix. ``on_done``
        is called with the positions of commands as they take effect (after
        each command, or after each batch), so a write-ahead ledger can mark
        progress.
        """
        for command in commands:
            _require_command(command, "run_all")
        if self.batch and len(commands) > 1:
            from netns_kit.batching import batch

            return batch.run_all(self, commands, parallel=self.parallel, on_done=on_done)
        results: list[Result] = []
        for index, command in enumerate(commands):
            try:
                results.append(self.run(command))
            except BaseException as error:
                error.completed = tuple(results)  # type: ignore[attr-defined]
                error.completed_indexes = tuple(range(index))  # type: ignore[attr-defined]
                interrupted = not isinstance(error, CommandError)
                error.inflight_indexes = (index,) if interrupted else ()  # type: ignore[attr-defined]
                error.failed_index = None if interrupted else index  # type: ignore[attr-defined]
                raise
            if on_done is not None:
                on_done((index,))
        return results

    def host_devices(self) -> set[str] | None:
        """The names of the network devices of this executor's host, read without
        starting a process; None when it cannot (then ask ``ip``)."""
        return None

    def netns_pids(self, names: Sequence[str]) -> dict[str, list[int]]:
        """The processes in each of the named namespaces: ``ip netns pids`` each (queries
        the recorder answers itself, from its handler or as a fresh machine: none)."""
        found: dict[str, list[int]] = {}
        for name in names:
            result = self.run(query("ip", "netns", "pids", name), check=False)
            found[name] = [int(p) for p in result.stdout.split() if p.isdigit()] if result.ok else []
        return found


def _require_command(command: object, method: str) -> None:
    if isinstance(command, Command):
        return
    if isinstance(command, str) or (
        isinstance(command, Sequence) and command and all(isinstance(word, str) for word in command)
    ):
        if isinstance(command, str):
            import shlex

            try:
                split = shlex.split(command)
            except ValueError:
                split = [command]
        else:
            split = list(command)
        words = ", ".join(repr(word) for word in split)
        raise TypeError(
            f"Executor.{method}() takes a netns_kit Command, not {type(command).__name__} {command!r}: "
            f"pass query({words}) for a command that only reads (a dry-run answers it), or "
            f"Command(({words},)) for one that changes something (a dry-run records it)"
        )
    raise TypeError(f"Executor.{method}() takes a netns_kit Command, not {type(command).__name__} {command!r}")


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
        from netns_kit.executors.local import ShExecutor

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


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.005,
    max_interval: float = 0.1,
) -> None:
    """Poll ``predicate`` until it holds; raise :class:`~netns_kit.errors.NetnsKitTimeoutError`."""
    from netns_kit.errors import NetnsKitTimeoutError

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise NetnsKitTimeoutError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, max_interval)
