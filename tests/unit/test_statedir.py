"""The state directory is trusted only as OpenSSH's StrictModes would (netns_kit.statedir).

These run as root (CI's unit pass) and as an ordinary user (its rootless pass):
each test that needs another user's directory makes one with chown as root, and
uses a directory root owns otherwise, so that neither pass skips it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from netns_kit import cli, statedir
from netns_kit.errors import SandboxError
from netns_kit.executors import holder
from netns_kit.executors.local import ShExecutor
from netns_kit.statedir import StateDirError

#: the real property (tests/unit/conftest.py points every ShExecutor elsewhere)
LEDGER_DIR = ShExecutor.__dict__["ledger_dir"]
ROOT = os.geteuid() == 0


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A directory of this user's own, mode 0700."""
    tmp_path.chmod(0o700)
    return tmp_path


def someone_elses(base: Path) -> Path:
    """A directory this user does not own: chowned to nobody as root, else root's /var."""
    if not ROOT:
        assert os.stat("/var").st_uid == 0
        return Path("/var")
    path = base / "other"
    path.mkdir(mode=0o755)
    os.chown(path, 65534, 65534)
    return path


def test_an_own_directory_of_mode_0700_or_0755_is_trusted(base: Path) -> None:
    for mode in (0o700, 0o755):
        path = base / f"mine-{mode:o}"
        path.mkdir()
        path.chmod(mode)
        assert statedir.checked(path) == path


def test_a_missing_directory_is_made_with_mode_0700_or_0755_for_root(base: Path) -> None:
    path = base / "a" / "b"
    assert statedir.checked(path) == path
    assert not path.parent.exists()  # only said where it goes: no one else can make it here
    assert statedir.checked(path, create=True) == path
    assert mode_of(path) == mode_of(path.parent) == (0o755 if ROOT else 0o700)
    assert os.stat(path).st_uid == os.geteuid()


def test_a_missing_directory_in_a_sticky_world_writable_one_is_made_at_once(base: Path) -> None:
    shared = base / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: anyone could take the name first
    path = shared / "netns_kit-1000"
    assert statedir.checked(path) == path
    assert path.is_dir() and not path.is_symlink()
    assert mode_of(path) == (0o755 if ROOT else 0o700)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777])
def test_a_directory_writable_by_group_or_others_is_refused_with_the_fix(base: Path, mode: int) -> None:
    path = base / "state"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(StateDirError) as caught:
        statedir.checked(path)
    message = str(caught.value)
    assert f"{path} is writable by group or others (mode {mode:04o})" in message
    assert f"chmod go-w {path}" in message


def test_a_directory_of_another_user_is_refused(base: Path) -> None:
    path = someone_elses(base)
    owner = os.stat(path).st_uid
    with pytest.raises(StateDirError, match=rf"{path} is owned by uid {owner}, not by you \(uid {os.geteuid()}\)"):
        statedir.checked(path)


def test_the_reported_attack_a_777_tmp_directory_of_another_user_is_refused(base: Path) -> None:
    """Issue 15 (10): /tmp/netns_kit-UID made by someone else, mode 0777."""
    if ROOT:
        path = base / "netns_kit-1000"
        path.mkdir()
        path.chmod(0o777)
        os.chown(path, 65534, 65534)
        why = "is owned by uid 65534"
    else:  # a directory of another user, writable by all: /tmp itself stands in
        path = Path("/tmp")
        why = "is owned by uid 0"
    with pytest.raises(StateDirError, match=why):
        statedir.checked(path)


def test_a_symbolic_link_is_refused_even_to_a_good_directory(base: Path) -> None:
    target = base / "real"
    target.mkdir(mode=0o700)
    link = base / "state"
    link.symlink_to(target)
    with pytest.raises(StateDirError, match=rf"{link} is a symbolic link.*remove it \(rm {link}\)"):
        statedir.checked(link)
    with pytest.raises(StateDirError, match="symbolic link"):
        statedir.checked(link, create=True)


def test_a_dangling_symbolic_link_is_not_followed_to_make_a_directory(base: Path) -> None:
    link = base / "state"
    link.symlink_to(base / "elsewhere")
    with pytest.raises(StateDirError, match="symbolic link"):
        statedir.checked(link, create=True)
    assert not (base / "elsewhere").exists()


def test_a_file_is_refused(base: Path) -> None:
    path = base / "state"
    path.write_text("")
    with pytest.raises(StateDirError, match="is not a directory"):
        statedir.checked(path)


