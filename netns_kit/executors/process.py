"""Supervised background processes (a server under test, say).

A :class:`Process` is started by an executor (through ``Namespace.popen``)
in a session of its own, so that :meth:`Process.stop` reaches its children
too: SIGTERM to the whole process group, then SIGKILL after a timeout.
Every process started is remembered until it is stopped or seen to exit;
:func:`stop_all` stops what is left (a fixture's teardown calls it, and so
does the interpreter's exit).

Environment and working directory go into the argv as ``env -C DIR K=V ...``
(:func:`with_env`): that survives every executor prefix (``ip netns exec``
and the sandbox's ``nsenter --mount``, which resets the working directory)
and shows in logs exactly as run.
"""

from __future__ import annotations

import atexit
import logging
import os
import shlex
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from netns_kit.command import Command, Result, query
from netns_kit.errors import NetnsKitError, NetnsKitTimeoutError, ValidationError
from netns_kit.executors import procfs, spawn
from netns_kit.owner import proc_stat
from netns_kit.validate import port as valid_port


class Runs(Protocol):
    """What a process needs of the executor that started it: to run a query where it runs."""

    def run(
        self, command: Command, *, check: bool = True, input: str | None = None, timeout: float | None = None
    ) -> Result: ...


log = logging.getLogger("netns_kit")

#: pass as ``stdout=``/``stderr=`` to keep the output in memory
PIPE = -1
#: pass as ``stderr=`` to merge it into stdout
STDOUT = -2

Target = str | Path | int | None

_running: set[Process] = set()


