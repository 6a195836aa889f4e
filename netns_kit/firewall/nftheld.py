"""Opt-in: the owner's nft tables made with ``flags owner``, so that the kernel deletes them
when this process dies, SIGKILL included: :class:`Held`, an executor over another one.

::

    with Held(Sandbox()) as executor:           # or Held(ShExecutor()), Held(current())
        Topology([...], firewall="nft").up(executor)
        ...                                     # a SIGKILL here: the kernel deletes the table
    # closed: whatever was left of the held tables is gone too

It hands every command to the executor it wraps (``inner``) unchanged, but the ``nft -f -``
transactions on the owner's own table (``netns_kit_<owner id>``): those go, one line each, to
an :class:`~netns_kit.firewall.nftowner.OwnerHolder` of their namespace (an ``nft -i`` started
with the inner executor's prefix: the sandbox's ``nsenter``, ``sudo``, ``ip netns exec``),
their ``add table`` lines given ``flags owner``. A holder starts with the first transaction
that creates the table in its namespace and stops once one deletes it (a topology's down), on
:meth:`Held.close`, and when this process ends (its pipe closes: ``nft -i`` exits and the
kernel deletes the table). Only that process may change such a table: every change must come
through a :class:`Held` over the same executor (they share the holders); anything else (``nft
delete table`` from a shell, the plain executor itself) gets "Operation not permitted" while
it lives. Reading it works for everyone.

It changes a table's lifetime: the table lives until it is deleted (its topology's down),
:meth:`Held.close`, or the end of this process, whichever comes first.
Wrong for ``netns-kit up`` or a script that builds and exits; right where the table's life is
a test's (the pytest fixtures). Where it does nothing, the transactions run plain, as given:

* a dry-run (over a :class:`~netns_kit.executors.recorder.Recorder`): a printed script holds
  no socket, and never carries the flag;
* a namespace made through it (``ip netns add``): its teardown and crash cleanup
  delete it whole, its table with it, so a holder gains nothing there (and would keep the
  namespace alive until the teardown stops the processes in it);
* where the kernel (before 5.12) or nft (before 0.9.9) refuses ``flags owner``, or nft is
  missing: said once per machine in a log line (warning);
* a table that is there already without the flag (made by a plain transaction, or held by
  another process of the same owner): the kernel cannot add the flag to it; said in a log line.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from netns_kit import shape
from netns_kit.batching.outcome import Outcome, Progress
from netns_kit.command import Command, Result, query
from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor, OnDone, in_order
from netns_kit.executors.view import View
from netns_kit.firewall import nft
from netns_kit.firewall.nftowner import OwnerHolder

log = logging.getLogger("netns_kit")

#: per machine (an executor's :attr:`~netns_kit.executors.hook.Executor.underlying`): why
#: ``flags owner`` cannot be used there
_refused: weakref.WeakKeyDictionary[Executor, str] = weakref.WeakKeyDictionary()

#: consecutive transactions of one namespace go to a holder as one line of up to this many
#: bytes: ``nft -i`` runs a line in time and memory that grow faster than its length (W(200)'s
#: 200 port forwards as one line: 0.28 s and 120 MB kept by nft; one by one 0.40 s; in lines
#: of 8 KB 0.19 s and 10-15 MB)
MERGED = 8192


def _close_all(holders: dict[str | None, OwnerHolder]) -> None:
    for holder in list(holders.values()):
        holder.close()
    holders.clear()


class _Shared:
    """What every :class:`Held` of one owner over one machine shares: only the process that made
    an owned table may change it, so two of them must never each start a holder for it."""

    def __init__(self) -> None:
        self.holders: dict[str | None, OwnerHolder] = {}  # by namespace
        self.plain: dict[str | None, str] = {}  # namespaces whose transactions run plain: why
        self.ours: set[str] = set()  # namespaces made through one of them
        self.lock = threading.RLock()


#: by machine (an executor's :attr:`~netns_kit.executors.hook.Executor.underlying`) and table
_shared: weakref.WeakKeyDictionary[Executor, dict[str, _Shared]] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def _share(machine: Executor, table: str) -> _Shared:
    with _shared_lock:
        tables = _shared.get(machine)
        if tables is None:
            tables = _shared[machine] = {}
        shared = tables.get(table)
        if shared is None:
            shared = tables[table] = _Shared()
            # the holders stop when the machine's executor goes (at the latest at this process's end)
            weakref.finalize(machine, _close_all, shared.holders)
        return shared


class Held(View):
    """``inner``, with the owner's nft tables held by ``nft -i`` (see the module's doc).

    A view over ``inner``: what it does not answer itself, ``inner`` does (``held.pid`` of a
    sandbox). Every :class:`Held` over the same executor (:attr:`underlying`) shares the
    holders of its owner's table: a transaction through any of them goes to the one holder.
    ``timeout``: how long a transaction through a holder may take.
    """

    def __init__(self, inner: Executor, *, timeout: float = 10.0) -> None:
        super().__init__(inner)
        self.parallel = inner.parallel
        self.timeout = timeout
        #: the table it holds, in each namespace where one is held
        self.table = nft.table_name(inner.owner)
        shared = _share(inner.underlying, self.table)
        self._holders, self._plain, self._ours, self._lock = shared.holders, shared.plain, shared.ours, shared.lock

    def __repr__(self) -> str:
        return f"Held({self.inner!r})"

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(inner, name)

    # -- the hook -------------------------------------------------------------
    def handle(
        self,
        commands: Sequence[Command],
        *,
        input: str | None = None,
        timeout: float | None = None,
        on_done: OnDone | None = None,
    ) -> Outcome:
        """The owner's table's transactions through its holder, in order with the rest,
        which ``inner`` handles (batched as it batches) between them."""
        held = set() if self.dry_run else self._held(commands, input)
        if not held:
            return self.inner.handle(commands, input=input, timeout=timeout, on_done=on_done)
        results: dict[int, Result] = {}
        order: list[int] = []
        start = 0
        while start < len(commands):
            end = start + 1
            if start in held:  # consecutive transactions of one namespace go together, up to MERGED bytes
                size = len(commands[start].stdin or "")
                while end in held and commands[end].netns == commands[start].netns:
                    size += len(commands[end].stdin or "")
                    if size > MERGED:
                        break
                    end += 1
            else:
                while end < len(commands) and end not in held:
                    end += 1
            part = commands[start:end]
            ticked = None if on_done is None else _shifted(on_done, start)
            if start in held:
                alone = input if len(commands) == 1 else None
                outcome = self._together(part, input=alone, timeout=timeout, on_done=ticked)
            else:
                outcome = self.inner.handle(part, on_done=ticked)
            results.update({start + k: result for k, result in outcome.results.items()})
            order.extend(start + k for k in outcome.progress.completed)
            if outcome.error is not None:
                progress = outcome.progress
                failed = None if progress.failed is None else start + progress.failed
                inflight = tuple(start + k for k in progress.inflight)
                return Outcome(results, Progress(tuple(order), inflight, failed), outcome.error)
            start = end
        return Outcome(results, Progress(tuple(order)))

    def _held(self, commands: Sequence[Command], input: str | None) -> set[int]:
        """Positions of the transactions on the owner's table (in namespaces not made here)."""
        found: set[int] = set()
        if self.inner.underlying in _refused:
            return found  # said once: everything plain, as inner runs it
        for i, command in enumerate(commands):
            if command.program == "ip":
                made = shape.ip(command.argv)
                if made is not None and (made.object, made.verb) == ("netns", "add") and made.args:
                    self._ours.add(made.args[0])
            elif command.program == "nft" and command.argv[1:] == ("-f", "-") and command.mutating:
                text = input if input is not None and len(commands) == 1 else command.stdin
                here = command.netns
                if here not in self._ours and here not in self._plain and self._lines(text) is not None:
                    found.add(i)
        return found

    def _lines(self, text: str | None) -> list[tuple[str, tuple[str, str, str, str]]] | None:
        """Each line of ``text`` with its target, when every line changes the owner's table."""
        lines = []
        for line in (text or "").splitlines():
            if not line.strip():
                continue
            target = nft.target(line)
            if target is None or target[3] != self.table:
                return None
            lines.append((line, target))
        return lines or None

    def _together(
        self, part: Sequence[Command], *, input: str | None, timeout: float | None, on_done: OnDone | None
    ) -> Outcome:
        """Consecutive transactions of one namespace as ONE through its holder (as a batching
        executor runs them as one ``nft -f -``): all or nothing; when it fails, one by one for
        the precise error (and their ``missing_ok``). No holder: to ``inner``, which batches them."""
        if len(part) == 1:
            return in_order(part, self._one, input=input, timeout=timeout, on_done=on_done)
        netns, every = part[0].netns, range(len(part))
        lines = [line for command in part for line in self._lines(command.stdin) or []]
        with self._lock:
            holder = self._holder(netns, lines)
            if holder is None:
                answer = None
            else:
                try:
                    answer = self._send(holder, netns, lines)
                except CommandError as error:  # nft -i exited or did not answer: it may have taken effect
                    return Outcome({}, Progress((), tuple(every)), error)
        if answer is None:
            return self.inner.handle(part, on_done=on_done)
        if answer:
            log.debug("%d transactions as one failed (%s): one by one", len(part), answer.splitlines()[0])
            return in_order(part, self._one, timeout=timeout, on_done=on_done)
        if on_done is not None:
            on_done(every)
        return Outcome({k: Result(command) for k, command in enumerate(part)}, Progress(tuple(every)))

    def _one(self, command: Command, input: str | None, timeout: float | None) -> Result:
        """Run one transaction on the owner's table: through its namespace's holder, or plain."""
        lines = self._lines(input) or []
        with self._lock:
            holder = self._holder(command.netns, lines)
            if holder is not None:
                answer = self._send(holder, command.netns, lines)
                return Result(command, 1 if answer else 0, "", answer + "\n" if answer else "")
        outcome = self.inner.handle([command], input=input, timeout=timeout)
        if 0 in outcome.results:
            return outcome.results[0]
        raise outcome.error or RuntimeError(f"{self.inner!r} gave no result and no error for {command.line}")

    def _send(self, holder: OwnerHolder, netns: str | None, lines: list[tuple[str, tuple[str, str, str, str]]]) -> str:
        """``lines`` as one transaction through ``holder``: nft's error, "" when it took effect
        (then a holder whose tables it deleted stops)."""
        answer = holder.send(self._owned(lines))
        deleted = {t[2] for _, t in lines if t[:2] == ("delete", "table")}
        if not answer and deleted >= set(holder.table.families):
            self._stop(netns)
        return answer

    def _owned(self, lines: list[tuple[str, tuple[str, str, str, str]]]) -> nft.Transaction:
        """The transaction with ``flags owner`` on each ``add table`` that has no flags."""
        plain = nft.Table(self.table)
        return nft.Transaction(
            tuple(plain.create(t[2], owned=True) if line.strip() == plain.create(t[2]) else line for line, t in lines)
        )

    # -- the holders ------------------------------------------------------------
    def _holder(self, netns: str | None, lines: list[tuple[str, tuple[str, str, str, str]]]) -> OwnerHolder | None:
        """The holder of ``netns``; started when this transaction creates the table and leaves
        it there; None: run it plain (no holder, and this does not make one)."""
        holder = self._holders.get(netns)
        if holder is not None and not holder.alive:
            log.debug("the nft -i holding %s in %s has stopped: its table went with it", self.table, _where(netns))
            self._stop(netns)
            holder = None
        if holder is not None or netns in self._plain:
            return holder
        made = {t[2] for _, t in lines if t[:2] in (("add", "table"), ("create", "table"))}
        made -= {t[2] for _, t in lines if t[:2] == ("delete", "table")}
        machine = self.inner.underlying
        if not made or machine in _refused:
            return None
        table = nft.Table(self.table, split="inet" not in made, owned=True)
        holder = OwnerHolder(self.inner, table, netns, timeout=self.timeout)
        try:
            holder.start()
        except CommandError as error:
            self._refuse(netns, table, error)
            return None
        self._holders[netns] = holder
        log.debug("nft table %s in %s held by nft -i (pid %d)", self.table, _where(netns), holder.pid)
        return holder

    def _refuse(self, netns: str | None, table: nft.Table, error: CommandError) -> None:
        """Why the table cannot be held: there already (this namespace), or not here at all (the machine)."""
        family = table.families[0]
        look = self.inner.run(query("nft", "list", "table", family, self.table, netns=netns), check=False)
        why = (error.stderr or str(error)).strip().splitlines()[0]
        if look.returncode == 0:
            self._plain[netns] = f"table {family} {self.table} is there already without flags owner ({why})"
            log.warning("nft table %s in %s is not held: %s", self.table, _where(netns), self._plain[netns])
        else:
            reason = f"flags owner needs kernel >= 5.12 and nft >= 0.9.9 ({why})"
            _refused[self.inner.underlying] = reason
            log.warning("nft tables are not held (plain transactions instead): %s", reason)

    def _stop(self, netns: str | None) -> None:
        holder = self._holders.pop(netns, None)
        if holder is not None:
            holder.close()

    def holders(self) -> dict[str | None, int]:
        """The pid of each running holder, by namespace (None: the host)."""
        with self._lock:
            return {netns: holder.pid for netns, holder in self._holders.items() if holder.alive}

    def close(self) -> None:
        """Stop every holder of the owner's table over this executor (those of every other
        :class:`Held` over it too): the kernel deletes their tables (``inner`` is not closed)."""
        with self._lock:
            _close_all(self._holders)

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shifted(on_done: OnDone, start: int) -> OnDone:
    return lambda indexes: on_done([start + i for i in indexes])


def _where(netns: str | None) -> str:
    return f"namespace {netns}" if netns else "the host"


def held(executor: Executor) -> Executor:
    """``executor`` with the owner's nft tables held: ``Held(executor)``; a dry-run (which holds
    nothing) and a :class:`Held` as they are. For the test helpers: ``Factory(executor)``."""
    return executor if executor.dry_run or isinstance(executor, Held) else Held(executor)
