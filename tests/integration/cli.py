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
