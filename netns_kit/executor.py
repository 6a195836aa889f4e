"""The ONE door to processes.

Every command netns_kit runs goes through an :class:`Executor`:

* :class:`ShExecutor` runs argv with ``sh`` (never through a shell);
* :class:`~netns_kit.recorder.Recorder` is the dry-run: it records mutating commands, answers
  queries itself and renders the shell script, without starting a process;
* :class:`~netns_kit.sandbox.Sandbox` runs everything inside throwaway
  user+net+mount namespaces.

Pick one for a block of code with :func:`use`, or per object with the
``executor=`` argument every resource takes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shlex
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .command import Command, Result, query
from .errors import CommandError, NotFoundError, ValidationError, binary_not_found, classify
from .owner import Owner

if TYPE_CHECKING:
    from .process import Process

log = logging.getLogger("netns_kit")


class Executor:
    """Base class: runs :class:`Command` values and gives back :class:`Result` values."""

    #: True for executors that never touch the system (the recorder).
    dry_run: bool = False
    #: True when :meth:`run_all` may run many commands in one process (``ip -batch``,
    #: ``iptables-restore``); see :mod:`netns_kit.batch`.
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
        to act on succeeds). ``input`` defaults to the command's ``stdin``."""
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
        returncode, stdout, stderr = self._execute(self.argv_for(command), input=input, timeout=timeout)
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
        if self.batch and len(commands) > 1:
            from . import batch

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


class ShExecutor(Executor):
    """Runs commands for real.

    ``prefix`` is put in front of every argv (``("sudo", "-n")``, say).
    ``batch`` (the default) lets :meth:`run_all` run many commands per
    process (:mod:`netns_kit.batch`), up to ``parallel`` of those processes
    at a time when they do not depend on each other; ``batch=False`` runs
    one process per command, in order. ``runner`` starts them: ``"subprocess"`` (the default, ~0.9 ms
    a process) or ``"sh"`` (the ``sh`` package, ~6.8 ms).
    """

    def __init__(
        self,
        prefix: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        owner: Owner | None = None,
        batch: bool = True,
        parallel: int = 4,
        runner: str = "subprocess",
    ) -> None:
        super().__init__(owner)
        if runner not in ("subprocess", "sh"):
            raise ValidationError("ShExecutor.runner", runner, "must be 'subprocess' or 'sh'")
        if not isinstance(parallel, int) or parallel < 1:
            raise ValidationError("ShExecutor.parallel", parallel, "must be a whole number >= 1")
        self.prefix = tuple(prefix)
        self.env = dict(env) if env is not None else None
        self.batch = batch
        self.parallel = parallel
        self.runner = runner

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, batch={self.batch})"

    def netns_path(self, name: str) -> Path:
        """The file of the named namespace, as this process sees it."""
        return Path("/run/netns") / name

    def host_devices(self) -> set[str] | None:
        """Read from ``/proc/self/net/dev`` (without a prefix, our namespace is the host)."""
        if self.prefix:
            return None
        from . import spawn

        return spawn.devices(Path("/proc/self"))

    def batch_argv_for(self, command: Command) -> tuple[str, ...]:
        """A batch process enters its namespace with ``nsenter --net=FILE`` only.

        ``ip -n NS`` and ``ip netns exec NS`` also unshare a mount namespace to
        remount ``/sys``, which copies every mount, one ``/run/netns`` file per
        namespace among them: with hundreds of namespaces each process gets
        slower (O(N²) in all). ``ip -batch`` and ``iptables-restore`` only
        talk netlink (and read ``/proc/net``, which follows the network namespace).
        """
        if command.netns is None:
            return self.argv_for(command)
        return (*self.prefix, *self._enter_net(self.netns_path(command.netns)), *command.argv)

    def _enter_net(self, path: Path) -> tuple[str, ...]:
        return ("nsenter", f"--net={path}", "--")

    def netns_pids(self, names: Sequence[str]) -> dict[str, list[int]]:
        """The processes in each of the named namespaces, by ONE scan of ``/proc``."""
        from . import spawn

        found = spawn.netns_pids({name: self.netns_path(name) for name in names})
        return {name: found.get(name, []) for name in names}

    def argv_for(self, command: Command) -> tuple[str, ...]:
        return self.prefix + command.full_argv

    @property
    def ledger_dir(self) -> Path | None:
        if os.geteuid() == 0:
            return Path("/run/netns_kit")
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = Path(runtime) if runtime else Path("/tmp") / f"netns_kit-{os.geteuid()}"
        return base / "netns_kit" if runtime else base

    def _execute(self, argv: Sequence[str], *, input: str | None, timeout: float | None) -> tuple[int, str, str]:
        if self.runner == "subprocess":
            from . import spawn

            env = {**os.environ, **self.env} if self.env is not None else None
            return spawn.run(argv, input=input, timeout=timeout, env=env)
        import sh  # imported here: `import netns_kit` stays fast

        try:
            program = sh.Command(argv[0])
        except sh.CommandNotFound:
            raise binary_not_found(argv) from None
        kwargs: dict[str, Any] = {
            # a command killed by a signal (negative code) is a failure classified here
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
        if self.env is not None:
            kwargs["_env"] = {**os.environ, **self.env}
        # sh forks and runs Python in the child until the exec: a Ctrl-C or SIGTERM landing
        # there would raise in a copy of this program; held back until the child has its
        # own process group (see _default_signals)
        kwargs["_preexec_fn"] = _default_signals
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
        try:
            done = program(*argv[1:], **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        try:
            done.wait()
        except sh.TimeoutException as exc:
            raise CommandError(argv, -9, "", "", f"timed out after {timeout} s") from exc
        except BaseException:
            # interrupted here (SIGTERM, Ctrl-C): let the command finish first, so that
            # an undo never runs before the change it undoes has landed
            with contextlib.suppress(Exception):
                done.wait(timeout=10)
            raise
        return (
            done.exit_code,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )

    def popen(
        self,
        command: Command,
        *,
        stdout: str | Path | int | None = None,
        stderr: str | Path | int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> Process:
        from .process import Process, with_env

        # env and cwd go into the argv (env -C DIR K=V ...): nsenter --mount resets the cwd
        started = with_env(command, env, cwd)
        argv = self.argv_for(started)
        log.debug("start %s", shlex.join(argv))
        environment = {**os.environ, **self.env} if self.env is not None else None
        return Process.start(argv, stdout=stdout, stderr=stderr, env=environment, command=started, executor=self)


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


_current: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("netns_kit_executor", default=None)
_default: Executor | None = None


def current() -> Executor:
    """The executor in effect: the innermost :func:`use`, else a shared :class:`ShExecutor`."""
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
    """Poll ``predicate`` until it holds; raise :class:`~netns_kit.errors.TimeoutError`."""
    from .errors import TimeoutError

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, max_interval)
