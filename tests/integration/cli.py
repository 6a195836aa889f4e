"""Run the netns-kit command as a separate process, the way a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def netns_kit(*argv: str, state_dir: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if state_dir is not None:
        env["NETNS_KIT_STATE_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, "-m", "netns_kit.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def stop_recorded_holder(state_dir: Path) -> None:
    """Stop the sandbox holder recorded in ``state_dir``, if it still runs: a test's holder
    must not outlive it, whatever the test did."""
    import json
    import signal

    from netns_kit.executors import holder
    from netns_kit.owner import start_time

    record = state_dir / holder.RECORD
    if record.exists():
        data = json.loads(record.read_text())
        if start_time(data["pid"]) == data["start"]:
            os.kill(data["pid"], signal.SIGTERM)
