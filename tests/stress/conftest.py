"""The reliability and security suite: sizes, shared fixtures and the figures it prints.

Every test here runs by default at a reduced size (so ``./scripts/test`` and CI run
each of them); ``--stress full`` (or ``NETNS_KIT_STRESS=full``) runs the full sizes
of issue 7. One size can be set on its own with ``NETNS_KIT_STRESS_<NAME>=N``
(``NETNS_KIT_STRESS_SOAK=50``). All are marked ``slow``: ``-m "not slow"`` leaves
them out of a quick loop. Each test records its measured figures, printed at the end
of the run under "netns_kit stress figures".
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netns_kit import Command
from netns_kit.executors.base import Executor
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state

STRESS_ENV = "NETNS_KIT_STRESS"

#: name -> (quick, full)
SIZES: dict[str, tuple[int, int]] = {
    "soak": (3, 200),  # build/teardown cycles of the seed-001 topology, same names
    "fault_steps": (4, 0),  # steps with an injected failure (0: every step)
    "kill_steps": (3, 0),  # steps the builder is SIGKILLed after (0: every step)
    "kill_random": (2, 40),  # SIGKILLs at random moments
    "term_random": (3, 30),  # SIGTERMs at random moments
    "int_random": (2, 20),  # Ctrl-Cs (SIGINT to the process group) at random moments
    "workers": (3, 16),  # concurrent workers, one topology each
    "cycles": (2, 10),  # cycles per worker
    "racers": (8, 20),  # processes creating the same namespace at once
}

_figures = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stress",
        choices=("quick", "full"),
        default=None,
        help=f"sizes of tests/stress (default quick; also {STRESS_ENV}=full)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


def scale(config: pytest.Config) -> str:
    return config.getoption("--stress") or os.environ.get(STRESS_ENV, "quick")


@pytest.fixture(scope="session")
def sizes(request: pytest.FixtureRequest) -> dict[str, int]:
    """The size of each stress run: quick by default, full with ``--stress full``."""
    full = scale(request.config) == "full"
    chosen = {name: pair[1] if full else pair[0] for name, pair in SIZES.items()}
    for name in chosen:
        override = os.environ.get(f"{STRESS_ENV}_{name.upper()}")
        if override:
            chosen[name] = int(override)
    return chosen


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``figures("200 cycles, 0 failures")``: a line for the end-of-run summary."""
    lines = request.config.stash.setdefault(_figures, [])

    def add(text: str) -> None:
        lines.append(f"{request.node.name}: {text}")

    return add


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_figures, [])
    if lines:
        terminalreporter.section(f"netns_kit stress figures ({scale(config)})")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def rng(request: pytest.FixtureRequest, figures: Callable[[str], None]) -> random.Random:
    """A seeded random generator; the seed is printed (``NETNS_KIT_STRESS_SEED`` replays it)."""
    seed = int(os.environ.get(f"{STRESS_ENV}_SEED", "0")) or int(time.time())
    figures(f"random seed {seed}")
    return random.Random(seed)


@pytest.fixture
def sb(netns_executor: Executor) -> Sandbox:
    """The shared sandbox in effect for this test, which must leave it as it found it."""
    if not isinstance(netns_executor, Sandbox):
        pytest.fail("the stress tests run only inside a sandbox: drop --netns-host", pytrace=False)
    return netns_executor


#: objects made by hand, without our tag: no cleanup may touch them
DECOYS = [
    ("ip", "netns", "add", "decoy"),
    ("ip", "link", "add", "name", "decoy-br", "type", "bridge"),
    ("ip", "link", "add", "name", "decoy-a", "type", "veth", "peer", "name", "decoy-b", "netns", "decoy"),
    ("iptables", "-w", "-A", "FORWARD", "-s", "198.51.100.7/32", "-j", "ACCEPT"),
    ("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "198.51.100.0/24", "-j", "MASQUERADE"),
    ("iptables", "-w", "-N", "NK-decoy"),  # our prefix, but never tagged nor in a ledger
    ("iptables", "-w", "-A", "NK-decoy", "-s", "198.51.100.8/32", "-j", "ACCEPT"),
]
UNDO_DECOYS = [
    ("iptables", "-w", "-D", "NK-decoy", "-s", "198.51.100.8/32", "-j", "ACCEPT"),
    ("iptables", "-w", "-X", "NK-decoy"),
    ("iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-s", "198.51.100.0/24", "-j", "MASQUERADE"),
    ("iptables", "-w", "-D", "FORWARD", "-s", "198.51.100.7/32", "-j", "ACCEPT"),
    ("ip", "link", "del", "dev", "decoy-a"),
    ("ip", "link", "del", "dev", "decoy-br"),
    ("ip", "netns", "del", "decoy"),
]


@pytest.fixture
def decoys(sb: Sandbox) -> Iterator[dict[str, Any]]:
    """Untagged objects in the sandbox; yields the state with them (removed after the test)."""
    for argv in DECOYS:
        sb.run(Command(argv))
    yield state.snapshot(sb)
    for argv in UNDO_DECOYS:
        sb.run(Command(argv))


def ledgers(sandbox: Sandbox) -> list[str]:
    """The write-ahead ledger files left in the sandbox (none, once everything is undone)."""
    directory = sandbox.root_path("/run/netns_kit")
    return sorted(p.name for p in directory.glob("*.jsonl")) if directory.is_dir() else []
