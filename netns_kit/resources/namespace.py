"""Network namespaces: made here (``ip netns add``) or someone else's, named (``ip netns attach``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

import attrs

from netns_kit.command import Command, change, query
from netns_kit.errors import ValidationError
from netns_kit.executors.base import Executor
from netns_kit.executors.process import Process
from netns_kit.lifecycle.resource import Resource
from netns_kit.lifecycle.teardown import stop_processes_in
from netns_kit.lifecycle.undoable import Undoable
from netns_kit.resources.container import container_pid
from netns_kit.resources.place import Host, _Place
from netns_kit.validate import to_name, valid_netns

__all__ = ["AttachedNamespace", "Host", "Namespace", "_Place", "stop_processes"]

log = logging.getLogger("netns_kit")


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

    @staticmethod
    def attach(name: str, *, pid: int | None = None, container: str | None = None) -> AttachedNamespace:
        """Someone else's namespace (a process's, a container's) under ``name``: see
        :class:`AttachedNamespace`. Exactly one of ``pid`` and ``container``."""
        return AttachedNamespace(name, pid=pid, container=container)

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
    stop_processes_in(executor, [namespace.name for namespace in namespaces], timeout=timeout)


def _positive_pid(instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValidationError(f"AttachedNamespace.{attribute.name}", value, "must be a positive integer (a PID)")


@attrs.frozen
class AttachedNamespace(Namespace):
    """Someone else's network namespace (a process's, a running container's) given a
    name here with ``ip netns attach NAME PID``, so a topology can wire veths,
    addresses and routes into it::

        web = Namespace.attach("web", container="web")    # docker/podman inspect
        job = Namespace.attach("job", pid=4242)

    The namespace is not ours: deleting the resource removes only the name
    (``ip netns del NAME``; the process keeps its namespace and all in it). It
    never sets ``lo`` up or tags it, and stops only the processes it started
    itself (:meth:`popen`). Not a holder: the veths, addresses and routes a
    topology put into it are deleted one by one, as they would be on the host.
    """

    holds_others: ClassVar[bool] = False

    pid: int | None = attrs.field(default=None, kw_only=True, validator=_positive_pid)
    #: a docker or podman container's name or id: its PID is read at creation
    container: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.pid is not None and self.container is not None:
            raise ValidationError(
                "AttachedNamespace.pid", self.pid, "cannot go with container: give exactly one of them"
            )
        if self.pid is None and self.container is None:
            raise ValidationError("AttachedNamespace.pid", None, "is missing: give exactly one of pid and container")
        if self.container is not None and (not self.container or self.container.startswith("-")):
            raise ValidationError("AttachedNamespace.container", self.container, "must be a container name or id")

    def target(self, executor: Executor) -> int:
        """The PID whose namespace is attached (a container's, read from docker or podman)."""
        if self.pid is not None:
            return self.pid
        assert self.container is not None
        return container_pid(executor, self.container)

    def plan(self, executor: Executor) -> list[Command]:
        pid = str(self.target(executor))
        return [change("ip", "netns", "attach", self.name, pid, undo=Command(("ip", "netns", "del", self.name)))]

    def undo(self, executor: Executor, done: Sequence[Command], *, complete: bool) -> None:
        if not done:
            return
        for process in self._state.processes:  # only those it started itself
            process.stop()
        self._state.processes.clear()
        executor.run(Command(("ip", "netns", "del", self.name), missing_ok=True))
