from __future__ import annotations

import functools
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
#: needs the netem qdisc: collected only where the kernel has it (never skipped, never faked)
NETEM_TESTS = "test_netem.py"

# the netns_kit plugin itself is tested by running pytest on test files written by the tests
pytest_plugins = ("pytester",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Compare text with tests/golden/NAME (rewrite it with --update-golden)."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update or not path.exists():
            if not update:
                pytest.fail(f"golden file {path} is missing: run with --update-golden to create it")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert text == path.read_text(), f"differs from golden file {path}"

    return check


@functools.cache
def netem_probe() -> tuple[bool, str]:
    """Whether this kernel has netem, asked once per session inside a throwaway sandbox."""
    from netns_kit import SandboxError, capability
    from netns_kit.sandbox import Sandbox

    try:
        with Sandbox() as box:
            probe = capability.netem(box)
    except SandboxError as error:
        return False, f"the sandbox cannot start, so netem cannot be probed: {error}"
    return probe.available, probe.reason


def pytest_report_header(config: pytest.Config) -> str:
    available, reason = netem_probe()
    if available:
        return f"netem: available; tests/integration/{NETEM_TESTS} runs"
    return (
        f"netem: NOT available ({reason}); tests/integration/{NETEM_TESTS} is not collected: unproven on this machine"
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name == NETEM_TESTS and not netem_probe()[0]:
        return True
    return None
