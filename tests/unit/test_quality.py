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


def test_import_netns_kit_loads_nothing_until_a_name_is_used() -> None:
    """`import netns_kit` (and so loading the pytest plugin) stays cheap: names load on first use."""
    code = (
        "import sys, netns_kit\n"
        "print(sorted(m for m in sys.modules if m.startswith(('netns_kit', 'sh', 'attr'))))\n"
        "netns_kit.Topology\n"
        "print('netns_kit.topology.topology' in sys.modules, 'sh' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["['netns_kit', 'netns_kit.version']", "True False"]


def test_every_public_name_resolves() -> None:
    import netns_kit

    for name in netns_kit.__all__:
        assert getattr(netns_kit, name) is not None, name
    assert set(netns_kit.__all__) <= set(dir(netns_kit))
