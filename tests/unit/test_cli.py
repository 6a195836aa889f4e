"""The netns-kit command: parsing, output and exit codes (nothing here touches the machine)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netns_kit import cli
from netns_kit.cli import build, records
from netns_kit.cli import place as cliplace
from netns_kit.cli.output import Progress, Removals
from netns_kit.ops import cleanup as leftovers
from netns_kit.ops import inventory
from netns_kit.owner import Owner
from netns_kit.topology import scenarios
from netns_kit.topology import tomlfile as topofile

from .fakes import FakeHost

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
    assert out.splitlines()[3:6] == ["ip -n red link del dev veth-red", "ip netns del blue", "ip netns del red"]


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
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
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


def test_cli_owner_of_a_file_naming_its_topology_is_that_name() -> None:
    owner = cliplace.owner_for(topofile.load(PIPE))
    assert owner.id == "cli.seed001-pipe"
    assert owner.pid is None  # never "gone": cleanup leaves it until named


def test_cli_owner_of_an_unnamed_file_identifies_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for project in ("p1", "p2"):
        (tmp_path / project).mkdir()
        (tmp_path / project / "net.toml").write_text(UNNAMED)
    (tmp_path / "link.toml").symlink_to(tmp_path / "p1" / "net.toml")
    monkeypatch.chdir(tmp_path)
    p1, p2 = (cliplace.owner_for(topofile.load(f"{p}/net.toml")) for p in ("p1", "p2"))
    assert p1 != p2
    digest = hashlib.sha256(str((tmp_path / "p1" / "net.toml").resolve()).encode()).hexdigest()[:8]
    assert p1.id == f"cli.net-{digest}"
    # the same file by another way of naming it is the same owner
    assert cliplace.owner_for(topofile.load(tmp_path / "p1" / "net.toml")) == p1
    assert cliplace.owner_for(topofile.load("link.toml")) == p1
    assert cliplace.owner_for(topofile.load("link.toml"), name="lab").id == "cli.lab"


def test_cli_owner_of_a_long_file_name_fits_an_owner_id(tmp_path: Path) -> None:
    path = tmp_path / ("n" * 120 + ".toml")
    path.write_text(UNNAMED)
    owner = cliplace.owner_for(topofile.load(path))
    assert len(owner.id) == 64 and owner.id.startswith("cli.nnnn")
    assert Owner.from_tag(owner.tag) == owner


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_counts_changes_on_a_terminal() -> None:
    stream = Terminal()
    log = logging.getLogger("netns_kit")
    with Progress(3, verbose=False, stream=stream) as progress:
        log.debug("%s %s", "query", "ip -j netns list")
        log.debug("%s %s", "run", "ip netns add red")
        log.debug("%s %s", "run", "ip -n red link set dev lo up")
        log.debug("run %s", "ip -n red addr add 10.0.0.1/24 dev v")  # a line of a batch
        log.debug("as one process (%d commands): %s", 1, "ip -n red -batch -")
    text = stream.getvalue()
    assert "[1/3] ip netns add red" in text and "[2/3] ip -n red link set dev lo up" in text
    assert "[3/3] ip -n red addr add 10.0.0.1/24 dev v" in text
    assert "netns list" not in text and "batch" not in text
    assert progress.done == 3
    assert text.endswith("\r")  # the line is wiped at the end
    assert log.handlers == [] or all(not isinstance(h, Progress) for h in log.handlers)


def test_progress_counts_off_a_terminal_without_drawing() -> None:
    stream = io.StringIO()
    with Progress(None, verbose=False, stream=stream) as progress:
        logging.getLogger("netns_kit").debug("%s %s", "run", "ip netns add red")
    assert (progress.done, stream.getvalue()) == (1, "")


def test_a_warning_during_up_is_said_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # with no other handler, Python prints a warning itself (logging.lastResort): the
    # progress handler must not silence it (a firewall rule naming a missing interface)
    log = logging.getLogger("netns_kit")
    monkeypatch.setattr(log, "propagate", False)
    stream = Terminal()
    with Progress(2, verbose=False, stream=stream) as progress:
        log.debug("%s %s", "run", "ip netns add red")
        log.warning("NatRule.out_interface: %s does not exist", "eth9")
        log.info("not a warning")
    text = stream.getvalue()
    assert "warning: NatRule.out_interface: eth9 does not exist\n" in text
    assert "not a warning" not in text and progress.done == 1


def test_a_warning_another_handler_hears_is_not_said_twice() -> None:
    stream = io.StringIO()
    heard = logging.NullHandler()
    log = logging.getLogger("netns_kit")
    log.addHandler(heard)
    try:
        with Progress(None, verbose=False, stream=stream):
            log.warning("said by the other handler")
    finally:
        log.removeHandler(heard)
    assert stream.getvalue() == ""


# -- exit codes, and no traceback ----------------------------------------------------
def test_help_lists_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for code in (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_ENVIRONMENT, cli.EXIT_CONFLICT):
        assert f"{code} " in text
    assert "130 interrupted (Ctrl-C)" in text
    assert "141 output pipe closed early, the work was done" in text


def test_plan_of_a_binary_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "/bin/ls")
    assert (code, out) == (cli.EXIT_USAGE, "")
    assert err.startswith("netns-kit: error: /bin/ls: (file): is not a text file (not UTF-8")


def test_a_permission_error_exits_3_with_a_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "/proc/1/ns/net")

    monkeypatch.setattr(cliplace, "open_executor", denied)
    code, _, err = run(capsys, "doctor", "--attach", "1")
    assert code == cli.EXIT_ENVIRONMENT
    assert err == "netns-kit: error: Permission denied: /proc/1/ns/net\n"


def test_plan_into_a_pipe_closed_early_exits_141_quietly(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_text("".join(f'[[namespaces]]\nname = "n{i}"\n' for i in range(2000)))
    reader, writer = os.pipe()
    with subprocess.Popen(
        [sys.executable, "-m", "netns_kit.cli", "plan", str(big)], stdout=writer, stderr=subprocess.PIPE
    ) as child:
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            first = pipe.readline()  # `| head -1`: one line, then the pipe is closed
        _, stderr = child.communicate(timeout=60)
    assert first.startswith(b"#")
    assert child.returncode == cli.EXIT_CLOSED_PIPE
    assert stderr == b""


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


# -- up and down, against a host the test plays -------------------------------------
UNNAMED = Path(PIPE).read_text().replace("[topology]", "").replace('name = "seed001-pipe"', "")


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeHost]:
    """`--attach 42` reaches a FakeHost (one per owner, one ledger directory)."""
    made: dict[str, FakeHost] = {}

    def open_executor(args: object, owner: Owner | None) -> FakeHost:
        fake = FakeHost(tmp_path / "run", owner=owner or Owner("status"), **made.get("values", FakeValues()).values)
        made[owner.id if owner else "-"] = fake
        return fake

    monkeypatch.setattr(cliplace, "open_executor", open_executor)
    # the fake world shows no objects: what an `up` made counts as there (not gone)
    monkeypatch.setattr(records, "gone", lambda *args, **kwargs: False)
    return made


class FakeValues:
    values: dict[str, str] = {}


def project(tmp_path: Path, name: str, text: str = UNNAMED) -> str:
    (tmp_path / name).mkdir(exist_ok=True)
    path = tmp_path / name / "net.toml"
    path.write_text(text)
    return str(path)


def ledger_owners(tmp_path: Path) -> list[str]:
    return sorted(p.name.rsplit(".", 2)[0] for p in (tmp_path / "run").glob("*.jsonl"))


def test_up_of_the_same_file_name_in_two_projects_makes_two_owners(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], tmp_path: Path
) -> None:
    p1, p2 = project(tmp_path, "p1"), project(tmp_path, "p2")
    assert run(capsys, "up", "--attach", "42", p1)[0] == cli.EXIT_OK
    code, _, err = run(capsys, "up", "--attach", "42", p2)
    assert code == cli.EXIT_OK, err
    o1, o2 = (cliplace.owner_for(topofile.load(p)).id for p in (p1, p2))
    assert ledger_owners(tmp_path) == sorted([o1, o2])

    assert run(capsys, "down", "--attach", "42", p2)[0] == cli.EXIT_OK
    assert ledger_owners(tmp_path) == [o1]  # p1's topology is untouched
    assert run(capsys, "down", "--attach", "42", p1)[0] == cli.EXIT_OK
    assert ledger_owners(tmp_path) == []
    assert list((tmp_path / "run").iterdir()) == []  # the origin records went with them


def test_up_of_a_file_sharing_a_name_names_the_other_file(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], tmp_path: Path
) -> None:
    text = Path(PIPE).read_text().replace("seed001-pipe", "lab")
    p1, p2 = project(tmp_path, "p1", text), project(tmp_path, "p2", text)
    assert run(capsys, "up", "--attach", "42", p1)[0] == cli.EXIT_OK
    code, out, err = run(capsys, "up", "--attach", "42", p2)
    assert (code, out) == (cli.EXIT_CONFLICT, "")
    real = Path(p1).resolve()
    assert f"lab is already up in sandbox holder 42 from {real}, which has the same [topology] name" in err
    assert f"take that one down first: netns-kit down --attach 42 {real}" in err

    # `down p2` does not take down what `up p1` made
    code, out, err = run(capsys, "down", "--attach", "42", p2)
    assert code == cli.EXIT_CONFLICT
    assert f"is up in sandbox holder 42 from {real}, not from {p2}" in err
    assert ledger_owners(tmp_path) == ["cli.lab"]
    assert run(capsys, "down", "--attach", "42", p1)[0] == cli.EXIT_OK
    assert ledger_owners(tmp_path) == []


def test_up_again_says_how_to_take_it_down_keeping_attach(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "up", "--attach", "42", PIPE)
    assert code == cli.EXIT_OK
    assert out.splitlines()[1] == f"take it down with: netns-kit down --attach 42 {PIPE}"
    code, _, err = run(capsys, "up", "--attach", "42", PIPE)
    assert code == cli.EXIT_CONFLICT
    assert f"take it down first: netns-kit down --attach 42 {PIPE}" in err
    run(capsys, "down", "--attach", "42", PIPE)


def test_verbose_shows_each_command_once(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="netns_kit"):
        code, out, _ = run(capsys, "up", "-v", "--attach", "42", PIPE)
    assert code == cli.EXIT_OK
    ran = [r.getMessage() for r in caplog.records if r.getMessage().startswith("run ")]
    assert ran.count("run ip netns add red") == 1
    assert len(ran) == len(host["cli.seed001-pipe"].commands) == 9
    assert "9 changes" in out
    run(capsys, "down", "--attach", "42", PIPE)


def test_up_counts_the_changes_it_made_not_the_plan(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], tmp_path: Path
) -> None:
    # docker0, without waiting for links a played host never brings up
    docker0 = project(tmp_path, "d", (EXAMPLES / "docker0.toml").read_text().replace("wait = true", ""))
    FakeValues.values = {"net.ipv4.ip_forward": "1"}  # forwarding is on already: not set again
    try:
        code, out, _ = run(capsys, "up", "--attach", "42", docker0)
    finally:
        FakeValues.values = {}
    assert code == cli.EXIT_OK
    made = len(host["cli.docker0"].commands)
    planned = len(topofile.load(docker0).topology.plan().commands)
    assert made == planned - 1
    assert code == cli.EXIT_OK and f"up: docker0: {made} changes in " in out


def test_up_of_a_file_without_resources_starts_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text('[topology]\nname = "empty"\n')
    monkeypatch.setattr(build, "place", lambda *a, **k: pytest.fail("nothing should start"))
    code, out, _ = run(capsys, "up", "--sandbox", str(empty))
    assert code == cli.EXIT_OK
    assert out == f"up: empty: nothing to do: {empty} describes no resources\n"


def test_down_into_a_closed_pipe_finishes_and_exits_141(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "up", "--attach", "42", PIPE)[0] == cli.EXIT_OK
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["down", "--attach", "42", PIPE]) == cli.EXIT_CLOSED_PIPE
    assert ledger_owners(tmp_path) == []  # it went on to the end
    assert "Traceback" not in capsys.readouterr().err


def test_removals_draw_a_line_on_a_terminal_only() -> None:
    terminal, piped = Terminal(), io.StringIO()
    for stream in (terminal, piped):
        with Removals(verbose=False, stream=stream) as removals:
            removals(0, 4)
            removals(4, 4)
    assert terminal.getvalue().startswith("\r[0/4] removing\r[4/4] removing\r")
    assert piped.getvalue() == ""


def test_down_forced_out_by_a_second_ctrl_c_says_how_to_finish(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def interrupted(executor: object, **options: object) -> None:
        seen.append(options["progress"])
        raise leftovers.CleanupInterrupted(leftovers.CleanupReport(removed=["namespace red"]), 3, 10)

    monkeypatch.setattr(leftovers, "cleanup", interrupted)
    code, out, err = run(capsys, "down", "--attach", "42", PIPE)
    assert code == cli.EXIT_INTERRUPTED
    assert out == "removed: namespace red\n"
    assert f"stopped after 3 of 10 removals: `netns-kit down --attach 42 {PIPE}` finishes it" in err
    assert isinstance(seen[0], Removals)


def test_down_of_a_moved_file_points_to_what_its_old_place_made(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], tmp_path: Path
) -> None:
    old = project(tmp_path, "p1")
    assert run(capsys, "up", "--attach", "42", old)[0] == cli.EXIT_OK
    owner = cliplace.owner_for(topofile.load(old)).id
    (tmp_path / "p1").rename(tmp_path / "p3")
    code, out, _ = run(capsys, "down", "--attach", "42", str(tmp_path / "p3" / "net.toml"))
    assert code == cli.EXIT_OK
    assert (
        f"down: note: {owner} is up from {Path(old).resolve()}, which is gone: if that was this file: "
        f"netns-kit cleanup --attach 42 --owner {owner}"
    ) in out
    assert ledger_owners(tmp_path) == [owner]  # only said, never removed


def test_down_points_to_a_topology_up_under_the_owner_of_older_versions(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], tmp_path: Path
) -> None:
    path = project(tmp_path, "p1")
    legacy = FakeHost(tmp_path / "run", owner=Owner("cli.net"))
    topofile.load(path).topology.up(legacy)  # what `up` made before owners named the file
    code, out, _ = run(capsys, "down", "--attach", "42", path)
    assert code == cli.EXIT_OK
    assert "down: note: cli.net (a file named net, up before owners named the file) is up: " in out
    assert "netns-kit cleanup --attach 42 --owner cli.net" in out


# -- the end of every --sandbox command: is the holder empty? (netns_kit.ops.inventory) ----
def test_the_emptiness_check_stops_at_the_first_sign(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path, owner=Owner("cli.x"))
    topofile.load(PIPE).topology.up(fake)  # a ledger: no process needs to run
    fake.queries.clear()
    assert not inventory.holds_nothing(fake)
    assert fake.queries == []

    namespaces = FakeHost(tmp_path / "none", owner=Owner("cli.x"))
    namespaces.handler = lambda c: '[{"name": "red"}]' if c.argv[:3] == ("ip", "-j", "netns") else None
    assert not inventory.holds_nothing(namespaces)
    assert [q.line for q in namespaces.queries] == ["ip -j netns list"]


def test_down_reads_only_the_owner_of_its_file(
    capsys: pytest.CaptureFixture[str], host: dict[str, FakeHost], tmp_path: Path
) -> None:
    path = project(tmp_path, "p1")
    assert run(capsys, "up", "--attach", "42", path)[0] == cli.EXIT_OK
    owner = cliplace.owner_for(topofile.head(path)).id
    assert owner == cliplace.owner_for(topofile.load(path)).id and ledger_owners(tmp_path) == [owner]
    # edited since up, into a file that no longer builds: down still takes down what up made
    Path(path).write_text(UNNAMED + '\n[[veths]]\nname = "x"\nbogus = 1\n')
    code, out, err = run(capsys, "down", "--attach", "42", path)
    assert code == cli.EXIT_OK, err
    assert f"(owner {owner})" in out and err == ""
    assert ledger_owners(tmp_path) == []


def test_a_ledger_is_gone_only_when_what_it_made_with_its_tag_is_all_gone(tmp_path: Path) -> None:
    from netns_kit.command import change
    from netns_kit.lifecycle import ledger
    from netns_kit.ops import inventory

    owner = Owner("cli.lab")
    here = cliplace.Place(FakeHost(tmp_path, owner=owner), "in sandbox holder 42", "--attach 42")

    def found(*commands: object, **objects: object) -> inventory.Inventory:
        entries = tuple(ledger.Entry(i, c, 0.0, "ok") for i, c in enumerate(commands))  # type: ignore[arg-type]
        made = inventory.LedgerFile(tmp_path / "cli.lab.1-1.jsonl", owner, entries)
        return inventory.Inventory(ledgers=[made], **objects)  # type: ignore[arg-type]

    add_ns = change("ip", "netns", "add", "red")
    assert records.gone(here, owner, found(add_ns))
    assert not records.gone(here, owner, found(add_ns, namespaces={"red": owner.tag}))
    assert records.gone(here, owner, found(add_ns, namespaces={"red": None}))  # not ours: someone else's now
    link = inventory.Link("br0", None, "bridge", owner.tag)
    assert not records.gone(here, owner, found(add_ns, links=[link]))
    # a ledger that made nothing carrying its tag proves nothing: never gone
    assert not records.gone(here, owner, found(change("ip", "route", "add", "default", "via", "10.0.0.1")))
    # a claim on a shared switch is still there: not gone
    claim = tmp_path / "sysctl" / "-host-" / "net.ipv4.ip_forward"
    claim.mkdir(parents=True)
    (claim / "claim.cli.lab.7-1").write_text("1")
    (claim / "prior").write_text("0")
    assert not records.gone(here, owner, found(add_ns))


@pytest.mark.parametrize(
    "argv",
    [("down", "--attach", "42", PIPE), ("cleanup", "--attach", "42", "--owner", "cli.seed001-pipe")],
    ids=["down", "cleanup-owner"],
)
def test_a_ctrl_c_held_during_the_removal_is_raised_once_the_command_is_done(
    capsys: pytest.CaptureFixture[str],
    host: dict[str, FakeHost],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
) -> None:
    import signal

    from netns_kit import signals

    assert run(capsys, "up", "--attach", "42", PIPE)[0] == cli.EXIT_OK
    origin = tmp_path / "run" / f"cli.seed001-pipe{cliplace.ORIGIN_SUFFIX}"
    assert origin.exists()
    real = leftovers.cleanup

    def ctrl_c_during(*args: object, **kwargs: object) -> leftovers.CleanupReport:
        with signals.shielded():  # as cleanup() holds it while it removes
            os.kill(os.getpid(), signal.SIGINT)
            return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(leftovers, "cleanup", ctrl_c_during)
    code, out, err = run(capsys, *argv)
    assert code == cli.EXIT_INTERRUPTED, out + err
    assert err == "netns-kit: interrupted\n"  # the Ctrl-C, raised at the end: nothing was stopped
    # the whole command ran first: its last line said (the fake world shows no objects:
    # the ledger is what is removed), the origin record forgotten
    last = "down: nothing to do: seed001-pipe " if argv[0] == "down" else "cleanup: removed 0 objects of cli.seed001"
    assert out.splitlines()[-1].startswith(last), out
    assert not list((tmp_path / "run").glob("*.jsonl"))
    assert not origin.exists()
