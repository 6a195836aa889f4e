from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit.executors.local import ShExecutor


@pytest.fixture(autouse=True)
def _no_ledger_on_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unit tests never write into the machine's own /run/netns_kit."""
    monkeypatch.setattr(ShExecutor, "ledger_dir", property(lambda self: tmp_path / "ledger"))
    yield


@pytest.fixture(autouse=True)
def _no_firewall_from_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests see the default firewall backend whatever the caller's $NETNS_KIT_FIREWALL says."""
    monkeypatch.delenv("NETNS_KIT_FIREWALL", raising=False)
