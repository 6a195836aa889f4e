"""Both iptables backends: the NAT and port-forward integration tests pass with
iptables-nft and with iptables-legacy, picked inside the sandbox (``Sandbox(iptables=)``,
``--netns-iptables``; the machine's alternatives are never changed), and the rules are
read back from the backend that really holds them.

    pytest tests/stress/test_backends.py --stress full       # all NAT test files, both backends
    pytest tests/integration/test_nat.py --netns-iptables legacy   # one file, one backend
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import netns_kit
from netns_kit import Command, Host, Sandbox
from netns_kit.ops import state
from netns_kit.topology import scenarios
from tests.integration.helpers import request, serve

from .conftest import scale

ROOT = Path(__file__).parents[2]
NAT_TESTS = [
    "tests/integration/test_nat.py",
    "tests/integration/test_nat_state.py",
    "tests/integration/test_nat_fidelity.py",
]
QUICK = "masquerade_lets_red or outside_client_reaches_red or localhost_is_forwarded"
VERSION = {"nft": "(nf_tables)", "legacy": "(legacy)"}


def nk_chains(sandbox: Sandbox, backend: str) -> list[str]:
    """The NK- chains held by one backend (``-S`` per table: a rootless sandbox cannot
    run ``*-save``, which lists tables through /proc/net/ip_tables_names)."""
    chains: set[str] = set()
    for table in ("filter", "nat", "raw"):
        text = sandbox.run(Command((f"iptables-{backend}", "-w", "-t", table, "-S"), mutating=False)).stdout
        chains.update(re.findall(r"^-N (NK-\S+)", text, re.MULTILINE))
    return sorted(chains)


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_the_rules_live_in_the_backend_the_sandbox_was_given(backend: str, figures: Callable[[str], None]) -> None:
    other = "legacy" if backend == "nft" else "nft"
    with Sandbox(iptables=backend) as box:
        assert VERSION[backend] in box.run(Command(("iptables", "-V"), mutating=False)).stdout
        before = state.snapshot(box)
        topo = scenarios.seed001_nat()
        with netns_kit.use(box), topo:
            held, elsewhere = nk_chains(box, backend), nk_chains(box, other)
            assert len(held) == 5 and elsewhere == [], (held, elsewhere)  # NAT: POST, FWD; forward: PRE, OUT, FWD
            serve(topo["red"], 80, "red")
            assert (request(Host(), "192.168.1.254", 8080) or "").startswith("red ")
        assert nk_chains(box, backend) == [] == nk_chains(box, other)
        assert state.diff(before, state.snapshot(box)) == []
    figures(f"{backend}: {len(held)} NK- chains read back from iptables-{backend}, 0 from iptables-{other}; answered")


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_the_nat_integration_tests_pass_with_each_backend(
    backend: str, request: pytest.FixtureRequest, figures: Callable[[str], None]
) -> None:
    full = scale(request.config) == "full"
    # reduced: MASQUERADE and port forwards, tcp and udp, IPv4 and IPv6, localhost
    files = NAT_TESTS if full else [NAT_TESTS[0], "-k", QUICK]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--netns-require",
            f"--netns-iptables={backend}",
            *files,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert "skipped" not in summary and "passed" in summary, summary
    figures(f"iptables-{backend}: {' '.join(Path(f).name for f in files if f.endswith('.py'))}: {summary}")
