"""A throwaway "host": private user+net+mount namespaces kept alive by a holder.

``unshare [--user --map-root-user] --net --mount --propagation private`` starts
a holder process that mounts a fresh tmpfs on ``/run`` (so ``/run/netns``,
``/run/netns_kit`` and ``/run/xtables.lock`` are private), lays a
copy-on-write overlay on ``/etc`` (so ``/etc/netns`` can be written without
touching the machine) and then waits. Every command runs inside through
``nsenter --target PID --net --mount [--user --preserve-credentials]``, which
execs the command in the same process: no extra process per command.

When the holder's stdin closes (``close()``, or this Python process dies,
even by SIGKILL) it kills every process left in its namespaces and exits,
and the kernel frees everything: nothing reaches the machine's own network.
A child this process forks (without an exec) drops its copy of that pipe: it
cannot keep the holder alive. A detached holder (``start(detached=True)``)
outlives this process; with ``keep_later``, only once :meth:`Sandbox.keep`
says so. It then waits with no child process: a SIGKILL of it frees everything.

A holder is started with a random token and writes "TOKEN PID STARTTIME" to
``/run/.netns_kit/holder`` on its private ``/run``: :meth:`Sandbox.attach`
accepts only a process of this user that proves this way to be a holder
(:func:`verify_holder`), never any other process's namespaces.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import subprocess
import weakref
from pathlib import Path
from typing import Any

from netns_kit.command import Command
from netns_kit.errors import BinaryNotFoundError, SandboxError, ValidationError
from netns_kit.executors import binaries, procfs, spawn
from netns_kit.executors.local import ShExecutor
from netns_kit.executors.sandbox_proc import (
    IPTABLES_BACKENDS,
    MARKER,
    TOKEN_ENV,
    holder_argv,
    own_user_namespace,
    userns_problem,
    verify_holder,
)
from netns_kit.owner import Owner

__all__ = ["MARKER", "Sandbox", "userns_problem", "verify_holder"]

log = logging.getLogger("netns_kit")

#: an ``ip`` line naming a namespace (``netns NAME``, ``link-netns NAME``)
_NAMES_NETNS = re.compile(r"\bnetns\b")

#: the sandboxes whose holder this process started and keeps by a pipe (see _forked)
_OWNED: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def _forked() -> None:
    """In a child made by fork() (multiprocessing, a fork without exec): the holders of
    the parent are the parent's. The child drops its copy of their pipes, so that they
    still stop when the parent dies, and never stops them on close()."""
    for sandbox in list(_OWNED):
        holder, sandbox._holder = sandbox._holder, None
        if holder is not None and holder.stdin is not None:
            spawn.forget_pipe(holder.stdin)
    _OWNED.clear()


os.register_at_fork(after_in_child=_forked)


class Sandbox(ShExecutor):
    """An executor whose commands all run inside a throwaway network "host".

    ::

        with Sandbox() as sandbox, netns_kit.use(sandbox):
            ...  # everything here happens inside the sandbox

    Rootless by default when not root (``rootless=None``); as root it uses
    no user namespace. ``iptables="legacy"`` (or ``"nft"``) makes ``iptables``,
    ``ip6tables`` and their ``-save``/``-restore`` inside the sandbox that
    backend, whatever the machine's alternatives say (they are replaced in the
    sandbox's mount namespace only). ``firewall="nft"`` (or ``"auto"``, ``"iptables"``) is
    the backend of the NAT rules and port forwards run in it that name none
    (:attr:`~netns_kit.executors.hook.Executor.firewall`; None: ``$NETNS_KIT_FIREWALL``, else
    iptables). :meth:`attach` joins a holder started elsewhere.
    """

    def __init__(
        self,
        *,
        rootless: bool | None = None,
        owner: Owner | None = None,
        iptables: str | None = None,
        batch: bool = True,
        parallel: int = 4,
        runner: str = "subprocess",
        firewall: str | None = None,
    ) -> None:
        super().__init__(owner=owner, batch=batch, parallel=parallel, runner=runner, firewall=firewall)
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        if iptables not in IPTABLES_BACKENDS:
            raise ValidationError("Sandbox.iptables", iptables, f"must be one of {list(IPTABLES_BACKENDS)}")
        #: the iptables backend inside: "nft", "legacy", or None for the machine's choice
        self.iptables = iptables
        self._holder: subprocess.Popen[bytes] | None = None
        self._detached = False
        self._pid: int | None = None
        self.has_etc_netns = False

    def __repr__(self) -> str:
        return f"Sandbox(pid={self._pid}, rootless={self.rootless})"

    @classmethod
    def attach(cls, pid: int, *, rootless: bool | None = None, batch: bool = True, token: str | None = None) -> Sandbox:
        """Use the sandbox held by process ``pid`` (not stopped on close).

        ``pid`` must be a netns_kit sandbox holder of this user (see
        :func:`verify_holder`; with ``token``, that very one): any other process
        raises :class:`SandboxError`, before anything runs in its namespaces.
        ``rootless=None`` tells from the holder whether it has a user namespace.
        """
        verify_holder(pid, token=token)
        if rootless is None:
            rootless = own_user_namespace(pid)
        sandbox = cls(rootless=rootless, batch=batch)
        sandbox._set_pid(pid)
        sandbox.has_etc_netns = Path(f"/proc/{pid}/root/etc/netns").is_dir()
        return sandbox

    @property
    def token(self) -> str:
        """The random token this sandbox's holder was started with (see :func:`verify_holder`)."""
        return verify_holder(self.pid)

    @property
    def pid(self) -> int:
        if self._pid is None:
            raise SandboxError("the sandbox is not started: use it as a context manager or call start()")
        return self._pid

    @property
    def ledger_dir(self) -> Path | None:
        return Path(f"/proc/{self.pid}/root/run/netns_kit")

    def root_path(self, path: str | Path) -> Path:
        """Where a path inside the sandbox is seen from this process."""
        return Path(f"/proc/{self.pid}/root") / Path(path).relative_to("/")

    def netns_path(self, name: str) -> Path:
        return self.root_path(f"/run/netns/{name}")

    def host_devices(self) -> set[str] | None:
        """Read from the holder's ``/proc/PID/net/dev``: no process to start."""
        return procfs.devices(Path(f"/proc/{self.pid}"))

    def batch_argv_for(self, command: Command) -> tuple[str, ...]:
        if command.netns is None:
            return self.argv_for(command)
        # one nsenter: the sandbox's user and mount namespaces, the named network namespace
        user = ("--user", "--preserve-credentials") if self.rootless else ()
        net = f"--net={self.netns_path(command.netns)}"
        return ("nsenter", f"--target={self.pid}", *user, "--mount", net, "--", *command.argv)

    def _enters_directly(self, process: Command, input: str) -> bool:
        # only an `ip` that names no namespace (`peer ... netns blue` opens /run/netns/blue):
        # the sandbox's /run is in its mount namespace, and so are the /run/xtables.lock
        # and the choice of backend (/etc/alternatives) iptables-restore must see
        named = _NAMES_NETNS.search(input) is not None
        return process.program == "ip" and not named and super()._enters_directly(process, input)

    def _set_pid(self, pid: int) -> None:
        self._pid = pid
        user = ("--user", "--preserve-credentials") if self.rootless else ()
        self.prefix = ("nsenter", f"--target={pid}", *user, "--net", "--mount", "--")
        # a namespace's `ip -batch` only talks netlink: as root it starts in the namespace
        # directly (seen through /proc/PID/root); rootless, entering needs the sandbox's user
        # namespace, which a process with threads cannot join: nsenter then
        self.enter_directly = not self.rootless

    def holder_argv(self, *, detached: bool = False) -> list[str]:
        return holder_argv(rootless=self.rootless, detached=detached, iptables=self.iptables)

    def start(self, *, detached: bool = False, keep_later: bool = False) -> Sandbox:
        """Start the holder; with ``detached`` it outlives this process (stop with SIGTERM).

        With ``keep_later`` too, a detached holder stops when this process dies
        before :meth:`keep` (call it once the holder is recorded somewhere).
        """
        if self._pid is not None:
            raise SandboxError("this sandbox is already started")
        if self.rootless and os.geteuid() != 0:
            problem = userns_problem()
            if problem:
                raise SandboxError(f"unprivileged user namespaces are not available: {problem}")
        try:
            # by absolute path (unshare, and the sh it runs); the holder's own commands
            # (ip, mount) are looked for where distributions install them too
            holder: subprocess.Popen[bytes] = spawn.start(
                self.holder_argv(detached=detached),
                env={**os.environ, "PATH": os.pathsep.join(binaries.search_path()), TOKEN_ENV: secrets.token_hex(16)},
                # the holder stops when this pipe closes (this process dies, even by SIGKILL);
                # a detached one only until keep()
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except BinaryNotFoundError:
            raise SandboxError("unshare is not installed (Debian/Ubuntu: apt-get install util-linux)") from None
        assert holder.stdout is not None
        line = holder.stdout.readline().decode().strip()
        if not line.startswith("ready"):
            holder.wait(5)
            assert holder.stderr is not None
            stderr = holder.stderr.read().decode().strip()
            why = userns_problem() if self.rootless else None
            advice = (
                f" ({why})"
                if why
                else " (user namespaces may be disabled: run `netns-kit doctor`)"
                if self.rootless
                else " (creating namespaces needs root or CAP_SYS_ADMIN)"
            )
            raise SandboxError(f"the sandbox did not start: {stderr or 'no output'}{advice}")
        holder.stdout.close()
        self.has_etc_netns = line.endswith(" etc")
        self._holder = holder
        self._detached = detached
        self._set_pid(holder.pid)
        _OWNED.add(self)
        log.debug("sandbox holder %s started (rootless=%s)", holder.pid, self.rootless)
        if detached and not keep_later:
            self.keep()
        return self

    def keep(self) -> None:
        """Let a detached holder outlive this process (see :meth:`start`)."""
        holder = self._holder
        if holder is None or holder.stdin is None or not self._detached:
            raise SandboxError("only a detached sandbox started by this process can be kept")
        stdin, holder.stdin = holder.stdin, None  # close() then stops it with SIGTERM
        _OWNED.discard(self)
        try:
            stdin.write(b"keep\n")
            stdin.close()
        except BrokenPipeError:
            raise SandboxError(f"sandbox holder {holder.pid} stopped before it could be kept") from None

    def close(self) -> None:
        """Stop every process inside and free the namespaces (attached sandboxes: no-op)."""
        holder, self._holder = self._holder, None
        _OWNED.discard(self)
        if holder is None:
            return
        try:
            if holder.stdin is not None:
                holder.stdin.close()
            else:
                holder.send_signal(signal.SIGTERM)
            holder.wait(10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        finally:
            if holder.stderr is not None:
                holder.stderr.close()
        log.debug("sandbox holder %s stopped", holder.pid)
        self._pid = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run_script(self, script: str) -> Any:
        """Run a shell script (a recorder's :meth:`~Recorder.script`) inside, with /bin/sh.

        The script names its programs bare, as printed; the shell looks for them where
        netns_kit does (``PATH``, then ``/usr/sbin``, ``/sbin``: an ordinary user's login
        ``PATH`` has no ``iptables``)."""
        path = os.pathsep.join(binaries.search_path())
        return self.run(Command(("env", f"PATH={path}", "sh", "-s")), input=script)
