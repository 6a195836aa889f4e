"""Network namespaces, and the executor's own "host" namespace."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from netns_kit.command import Command, Result, change, query
from netns_kit.errors import NetnsKitError, NetnsKitTimeoutError
from netns_kit.executors.base import Executor, current
from netns_kit.executors.process import Process, with_env
from netns_kit.lifecycle.resource import Resource
from netns_kit.lifecycle.undoable import Undoable
from netns_kit.validate import to_name, valid_netns

log = logging.getLogger("netns_kit")


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


@attrs.frozen
class Namespace(_Place, Resource):
    """A named network namespace (``ip netns add``), with ``lo`` up.

    ::

        with Namespace("red") as red:
            red.run(["ip", "addr"])

    Deleting it stops the processes still inside (SIGTERM, then SIGKILL),
    deletes its veths first (so their names are free again at once) and then
    the namespace.
    """

    rank: ClassVar[int] = 0
    holds_others: ClassVar[bool] = True

    name: str = attrs.field(converter=to_name, validator=valid_netns)

    def _where(self) -> str | None:
        return self.name

    def _executor(self, executor: Executor | None = None) -> Executor:
        return Resource._executor(self, executor)

    def _track(self, process: Process) -> None:
        self._state.processes.append(process)

    def plan(self, executor: Executor) -> list[Command]:
        return [
            change("ip", "netns", "add", self.name, undo=Command(("ip", "netns", "del", self.name))),
            change("ip", "link", "set", "dev", "lo", "alias", executor.owner.tag, "up", netns=self.name),
        ]

    def exists(self, executor: Executor | None = None) -> bool:
        result = self._executor(executor).run(query("ip", "-j", "netns", "list"))
        return any(entry.get("name") == self.name for entry in result.json())

    def undo(self, executor: Executor, done: Sequence[Command], *, complete: bool) -> None:
        if not done:
            return
        self.stop_processes(executor)
        links = executor.run(query("ip", "-j", "link", "show", "type", "veth", netns=self.name), check=False)
        names = [link["ifname"] for link in (links.json() if links.ok else [])]
        executor.run_all(
            [change("ip", "link", "del", "dev", name, netns=self.name, missing_ok=True) for name in names]
            + [Command(("ip", "netns", "del", self.name), missing_ok=True)]
        )

    def held_name(self) -> str:
        return self.name

    def delete_whole(self) -> list[Command]:
        return [Command(("ip", "netns", "del", self.name), missing_ok=True)]

    @classmethod
    def empty(cls, executor: Executor, holders: Sequence[Undoable]) -> None:
        """Stop the processes in all of ``holders`` (one look at them all)."""
        stop_processes(executor, [holder for holder in holders if isinstance(holder, Namespace)])

    def pids(self, executor: Executor | None = None) -> list[int]:
        """PIDs of the processes in this namespace."""
        return self._executor(executor).netns_pids([self.name])[self.name]

    def stop_processes(self, executor: Executor | None = None, *, timeout: float = 3.0) -> None:
        """Stop what runs inside: our own processes first (SIGTERM, then SIGKILL), then any other."""
        stop_processes(self._executor(executor), [self], timeout=timeout)


def stop_processes(executor: Executor, namespaces: Sequence[Namespace], *, timeout: float = 3.0) -> None:
    """Stop every process in ``namespaces``: the ones they started first (SIGTERM, then
    SIGKILL), then any other, found by one look at all of them (:meth:`Executor.netns_pids`)."""
    for namespace in namespaces:
        for process in namespace._state.processes:
            process.stop(timeout)
        namespace._state.processes.clear()
    names = [namespace.name for namespace in namespaces]

    def left() -> list[int]:
        return sorted(pid for pids in executor.netns_pids(names).values() for pid in pids)

    pids = left()
    if not pids:
        return
    log.debug("stopping processes left in namespaces %s: %s", names, pids)
    for signal_name in ("TERM", "KILL"):
        executor.run(change("kill", f"-{signal_name}", *map(str, pids)), check=False)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            time.sleep(0.01)
            pids = left()
        if not pids:
            return
    raise NetnsKitError(f"processes {pids} in namespaces {names} survived SIGKILL")
