"""The ``owner`` flag: a table the kernel deletes when its owner's process dies.

A table made with ``flags owner`` (kernel 5.12, nft 0.9.9) belongs to the
netlink socket that made it: no other process may change or delete it, and
the kernel removes it when that socket closes, SIGKILL included. An ``nft -f``
process exits at once (and its owned table with it), so :class:`OwnerHolder`
keeps one ``nft -i`` child running, fed over a pipe: every later change of the
table goes through it, one line per transaction (nft runs each line it reads
as one transaction, all or nothing). When this Python process dies, the pipe
closes, ``nft -i`` reads end-of-file and exits, and the kernel deletes the
table: crash cleanup with no ledger and no sweep.

``nft -i`` says nothing on success and prints errors to stderr (unbuffered),
so after each transaction the holder sends a line nft cannot parse, carrying a
counter: its syntax error marks the end of the transaction's answer.

Costs and limits (measured on kernel 6.18, nft 1.0.6, 2 vCPU, scripts/bench_nftheld.py):
starting the holder 6 ms (one ``nft -i`` and the owned table; it runs with ``HOME=/dev/null``:
``nft -i`` otherwise reads and rewrites ``~/.nft.history``, which grows with every line: 45 ms
to start and 250 ms to stop with 3.6 MB of it); its memory 4 MB, 9.6 MB holding W(200)'s rules.
A transaction through it costs about what an ``nft -f -`` process does, less the process (each
re-reads the table): W(200)'s 202 transactions one by one took 0.6-0.9 s to add and 0.3-0.6 s
to remove, one process each 1.1-2.1 s and 3.8-4.7 s, all in ONE ``nft -f -`` 0.11 s and 0.04 s
(:class:`~netns_kit.firewall.nftheld.Held` sends lines of up to 8 KB: 0.27 s and 0.09 s). It
cannot be used by a dry-run (no process) nor by a printed script, and a table it holds can be
changed by nothing else: ``nft delete table`` from the shell or from ``netns-kit cleanup`` gets
"Operation not permitted" while the holder lives. ``flags owner`` needs kernel 5.12; nft 1.0.6
prints such a table's flags wrongly in JSON (see :mod:`netns_kit.firewall.nftread`).
"""

from __future__ import annotations

import os
import select
import subprocess
import time
import weakref

from netns_kit.command import query
from netns_kit.errors import CommandError, classify
from netns_kit.executors import spawn
from netns_kit.executors.base import Executor
from netns_kit.firewall.nft import Table, Transaction

_MARK = "netns-kit-sync-"


def _forked() -> None:
    """In a child made by fork() without exec: the holders are the parent's. The child's copy
    of each pipe becomes /dev/null, so that the table still goes when the PARENT dies."""
    for holder in list(_HOLDERS):
        process, holder._process = holder._process, None
        if process is not None and process.stdin is not None:
            spawn.forget_pipe(process.stdin)
    _HOLDERS.clear()


_HOLDERS: weakref.WeakSet[OwnerHolder] = weakref.WeakSet()
os.register_at_fork(after_in_child=_forked)


class OwnerHolder:
    """A running ``nft -i`` holding ``table`` with ``flags owner``::

        with OwnerHolder(executor, Table.of(owner)) as holder:
            holder.apply(table.add(chains, tag))
        # closed: the kernel has deleted the table

    ``netns``: the namespace whose firewall it is (None: the executor's host).
    """

    def __init__(self, executor: Executor, table: Table, netns: str | None = None, *, timeout: float = 10.0) -> None:
        if executor.dry_run:
            raise ValueError("a dry-run starts no process: an owned table needs a real executor")
        if not table.owned:
            raise ValueError(f"{table} is not owned=True: its transactions would drop the owner flag")
        self.executor = executor
        self.table = table
        self.netns = netns
        self.timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._count = 0
        self._pending = b""

    @property
    def argv(self) -> tuple[str, ...]:
        # HOME=/dev/null: nft -i (libedit) keeps a history of every line in ~/.nft.history, read
        # at its start and rewritten at its exit (3.6 MB here after a test suite: 45 ms to start,
        # 250 ms to stop, and our transactions in root's home); with no such file, neither
        return self.executor.argv_for(query("env", "HOME=/dev/null", "nft", "-i", netns=self.netns))

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the holder is not started")
        return self._process.pid

    def start(self) -> OwnerHolder:
        """Start ``nft -i`` and create the owned table(s) through it."""
        # spawn.start finds nft where distributions put it (a login user's PATH has no /usr/sbin)
        self._process = spawn.start(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, bufsize=0
        )
        _HOLDERS.add(self)
        lines = tuple(self.table.create(family) for family in self.table.families)
        try:
            self.apply(Transaction(lines))
        except BaseException:
            self.close()
            raise
        return self

    @property
    def alive(self) -> bool:
        """Started, and its ``nft -i`` still runs (a teardown may have stopped the processes
        in its namespace; a forked child has none)."""
        return self._process is not None and self._process.poll() is None

    def apply(self, transaction: Transaction) -> None:
        """Run ``transaction`` through the holder; raise :class:`CommandError` (nothing changed) on failure."""
        answer = self.send(transaction)
        if answer:
            raise self._error(transaction, answer)

    def send(self, transaction: Transaction) -> str:
        """Run ``transaction`` through the holder: nft's error message, "" when it took effect.
        Raises :class:`CommandError` when ``nft -i`` has exited or gave no answer (then it
        may have taken effect)."""
        process = self._process
        if process is None or process.stdin is None or process.stderr is None:
            raise RuntimeError("the holder is not started")
        self._count += 1
        mark = f"{_MARK}{self._count}"
        try:
            process.stdin.write(f"{transaction.one_line}\n{mark}\n".encode())
        except BrokenPipeError:
            raise self._error(transaction, "nft -i has exited") from None
        answer = self._read_until(process.stderr.fileno(), f"\n{mark}\n".encode())
        if answer is None:
            raise self._error(transaction, f"nft -i gave no answer within {self.timeout} s")
        # the answer ends with the error nft reports for the mark line: cut it off
        answer = answer[: answer.rfind("Error:")]
        return answer.strip() if "Error:" in answer else ""

    def _read_until(self, fd: int, end: bytes) -> str | None:
        buffer, deadline = self._pending, time.monotonic() + self.timeout
        while end not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            buffer += chunk
        head, _, self._pending = buffer.partition(end)  # what follows: the caret line under the mark
        return head.lstrip(b" ^\n").decode(errors="replace")  # the previous mark's caret line

    def _error(self, transaction: Transaction, stderr: str) -> CommandError:
        error = classify(self.argv, 1, "", stderr)
        error.hint = f"{error.hint + '; ' if error.hint else ''}the transaction was: {transaction.one_line}"
        return error

    def close(self, timeout: float = 3.0) -> None:
        """Close its stdin: ``nft -i`` exits and the kernel deletes the owned table."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> OwnerHolder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
