"""netns_kit used as an ordinary user does: from a login shell's environment.

A login shell of an ordinary user on Debian has ``PATH=/usr/local/bin:/usr/bin:/bin``
(plus the games directories): no ``/usr/sbin``, where ``iptables``,
``iptables-restore``, ``sysctl`` and ``tc`` are. Every test runs the real
``netns-kit`` command (or pytest with the plugin) in such an environment:

* ``env -i``: as the user running this test, with nothing but that PATH and a HOME;
* ``login`` (only when this test runs as root): as another user through
  ``runuser -l USER`` (the distribution's whole login environment, from
  ``/etc/login.defs`` and ``/etc/profile``): ``$NETNS_KIT_LOGIN_USER``, else CI's
  ``netns-kit-ci`` when it exists, else ``nobody``.
  Without root, this test already runs as the login user of CI's rootless pass.

``up --sandbox`` builds inside the CLI's own sandbox holder, never on this machine.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

#: an ordinary user's PATH from a Debian login shell (/etc/profile, ENV_PATH in /etc/login.defs)
LOGIN_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "seed001-bridge-nat.toml"

WAYS = ["env-i", *(["login"] if os.geteuid() == 0 else [])]


@attrs.frozen
class Shell:
    """Runs a shell script as the user, in a login's environment, from the checkout."""

    way: str
    user: pwd.struct_passwd
    #: a directory of the user's own: the CLI's state directory lives in it
    home: Path

    @property
    def state(self) -> Path:
        return self.home / "state"

    def run(self, script: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # this checkout's netns_kit, whichever the venv's editable install points at
        exports = f"PYTHONPATH={shlex.quote(str(ROOT))} NETNS_KIT_STATE_DIR={shlex.quote(str(self.state))}"
        script = f"cd {shlex.quote(str(ROOT))} && export {exports} && {script}"
        if self.way == "login":
            argv = ["runuser", "-l", self.user.pw_name, "-s", "/bin/sh", "-c", script]
        else:
            argv = ["env", "-i", f"PATH={LOGIN_PATH}", f"HOME={self.home}", "LANG=C.UTF-8", "sh", "-c", script]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def netns_kit(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(shlex.join([sys.executable, "-m", "netns_kit.cli", *args]))


@pytest.fixture(params=WAYS)
def shell(request: pytest.FixtureRequest) -> Iterator[Shell]:
    if request.param == "login":
        user = pwd.getpwnam(os.environ.get("NETNS_KIT_LOGIN_USER") or _ci_user_or_nobody())
        readable = ["test", "-r", str(ROOT / "netns_kit" / "__init__.py"), "-a", "-x", sys.executable]
        if subprocess.run(["runuser", "-u", user.pw_name, "--", *readable], check=False).returncode != 0:
            pytest.skip(
                f"{user.pw_name} cannot read this checkout ({ROOT}) or run {sys.executable}: a directory "
                "above it is closed to others. The rootless pass of .ci/run runs these tests as a login user."
            )
    else:
        user = pwd.getpwuid(os.geteuid())
    home = Path(tempfile.mkdtemp(prefix="netns-kit-login-"))
    os.chown(home, user.pw_uid, user.pw_gid)
    found = Shell(request.param, user, home)
    try:
        yield found
    finally:
        _stop_holder(found.state)
        shutil.rmtree(home, ignore_errors=True)


def _ci_user_or_nobody() -> str:
    """CI's unprivileged user (.ci/run makes it), else ``nobody`` (no home: a warning only)."""
    try:
        return pwd.getpwnam("netns-kit-ci").pw_name
    except KeyError:
        return "nobody"


def _stop_holder(state: Path) -> None:
    """A holder the CLI left (a test that failed half-way): stopped, so nothing outlives the test."""
    try:
        pid = json.loads((state / "sandbox.json").read_text())["pid"]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return
    if b"netns_kit-sandbox" in cmdline:
        os.kill(pid, signal.SIGTERM)


def _owners(shell: Shell) -> list[dict[str, object]]:
    """What ``status --sandbox --json`` lists (nothing when no sandbox runs)."""
    status = shell.netns_kit("status", "--sandbox", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    if status.stdout.startswith("no sandbox is running"):
        return []
    owners: list[dict[str, object]] = json.loads(status.stdout)["owners"]
    return owners


def test_the_login_environment_lacks_the_system_directories(shell: Shell) -> None:
    """What the tests below stand on: iptables is not on this PATH."""
    found = shell.run("echo $PATH; command -v iptables || echo no iptables on PATH")
    assert found.returncode == 0, found.stderr
    path, where = found.stdout.splitlines()
    assert "/usr/sbin" not in path.split(":") and "/sbin" not in path.split(":")
    assert where == "no iptables on PATH"
    assert shell.run("id -u").stdout.strip() == str(shell.user.pw_uid)


def test_doctor_finds_every_program(shell: Shell) -> None:
    done = shell.netns_kit("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    for package in ("iproute2 (ip)", "iptables (iptables, ", "util-linux (", "procps (sysctl, kill)"):
        assert f"[OK  ] {package}" in done.stdout, done.stdout
    assert "missing" not in done.stdout
    assert "netns_kit can run here." in done.stdout


def test_up_and_down_in_a_sandbox(shell: Shell) -> None:
    up = shell.netns_kit("up", "--sandbox", str(EXAMPLE))
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.startswith("up: "), up.stdout
    owners = _owners(shell)
    assert [(o["namespaces"], len(o["rules"])) for o in owners] == [(["blue", "green", "red"], 12)]  # type: ignore[arg-type]
    assert owners[0]["changes_standing"] > 0  # type: ignore[operator]
    down = shell.netns_kit("down", "--sandbox", str(EXAMPLE))
    assert down.returncode == 0, down.stdout + down.stderr
    after = shell.netns_kit("status", "--sandbox")
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("no sandbox is running"), after.stdout


def test_the_plugin_fixtures_run_instead_of_skipping(shell: Shell) -> None:
    tests = shell.home / "test_as_user.py"
    tests.write_text(
        "from netns_kit import Namespace, query\n"
        "\n"
        "def test_real(netns_executor):\n"
        "    red = Namespace('nk-login-red')\n"
        "    red.create()\n"
        "    try:\n"
        "        assert netns_executor.run(query('iptables', '-w', '-S', 'FORWARD')).ok\n"
        "        assert netns_executor.run(query('sysctl', '-n', 'net.ipv4.ip_forward')).stdout == '0\\n'\n"
        "    finally:\n"
        "        red.delete()\n"
    )
    os.chown(tests, shell.user.pw_uid, shell.user.pw_gid)
    run = shell.run(
        f"cd {shlex.quote(str(shell.home))} && "
        + shlex.join([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", tests.name])
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "skipped" not in run.stdout, run.stdout


def test_a_program_found_nowhere_is_exit_3_and_nothing_is_left_claimed(shell: Shell) -> None:
    """Where a program really is not installed (the system directories hidden too): ``up``
    says which and exits 3 (cannot run here), undoes what it did, and no ledger claims a
    change in effect (a wrapper that could not start a program ran nothing)."""
    hidden = (
        "from netns_kit import cli; from netns_kit.executors import binaries; "
        "binaries.SYSTEM_DIRS = (); raise SystemExit(cli.main())"
    )
    up = shell.run(shlex.join([sys.executable, "-c", hidden, "up", "--sandbox", str(EXAMPLE)]))
    assert up.returncode == 3, up.stdout + up.stderr
    assert "is not installed (looked on PATH, then in /usr/sbin, /sbin, /usr/local/sbin)" in up.stderr, up.stderr
    assert "does not exist (yet)" not in up.stderr
    owners = _owners(shell)
    assert [(o["namespaces"], o["links"], o["rules"], o["changes_standing"]) for o in owners] in ([], [([], [], [], 0)])
    shell.netns_kit("down", "--sandbox", str(EXAMPLE))


def test_bootstrap_sees_the_packages_installed(shell: Shell) -> None:
    """scripts/bootstrap (so scripts/test and scripts/demo) asks scripts/missing-packages,
    which looks where distributions install programs too: iptables and tc are in /usr/sbin."""
    found = shell.run("./scripts/missing-packages")
    assert (found.returncode, found.stdout) == (0, ""), found.stderr


def test_a_printed_script_runs_in_a_sandbox_from_a_login_shell(shell: Shell) -> None:
    """Sandbox.run_script: the script names iptables and sysctl bare, as printed; its shell
    finds them where netns_kit does (it said `sh: 1: iptables: not found`)."""
    code = (
        "from netns_kit import Sandbox\n"
        "with Sandbox() as box:\n"
        "    done = box.run_script('iptables -w -t nat -N NK-LOGIN\\nsysctl -n net.ipv4.ip_forward\\n')\n"
        "    print(done.stdout, end='')\n"
    )
    run = shell.run(shlex.join([sys.executable, "-c", code]))
    assert (run.returncode, run.stdout) == (0, "0\n"), run.stderr


def test_the_nfqueue_probe_finds_iptables_from_a_login_shell(shell: Shell) -> None:
    """The link emulator's probe (in a network namespace of its own, never this machine's)
    ran a bare `iptables`: `No such file or directory: 'iptables'` on a login PATH."""
    user = ["--user", "--map-root-user"] if shell.user.pw_uid != 0 else []
    probe = shlex.join(["unshare", *user, "--net", sys.executable, "-m", "netns_kit.linkemu", "--probe"])
    run = shell.run(probe)
    assert (run.returncode, (run.stdout + run.stderr).strip()) == (0, "linkemu: NFQUEUE works")
