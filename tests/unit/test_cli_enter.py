"""`netns-kit exec` and `netns-kit shell` become the command they start: the exact argv
and environment handed to execve (no process is started here)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from netns_kit import cli
from netns_kit.cli import enter
from netns_kit.executors import binaries

SANDBOX_PREFIX = ("nsenter", "--target=4242", "--user", "--preserve-credentials", "--net", "--mount", "--")


class Exec(Exception):
    """Raised in place of execve: what would have been run."""

    def __init__(self, path: str, argv: list[str], env: dict[str, str]) -> None:
        super().__init__(path)
        self.path, self.argv, self.env = path, argv, env
        self.sigpipe = signal.getsignal(signal.SIGPIPE)


@pytest.fixture
def execve(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def fake(path: str, argv: list[str], env: dict[str, str]) -> None:
        raise Exec(path, list(argv), dict(env))

    monkeypatch.setattr(os, "execve", fake)
    monkeypatch.setattr(enter, "prefix_for", lambda args, name: SANDBOX_PREFIX)
    monkeypatch.setattr(os, "isatty", lambda fd: True)  # a shell on a terminal unless a test says otherwise
    saved = signal.getsignal(signal.SIGPIPE), signal.getsignal(signal.SIGXFSZ)
    yield
    signal.signal(signal.SIGPIPE, saved[0])
    signal.signal(signal.SIGXFSZ, saved[1])


def became(*argv: str) -> Exec:
    with pytest.raises(Exec) as raised:
        cli.main(list(argv))
    return raised.value


def wrapper(name: str) -> list[str]:
    """The absolute words that enter the sandbox and the namespace (as binaries finds them)."""
    return list(binaries.resolve([*SANDBOX_PREFIX, "ip", "netns", "exec", name, "env", "--"]))


def test_exec_becomes_nsenter_ip_netns_exec_env_command(execve: None) -> None:
    done = became("exec", "--sandbox", "red", "--", "ping", "-c", "1", "192.168.1.2")
    assert done.argv == [*wrapper("red"), "ping", "-c", "1", "192.168.1.2"]
    assert done.path == done.argv[0] and done.argv[0].endswith("/nsenter")
    assert done.argv[:7] == [done.argv[0], *SANDBOX_PREFIX[1:]]
    assert done.env["NETNS_KIT_NAMESPACE"] == "red"
    assert "/usr/sbin" in done.env["PATH"].split(os.pathsep)  # iptables, sysctl for an ordinary user
    # a command that writes into `| head` dies of SIGPIPE, as it does from a shell
    assert done.sigpipe == signal.SIG_DFL


def test_exec_keeps_the_command_words_as_they_are(execve: None) -> None:
    done = became("exec", "red", "--", "sh", "-c", "echo $0 '$1'", "--", "-x")
    assert done.argv[-6:] == ["--", "sh", "-c", "echo $0 '$1'", "--", "-x"]


def test_exec_without_a_command_is_a_usage_error(execve: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["exec", "--sandbox", "red"]) == cli.EXIT_USAGE
    assert "netns-kit exec NAMESPACE -- COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../etc", "a b", ".", "x" * 300])
def test_exec_refuses_a_namespace_name_that_is_no_name(
    execve: None, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert cli.main(["exec", "--sandbox", name, "--", "true"]) == cli.EXIT_USAGE
    assert "NAMESPACE" in capsys.readouterr().err


def test_shell_with_bash_reads_its_startup_files_then_names_the_namespace(
    execve: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELL", "/bin/bash")
    done = became("shell", "--sandbox", "blue")
    assert done.argv[: len(wrapper("blue"))] == wrapper("blue")
    shell = done.argv[len(wrapper("blue")) :]
    assert shell[0] == "/bin/bash" and shell[1] == "--rcfile" and shell[3] == "-i"
    fd = int(shell[2].removeprefix("/dev/fd/"))
    assert os.get_inheritable(fd)
    with os.fdopen(fd) as rc:
        assert rc.read() == enter.BASH_RC
    assert "~/.bashrc" in enter.BASH_RC and "[netns $NETNS_KIT_NAMESPACE]" in enter.BASH_RC
    assert done.env["NETNS_KIT_NAMESPACE"] == "blue"


@pytest.mark.parametrize("shell", ["/bin/sh", "/usr/bin/zsh", "/bin/dash"])
def test_shell_of_another_kind_gets_the_prompt_from_the_environment(
    execve: None, monkeypatch: pytest.MonkeyPatch, shell: str
) -> None:
    monkeypatch.setenv("SHELL", shell)
    done = became("shell", "--attach", "4242", "red")
    assert done.argv[len(wrapper("red")) :] == [shell, "-i"]
    sign = "#" if os.geteuid() == 0 else "$"
    assert done.env["PS1"] == f"[netns red] {sign} "


def test_shell_with_fish_sets_its_prompt_function(execve: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/usr/bin/fish")
    done = became("shell", "red")
    tail: list[Any] = done.argv[len(wrapper("red")) :]
    assert tail[:2] == ["/usr/bin/fish", "-C"]
    assert tail[2].startswith("function fish_prompt; echo -n '[netns red] ")


@pytest.mark.parametrize("shell", ["/bin/bash", "/bin/sh", "/usr/bin/fish"])
def test_shell_fed_commands_on_stdin_runs_them_without_prompt_or_job_control(
    execve: None, monkeypatch: pytest.MonkeyPatch, shell: str
) -> None:
    """`echo cmd | netns-kit shell NS` as `docker exec -i` without -t: the shell reads stdin."""
    monkeypatch.setenv("SHELL", shell)
    monkeypatch.setattr(os, "isatty", lambda fd: False)
    done = became("shell", "--sandbox", "blue")
    assert done.argv[len(wrapper("blue")) :] == [shell]
    assert "PS1" not in done.env and done.env["NETNS_KIT_NAMESPACE"] == "blue"
