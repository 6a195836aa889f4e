"""What ``netns-kit`` writes: output a closed pipe cannot cut short, and the progress line.

``netns-kit status | head -2`` closes the pipe under the command. A well-made
Unix tool then stops quietly; one that is tearing a topology down must not stop
half-way, so :class:`Output` swallows the error (the "Note on SIGPIPE" of the
Python docs: ``/dev/null`` is put over the closed descriptor), the work goes on,
and the command exits with 141 (128 + SIGPIPE, what a shell reports for a tool
killed by SIGPIPE) once it is done, unless it failed for another reason.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

log = logging.getLogger("netns_kit")


class Output:
    """A text stream that turns a closed pipe into a flag instead of an exception."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        #: the reader went away (EPIPE): what is written from then on goes nowhere
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                self._write(text)
            except BrokenPipeError:
                self._closed()
        return len(text)

    def _write(self, text: str) -> None:
        buffer = getattr(self.stream, "buffer", None)
        if buffer is None:  # an in-memory stream
            self.stream.write(text)
            return
        # Bytes, and every one of them: when the reader goes away during a large write,
        # the buffer reports a short count and the text layer would drop the rest unseen;
        # writing the rest raises the BrokenPipeError
        data = memoryview(text.encode(self.stream.encoding or "utf-8", self.stream.errors or "strict"))
        while data:
            written = buffer.write(data)
            if not written:
                raise BrokenPipeError(32, "nothing could be written")
            data = data[written:]
        if getattr(self.stream, "line_buffering", False) and "\n" in text:
            buffer.flush()

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._closed()

    def isatty(self) -> bool:
        return not self.closed_pipe and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def _closed(self) -> None:
        self.closed_pipe = True
        try:  # what the stream still buffers (and the flush at exit) goes to /dev/null
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError):
            pass  # no descriptor (an in-memory stream): nothing is flushed at exit either


class Progress(logging.Handler):
    """Counts the changes made while it is entered, from the ``run`` lines of the
    ``netns_kit`` logger; on a terminal (and without --verbose, which shows each
    command) it also draws ``[done/total] command`` on one line."""

    def __init__(self, total: int | None, *, verbose: bool, stream: TextIO | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.total = total
        #: changes made so far
        self.done = 0
        self.stream = stream or sys.stderr
        self.shown = self.visible(verbose=verbose, stream=self.stream) and bool(total)
        self._level = log.level

    @staticmethod
    def visible(*, verbose: bool, stream: TextIO | None = None) -> bool:
        """Whether the progress line is drawn: on a terminal, and not with --verbose."""
        return not verbose and (stream or sys.stderr).isatty()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING and not self._heard_elsewhere():
            # Python prints a warning nobody handles (logging.lastResort); this handler
            # being there would silence it: it says it as Python would have
            wipe = "\r" + " " * 80 + "\r" if self.shown else ""
            self.stream.write(f"{wipe}warning: {record.getMessage()}\n")
            self.stream.flush()
            return
        command = _ran(record)
        if command is None:
            return
        self.done += 1
        if self.shown:
            line = f"\r[{self.done}/{self.total}] {command[:70]}"
            self.stream.write(f"{line:<80}")
            self.stream.flush()

    def _heard_elsewhere(self) -> bool:
        """Whether another handler gets the ``netns_kit`` logger's records (--verbose's, an
        application's, pytest's)."""
        logger: logging.Logger | None = log
        while logger is not None:
            if any(handler is not self for handler in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False

    def __enter__(self) -> Progress:
        log.addHandler(self)
        if log.getEffectiveLevel() > logging.DEBUG:
            log.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        log.removeHandler(self)
        log.setLevel(self._level)
        if self.shown:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()


def lines(out: TextIO, text: list[str]) -> None:
    """``text`` in one write (W(200)'s 2,200 report lines: one system call, not 4,400)."""
    if text:
        out.write("".join(line + "\n" for line in text))


class Removals:
    """The ``progress(done, total)`` of :func:`netns_kit.cleanup`: on a terminal (and
    without --verbose) a ``[done/total] removing`` line, wiped at the end."""

    def __init__(self, *, verbose: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.shown = Progress.visible(verbose=verbose, stream=self.stream)
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if self.shown and total:
            self.stream.write(f"\r[{done}/{total}] removing")
            self.stream.flush()
            self._drawn = True

    def __enter__(self) -> Removals:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * 40 + "\r")
            self.stream.flush()


def _ran(record: logging.LogRecord) -> str | None:
    """The command a ``netns_kit`` log record says is run: ``log.debug("%s %s", "run", c)``
    (one process) or ``log.debug("run %s", c)`` (a line of a batch); None for others."""
    args = record.args if isinstance(record.args, tuple) else ()
    if record.msg == "%s %s" and len(args) == 2 and args[0] == "run":
        return str(args[1])
    if record.msg == "run %s" and len(args) == 1:
        return str(args[0])
    return None
