"""The code blocks of README.rst and docs/, read so that tests can run them."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]
README = ROOT / "README.rst"


def blocks(path: Path, language: str) -> list[str]:
    """Every ``.. code-block:: LANGUAGE`` body of an reST file, dedented, in order."""
    text = path.read_text()
    found = []
    for match in re.finditer(rf"^\.\. code-block:: {re.escape(language)}\n\n((?:(?:    .*)?\n)+)", text, re.M):
        found.append(textwrap.dedent(match.group(1)).strip("\n") + "\n")
    return found
