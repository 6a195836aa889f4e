"""Running commands for real, on this machine: :class:`ShExecutor`.

Each command is one process started from its argv (never through a shell),
by ``subprocess`` (vfork + exec, ~0.9 ms) or, with ``runner="sh"``, the
``sh`` package (~6.8 ms), both through :func:`netns_kit.executors.spawn.start`;
a batching one (the default) runs many commands per process
(:mod:`netns_kit.executors.batcher`). Commands run in a process group of
their own, so a Ctrl-C in the terminal reaches netns_kit, which decides what
becomes of the command in flight.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from netns_kit import statedir
from netns_kit.batching.outcome import Outcome
from netns_kit.command import Command, Result
from netns_kit.errors import ValidationError, classify, not_started
from netns_kit.executors import batcher, loopback, procfs, spawn
from netns_kit.executors.hook import Executor
from netns_kit.executors.inorder import OnDone, in_order
from netns_kit.executors.process import Process, with_env
from netns_kit.owner import Owner

log = logging.getLogger("netns_kit")


class ShExecutor(Executor):
    """Runs commands for real.

    ``prefix`` is put in front of every argv (``("sudo", "-n")``, say).
    ``batch`` (the default) lets :meth:`run_all` run many commands per
    process (:mod:`netns_kit.executors.batcher`), up to ``parallel`` of those processes
    at a time when they do not depend on each other; ``batch=False`` runs
    one process per command, in order. ``runner`` starts them: ``"subprocess"`` (the default, ~0.9 ms
    a process) or ``"sh"`` (the ``sh`` package, ~6.8 ms). ``firewall``: the backend of the
    NAT rules and port forwards run through it that name none (:attr:`Executor.firewall`).
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
        firewall: str | None = None,
    ) -> None:
        super().__init__(owner, firewall=firewall)
        if runner not in spawn.RUNNERS:
            raise ValidationError("ShExecutor.runner", runner, "must be 'subprocess' or 'sh'")
        if not isinstance(parallel, int) or parallel < 1:
            raise ValidationError("ShExecutor.parallel", parallel, "must be a whole number >= 1")
        self.prefix = tuple(prefix)
        self.env = dict(env) if env is not None else None
        #: whether :meth:`handle` runs many commands per process
        self.batch = batch
        #: how many batch processes may run at once (steps that do not depend on each other)
        self.parallel = parallel
        self.runner = runner
        #: a batch process of a namespace starts in it directly (``setns`` on a thread,
        #: see :meth:`_execute_batch`) while that works; a prefix must run first, so not then
        self.enter_directly = not self.prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, batch={self.batch})"

    # -- the hook ---------------------------------------------------------------
    def handle(
        self,
        commands: Sequence[Command],
        *,
        input: str | None = None,
        timeout: float | None = None,
        on_done: OnDone | None = None,
    ) -> Outcome:
        """Many commands (batching): in few processes, several at a time
        (:func:`netns_kit.executors.batcher.run`); otherwise one process each, in order."""
        if self.batch and len(commands) > 1:
            return batcher.run(
                self,
                commands,
                launch=self._execute_batch,
                argv_of=self.batch_argv_for,
                parallel=self.parallel,
                on_done=on_done,
            )
        return in_order(
            commands, self._run_one, input=input, timeout=timeout, on_done=on_done, check_deletes=not self.batch
        )

    def _run_one(self, command: Command, input: str | None, timeout: float | None) -> Result:
        argv = self.argv_for(command)
        returncode, stdout, stderr = self._execute(argv, input=input, timeout=timeout)
        if returncode in (1, 127) and not_started(argv, returncode, stdout, stderr) is not None:
            # a wrapper (nsenter, ip netns exec, env) found the program nowhere: nothing ran
            raise classify(command.full_argv, returncode, stdout, stderr)
        return Result(command, returncode, stdout, stderr)

    def _execute_batch(self, process: Command, input: str) -> tuple[int, str, str]:
        """Run one batch process (``process``, a :meth:`~netns_kit.batching.schedule.Step.process`)
        with ``input`` on its stdin. Raises :class:`~netns_kit.errors.BinaryNotFoundError`
        when it could not be started (nothing of it ran).

        A batch process of a namespace is started inside it by a thread that
        entered it (:func:`netns_kit.executors.spawn.start_inside`): no ``nsenter`` process.
        Where that is refused (no ``CAP_SYS_ADMIN`` over the namespace: a
        rootless sandbox) it is not tried again, and :meth:`batch_argv_for`'s
        ``nsenter`` runs instead; so does a namespace whose file cannot be
        opened, which then fails exactly as it always did.
        """
        if self._enters_directly(process, input):
            assert process.netns is not None
            path = self.netns_path(process.netns)
            try:
                return self._execute(process.argv, input=input, timeout=None, netns=path)
            except spawn.NotEntered as error:
                if error.errno in (errno.EPERM, errno.EINVAL, errno.ENOSYS):
                    self.enter_directly = False
                log.debug("%s; entering with nsenter instead", error)
        argv = self.batch_argv_for(process)
        returncode, stdout, stderr = self._execute(argv, input=input, timeout=None)
        missing = not_started(argv, returncode, stdout, stderr) if returncode in (1, 127) else None
        if missing is not None:
            raise missing
        return returncode, stdout, stderr

    def _execute(
        self, argv: Sequence[str], *, input: str | None, timeout: float | None, netns: Path | None = None
    ) -> tuple[int, str, str]:
        """Run ``argv``; with ``netns`` (only with the subprocess runner), inside that namespace file."""
        env = {**os.environ, **self.env} if self.env is not None else None
        return spawn.run(argv, input=input, timeout=timeout, env=env, netns=netns, runner=self.runner)

    # -- where things are -------------------------------------------------------
    def netns_path(self, name: str) -> Path:
        """The file of the named namespace, as this process sees it."""
        return Path("/run/netns") / name

    def host_devices(self) -> set[str] | None:
        """Read from ``/proc/self/net/dev`` (without a prefix, our namespace is the host)."""
        if self.prefix:
            return None
        return procfs.devices(Path("/proc/self"))

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

    def _enters_directly(self, process: Command, input: str) -> bool:
        return process.netns is not None and self.enter_directly and self.runner == "subprocess"

    def _enter_net(self, path: Path) -> tuple[str, ...]:
        return ("nsenter", f"--net={path}", "--")

    def loopback_aliases(self, names: Sequence[str]) -> dict[str, str | None] | None:
        """Read in this process (a thread enters each namespace's file) where it may
        enter them; else by one process where this executor acts."""
        if not self.prefix and not self.dry_run:
            found = loopback.read_here({name: self.netns_path(name) for name in names})
            if found is not None:
                return found
        return super().loopback_aliases(names)

    def netns_pids(self, names: Sequence[str]) -> dict[str, list[int]]:
        """The processes in each of the named namespaces, by ONE scan of ``/proc``."""
        found = procfs.netns_pids({name: self.netns_path(name) for name in names})
        return {name: found.get(name, []) for name in names}

    def argv_for(self, command: Command) -> tuple[str, ...]:
        return self.prefix + command.full_argv

    @property
    def ledger_dir(self) -> Path | None:
        """The state directory of this machine (:mod:`netns_kit.statedir`), checked:
        :class:`~netns_kit.statedir.StateDirError` when it is not safe to trust."""
        return statedir.ledger_dir()

    def popen(
        self,
        command: Command,
        *,
        stdout: str | Path | int | None = None,
        stderr: str | Path | int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> Process:
        # env and cwd go into the argv (env -C DIR K=V ...): nsenter --mount resets the cwd
        started = with_env(command, env, cwd)
        argv = self.argv_for(started)
        log.debug("start %s", shlex.join(argv))
        environment = {**os.environ, **self.env} if self.env is not None else None
        return Process.start(argv, stdout=stdout, stderr=stderr, env=environment, command=started, executor=self)
