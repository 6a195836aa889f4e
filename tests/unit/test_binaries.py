"""Finding programs where distributions install them, on a fake directory layout.

An ordinary user's login PATH on Debian has no /usr/sbin; here a fake root holds
usr/bin, usr/sbin and sbin, PATH names only the first, and the system directories
are pointed at the fake ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Command, query
from netns_kit.errors import BinaryNotFoundError
from netns_kit.executors import binaries, spawn
from netns_kit.executors.local import ShExecutor


def _program(directory: Path, name: str, output: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / name
    program.write_text(f'#!/bin/sh\necho {output or name} "$@"\n')
    program.chmod(0o755)
    return program


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake root: PATH=ROOT/usr/bin; system directories ROOT/usr/sbin, ROOT/sbin."""
    root = tmp_path / "root"
    for name in ("usr/bin", "usr/sbin", "sbin", "usr/local/sbin"):
        (root / name).mkdir(parents=True)
    (root / "usr/bin/env").symlink_to("/usr/bin/env")  # for the wrappers' tests
    monkeypatch.setenv("PATH", f"{root}/usr/bin")
    monkeypatch.setattr(binaries, "SYSTEM_DIRS", (f"{root}/usr/sbin", f"{root}/sbin", f"{root}/usr/local/sbin"))
    binaries.forget()
    yield root
    binaries.forget()


def test_a_program_on_path_is_found_there_first(layout: Path) -> None:
    on_path = _program(layout / "usr/bin", "iptables")
    _program(layout / "usr/sbin", "iptables")
    assert binaries.which("iptables") == str(on_path)


def test_a_program_missing_from_path_is_found_in_the_system_directories_in_order(layout: Path) -> None:
    sbin = _program(layout / "sbin", "sysctl")
    assert binaries.which("sysctl") == str(sbin)
    usr_sbin = _program(layout / "usr/sbin", "tc")
    _program(layout / "sbin", "tc")
    assert binaries.which("tc") == str(usr_sbin)
    local = _program(layout / "usr/local/sbin", "nft")
    assert binaries.which("nft") == str(local)


def test_a_program_found_nowhere_is_none_and_found_once_installed(layout: Path) -> None:
    assert binaries.which("iptables-restore") is None
    installed = _program(layout / "usr/sbin", "iptables-restore")
    assert binaries.which("iptables-restore") == str(installed)


def test_files_that_cannot_be_run_and_directories_are_passed_over(layout: Path) -> None:
    (layout / "usr/bin/ip").write_text("not executable")
    (layout / "usr/sbin/ip").mkdir()
    real = _program(layout / "sbin", "ip")
    assert binaries.which("ip") == str(real)


def test_empty_and_relative_path_entries_are_not_searched(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(layout / "usr/bin")
    _program(layout / "usr/bin", "ss")
    monkeypatch.setenv("PATH", f":.:bin:{layout}/usr/local/bin")
    assert binaries.which("ss") is None
    assert binaries.search_path() == [
        f"{layout}/usr/local/bin",
        f"{layout}/usr/sbin",
        f"{layout}/sbin",
        f"{layout}/usr/local/sbin",
    ]


def test_a_name_with_a_slash_is_taken_as_it_is(layout: Path) -> None:
    program = _program(layout / "usr/sbin", "iptables")
    assert binaries.which(str(program)) == str(program)
    assert binaries.which(str(layout / "usr/sbin/nothing")) is None


def test_found_paths_are_cached_per_path(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _program(layout / "usr/sbin", "ip")
    assert binaries.which("ip") == str(first)
    looked: list[str] = []

    def executable(path: str) -> bool:
        looked.append(path)
        return True

    monkeypatch.setattr(binaries, "_executable", executable)
    assert binaries.which("ip") == str(first)
    assert looked == []  # the cache answered
    monkeypatch.setenv("PATH", f"{layout}/usr/local/bin")
    assert binaries.which("ip") == f"{layout}/usr/local/bin/ip"  # another PATH: looked up again
    assert looked == [f"{layout}/usr/local/bin/ip"]


def test_the_path_of_the_environment_given_is_searched(layout: Path) -> None:
    other = _program(layout / "other", "ip")
    assert binaries.which("ip", path=str(layout / "other")) == str(other)


@pytest.fixture
def tools(layout: Path) -> dict[str, str]:
    """Every program netns_kit wraps, in the system directories only (env is on PATH)."""
    found = {"env": str(layout / "usr/bin/env")}
    for name in ("nsenter", "unshare", "ip", "iptables-restore", "sh", "tc", "sysctl"):
        found[name] = str(_program(layout / "usr/sbin", name))
    return found


def test_resolve_finds_the_program_and_every_program_a_wrapper_runs(tools: dict[str, str]) -> None:
    argv = (
        "nsenter", "--target=7", "--user", "--preserve-credentials", "--net", "--mount", "--",
        "ip", "netns", "exec", "red",
        "env", "-C", "/srv", "-u", "HOME", "A=B", "C=D=E",
        "iptables-restore", "--noflush", "-w",
    )  # fmt: skip
    assert binaries.resolve(argv) == (
        tools["nsenter"], "--target=7", "--user", "--preserve-credentials", "--net", "--mount", "--",
        tools["ip"], "netns", "exec", "red",
        tools["env"], "-C", "/srv", "-u", "HOME", "A=B", "C=D=E",
        tools["iptables-restore"], "--noflush", "-w",
    )  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        # the sandbox's holder and the netem probe ("@NAME": found, the rest kept as it is)
        ("@unshare", "--user", "--map-root-user", "--net", "--propagation", "private", "--", "@sh", "-c", "x"),
        ("@unshare", "--net", "@tc", "qdisc", "add"),
        # an option's value is not the program
        ("@nsenter", "-t", "7", "-n", "@ip", "link"),
        ("@nsenter", "--net=/run/netns/red", "--", "@ip", "-batch", "-"),
        ("@env", "-", "A=1", "@sysctl", "-n", "x"),
        ("@env", "--", "@sysctl"),
        ("@ip", "-n", "red", "link"),
        # the program is inside a string: env splits it, not us
        ("@env", "-S", "sysctl -n x"),
        # nothing to run: nothing more is resolved
        ("@env", "A=1"),
        ("@ip", "netns", "exec", "red"),
        # a path is kept, and runs no program of ours; a program found nowhere keeps its name
        ("/bin/true", "ip"),
        ("@nsenter", "--", "no-such-program", "ip"),
        ("@sh", "-c", "ip link"),
    ],
)
def test_resolve_knows_where_each_wrapper_keeps_its_program(tools: dict[str, str], argv: tuple[str, ...]) -> None:
    bare = tuple(word.removeprefix("@") for word in argv)
    expected = tuple(tools[word[1:]] if word.startswith("@") else word for word in argv)
    assert binaries.resolve(bare) == expected


