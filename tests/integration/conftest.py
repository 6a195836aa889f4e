"""The integration tests run through netns_kit's own pytest plugin (netns_kit.pytest_plugin).

``sandbox``, ``sb`` and ``fresh_sandbox`` are thin aliases of the plugin's
``netns_sandbox``, ``netns_executor`` and ``netns_fresh_sandbox``: the plugin
starts the sandbox (skipping, or failing under NETNS_KIT_REQUIRE_SANDBOX=1,
when it cannot), puts it in effect for the test and fails a test that leaks.
"""

from __future__ import annotations

import pytest

from netns_kit.executors.base import Executor
from netns_kit.executors.sandbox import Sandbox

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def sandbox(netns_sandbox: Sandbox) -> Sandbox:
    """One sandbox holder for the session; each test gets fresh namespaces inside."""
    return netns_sandbox


@pytest.fixture
def sb(netns_executor: Executor) -> Sandbox:
    """The sandbox in effect for this test, which must leave it as it found it."""
    if not isinstance(netns_executor, Sandbox):
        pytest.fail("netns_kit's own integration tests run only inside a sandbox: drop --netns-host", pytrace=False)
    return netns_executor


@pytest.fixture
def fresh_sandbox(netns_fresh_sandbox: Sandbox) -> Sandbox:
    """A sandbox of its own (for dry-run fidelity: a script run in a clean host)."""
    return netns_fresh_sandbox
