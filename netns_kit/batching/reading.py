"""Reading a batch process's output back into what took effect.

* ``ip -batch -`` stops at the first failing line and says
  ``Command failed -:N``: line N is the command, the lines before it took
  effect. Its own stderr is classified as if it had run alone. A
  ``missing_ok`` command that finds nothing counts as done and the rest of
  the step runs on in a new process.
* ``iptables-restore --noflush`` applies each ``*table ... COMMIT`` block
  atomically and names the line that failed: the blocks before it took
  effect, that one did not. Its commands (and the rest of the step) are then
  run again one by one, so the error is exactly the one an unbatched run
  raises, and what took effect before it is exactly what it would be.

A failure ``ip`` reports without a line number (it exits on a word it
cannot parse, as in ``Error: any valid prefix is expected rather than
"10.0.0.1/33".``) is found by the words ip quotes: the one line holding them
all is the command that failed, the lines before it took effect, the rest
did not. When no line, or several, hold them, which lines of that step ran
is unknown (between the first and the last that hold them, when several):
they are reported as in flight, so an undo journal undoes them with
``missing_ok``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from netns_kit import shape
from netns_kit.command import Command
from netns_kit.errors import CommandError, NotFoundError, classify

_IP_FAILED = re.compile(r"^Command failed -:(\d+)\s*$", re.MULTILINE)
_RESTORE_FAILED = re.compile(r"line:? (\d+)(?: failed)?", re.IGNORECASE)
#: the words ip quotes when it exits on one it cannot parse ("any valid prefix is
#: expected rather than "X"", "either "dev" is duplicate, or "X" is a garbage")
_IP_QUOTED = re.compile(r'"([^"\n]*)"')
#: the first of these two may be a word ip puts in itself ("to" of "route add PREFIX")
_IP_GARBAGE = re.compile(r'either "[^"\n]*" is duplicate, or "([^"\n]*)" is a garbage')


#: what a process said: (exit code, stdout, stderr)
Ran = tuple[int, str, str]


@attrs.frozen
class Verdict:
    """What one batch process did with the commands ``todo`` it was given (positions)."""

    #: took effect, in the order they ran
    done: tuple[int, ...] = ()
    #: what still has to run: in a new ``ip -batch`` (after a ``missing_ok`` line that
    #: found nothing), or one by one (after a failed ``iptables-restore`` block)
    rest: tuple[int, ...] = ()
    #: the error that stops the step (None: go on with ``rest``)
    error: CommandError | None = None
    failed: int | None = None
    inflight: tuple[int, ...] = ()


def read_ip(commands: Sequence[Command], todo: Sequence[int], argv: Sequence[str], ran: Ran) -> Verdict:
    """What an ``ip -batch`` (started as ``argv``) of the commands ``todo`` did, as it
    said (``ran``: exit code, stdout, stderr)."""
    returncode, stdout, stderr = ran
    if returncode == 0:
        return Verdict(done=tuple(todo))
    match = _IP_FAILED.search(stderr)
    if match is not None and 1 <= int(match.group(1)) <= len(todo):
        line = int(match.group(1))
        said = stderr[: match.start()].strip() + "\n"
    else:  # ip exited on a word it could not parse: the line holding the words it quotes
        holding = unparsed_lines(stderr, [commands[i] for i in todo])
        if len(holding) != 1:
            error = classify(argv, returncode, stdout, stderr)
            done = tuple(todo[: holding[0]]) if holding else ()  # before the first line it can have stopped on
            inflight = tuple(todo[holding[0] : holding[-1]]) if holding else tuple(todo)
            if holding:
                named = "; ".join(commands[todo[p]].line for p in holding)
                error.add_note(f"ip stopped on a line it could not parse, one of: {named}")
            else:
                error.add_note("ip stopped on a line it could not parse; which lines ran is unknown")
            return Verdict(done=done, error=error, inflight=inflight)
        line = holding[0] + 1
        said = stderr
    done = tuple(todo[: line - 1])
    failed = todo[line - 1]
    command = commands[failed]
    error = classify(command.full_argv, returncode, "", said)
    if command.missing_ok and isinstance(error, NotFoundError):
        return Verdict(done=(*done, failed), rest=tuple(todo[line:]))
    return Verdict(done=done, error=error, failed=failed)


def unparsed_lines(stderr: str, commands: Sequence[Command]) -> list[int]:
    """Positions of the ``commands`` that hold every word ip quoted in ``stderr``
    (a word quoted with " ..." after it counts by itself; ip's advice, ``Try "ip
    link help"``, is no word of a line; of ``either "to" is duplicate, or "foo" is
    a garbage`` only the garbage is sure to be). Empty when it quoted none."""
    garbage = _IP_GARBAGE.search(stderr)
    words = (quoted.removesuffix(" ...") for quoted in _IP_QUOTED.findall(stderr))
    quoted = [garbage.group(1)] if garbage else [w for w in words if w != "help" and not w.startswith("ip ")]
    if not quoted:
        return []
    return [p for p, command in enumerate(commands) if all(word in shape.arguments(command.argv) for word in quoted)]


def read_restore(todo: Sequence[int], blocks: Sequence[tuple[int, int, int]], argv: Sequence[str], ran: Ran) -> Verdict:
    """What an ``iptables-restore`` (started as ``argv``) of the commands ``todo``, in
    ``blocks`` (:func:`~netns_kit.batching.batch.restore_input`), did. After a failed
    block, ``rest`` is to be run one by one for the precise error."""
    returncode, stdout, stderr = ran
    if returncode == 0:
        return Verdict(done=tuple(todo))
    match = _RESTORE_FAILED.search(stderr)
    if match is None:
        error = classify(argv, returncode, stdout, stderr)
        error.add_note("iptables-restore named no line; which of its blocks took effect is unknown")
        return Verdict(error=error, inflight=tuple(todo))
    # each block is atomic: those committed before the failing line took effect, the rest did not
    failed_line = int(match.group(1))
    committed = sum(end - first for first, end, commit in blocks if commit < failed_line)
    return Verdict(done=tuple(todo[:committed]), rest=tuple(todo[committed:]))


def failed_line(stderr: str) -> int | None:
    """The line an ``iptables-restore`` said failed (for the log)."""
    match = _RESTORE_FAILED.search(stderr)
    return int(match.group(1)) if match else None
