"""The sandbox ``netns-kit --sandbox`` keeps between commands.

``netns-kit up --sandbox FILE`` starts a detached sandbox holder (it outlives
the command) and records it in ``sandbox.json`` in the state directory:
``$NETNS_KIT_STATE_DIR`` if set, else ``/run/netns_kit`` for root, else
``$XDG_RUNTIME_DIR/netns_kit`` (or ``/tmp/netns_kit-UID``). ``down``,
``status``, ``cleanup`` and ``doctor`` with ``--sandbox`` find it there; a
record whose process is gone (or is another process that reused the pid) is
dropped. When the sandbox holds nothing any more, ``down`` and ``cleanup``
stop it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

from . import inventory
from .errors import SandboxError
from .owner import Owner, proc_stat, start_time
from .sandbox import Sandbox
from .shexecutor import ShExecutor

log = logging.getLogger("netns_kit")

RECORD = "sandbox.json"


def state_dir() -> Path:
    """Where the CLI keeps its sandbox record."""
    override = os.environ.get("NETNS_KIT_STATE_DIR")
    if override:
        return Path(override)
    directory = ShExecutor().ledger_dir
    assert directory is not None
    return directory


def record_path() -> Path:
    return state_dir() / RECORD


def find(owner: Owner | None = None) -> Sandbox | None:
    """The recorded sandbox, attached (None when there is none, or it is gone)."""
    path = record_path()
    try:
        data = json.loads(path.read_text())
        pid, start, rootless = int(data["pid"]), str(data["start"]), bool(data["rootless"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if start_time(pid) != start:
        log.debug("dropping the record of sandbox holder %s: the process is gone", pid)
        path.unlink(missing_ok=True)
        return None
    sandbox = Sandbox.attach(pid, rootless=rootless)
    if owner is not None:
        sandbox.owner = owner
    return sandbox


def start(owner: Owner | None = None) -> Sandbox:
    """Start a detached sandbox holder and record it."""
    sandbox = Sandbox(owner=owner).start(detached=True)
    started = start_time(sandbox.pid)
    path = record_path()
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": sandbox.pid, "start": started, "rootless": sandbox.rootless}) + "\n")
    tmp.replace(path)
    log.debug("sandbox holder %s started and recorded in %s", sandbox.pid, path)
    return sandbox


def find_or_start(owner: Owner | None = None) -> Sandbox:
    return find(owner) or start(owner)


def require(owner: Owner | None = None) -> Sandbox:
    sandbox = find(owner)
    if sandbox is None:
        raise SandboxError(
            f"no sandbox is running (none recorded in {record_path()}): `netns-kit up --sandbox FILE` starts one"
        )
    return sandbox


def is_empty(sandbox: Sandbox) -> bool:
    """True when the sandbox holds no namespace, link, rule or ledger."""
    found = inventory.scan(sandbox)
    return not (found.namespaces or found.links or found.rules or found.ledgers)


def stop(sandbox: Sandbox, *, timeout: float = 10.0) -> None:
    """Stop a recorded holder (SIGTERM: it kills what runs inside) and drop the record."""
    pid = sandbox.pid
    started = start_time(pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while started is not None and start_time(pid) == started and not _zombie(pid):
        if time.monotonic() >= deadline:
            raise SandboxError(f"sandbox holder {pid} did not stop within {timeout:g} s")
        time.sleep(0.02)
    record_path().unlink(missing_ok=True)


def stop_if_empty(sandbox: Sandbox) -> bool:
    """Stop the recorded holder when it holds nothing; True if it was stopped."""
    if not is_empty(sandbox):
        return False
    stop(sandbox)
    return True


def _zombie(pid: int) -> bool:
    fields = proc_stat(pid)
    return fields is None or fields[0] == "Z"
