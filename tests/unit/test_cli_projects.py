"""`-p NAME`: a project name chosen on the command line, as Compose's `-p`; what is said
about a topology up under one (against a host the test plays: `--attach 42`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netns_kit import cli
from netns_kit.cli import place as cliplace
from netns_kit.cli import records
from netns_kit.owner import Owner

from .fakes import FakeHost

PIPE = str(Path(__file__).parents[2] / "examples" / "seed001-pipe.toml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(
        cliplace, "open_executor", lambda args, owner: FakeHost(tmp_path / "run", owner=owner or Owner("status"))
    )
    monkeypatch.setattr(records, "gone", lambda *args, **kwargs: False)
    return tmp_path / "run"


def test_up_records_the_project_name_with_the_file(capsys: pytest.CaptureFixture[str], run_dir: Path) -> None:
    assert run(capsys, "up", "--attach", "42", "-p", "lab", PIPE)[0] == cli.EXIT_OK
    record = json.loads((run_dir / f"cli.lab{cliplace.ORIGIN_SUFFIX}").read_text())
    assert record == {"owner": "cli.lab", "file": str(Path(PIPE).resolve()), "name": "seed001-pipe", "project": "lab"}
    code, out, _ = run(capsys, "up", "--attach", "42", "-p", "lab2", PIPE)
    assert code == cli.EXIT_OK and "take it down with: netns-kit down --attach 42 -p lab2" in out


def test_down_of_the_file_points_to_its_project(capsys: pytest.CaptureFixture[str], run_dir: Path) -> None:
    assert run(capsys, "up", "--attach", "42", "-p", "lab", PIPE)[0] == cli.EXIT_OK
    code, out, _ = run(capsys, "down", "--attach", "42", PIPE)  # without -p: another owner
    assert code == cli.EXIT_OK
    assert out.splitlines() == [
        "down: nothing to do: seed001-pipe (owner cli.seed001-pipe) is not up in sandbox holder 42",
        "down: note: cli.lab is up from this file as a project: netns-kit down --attach 42 -p lab",
    ]
    # by its name, no file needed: its ledger (all the fake world shows of it) and record go
    assert run(capsys, "down", "--attach", "42", "-p", "lab")[0] == cli.EXIT_OK
    assert list(run_dir.glob("*.jsonl")) == [] and list(run_dir.glob("*.origin.json")) == []


def test_a_damaged_origin_record_names_nothing(run_dir: Path) -> None:
    executor = FakeHost(run_dir)
    run_dir.mkdir()
    for text in ("", "{", '["cli.lab"]', '{"owner": "cli.lab", "file": 3}', '{"owner": "cli.other", "file": "/x"}'):
        (run_dir / f"cli.lab{cliplace.ORIGIN_SUFFIX}").write_text(text)
        assert (cliplace.origin(executor, Owner("cli.lab")), cliplace.project(executor, Owner("cli.lab"))) == (
            None,
            None,
        )


def test_quiet_prints_nothing_but_errors(capsys: pytest.CaptureFixture[str], run_dir: Path) -> None:
    assert run(capsys, "up", "--attach", "42", "-q", "-p", "lab", PIPE) == (cli.EXIT_OK, "", "")
    assert run(capsys, "cleanup", "--attach", "42", "-q", "--dry-run") == (cli.EXIT_OK, "", "")
    assert run(capsys, "down", "--attach", "42", "-q", "-p", "lab") == (cli.EXIT_OK, "", "")
    code, out, err = run(capsys, "down", "--attach", "42", "-q")
    assert (code, out) == (cli.EXIT_USAGE, "") and err.startswith("netns-kit: error: FILE")
    assert list(run_dir.glob("*.jsonl")) == []
