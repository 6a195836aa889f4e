"""`netns-kit completion bash|zsh|fish`, made from the parser; `python -m netns_kit`;
`plan --format svg|png` through Graphviz's dot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import netns_kit
from netns_kit.cli import complete, parser

EXAMPLES = Path(__file__).parents[2] / "examples"
PIPE = str(EXAMPLES / "seed001-pipe.toml")


def netns_kit_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netns_kit", *argv], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def completions(script: Path, *words: str, cwd: Path | None = None) -> list[str]:
    """What bash offers for the last of ``words``, with the script sourced as a user does."""
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script}; complete -p netns-kit >/dev/null || exit 9; "
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _netns_kit; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, cwd=cwd, timeout=30, check=True)
    return sorted(filter(None, done.stdout.splitlines()))


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = netns_kit_cli("completion", "bash")
    assert made.returncode == 0, made.stderr
    path = tmp_path_factory.mktemp("completion") / "netns-kit.bash"
    path.write_text(made.stdout)
    return path


def test_bash_loads_the_completion_with_process_substitution() -> None:
    program = f"source <({sys.executable} -m netns_kit completion bash); complete -p netns-kit"
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "complete -o filenames -F _netns_kit netns-kit\n", "")


def test_bash_completes_commands_options_and_their_values(bash_script: Path, tmp_path: Path) -> None:
    assert completions(bash_script, "netns-kit", "") == sorted(complete.commands(parser.build_parser()))
    assert completions(bash_script, "netns-kit", "e") == ["exec"]
    assert completions(bash_script, "netns-kit", "--attach", "42", "in") == ["inspect"]
    assert completions(bash_script, "netns-kit", "plan", "--format", "s") == ["sh", "svg"]
    assert completions(bash_script, "netns-kit", "down", "--a") == ["--all", "--attach"]
    assert completions(bash_script, "netns-kit", "completion", "") == ["bash", "fish", "zsh"]
    assert completions(bash_script, "netns-kit", "ls", "--j") == ["--json"]
    (tmp_path / "net.toml").write_text("")
    (tmp_path / "nothing.txt").write_text("")
    assert completions(bash_script, "netns-kit", "up", "ne", cwd=tmp_path) == ["net.toml"]
    assert completions(bash_script, "netns-kit", "plan", "-o", "not", cwd=tmp_path) == ["nothing.txt"]


def test_every_command_and_option_is_in_every_script() -> None:
    built = parser.build_parser()
    scripts = {shell: make(built) for shell, make in complete.SCRIPTS.items()}
    for name, sub in complete.commands(built).items():
        for action in complete.options(sub):
            long = next(o for o in action.option_strings if o.startswith("--"))
            assert long in scripts["bash"] and long in scripts["zsh"]
            assert f"'__fish_seen_subcommand_from {name}' " in scripts["fish"]
            assert f"-l {long[2:]}" in scripts["fish"], (name, long)
        assert f"-a {name} -d" in scripts["fish"]
    assert "bashcompinit" in scripts["zsh"]


def test_fish_completes_choices_and_files() -> None:
    script = complete.fish(parser.build_parser())
    assert (
        "complete -c netns-kit -n '__fish_seen_subcommand_from plan' -l format -x -a 'sh mermaid dot svg png'" in script
    )
    assert "complete -c netns-kit -n '__fish_seen_subcommand_from up' -F" in script


def test_python_m_netns_kit_is_the_command() -> None:
    done = netns_kit_cli("--version")
    assert (done.returncode, done.stdout) == (0, f"netns_kit {netns_kit.__version__}\n")
    assert netns_kit.__version__ == parser.VERSION


def fake_dot(bin_dir: Path, seen: Path) -> None:
    """A `dot` that keeps its arguments and standard input, and draws "<svg/>"."""
    bin_dir.mkdir()
    dot = bin_dir / "dot"
    dot.write_text(f'#!/bin/sh\necho "$@" > {seen}.args\ncat > {seen}\necho "<svg/>"\n')
    dot.chmod(0o755)


def test_plan_svg_hands_the_dot_text_to_graphviz(tmp_path: Path) -> None:
    seen = tmp_path / "stdin"
    fake_dot(tmp_path / "bin", seen)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    done = netns_kit_cli("plan", "--format", "svg", PIPE, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "<svg/>\n", "")
    assert seen.read_text() == netns_kit_cli("plan", "--format", "dot", PIPE).stdout
    assert Path(f"{seen}.args").read_text() == "-Tsvg\n"
    out = tmp_path / "net.png"
    done = netns_kit_cli("plan", "--format", "png", "-o", str(out), PIPE, env=env)
    assert done.returncode == 0, done.stderr
    assert Path(f"{seen}.args").read_text() == f"-Tpng -o {out}\n"


def test_plan_svg_without_graphviz_says_so_and_exits_3(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    env = dict(os.environ, PATH=str(tmp_path / "bin"))  # no dot here, nor in /usr/sbin, /sbin
    done = netns_kit_cli("plan", "--format", "svg", PIPE, env=env)
    assert done.returncode == 3, done.stderr
    assert "needs Graphviz's dot, which is not installed" in done.stderr
    assert "apt-get install graphviz" in done.stderr and "--format dot" in done.stderr
    assert done.stdout == ""
