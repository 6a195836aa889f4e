"""`--json`: documented, versioned data. The schemas (cli_schemas.py) are checked against
docs/guides/json.rst, the checker is shown to refuse what it must, and the documents of
`plan` and `up` (which a recorder can play) are checked here; the others, against a
real sandbox, in tests/integration/test_cli_projects.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from netns_kit import cli
from netns_kit.cli import place as cliplace
from netns_kit.cli import records
from netns_kit.owner import Owner
from netns_kit.topology import scenarios

from .cli_schemas import SCHEMAS, Schema, assert_valid, problems
from .fakes import FakeHost

ROOT = Path(__file__).parents[2]
PIPE = str(ROOT / "examples" / "seed001-pipe.toml")
DOC = ROOT / "docs" / "guides" / "json.rst"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fields(schema: Schema) -> set[str]:
    """Every field name in ``schema``, at any depth."""
    found = set(schema.get("properties", {}))
    for child in (*schema.get("properties", {}).values(), *schema.get("anyOf", ())):
        found |= fields(child)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found |= fields(schema[key])
    return found


@pytest.mark.parametrize("command", sorted(SCHEMAS))
def test_every_schema_and_field_is_documented(command: str) -> None:
    text = DOC.read_text()
    assert f"``netns_kit.{command}/1``" in text
    section = text.split(f"``netns_kit.{command}/1``\n")[1].split("\n``netns_kit.")[0]
    shared = text.split("Shared shapes")[1].split("``netns_kit.plan/1``")[0]
    missing = [f for f in sorted(fields(SCHEMAS[command])) if f"``{f}``" not in section + shared and f != "schema"]
    assert not missing, f"{command}: not in {DOC.name}: {missing}"


def test_the_documented_toctree_lists_the_page() -> None:
    assert re.search(r"^   guides/json$", (ROOT / "docs" / "index.rst").read_text(), re.M)


def test_the_checker_refuses_display_strings_missing_and_unknown_fields() -> None:
    good: dict[str, Any] = {
        "schema": "netns_kit.ls/1",
        "topologies": [
            {
                "owner": "cli.lab",
                "name": "lab",
                "state": "up",
                "where": {"kind": "sandbox", "holder_pid": 42},
                "file": "/srv/lab.toml",
                "since": "2026-12-03T11:34:01Z",
                "namespaces": ["red"],
                "links": [{"name": "veth-red", "netns": "red"}],
                "nft_tables": [{"family": "inet", "name": "netns_kit_cli.lab", "netns": None}],
                "changes": 9,
            }
        ],
    }
    assert problems(good, SCHEMAS["ls"]) == []
    row = good["topologies"][0]
    for bad, why in [
        (
            {**row, "links": ["veth-red (veth in red)"]},
            "$.topologies[0].links[0]: 'veth-red (veth in red)' is not of type ['object']",
        ),
        ({k: v for k, v in row.items() if k != "since"}, "$.topologies[0]: 'since' is missing"),
        ({**row, "extra": 1}, "$.topologies[0]: 'extra' is not in the schema"),
        ({**row, "since": "11:34"}, "$.topologies[0].since: '11:34' does not match"),
        ({**row, "changes": True}, "$.topologies[0].changes: True is not of type ['integer']"),
        ({**row, "state": "running"}, "$.topologies[0].state: 'running' is not one of"),
    ]:
        found = problems({**good, "topologies": [bad]}, SCHEMAS["ls"])
        assert any(p.startswith(why) for p in found), found
    assert problems({**good, "schema": "netns_kit.ls/2"}, SCHEMAS["ls"]) == [
        "$.schema: 'netns_kit.ls/2' is not 'netns_kit.ls/1'"
    ]


def test_plan_json_is_the_script_as_data(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "--json", PIPE)
    assert (code, err) == (cli.EXIT_OK, "")
    document = json.loads(out)
    assert_valid(document, "plan")
    recorder = scenarios.seed001_pipe().plan(owner=Owner("cli.seed001-pipe"))
    assert [c["line"] for c in document["up"]] == recorder.lines
    assert [c["line"] for c in document["down"]] == [c.line for c in recorder.undo_commands()]
    assert document["up"][0] == {
        "argv": ["ip", "netns", "add", "red"],
        "netns": None,
        "line": "ip netns add red",
        "mutating": True,
    }
    assert (document["owner"], document["file"]) == ("cli.seed001-pipe", str(Path(PIPE).resolve()))


def test_plan_json_with_a_project_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "--json", "-p", "lab", PIPE)
    document = json.loads(out)
    assert (code, document["owner"]) == (cli.EXIT_OK, "cli.lab")
    assert "netns_kit:cli.lab" in " ".join(c["line"] for c in document["up"])


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`--attach 42` reaches a FakeHost keeping its ledgers in tmp_path/run."""
    monkeypatch.setattr(
        cliplace, "open_executor", lambda args, owner: FakeHost(tmp_path / "run", owner=owner or Owner("status"))
    )
    monkeypatch.setattr(records, "gone", lambda *args, **kwargs: False)
    return tmp_path / "run"


def test_up_json_and_quiet(capsys: pytest.CaptureFixture[str], host: Path) -> None:
    code, out, err = run(capsys, "up", "--attach", "42", "--json", "-p", "lab", PIPE)
    assert (code, err) == (cli.EXIT_OK, "")
    document = json.loads(out)  # only the document: what up says for people is left out
    assert_valid(document, "up")
    assert document["where"] == {"kind": "sandbox", "holder_pid": 42}
    assert (document["owner"], document["changes"]) == ("cli.lab", 9)
    assert document["down"] == "netns-kit down --attach 42 -p lab"
    # the same file again under another project name: two owners, nothing printed with -q
    assert run(capsys, "up", "--attach", "42", "-q", "-p", "lab2", PIPE) == (cli.EXIT_OK, "", "")
    assert sorted(p.name.rsplit(".", 2)[0] for p in host.glob("*.jsonl")) == ["cli.lab", "cli.lab2"]
    # and up of it again is refused, saying how to take it down by its name
    code, out, err = run(capsys, "up", "--attach", "42", "-q", "-p", "lab", PIPE)
    assert (code, out) == (cli.EXIT_CONFLICT, "")
    assert "take it down first: netns-kit down --attach 42 -p lab" in err


def test_down_needs_a_file_a_name_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "down", "--attach", "42")
    assert code == cli.EXIT_USAGE and "down needs the FILE that `up` was given, -p NAME, or --all" in err
    code, _, err = run(capsys, "down", "--attach", "42", "--all", PIPE)
    assert code == cli.EXIT_USAGE and "give no FILE and no -p NAME with it" in err
    code, _, err = run(capsys, "down", "--attach", "42", "-p", "no/such")
    assert code == cli.EXIT_USAGE
