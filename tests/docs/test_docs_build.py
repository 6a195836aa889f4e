"""The Sphinx site in docs/ builds with warnings as errors (as CI builds it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_docs_build_without_a_warning(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-E",
            "-q",
            "-b",
            "html",
            str(ROOT / "docs"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "api.html").read_text().count("netns_kit.Topology") > 0
    for guide in ("nat", "emulation", "crash-cleanup", "ci", "performance", "guarantees"):
        assert (tmp_path / "guides" / f"{guide}.html").exists(), guide


def test_the_readme_is_valid_restructuredtext() -> None:
    import docutils.core
    import docutils.utils

    text = (ROOT / "README.rst").read_text()
    docutils.core.publish_doctree(text, settings_overrides={"report_level": 2, "halt_level": 2})
    assert text.splitlines()[0] == "netns_kit"
