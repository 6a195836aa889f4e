"""The netns-kit command: parsing, output and exit codes (nothing here touches the machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import cli, scenarios, topofile
from netns_kit.owner import Owner

EXAMPLES = Path(__file__).parents[2] / "examples"
PIPE = str(EXAMPLES / "seed001-pipe.toml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_prints_the_script_with_the_cli_owner_tag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", PIPE)
    assert code == cli.EXIT_OK
    expected = scenarios.seed001_pipe().plan(owner=Owner("cli.seed001-pipe")).script()
    assert out == expected
    assert "alias netns_kit:cli.seed001-pipe" in out


def test_plan_down_prints_the_teardown_script(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "--down", PIPE)
    assert code == 0
    assert out.splitlines()[3:] == ["ip -n red link del dev veth-red", "ip netns del blue", "ip netns del red"]


@pytest.mark.parametrize(("fmt", "first"), [("mermaid", "flowchart LR"), ("dot", "graph topology {")])
def test_plan_draws_the_picture(capsys: pytest.CaptureFixture[str], fmt: str, first: str) -> None:
    code, out, _ = run(capsys, "plan", "--format", fmt, PIPE)
    assert code == 0
    assert out.splitlines()[0] == first
    assert "veth-red" in out


def test_picture_has_no_down_direction(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "--down", "--format", "dot", PIPE)
    assert code == cli.EXIT_USAGE
    assert "--down: True only goes with --format sh" in err


def test_an_invalid_file_exits_2_pointing_to_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[veths]]\nname = "a"\npeer = "b"\npeer_netns = "nowhere"\n')
    code, out, err = run(capsys, "plan", str(bad))
    assert code == cli.EXIT_USAGE
    assert out == ""
    assert err.startswith(f"netns-kit: error: {bad}: veths[0].peer_netns: 'nowhere' is not a namespace")


def test_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "up", "--sandbox", "/nonexistent/net.toml")
    assert code == cli.EXIT_USAGE
    assert "cannot be read" in err


def test_up_without_root_or_sandbox_exits_3_and_says_what_to_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    code, _, err = run(capsys, "up", PIPE)
    assert code == cli.EXIT_ENVIRONMENT
    assert "needs root; add --sandbox" in err


def test_sandbox_commands_without_a_running_sandbox_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(tmp_path))
    code, _, err = run(capsys, "down", "--sandbox", PIPE)
    assert code == cli.EXIT_ENVIRONMENT
    assert "no sandbox is running" in err


def test_status_without_a_sandbox_running_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(tmp_path))
    code, out, _ = run(capsys, "status", "--sandbox")
    assert code == cli.EXIT_OK
    assert out == "no sandbox is running: netns_kit owns nothing there\n"


def test_options_go_before_or_after_the_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["-v", "up", "--sandbox", "f"]).verbose
    assert parser.parse_args(["up", "-v", "--sandbox", "f"]).sandbox
    assert parser.parse_args(["--sandbox", "up", "f"]).sandbox
    assert parser.parse_args(["status", "--attach", "42"]).attach == 42
    assert not parser.parse_args(["status"]).sandbox
    with pytest.raises(SystemExit):
        parser.parse_args(["status", "--sandbox", "--attach", "1"])


def test_cli_owner_is_a_named_owner() -> None:
    owner = cli.owner_for(topofile.load(PIPE).name)
    assert owner.id == "cli.seed001-pipe"
    assert owner.pid is None  # never "gone": cleanup leaves it until named


def test_progress_line_counts_changes_on_a_terminal() -> None:
    import io
    import logging

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    log = logging.getLogger("netns_kit")
    with cli._Progress(2, verbose=False, stream=stream):
        log.debug("%s %s", "query", "ip -j netns list")
        log.debug("%s %s", "run", "ip netns add red")
        log.debug("%s %s", "run", "ip -n red link set dev lo up")
    text = stream.getvalue()
    assert "[1/2] ip netns add red" in text and "[2/2] ip -n red link set dev lo up" in text
    assert "netns list" not in text
    assert text.endswith("\r")  # the line is wiped at the end
    assert log.handlers == [] or all(not isinstance(h, cli._Progress) for h in log.handlers)
