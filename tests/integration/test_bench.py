"""scripts/bench cannot rot: its quick mode runs every contender and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = {
    "netns_kit batched",
    "netns_kit batched, Sandbox",
    "netns_kit batched, addrgenmode none",
    "netns_kit batched, nft firewall",
    "netns_kit one process per command",
    "recorder's script by /bin/sh",
    "dry-run plan alone",
    "pyroute2 idiomatic (NetNS)",
    "pyroute2 without forks",
    "netns-kit up / down (CLI)",
}


def _bench_venv(tmp_path: Path) -> str:
    """The benchmark's pyroute2 venv: the shared one when usable, else one of this test's own."""
    default = ROOT / "bench-results" / ".venv"
    python = default / "bin" / "python"
    usable = python.exists() and subprocess.run([python, "-c", "import pyroute2"], check=False).returncode == 0
    writable = os.access(ROOT / "bench-results", os.W_OK) or os.access(ROOT, os.W_OK)
    return str(default if usable or writable else tmp_path / "venv")


def test_bench_quick_mode_measures_every_contender(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "NETNS_KIT_BENCH_VENV": _bench_venv(tmp_path)}
    done = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert {r["contender"] for r in rows} == CONTENDERS
    assert {r["n"] for r in rows} == {3, 10}
    for row in rows:
        assert row["runs"] == 2
        assert row["build"] > 0
        assert row["teardown"] > 0 or row["contender"] == "dry-run plan alone"
    table = done.stdout
    assert "x idiom." in table
    assert all(name in table for name in CONTENDERS)


def test_bench_linkemu_quick_mode_measures_the_emulators_error(tmp_path: Path) -> None:
    out = tmp_path / "linkemu.json"
    done = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--linkemu", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = data["rows"]
    vias = ["none", "userspace"] + (["netem"] if data["netem"] else [])
    assert sorted({r["via"] for r in rows}) == sorted(vias)
    for row in rows:
        assert row["received"] > 0 and row["sent"] >= row["received"]
        for figure in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
            assert isinstance(row[figure], float)
        assert row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert [r["delay_ms"] for r in rows if r["via"] == "userspace"] == [10]
    table = done.stdout
    assert "err p50" in table and "userspace" in table
    assert "userspace emulator: kept up without loss to" in table
    if not data["netem"]:
        assert "netem: not available on this kernel" in table