def test_spawn_runs_a_program_that_is_only_in_a_system_directory(layout: Path) -> None:
    _program(layout / "usr/sbin", "iptables-save", "saved")
    assert spawn.run(["iptables-save", "-t", "nat"]) == (0, "saved -t nat\n", "")


def test_the_program_a_wrapper_runs_is_found_too(layout: Path) -> None:
    """``env`` (like nsenter, unshare, ip netns exec) looks on its own PATH, which lacks it."""
    _program(layout / "sbin", "sysctl", "sysctl says")
    executor = ShExecutor(batch=False)
    result = executor.run(Command(("env", "-C", "/", "A=1", "sysctl", "-n", "x"), mutating=False))
    assert result.stdout == "sysctl says -n x\n"


def test_a_program_found_nowhere_is_a_binary_not_found_error_with_the_bare_name(layout: Path) -> None:
    with pytest.raises(BinaryNotFoundError) as info:
        ShExecutor().run(query("iptables-save"))
    assert info.value.argv == ("iptables-save",)
    assert "apt-get install iptables" in info.value.hint


def test_a_program_a_wrapper_could_not_start_is_a_binary_not_found_error(layout: Path) -> None:
    """``env PROG`` exits 127 when PROG is nowhere: nothing ran, even with check=False."""
    executor = ShExecutor(batch=False)
    for check in (True, False):
        with pytest.raises(BinaryNotFoundError) as info:
            executor.run(Command(("env", "A=1", "iptables-restore", "--noflush")), check=check)
        assert info.value.argv == ("env", "A=1", "iptables-restore", "--noflush")
        assert info.value.binary == "iptables-restore"
        assert "apt-get install iptables" in info.value.hint


def test_the_sh_runner_finds_programs_in_the_system_directories_too(layout: Path) -> None:
    pytest.importorskip("sh")
    _program(layout / "usr/sbin", "tc", "tc here")
    assert ShExecutor(runner="sh").run(query("tc", "-V")).stdout == "tc here -V\n"


def test_a_background_process_finds_programs_in_the_system_directories_too(layout: Path) -> None:
    _program(layout / "usr/sbin", "tc", "tc here")
    process = ShExecutor().popen(Command(("tc", "-V"), mutating=False), cwd=str(layout))
    assert process.wait(10) == 0
    assert process.stdout == "tc here -V\n"
    assert process.argv[-2:] == ("tc", "-V")  # what is shown keeps the bare name


def test_doctor_looks_for_programs_where_processes_find_them(layout: Path) -> None:
    from netns_kit import Recorder
    from netns_kit.ops.doctor import OK, Probes, doctor

    for name in ("ip", "iptables", "iptables-save", "ip6tables", "ip6tables-save", "nsenter", "unshare"):
        _program(layout / "usr/sbin", name)
    _program(layout / "sbin", "sysctl")
    _program(layout / "usr/bin", "kill")
    report = doctor(probes=Probes(executor=Recorder(), euid=lambda: 0))
    assert report["iptables (iptables, iptables-save, ip6tables, ip6tables-save)"].status == OK
    assert report["procps (sysctl, kill)"].status == OK
    assert report["util-linux (nsenter, unshare)"].status == OK


def test_the_netem_probe_says_which_program_is_missing(layout: Path) -> None:
    from netns_kit.executors import capability

    probe = capability.netem(ShExecutor(batch=False))
    assert not probe.available
    assert probe.reason.startswith("the netem probe could not run: 'unshare' is not installed")


def test_the_leak_check_reads_the_firewall_where_processes_find_its_programs(layout: Path) -> None:
    """Looked for with shutil.which, iptables-save was "not installed" on a login PATH
    and the rules a test leaked there went unseen."""
    from netns_kit.ops import leakcheck

    class NoLedger(ShExecutor):
        @property
        def ledger_dir(self) -> Path | None:
            return None

    executor = NoLedger(batch=False)
    tag = executor.owner.tag
    (layout / "usr/bin/ip").write_text("#!/bin/sh\necho '[]'\n")
    (layout / "usr/bin/ip").chmod(0o755)
    for tool in ("iptables-save", "ip6tables-save"):
        (layout / "usr/sbin" / tool).write_text(f"#!/bin/sh\necho '-A FORWARD -m comment --comment {tag} -j ACCEPT'\n")
        (layout / "usr/sbin" / tool).chmod(0o755)
    assert leakcheck.owned(executor) == {
        f"the host, {tool}: -A FORWARD -m comment --comment {tag} -j ACCEPT"
        for tool in ("iptables-save", "ip6tables-save")
    }
