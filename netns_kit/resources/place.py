"""Reading state and running programs in one namespace, and the executor's own "host" namespace."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from netns_kit.command import Command, Result, change, query
from netns_kit.errors import NetnsKitTimeoutError
from netns_kit.executors.base import Executor, current
from netns_kit.executors.process import Process, with_env


class _Place:
    """Reading state and running programs in one namespace (``None``: the host)."""

    def _where(self) -> str | None:
        raise NotImplementedError

    def _executor(self, executor: Executor | None = None) -> Executor:
        raise NotImplementedError

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
        mutating: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> Result:
        """Run ``argv`` here and wait; raises :class:`CommandError` on failure unless ``check=False``.

        ``env`` adds environment variables and ``cwd`` sets the working
        directory (both through ``env -C DIR K=V``, so they work through
        every executor). ``mutating=True`` marks a command that changes state
        (a dry-run then records it in its script).
        """
        command = with_env(Command(tuple(argv), netns=self._where(), mutating=mutating), env, cwd)
        return self._executor().run(command, check=check, input=input, timeout=timeout)

    def popen(
        self,
        argv: Sequence[str],
        *,
        stdout: str | Path | int | None = None,
        stderr: str | Path | int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        port: int | None = None,
        timeout: float = 10.0,
    ) -> Process:
        """Start ``argv`` here in the background (a server, say), supervised.

        ``stdout``/``stderr`` take a file path, ``PIPE`` (memory, the
        default), ``STDOUT`` (stderr only) or ``os.devnull``; ``env`` adds
        variables, ``cwd`` sets the directory. With ``port``, returns only
        once something listens on that TCP port here (see
        :meth:`Process.wait_port`); a process that exits first raises with its
        output, and is not left behind. A namespace stops its processes when
        it is deleted (SIGTERM to each process group, SIGKILL after a timeout).
        """
        command = Command(tuple(argv), netns=self._where())
        process = self._executor().popen(command, stdout=stdout, stderr=stderr, env=env, cwd=cwd)
        self._track(process)
        if port is not None:
            try:
                process.wait_port(port, timeout=timeout)
            except BaseException:
                process.stop()
                raise
        return process

    def _track(self, process: Process) -> None:
        pass

    def _json(self, *argv: str) -> Any:
        result = self._executor().run(query("ip", "-j", *argv, netns=self._where()))
        return result.json()

    def links(self) -> list[dict[str, Any]]:
        """``ip -j -d link show`` here, as data."""
        data: list[dict[str, Any]] = self._json("-d", "link", "show")
        return data

    def addresses(self) -> list[dict[str, Any]]:
        """``ip -j addr show`` here, as data."""
        data: list[dict[str, Any]] = self._json("addr", "show")
        return data

    def routes(self, family: int | None = None) -> list[dict[str, Any]]:
        """The main routing table here (IPv4 and IPv6 unless ``family`` is 4 or 6)."""
        families = (family,) if family else (4, 6)
        routes: list[dict[str, Any]] = []
        for f in families:
            routes.extend(self._json(f"-{f}", "route", "show", "table", "main"))
        return routes

    def sysctl(self, key: str) -> str:
        """The value of a sysctl here (``net.ipv4.ip_forward``, say)."""
        result = self._executor().run(query("sysctl", "-n", key, netns=self._where()))
        return result.stdout.strip()

    def set_sysctl(self, key: str, value: str | int) -> str:
        """Set a sysctl here; returns the prior value."""
        prior = self.sysctl(key)
        self._executor().run(change("sysctl", "-q", "-w", f"{key}={value}", netns=self._where()))
        return prior

    def ping(self, address: str, *, count: int = 1, timeout: float = 1.0) -> bool:
        """True if ``address`` answers ``count`` pings (each waiting up to ``timeout`` s)."""
        argv = ("ping", "-n", "-q", "-c", str(count), "-W", f"{timeout:g}", str(address))
        return self.run(argv, check=False).ok

    def wait_reachable(self, address: str, *, timeout: float = 5.0) -> None:
        """Block until ``address`` answers a ping from here (raises :class:`~netns_kit.TimeoutError`).

        A fresh link does not always pass the first packet: wait with a
        deadline instead of asserting on a single ping.
        """
        if self._executor().dry_run:
            return
        deadline = time.monotonic() + timeout
        while not self.ping(address, timeout=0.5):
            if time.monotonic() >= deadline:
                where = self._where() or "the host"
                raise NetnsKitTimeoutError(f"{address} did not answer a ping from {where} within {timeout:g} s")
            time.sleep(0.02)


@attrs.frozen
class Host(_Place):
    """The executor's root namespace: the machine, or the sandbox's own "host"."""

    executor: Executor | None = attrs.field(default=None, eq=False, repr=False)

    def _where(self) -> str | None:
        return None

    def _executor(self, executor: Executor | None = None) -> Executor:
        return executor or self.executor or current()
