"""The ONE door to processes: the :class:`Executor` and its one hook, :meth:`Executor.handle`.

Every command netns_kit runs goes through an :class:`Executor`:

* :class:`~netns_kit.executors.local.ShExecutor` runs argv for real (never through a shell);
* :class:`~netns_kit.executors.recorder.Recorder` is the dry-run: it records mutating commands, answers
  queries itself and renders the shell script, without starting a process;
* :class:`~netns_kit.executors.sandbox.Sandbox` runs everything inside throwaway
  user+net+mount namespaces.

Pick one for a block of code with :func:`~netns_kit.executors.base.use`, or per
object with the ``executor=`` argument every resource takes.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, final

from netns_kit.batching.outcome import Outcome, Progress
from netns_kit.command import Command, Result, query
from netns_kit.errors import CommandError, NetnsKitTimeoutError, ValidationError
from netns_kit.executors import loopback
from netns_kit.executors.inorder import OnDone
from netns_kit.owner import Owner

if TYPE_CHECKING:
    from netns_kit.executors.process import Process

log = logging.getLogger("netns_kit")

#: what :attr:`Executor.firewall` may say (None aside); the same as
#: :data:`netns_kit.firewall.backend.BACKENDS`, which this layer cannot import
FIREWALLS = ("auto", "iptables", "nft")


class Executor:
    """Runs :class:`Command` values and gives back :class:`Result` values.

    **The hook.** An executor implements ONE method, :meth:`handle`::

        def handle(self, commands, *, input=None, timeout=None, on_done=None) -> Outcome

    It runs ``commands`` (a sequence of :class:`Command`; each says its argv,
    its namespace, its accepted exit codes, its stdin) and returns an
    :class:`~netns_kit.batching.outcome.Outcome`: the :class:`Result` of each
    command that ran, the :class:`~netns_kit.batching.outcome.Progress` (the
    positions that took effect, in the order they ran; those that may have; the
    one that failed) and the error that stopped the run (a classified
    :class:`~netns_kit.errors.CommandError`, a Ctrl-C...), returned, not
    raised. It stops at the first command that fails (an exit code not in its
    ``ok_codes``, except a ``missing_ok`` command that finds nothing, which
    counts as done). It calls ``on_done`` with the positions of commands as they
    take effect. ``input`` and ``timeout`` come only with one command
    (:meth:`run`): text for its stdin instead of its own, and a limit in seconds.
    A program that could not be started at all is a
    :class:`~netns_kit.errors.BinaryNotFoundError` with no result.

    The simplest way to implement it is :func:`~netns_kit.executors.inorder.in_order`
    with a function that runs one command (and raises only when it could not run
    at all): an executor that runs argv on another machine over ssh is::

        class Ssh(Executor):
            def handle(self, commands, *, input=None, timeout=None, on_done=None):
                return in_order(commands, self.one, input=input, timeout=timeout, on_done=on_done)

            def one(self, command, input, timeout):
                done = subprocess.run(["ssh", self.host, "--", shlex.join(command.full_argv)], ...)
                return Result(command, done.returncode, done.stdout, done.stderr)

    A batching executor may run commands that do not depend on each other out of
    order (:mod:`netns_kit.executors.batcher`): ``Progress.completed`` need not be
    a prefix then.

    **The entry points** (final: never overridden) are :meth:`run` (one command,
    an error raised), :meth:`run_all` (many, the first error raised) and
    :meth:`attempt` (many, nothing raised: the :class:`Outcome` itself, for an
    undo journal). Optional: :meth:`popen` (background processes),
    :attr:`ledger_dir`, :meth:`argv_for`, :meth:`host_devices`,
    :meth:`netns_pids`, and :attr:`underlying` for a view over another executor;
    :attr:`dry_run` for one that touches nothing (then a teardown is recorded
    resource by resource, as its script reads). Nothing outside an executor asks
    how it runs commands: work that may go side by side is handed to it
    (:meth:`side_by_side`).
    """

    #: True for executors that never touch the system (the recorder).
    dry_run: bool = False
    #: how many processes this executor runs at once; its own setting, read by itself
    #: (:meth:`side_by_side`, a batching executor's steps), never by its callers
    parallel: int = 1
    _firewall: str | None = None

    def __init__(self, owner: Owner | None = None, *, firewall: str | None = None) -> None:
        self.owner = owner or Owner.current()
        self.firewall = firewall

    @property
    def firewall(self) -> str | None:
        """The firewall backend (``"iptables"``, ``"nft"``, ``"auto"``) of the NAT rules and port
        forwards run through this executor that name none, where their topology names none either.
        None: ``$NETNS_KIT_FIREWALL``, else iptables (:func:`netns_kit.firewall.backend.effective`).
        A view over another executor (:attr:`underlying`) says what that one says, unless set."""
        if self._firewall is None:
            under = self.underlying
            if under is not self:
                return under.firewall
        return self._firewall

    @firewall.setter
    def firewall(self, value: str | None) -> None:
        if value is not None and value not in FIREWALLS:
            raise ValidationError(f"{type(self).__name__}.firewall", value, f"must be one of {', '.join(FIREWALLS)}")
        self._firewall = value

    # -- the hook -----------------------------------------------------------
    def handle(
        self,
        commands: Sequence[Command],
        *,
        input: str | None = None,
        timeout: float | None = None,
        on_done: OnDone | None = None,
    ) -> Outcome:
        """Run ``commands``; what took effect and what stopped the run (see the class doc)."""
        raise NotImplementedError(f"{type(self).__name__} must implement Executor.handle()")

    # -- the entry points -----------------------------------------------------
    @final
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
        outcome = self.handle([command], input=input, timeout=timeout)
        result = outcome.results.get(0)
        if result is None:
            if outcome.error is None:
                raise RuntimeError(f"{type(self).__name__}.handle() gave no result and no error for {command.line}")
            raise outcome.error
        if outcome.error is None or not check:
            return result
        raise outcome.error

    @final
    def run_all(self, commands: Sequence[Command], *, on_done: OnDone | None = None) -> list[Result]:
        """Run commands, stopping at the first failure, which is raised.

        A :class:`CommandError` raised carries ``completed``: the results that took
        effect, in the order they ran. To know exactly which positions took effect
        (to undo them), use :meth:`attempt`. ``on_done`` is called with the
        positions of commands as they take effect (after each command, or after
        each batch), so a write-ahead ledger can mark progress.
        """
        outcome = self.attempt(commands, on_done=on_done)
        if outcome.error is not None:
            raise outcome.error
        return [outcome.results[i] for i in range(len(commands))]

    @final
    def attempt(self, commands: Sequence[Command], *, on_done: OnDone | None = None) -> Outcome:
        """Run commands as :meth:`run_all` does, but return the :class:`Outcome` (its
        ``error`` included) instead of raising: ``outcome.progress`` says exactly
        what took effect, for an undo journal.

        Should :meth:`handle` raise instead of returning (an executor that does
        not follow the hook's contract), what it reported through ``on_done``
        took effect and every other command may have.
        """
        for command in commands:
            _require_command(command, "run_all")
        if not commands:
            return Outcome({}, Progress())
        ticked: list[int] = []

        def tick(indexes: Sequence[int]) -> None:
            ticked.extend(indexes)
            if on_done is not None:
                on_done(indexes)

        try:
            outcome = self.handle(commands, on_done=tick)
        except BaseException as error:
            seen = set(ticked)
            rest = tuple(i for i in range(len(commands)) if i not in seen)
            outcome = Outcome({}, Progress(tuple(ticked), rest, None), error)
        if isinstance(outcome.error, CommandError):
            outcome.error.completed = outcome.completed
        return outcome

    @final
    def side_by_side(
        self, first: Callable[[], None], second: Callable[[], None], *, background: str = "second"
    ) -> None:
        """Run two jobs that do not need each other (each runs commands through this
        executor): at the same time when this executor runs several processes at once
        (``parallel`` > 1; the ``background`` one, "first" or "second", on a worker
        thread), else ``first`` and then ``second``. Returns once both are done; an
        error of either is raised (the one of this thread's job first)."""
        if self.parallel < 2:
            first()
            second()
            return
        worker, here = (first, second) if background == "first" else (second, first)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netns_kit") as pool:
            other = pool.submit(worker)
            try:
                here()
            finally:
                other.result()

    # -- optional -------------------------------------------------------------
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
    def underlying(self) -> Executor:
        """The executor that answers for the machine: this one, or, for a view over
        another executor (the planning view
        :class:`~netns_kit.lifecycle.overlay.PlannedSysctls`), the one it wraps.
        What is probed or remembered per machine is keyed by it."""
        return self

    @property
    def ledger_dir(self) -> Path | None:
        """Where the write-ahead ledger of this executor's changes lives."""
        return None

    def argv_for(self, command: Command) -> tuple[str, ...]:
        """The argv that is really started for ``command`` (with any prefix)."""
        return command.full_argv

    def host_devices(self) -> set[str] | None:
        """The names of the network devices of this executor's host, read without
        starting a process; None when it cannot (then ask ``ip``)."""
        return None

    def loopback_aliases(self, names: Sequence[str]) -> dict[str, str | None] | None:
        """The alias of ``lo`` in each of the named namespaces, read by ONE process where
        this executor acts (:mod:`~netns_kit.executors.loopback`); a namespace that could
        not be read is left out; None when nothing could (a dry-run, no Python there)."""
        if self.dry_run or not names:
            return None if self.dry_run else {}
        try:
            program = query(sys.executable, *loopback.ARGV_TAIL)
            result = self.run(program, input=loopback.stdin(names), check=False)
            found = json.loads(result.stdout) if result.ok else None
        except (CommandError, ValueError):
            return None
        if not isinstance(found, dict):
            return None
        asked = set(names)
        return {k: v for k, v in found.items() if k in asked and (v is None or isinstance(v, str))}

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


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.005,
    max_interval: float = 0.1,
) -> None:
    """Poll ``predicate`` until it holds; raise :class:`~netns_kit.errors.NetnsKitTimeoutError`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise NetnsKitTimeoutError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, max_interval)
