"""The package stays `mypy --strict` and `ruff` clean (configured in setup.cfg and ruff.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, check=False)


def test_package_is_mypy_strict_clean() -> None:
    result = _run("mypy", "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_and_tests_are_ruff_clean() -> None:
    result = _run("ruff", "check", "netns_kit", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run("ruff", "format", "--check", "netns_kit", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
