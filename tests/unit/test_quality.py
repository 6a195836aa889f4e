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


def test_down_loads_only_what_the_recorded_teardown_needs() -> None:
    """`netns-kit down FILE` of a topology `up` completed does not load the full cleanup,
    the inventory, the firewall, the resources or the topology builder (W(200): 60 ms of
    imports); they load when `down` has to prove what is left (netns_kit.cli.teardown)."""
    code = (
        "import sys\n"
        "from netns_kit.cli.commands import command\n"
        "command('down')\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('netns_kit'))))\n"
        "command('cleanup')\n"
        "print('netns_kit.ops.cleanup' in sys.modules, 'netns_kit.ops.inventory' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *loaded, slow = result.stdout.splitlines()
    heavy = ("netns_kit.ops.cleanup", "netns_kit.ops.inventory", "netns_kit.firewall", "netns_kit.resources")
    assert [m for m in loaded if m in heavy or m.startswith(tuple(f"{h}." for h in heavy))] == []
    assert "netns_kit.topology.tomlfile" not in loaded
    assert "netns_kit.ops.quickdown" in loaded and "netns_kit.cli.teardown" not in loaded
    assert slow == "True True"
