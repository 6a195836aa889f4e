"""The teardown a completed ``up`` seals into its ledger, and ``down`` carrying it out
(netns_kit.ops.quickdown): no privileges, a batching recorder that plays a kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netns_kit import Command, Owner, Recorder, Result
from netns_kit.lifecycle import ledger
from netns_kit.ops import quickdown, seal
from netns_kit.ops.cleanup_report import CleanupReport
from netns_kit.topology import scenarios

from .fakes import BatchingHost

OWNER = Owner("cli.w3")


class Tagged(BatchingHost):
    """A host whose namespaces carry the tags in ``tags`` (read by one process)."""

    def __init__(self, directory: Path, tags: dict[str, str | None]) -> None:
        super().__init__(directory, owner=OWNER, **{"net.ipv4.ip_forward": "1"})  # as up left it
        self.tags = tags

    def answer(self, command: Command) -> Result | str | None:
        if command.argv[1:4] == ("-I", "-S", "-c"):  # netns_kit.executors.loopback.PROGRAM
            return json.dumps(self.tags)
        return super().answer(command)


def _up(tmp_path: Path) -> tuple[BatchingHost, list[str]]:
    """W(3) up and sealed; with the lines ``Topology.down()`` runs for it, in order."""
    host = BatchingHost(tmp_path / "library", owner=OWNER)
    topology = scenarios.workload(3).up(host)
    host.clear()
    topology.down()
    library = host.lines

    host = BatchingHost(tmp_path, owner=OWNER)
    topology = scenarios.workload(3).up(host)
    assert topology.journal is not None
    assert seal.seal(topology.journal)
    return host, library


def _ledger(tmp_path: Path) -> Path:
    (path,) = tmp_path.glob("cli.w3.*.jsonl")
    return path


def test_the_sealed_teardown_is_the_last_line_and_names_what_goes(tmp_path: Path) -> None:
    _up(tmp_path)
    record = ledger.sealed(_ledger(tmp_path))
    assert record is not None
    assert record["holders"] == ["w0", "w1", "w2"]
    assert [c["argv"] for c in record["quiet"]] == [["ip", "link", "set", "dev", "br0", "down"]]
    assert [c["argv"] for c in record["delete"]] == [["ip", "netns", "del", f"w{i}"] for i in range(3)]
    assert not any(c["argv"][0] == "sysctl" for c in record["undo"])  # restored from the claims
    assert all(c["missing_ok"] is True for c in record["undo"])  # each undo idempotent
    assert record["removed"][:3] == ["namespace w0", "namespace w1", "namespace w2"]
    # the ledger's readers see the entries above it, and nothing damaged
    contents = ledger.load(_ledger(tmp_path))
    assert contents.skipped == 0 and all(e.state == "ok" for e in contents.entries)


def test_down_runs_what_topology_down_runs(tmp_path: Path) -> None:
    _, library = _up(tmp_path)
    later = Tagged(tmp_path, {f"w{i}": OWNER.tag for i in range(3)})  # another process
    report = quickdown.down(later, OWNER)
    assert isinstance(report, CleanupReport), report
    ran = [line for line in later.lines if "-I -S -c" not in line]
    assert ran == library
    assert "namespace w2" in report.removed and not report.errors
    assert list(tmp_path.glob("cli.w3.*.jsonl")) == []  # the ledger goes with it


@pytest.mark.parametrize(
    ("tags", "why"),
    [
        ({"w0": OWNER.tag, "w1": None, "w2": OWNER.tag}, "namespace w1 does not carry the tag netns_kit:cli.w3"),
        ({"w0": OWNER.tag, "w2": OWNER.tag}, "namespace w1 does not carry the tag"),  # gone
        ({f"w{i}": "netns_kit:cli.other" for i in range(3)}, "namespace w0 does not carry the tag"),
    ],
)
def test_a_namespace_without_the_tag_runs_nothing(tmp_path: Path, tags: dict[str, str | None], why: str) -> None:
    _up(tmp_path)
    later = Tagged(tmp_path, tags)
    refused = quickdown.down(later, OWNER)
    assert isinstance(refused, str) and refused.startswith(why)
    assert [line for line in later.lines if "-I -S -c" not in line] == []
    assert len(list(tmp_path.glob("cli.w3.*.jsonl"))) == 1


@pytest.mark.parametrize(
    "tail",
    [
        b'{"seq":999,"mark":"ok"}\n',  # a change recorded after the seal
        b'{"netns_kit_sealed":1,"seq":1,"teardown":{"holders":"w0"}}\n',  # not well-formed
        b'{"netns_kit_sealed":2,"seq":1,"teardown":{}}\n',  # another format
        b'{"netns_kit_sealed":1,"seq":1,"tear',  # torn
    ],
)
def test_a_ledger_not_ending_with_a_whole_seal_is_not_trusted(tmp_path: Path, tail: bytes) -> None:
    _up(tmp_path)
    with _ledger(tmp_path).open("ab") as file:
        file.write(tail)
    later = Tagged(tmp_path, {f"w{i}": OWNER.tag for i in range(3)})
    assert quickdown.down(later, OWNER) == "its ledger does not end with the teardown of a completed up"
    assert later.lines == []


def test_a_second_ledger_of_the_owner_is_not_trusted(tmp_path: Path) -> None:
    _up(tmp_path)
    (tmp_path / "cli.w3.1-1.jsonl").write_text('{"netns_kit_ledger":1}\n')
    later = Tagged(tmp_path, {f"w{i}": OWNER.tag for i in range(3)})
    assert quickdown.down(later, OWNER) == "2 ledgers of cli.w3, not one"


def test_a_dry_run_seals_nothing(tmp_path: Path) -> None:
    recorder = Recorder(owner=OWNER)
    topology = scenarios.workload(3).up(recorder)
    assert topology.journal is not None and recorder.commands
    assert not seal.seal(topology.journal)  # a printed script is taken down by its own script


def test_the_report_says_what_nft_transactions_made(tmp_path: Path) -> None:
    host = BatchingHost(tmp_path, owner=OWNER)
    topology = scenarios.workload(3)
    topology.firewall = "nft"
    topology.up(host)
    assert topology.journal is not None and seal.seal(topology.journal)
    record = ledger.sealed(_ledger(tmp_path))
    assert record is not None
    said = [line for line in record["removed"] if line.startswith("nft ")]
    assert said[0] == "nft table inet netns_kit_cli.w3 (in the host)"
    assert said[1].startswith("nft chains NK-NAT-") and said[1].endswith(
        " of table inet netns_kit_cli.w3 (in the host)"
    )
    assert not any(line.startswith("nft -f -") for line in record["removed"])
