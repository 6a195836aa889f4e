from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import netns_kit
from netns_kit import state
from netns_kit.sandbox import Sandbox

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One sandbox holder for the session; each test gets fresh namespaces inside."""
    try:
        box = Sandbox().start()
    except netns_kit.SandboxError as error:
        if os.environ.get("NETNS_KIT_REQUIRE_SANDBOX"):
            pytest.fail(f"the sandbox cannot start here: {error}")
        pytest.skip(f"the sandbox cannot start here: {error}")
    try:
        yield box
    finally:
        box.close()


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox in effect for this test, which must leave it as it found it."""
    before = state.snapshot(sandbox)
    with netns_kit.use(sandbox):
        yield sandbox
    problems = state.diff(before, state.snapshot(sandbox))
    assert not problems, "the test leaked:\n" + "\n".join(problems)


@pytest.fixture
def fresh_sandbox() -> Iterator[Sandbox]:
    """A sandbox of its own (for dry-run fidelity: a script run in a clean host)."""
    with Sandbox() as box:
        yield box