def with_env(command: Command, env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> Command:
    """``command`` run as ``env [-C cwd] [K=V ...] argv``: more variables and another directory."""
    if not env and cwd is None:
        return command
    prefix = ["env"]
    if cwd is not None:
        cwd = str(cwd)
        if not cwd:
            raise ValidationError("cwd", cwd, "must be a directory path, not empty")
        prefix += ["-C", cwd]
    for key, value in (env or {}).items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ValidationError("env", key, "must be a variable name: not empty, no '=' or NUL")
        if not isinstance(value, str) or "\0" in value:
            raise ValidationError(f"env[{key!r}]", value, "must be a string without NUL")
        prefix.append(f"{key}={value}")
    if "=" in command.program:
        raise ValidationError("argv[0]", command.program, "must not contain '=' when env or cwd is given")
    return attrs.evolve(command, argv=(*prefix, *command.argv))


class Process:
    """A process started in the background; stop it with :meth:`stop`.

    Output goes to a file (a path: :attr:`stdout` reads it back), to memory
    (``PIPE``, the default), or nowhere (``os.devnull``). ``command`` is
    what was asked for and ``argv`` what was really started.
    """

    def __init__(
        self,
        argv: Sequence[str],
        running: Any,
        *,
        command: Command | None = None,
        executor: Runs | None = None,
        outputs: tuple[Target, Target] = (None, None),
    ) -> None:
        self.argv = tuple(argv)
        self.command = command
        self.executor = executor
        self._running = running
        self._outputs = outputs
        self._collected = False
        self.pid: int = running.pid
        _running.add(self)

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else f"exited {self.returncode}"
        return f"<Process {self.pid} {state}: {shlex.join(self.argv)}>"

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        stdout: Target = None,
        stderr: Target = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        command: Command | None = None,
        executor: Runs | None = None,
    ) -> Process:
        """Start ``argv`` in a new session (``env`` is the complete environment).

        Its programs run by absolute path (:func:`netns_kit.executors.binaries.resolve`):
        found on ``PATH`` or where distributions install them; :attr:`argv`
        keeps them as given."""
        kwargs: dict[str, Any] = {
            "_bg": True,
            "_bg_exc": False,
            "_tty_out": False,
            "_tty_in": False,
            "_ok_code": range(-64, 256),
            "_new_session": True,
        }
        for key, target in (("_out", stdout), ("_err", stderr)):
            if target is None or target == PIPE:
                continue
            if target == STDOUT and key == "_err":
                kwargs["_err_to_out"] = True
            else:
                kwargs[key] = str(target)
        if env is not None:
            kwargs["_env"] = dict(env)
        if cwd is not None:
            kwargs["_cwd"] = str(cwd)
        running = spawn.start(argv, runner="sh", path=env.get("PATH") if env is not None else None, **kwargs)
        return cls(argv, running, command=command, executor=executor, outputs=(stdout, stderr))

    # -- state ---------------------------------------------------------------
    def is_alive(self) -> bool:
        alive = bool(self._running.process.is_alive()[0])
        if not alive:
            _running.discard(self)
        return alive

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal), None while running."""
        alive, code = self._running.process.is_alive()
        return None if alive else code

    def _output(self, index: int) -> str:
        target = self._outputs[index]
        if isinstance(target, str | Path):
            try:
                return Path(target).read_text(errors="replace")
            except OSError:
                return ""
        if not self.is_alive():
            self._collect()
        stream = self._running.process.stdout if index == 0 else self._running.process.stderr
        return bytes(stream).decode(errors="replace")

    def _collect(self) -> None:
        """Once it exited: wait until everything it wrote is read in (the threads that read
        its output may still be at it; at most 2 s when a child it left holds them open)."""
        if not self._collected:
            self._running.process.wait()
            self._collected = True

    @property
    def stdout(self) -> str:
        """What it wrote to stdout so far (read back from the file when it went to one)."""
        return self._output(0)

    @property
    def stderr(self) -> str:
        return self._output(1)

    # -- control -------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit and return the exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() >= deadline:
                raise NetnsKitTimeoutError(f"process {self.pid} still running after {timeout} s")
            time.sleep(0.005)
        self._collect()
        code = self.returncode
        assert code is not None
        return code

    def wait_port(self, port: int, *, timeout: float = 10.0, udp: bool = False) -> Process:
        """Block until something listens on ``port`` where this process runs.

        Polls ``ss -Hltn`` (``-Hlun`` with ``udp``) in the process's namespace:
        a listening TCP socket accepts connections from then on. Raises
        :class:`NetnsKitError` with the process's output when it exits first,
        :class:`~netns_kit.TimeoutError` after ``timeout`` seconds.
        """
        valid_port("port", port)
        if self.executor is None:
            raise NetnsKitError("wait_port needs a process started through an executor (Namespace.popen)")
        netns = self.command.netns if self.command is not None else None
        probe = query("ss", "-Hlun" if udp else "-Hltn", f"sport = :{port}", netns=netns)
        deadline = time.monotonic() + timeout
        interval = 0.005
        while True:
            result = self.executor.run(probe, check=False)
            if result.ok and result.stdout.strip():
                return self
            if not self.is_alive():
                raise NetnsKitError(
                    f"process {self.pid} exited with code {self.returncode} before listening on port {port}: "
                    f"{shlex.join(self.argv)}\n{self._tail()}"
                )
            if time.monotonic() >= deadline:
                where = f"namespace {netns}" if netns else "the host"
                raise NetnsKitTimeoutError(f"nothing listened on port {port} in {where} within {timeout:g} s")
            time.sleep(interval)
            interval = min(interval * 2, 0.1)

    def _tail(self, lines: int = 20) -> str:
        out = []
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            if text.strip():
                out.append(f"{name}: " + "\n        ".join(text.strip().splitlines()[-lines:]))
        return "\n".join(out) or "(no output)"

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process and its children (its process group)."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def _group_alive(self) -> bool:
        """True while a process of its group runs (a zombie, dead but not yet reaped by
        whoever inherited it, does not count)."""
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return _group_runs(self.pid)

    def stop(self, timeout: float = 3.0) -> int:
        """SIGTERM to it and its children, then SIGKILL if any still runs after ``timeout`` s."""
        if self.is_alive() or self._group_alive():
            self.signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while (self.is_alive() or self._group_alive()) and time.monotonic() < deadline:
                time.sleep(0.005)
            if self.is_alive() or self._group_alive():
                log.debug("process %s ignored SIGTERM for %s s: SIGKILL", self.pid, timeout)
                self.signal(signal.SIGKILL)
        code = self.wait(5.0)
        # its children die with the group, but a moment later: gone once stop() returns
        deadline = time.monotonic() + 5.0
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        _running.discard(self)
        return code

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _group_runs(pgid: int) -> bool:
    """True if a process of group ``pgid`` runs (one look at ``/proc``; zombies do not count)."""
    group = str(pgid)
    for pid in procfs.pids():
        fields = proc_stat(pid)  # state ppid pgrp ...
        if fields is not None and fields[2] == group and fields[0] not in ("Z", "X"):
            return True
    return False


def running() -> list[Process]:
    """Processes started through netns_kit that are still running."""
    return [p for p in list(_running) if p.is_alive()]


def stop_all(timeout: float = 3.0) -> list[Process]:
    """Stop every process netns_kit started that still runs; return them."""
    stopped = running()
    for process in stopped:
        process.stop(timeout)
    _running.clear()
    return stopped


atexit.register(stop_all, 1.0)