def test_a_directory_above_writable_by_others_and_not_sticky_is_refused(base: Path) -> None:
    open_dir = base / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    path = open_dir / "state"
    path.mkdir(mode=0o700)
    with pytest.raises(StateDirError, match=rf"is inside {open_dir}, writable by group or others \(mode 0777"):
        statedir.checked(path)
    open_dir.chmod(0o1777)  # sticky: no one else can rename or remove ours
    assert statedir.checked(path) == path


def test_a_directory_above_owned_by_another_user_is_refused(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if ROOT:
        parent = someone_elses(base)
        owner = 65534
    else:  # an ordinary user cannot give a directory away: this process plays another user
        parent = base / "parent"
        parent.mkdir(mode=0o700)
        owner = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: owner + 1)
    path = parent / "state"
    os.mkdir(path, 0o700)
    with pytest.raises(StateDirError, match=rf"is inside {parent}, owned by uid {owner}"):
        statedir.checked(path)


def test_the_default_directories(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert statedir.default_dir() == Path("/run/netns_kit")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert statedir.default_dir() == Path("/run/user/1000/netns_kit")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert statedir.default_dir() == Path("/tmp/netns_kit-1000")


def test_shexecutor_ledger_dir_is_checked(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ShExecutor, "ledger_dir", LEDGER_DIR)
    bad = base / "netns_kit"
    bad.mkdir()
    bad.chmod(0o777)
    monkeypatch.setattr(statedir, "default_dir", lambda: bad)
    with pytest.raises(StateDirError, match="chmod go-w"):
        ShExecutor().ledger_dir  # noqa: B018
    bad.chmod(0o700)
    assert ShExecutor().ledger_dir == bad


def test_the_state_dir_variable_is_checked_and_named(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = base / "state"
    bad.mkdir()
    bad.chmod(0o777)
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(bad))
    with pytest.raises(StateDirError, match=r"\$NETNS_KIT_STATE_DIR .* is writable by group or others"):
        holder.state_dir()
    with pytest.raises(StateDirError):
        holder.find()
    assert isinstance(StateDirError("x"), SandboxError)


def test_the_cli_refuses_an_untrusted_state_directory_with_exit_3(
    base: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = base / "state"
    bad.mkdir()
    bad.chmod(0o777)
    (bad / holder.RECORD).write_text('{"pid": 1, "start": "1", "rootless": false}\n')
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(bad))
    assert cli.main(["status", "--sandbox"]) == cli.EXIT_ENVIRONMENT
    assert f"chmod go-w {bad}" in capsys.readouterr().err


def _fake_proc(tmp_path: Path, uid_map: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "sys" / "kernel").mkdir(parents=True)
    (proc / "self" / "uid_map").write_text(uid_map)
    (proc / "sys" / "kernel" / "overflowuid").write_text("65534\n")
    return proc


def test_outside_owners_is_the_overflow_uid_only_inside_a_user_namespace(tmp_path: Path) -> None:
    assert statedir._outside_owners(_fake_proc(tmp_path / "a", "         0          0 4294967295\n")) == set()
    assert statedir._outside_owners(_fake_proc(tmp_path / "b", "         0       1001          1\n")) == {65534}
    assert statedir._outside_owners(tmp_path / "missing") == set()


def test_inside_a_user_namespace_a_directory_above_owned_by_the_overflow_uid_is_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rootless sandbox sees root's / as owned by 65534; its own /run/netns_kit is still checked."""
    above = tmp_path / "above"
    above.mkdir(mode=0o755)
    real_stat = os.stat

    def stat_as_seen_in_a_user_namespace(path: Any, *args: Any, **kwargs: Any) -> Any:
        info = real_stat(path, *args, **kwargs)
        if Path(path) == above:
            return os.stat_result((info.st_mode, *info[1:4], 65534, *info[5:]))
        return info

    monkeypatch.setattr(statedir.os, "stat", stat_as_seen_in_a_user_namespace)
    monkeypatch.setattr(statedir, "_outside_owners", set)
    with pytest.raises(statedir.StateDirError, match="owned by uid 65534"):
        statedir.checked(above / "netns_kit", create=True)
    monkeypatch.setattr(statedir, "_outside_owners", lambda: {65534})
    assert statedir.checked(above / "netns_kit", create=True) == above / "netns_kit"
