"""A background process started by an executor (a server under test, say)."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("netns_kit")

#: pass as ``stdout=``/``stderr=`` to keep the output in memory
PIPE = -1
#: pass as ``stderr=`` to merge it into stdout
STDOUT = -2


class Process:
    """A process started in the background; stop it with :meth:`stop`.

    Output goes to a file (a path), to memory (``PIPE``, the default; read
    :attr:`stdout` / :attr:`stderr`), or nowhere (``os.devnull``).
    """

    def __init__(self, argv: Sequence[str], running: Any) -> None:
        self.argv = tuple(argv)
        self._running = running
        self.pid: int = running.pid

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else f"exited {self.returncode}"
        return f"<Process {self.pid} {state}: {shlex.join(self.argv)}>"

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        stdout: str | Path | int | None = None,
        stderr: str | Path | int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> Process:
        import sh

        from .errors import binary_not_found

        try:
            program = sh.Command(argv[0])
        except sh.CommandNotFound:
            raise binary_not_found(argv) from None
        kwargs: dict[str, Any] = {
            "_bg": True,
            "_bg_exc": False,
            "_tty_out": False,
            "_tty_in": False,
            "_ok_code": range(-64, 256),
            "_new_session": True,
        }
        for key, target in (("_out", stdout), ("_err", stderr)):
            if target is None or target == PIPE:
                continue
            if target == STDOUT and key == "_err":
                kwargs["_err_to_out"] = True
            else:
                kwargs[key] = str(target)
        if env is not None:
            kwargs["_env"] = {**os.environ, **env}
        if cwd is not None:
            kwargs["_cwd"] = str(cwd)
        return cls(argv, program(*argv[1:], **kwargs))

    # -- state ---------------------------------------------------------------
    def is_alive(self) -> bool:
        return bool(self._running.process.is_alive()[0])

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal), None while running."""
        alive, code = self._running.process.is_alive()
        return None if alive else code

    @property
    def stdout(self) -> str:
        return bytes(self._running.process.stdout).decode(errors="replace")

    @property
    def stderr(self) -> str:
        return bytes(self._running.process.stderr).decode(errors="replace")

    # -- control -------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit and return the exit code."""
        from .errors import TimeoutError

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"process {self.pid} still running after {timeout} s")
            time.sleep(0.005)
        code = self.returncode
        assert code is not None
        return code

    def signal(self, signum: int) -> None:
        if self.is_alive():
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 3.0) -> int:
        """SIGTERM, then SIGKILL if it is still running after ``timeout`` seconds."""
        from .errors import TimeoutError

        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except TimeoutError:
            log.debug("process %s ignored SIGTERM for %s s: SIGKILL", self.pid, timeout)
            self.signal(signal.SIGKILL)
            return self.wait(5.0)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
