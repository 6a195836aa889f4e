"""A running container's PID, read from ``docker inspect`` or ``podman inspect``."""

from __future__ import annotations

import shutil

from netns_kit.command import query
from netns_kit.errors import NetnsKitError
from netns_kit.executors.base import Executor

#: the tools asked, in this order: the first on PATH answers
TOOLS = ("docker", "podman")


def container_pid(executor: Executor, container: str) -> int:
    """The PID of ``container``'s main process (``TOOL inspect -f '{{.State.Pid}}'``).

    Raises :class:`NetnsKitError` when neither docker nor podman is on PATH, the
    container is not found, or it is not running (PID 0).
    """
    tool = next((t for t in TOOLS if shutil.which(t)), None)
    if tool is None:
        raise NetnsKitError(f"container {container!r}: neither docker nor podman is on PATH")
    result = executor.run(query(tool, "inspect", "-f", "{{.State.Pid}}", container), check=False)
    if not result.ok:
        why = result.stderr.strip() or f"exit status {result.returncode}"
        raise NetnsKitError(f"container {container!r}: not found by {tool} inspect ({why})")
    answer = result.stdout.strip()
    if not answer.isdigit():
        raise NetnsKitError(f"container {container!r}: {tool} inspect gave no PID ({answer!r})")
    if int(answer) == 0:
        raise NetnsKitError(f"container {container!r} is not running ({tool} inspect gives PID 0)")
    return int(answer)
