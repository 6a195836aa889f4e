"""One command after the other: the simplest :meth:`~netns_kit.executors.hook.Executor.handle`.

An executor that runs one process per command (the recorder, ``ShExecutor(batch=False)``,
an executor for another machine) implements its hook as ``in_order(commands, one)``
with ``one`` a function that runs one command and returns its :class:`Result`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from netns_kit.batching.batch import check_of, exists, is_delete
from netns_kit.batching.outcome import Outcome, Tally
from netns_kit.command import Command, Result
from netns_kit.errors import CommandError, NotFoundError, classify

log = logging.getLogger("netns_kit")

#: called with the positions of commands as they take effect (after each command, or each batch)
OnDone = Callable[[Sequence[int]], None]

#: runs one command: (command, its stdin, the timeout) -> its result. Raises only when
#: it could not run at all (:class:`~netns_kit.errors.BinaryNotFoundError`, a timeout).
RunOne = Callable[[Command, "str | None", "float | None"], Result]


def in_order(
    commands: Sequence[Command],
    one: RunOne,
    *,
    input: str | None = None,
    timeout: float | None = None,
    on_done: OnDone | None = None,
    check_deletes: bool = False,
) -> Outcome:
    """An :meth:`Executor.handle` that runs ``commands`` one at a time with ``one``.

    It stops at the first failure: a command whose exit code is not accepted (its
    result kept, the classified error returned with it), or one that could not run
    (``one`` raised). A ``missing_ok`` command that finds nothing
    (:class:`~netns_kit.errors.NotFoundError`) counts as done. A Ctrl-C while a
    command runs leaves that command in flight. With ``check_deletes``, a
    ``missing_ok`` rule deletion (``iptables -D``) runs only once ``-C`` finds its
    rule (an executor that runs a process per command does so; a batching one
    tries them all and checks only when that fails).
    """
    tally = Tally(commands)
    for index, command in enumerate(commands):
        log.debug("%s %s", "run" if command.mutating else "query", command)  # formatted only if shown
        try:
            gone = check_deletes and command.missing_ok and is_delete(command)
            if gone and not exists(one(check_of(command), None, timeout)):
                log.debug("nothing to delete (no such rule): %s", command.line)
                tally.done(index)
                if on_done is not None:
                    on_done((index,))
                continue
            result = one(command, command.stdin if input is None else input, timeout)
        except CommandError as error:
            return tally.outcome(error, failed=index)
        except BaseException as error:
            return tally.outcome(error, inflight=(index,))
        if not result.ok:
            refused = classify(command.full_argv, result.returncode, result.stdout, result.stderr)
            if not (command.missing_ok and isinstance(refused, NotFoundError)):
                tally.ran(index, result)
                return tally.outcome(refused, failed=index)
            log.debug("nothing to do (already gone): %s", command.line)
        tally.done(index, result)
        if on_done is not None:
            try:
                on_done((index,))
            except BaseException as error:  # a Ctrl-C in the caller's bookkeeping
                return tally.outcome(error)
    return tally.outcome()
