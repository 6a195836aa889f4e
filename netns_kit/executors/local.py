"""Running commands for real, on this machine: :class:`ShExecutor`.

Each command is one process started from its argv (never through a shell),
by ``subprocess`` (vfork + exec, ~0.9 ms) or, with ``runner="sh"``, the
``sh`` package (~6.8 ms); a batching one (the default) runs many commands
per process (:mod:`netns_kit.batching.batch`). Commands run in a process group of
their own, so a Ctrl-C in the terminal reaches netns_kit, which decides what
becomes of the command in flight.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shlex
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netns_kit.command import Command
from netns_kit.errors import CommandError, ValidationError, binary_not_found
from netns_kit.executors.base import Executor
from netns_kit.owner import Owner

if TYPE_CHECKING:
    from netns_kit.executors.process import Process

log = logging.getLogger("netns_kit")


class ShExecutor(Executor):
    """Runs commands for real.

    ``prefix`` is put in front of every argv (``("sudo", "-n")``, say).
    ``batch`` (the default) lets :meth:`run_all` run many commands per
    process (:mod:`netns_kit.batching.batch`), up to ``parallel`` of those processes
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
        #: a batch process of a namespace starts in it directly (``setns`` on a thread,
        #: see :meth:`_execute_batch`) while that works; a prefix must run first, so not then
        self.enter_directly = not self.prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, batch={self.batch})"

    def netns_path(self, name: str) -> Path:
        """The file of the named namespace, as this process sees it."""
        return Path("/run/netns") / name

    def host_devices(self) -> set[str] | None:
        """Read from ``/proc/self/net/dev`` (without a prefix, our namespace is the host)."""
        if self.prefix:
            return None
        from netns_kit.executors import spawn

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

    def _execute_batch(self, process: Command, input: str) -> tuple[int, str, str]:
        """A batch process of a namespace is started inside it by a thread that
        entered it (:func:`netns_kit.executors.spawn.start_inside`): no ``nsenter`` process.

        Where that is refused (no ``CAP_SYS_ADMIN`` over the namespace: a
        rootless sandbox) it is not tried again, and :meth:`batch_argv_for`'s
        ``nsenter`` runs instead; so does a namespace whose file cannot be
        opened, which then fails exactly as it always did.
        """
        if self._enters_directly(process, input):
            from netns_kit.executors import spawn

            assert process.netns is not None
            path = self.netns_path(process.netns)
            try:
                return self._execute(process.argv, input=input, timeout=None, netns=path)
            except spawn.NotEntered as error:
                if error.errno in (errno.EPERM, errno.EINVAL, errno.ENOSYS):
                    self.enter_directly = False
                log.debug("%s; entering with nsenter instead", error)
        return super()._execute_batch(process, input)

    def _enters_directly(self, process: Command, input: str) -> bool:
        return process.netns is not None and self.enter_directly and self.runner == "subprocess"

    def _enter_net(self, path: Path) -> tuple[str, ...]:
        return ("nsenter", f"--net={path}", "--")

    def netns_pids(self, names: Sequence[str]) -> dict[str, list[int]]:
        """The processes in each of the named namespaces, by ONE scan of ``/proc``."""
        from netns_kit.executors import spawn

        found = spawn.netns_pids({name: self.netns_path(name) for name in names})
        return {name: found.get(name, []) for name in names}

    def argv_for(self, command: Command) -> tuple[str, ...]:
        return self.prefix + command.full_argv

    @property
    def ledger_dir(self) -> Path | None:
        """The state directory of this machine (:mod:`netns_kit.statedir`), checked:
        :class:`~netns_kit.statedir.StateDirError` when it is not safe to trust."""
        from netns_kit import statedir

        return statedir.ledger_dir()

    def _execute(
        self, argv: Sequence[str], *, input: str | None, timeout: float | None, netns: Path | None = None
    ) -> tuple[int, str, str]:
        """Run ``argv``; with ``netns`` (only with the subprocess runner), inside that namespace file."""
        if self.runner == "subprocess":
            from netns_kit.executors import spawn

            env = {**os.environ, **self.env} if self.env is not None else None
            return spawn.run(argv, input=input, timeout=timeout, env=env, netns=netns)
        if netns is not None:
            raise ValueError("only the subprocess runner starts a process inside a namespace")
        import sh  # imported here: `import netns_kit` stays fast

        from netns_kit.executors import binaries

        environment = {**os.environ, **self.env} if self.env is not None else None
        started = binaries.resolve(argv, path=environment.get("PATH") if environment is not None else None)
        try:
            program = sh.Command(started[0])
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
        if environment is not None:
            kwargs["_env"] = environment
        # sh forks and runs Python in the child until the exec: a Ctrl-C or SIGTERM landing
        # there would raise in a copy of this program; held back until the child has its
        # own process group (see _default_signals)
        kwargs["_preexec_fn"] = _default_signals
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
        try:
            done = program(*started[1:], **kwargs)
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
        from netns_kit.executors.process import Process, with_env

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
