"""Scheduling and batch failures, without privileges: a fake ``_execute`` plays the binaries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from netns_kit import Bridge, Command, Namespace, Recorder, Topology, VethPair, change
from netns_kit.batching.batch import deletes_first, listing_needed, restore_input
from netns_kit.batching.effects import Effects, effects
from netns_kit.batching.lines import ip_line, ip_word, restore_line, restore_word
from netns_kit.batching.outcome import Outcome, Progress
from netns_kit.batching.reading import unparsed_lines
from netns_kit.batching.schedule import IP_STEP_LINES, _ancestors, order, priorities, schedule
from netns_kit.errors import AlreadyExistsError, BinaryNotFoundError, CommandError, NotFoundError
from netns_kit.executors.local import ShExecutor
from netns_kit.topology import scenarios

EXAMPLES = [
    scenarios.seed001_pipe,
    scenarios.seed001_bridge,
    scenarios.seed002_host,
    scenarios.seed004_pipe,
    scenarios.seed001_story,
    lambda: scenarios.workload(20),
]


def _overlaps(x: str, y: str) -> bool:
    """Independent of the scheduler's index: do two keys cover something in common?"""
    if "*" in (x, y) or x == y:
        return True
    for one, other in ((x, y), (y, x)):
        if one.startswith("all:"):
            scope = one[4:]
            if other.startswith((f"dev:{scope}:", f"fw4:{scope}:", f"fw6:{scope}:", f"sys:{scope}:")):
                return True
    return False


def _conflict(fa: Effects, fb: Effects) -> bool:
    pairs = [(w, k) for w in fa.writes for k in fb.reads | fb.writes]
    pairs += [(r, w) for r in fa.reads for w in fb.writes]
    return any(_overlaps(x, y) for x, y in pairs)


@pytest.mark.parametrize("make", EXAMPLES)
def test_schedule_keeps_every_conflicting_pair_in_plan_order(make) -> None:
    commands = make().plan().commands
    fx = [effects(c) for c in commands]
    steps = schedule(commands)
    step_of = {i: p for p, s in enumerate(steps) for i in s.indexes}
    place = {i: n for s in steps for n, i in enumerate(s.indexes)}
    assert sorted(step_of) == list(range(len(commands)))
    waits = {p: _ancestors(steps, set(s.after)) for p, s in enumerate(steps)}
    for i in range(len(commands)):
        for j in range(i + 1, len(commands)):
            if _conflict(fx[i], fx[j]):
                si, sj = step_of[i], step_of[j]
                # in one step in plan order, or the later one's step waits for the earlier one's
                assert (si == sj and place[i] < place[j]) or si in waits[sj], (commands[i].line, commands[j].line)
    assert len(order(steps)) == len(steps)


def _positions(commands: Sequence[Command]) -> dict[int, int]:
    steps = schedule(commands)
    ran = [i for p in order(steps) for i in steps[p].indexes]
    return {index: position for position, index in enumerate(ran)}


def test_workload_runs_in_one_process_per_namespace_plus_a_few() -> None:
    commands = scenarios.workload(50).plan().commands
    steps = schedule(commands)
    kinds = [(s.kind, s.netns) for s in steps]
    assert sorted(k for k in kinds if k[1] is not None) == sorted(("ip", f"w{i}") for i in range(50))
    host_lines = sum(len(s.indexes) for s in steps if s.kind == "ip" and s.netns is None)
    assert kinds.count(("ip", None)) == -(-host_lines // IP_STEP_LINES)  # the host's lines, in chunks
    # the rules and the forwarding switch need no device: they never wait for an ip
    # step; forwarding goes on after the NAT's rules and before the port forwards'
    assert [k for k in kinds if k[0] != "ip"] == [("restore", None), ("one", None), ("restore", None)]
    assert all(steps[p].kind != "ip" for s in steps if s.kind != "ip" for p in s.after)
    # a namespace waits for the host's chunks that made it and its veth, never for another namespace
    for s in steps:
        if s.netns is not None:
            assert all(steps[p].netns is None for p in s.after)
            assert len(_ancestors(steps, s.after)) < len(steps) // 4


def test_the_longest_chain_of_work_starts_first() -> None:
    steps = schedule(scenarios.workload(200).plan().commands)
    first = [steps[p] for p in order(steps, priorities(steps))]
    # the host's chunks (which make the namespaces and their veths) and the 2000-line
    # restore (the plan puts the rules last) go before any namespace's own 4 lines
    host = [n for n, s in enumerate(first) if s.netns is None]
    assert host == list(range(len(host)))
    assert sorted(s.kind for s in first[: len(host)] if s.kind != "ip") == ["one", "restore", "restore"]
    assert [s.netns for s in first[len(host) :]] == [f"w{i}" for i in range(200)]


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("net.ipv4.ip_forward", "sys:red:forwarding"),
        ("net/ipv4/ip_forward", "sys:red:forwarding"),
        ("net.ipv6.conf.all.forwarding", "sys:red:forwarding"),
        ("net.ipv4.conf.br0.route_localnet", "dev:red:br0"),
        ("net/ipv6/conf/eth0.10/disable_ipv6", "dev:red:eth0.10"),
        ("net.ipv6.conf.default.disable_ipv6", "all:red"),
        ("net.ipv4.conf.all.rp_filter", "all:red"),
        ("net.core.somaxconn", "all:red"),
    ],
)
def test_a_sysctl_write_writes_its_device_or_the_forwarding_switch_or_everything(key: str, written: str) -> None:
    fx = effects(change("sysctl", "-q", "-w", f"{key}=1", netns="red"))
    assert fx.writes == {written}
    # forwarding goes on only after the rules planned before it: it reads every table
    tables = {r for r in fx.reads if r.startswith(("fw4:red:", "fw6:red:"))}
    assert len(tables) == (10 if written.startswith("sys:") else 0)
    assert {"fw4:red:nat", "fw4:red:filter", "fw6:red:filter"} <= tables or not written.startswith("sys:")
    assert fx.reads - tables == {"ns:red"}


def test_peer_created_from_a_later_namespace_is_configured_after_its_creation() -> None:
    # red appears first, but its end is created by a command run in blue
    topo = Topology(
        [
            Namespace("red"),
            Namespace("blue"),
            VethPair("vb", "vr", netns="blue", peer_netns="red", peer_addresses="10.9.0.1/24"),
        ]
    )
    commands = topo.plan().commands
    position = _positions(commands)
    create = next(i for i, c in enumerate(commands) if c.argv[:3] == ("ip", "link", "add"))
    configure = [i for i, c in enumerate(commands) if c.netns == "red" and "vr" in c.argv]
    assert configure and all(position[create] < position[i] for i in configure)


def test_commands_it_does_not_understand_are_never_moved() -> None:
    commands = [
        change("ip", "netns", "add", "a"),
        Command(("sh", "-c", "something")),
        change("ip", "link", "set", "dev", "lo", "up", netns="a"),
        change("ip", "netns", "add", "b"),
    ]
    position = _positions(commands)
    assert [position[i] for i in range(4)] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("word", "ip", "restore"),
    [
        ("eth0", "eth0", "eth0"),
        ("a b", '"a b"', '"a b"'),
        ('say "hi"', "'say \"hi\"'", None),
        ("a#b", None, '"a#b"'),
        ("back\\slash", None, None),
        ("", '""', '""'),
        ("[2001:db8::1]:80", "[2001:db8::1]:80", "[2001:db8::1]:80"),
    ],
)
def test_words_are_quoted_as_each_batch_reader_reads_them_back(word: str, ip: str | None, restore: str | None) -> None:
    assert ip_word(word) == ip
    assert restore_word(word) == restore


@pytest.mark.parametrize("word", ["eth0", "a b", "", " lead", "trail ", "a  b", "10.0.0.1/24", "x\ty"])
def test_a_line_is_the_words_each_said_as_its_reader_reads_them_back(word: str) -> None:
    """Lines of plain words are made in one go; whatever the word, a line is exactly
    the words quoted one by one."""
    ip = change("ip", "link", "set", "dev", "veth0", "alias", word)
    restore = change("iptables", "-w", "-t", "filter", "-A", "FORWARD", "-m", "comment", "--comment", word)
    quoted_ip = [ip_word(w) for w in ip.argv[1:]]
    quoted_restore = [restore_word(w) for w in restore.argv[4:]]
    assert ip_line(ip) == (None if None in quoted_ip else " ".join(map(str, quoted_ip)))
    expected = None if None in quoted_restore else ("filter", " ".join(map(str, quoted_restore)))
    assert restore_line(restore) == expected


def test_a_command_that_cannot_be_said_in_a_batch_runs_alone() -> None:
    odd = change("ip", "link", "set", "dev", "x", "alias", "has # hash")
    assert [s.kind for s in schedule([change("ip", "link", "add", "name", "y", "type", "bridge"), odd])] == [
        "ip",
        "one",
    ]


def test_restore_input_groups_a_table_per_block_with_the_commit_line() -> None:
    rules = [
        change("iptables", "-w", "-t", "nat", "-N", "NK-A"),
        change("iptables", "-w", "-t", "nat", "-A", "NK-A", "-j", "MASQUERADE"),
        change("iptables", "-w", "-t", "filter", "-N", "NK-B"),
    ]
    text, blocks = restore_input(rules)
    assert text == "*nat\n-N NK-A\n-A NK-A -j MASQUERADE\nCOMMIT\n*filter\n-N NK-B\nCOMMIT\n"
    assert blocks == [(0, 2, 4), (2, 3, 7)]


# -- failures mapped back to the command ------------------------------------------


class FakeBinaries(ShExecutor):
    """A batching executor whose ``ip -batch`` / ``iptables-restore`` fail where told."""

    def __init__(self, fail: str, stderr: str, *, parse_error: bool | str = False) -> None:
        super().__init__(parallel=1)
        self.enter_directly = False  # every process through _execute
        self.fail = re.compile(fail)
        self.stderr = stderr
        self.parse_error = parse_error
        self.ran: list[str] = []  # every line that took effect, in order

    @property
    def ledger_dir(self) -> Path | None:
        return None

    def _execute(self, argv, *, input, timeout, netns=None):  # type: ignore[no-untyped-def]
        if "-batch" in argv:
            for number, line in enumerate(input.splitlines(), start=1):
                if self.fail.search(line):
                    if isinstance(self.parse_error, str):  # ip's own words for the line
                        return 1, "", self.parse_error
                    if self.parse_error:
                        return 255, "", 'Error: either "dev" is duplicate, or "x" is a garbage.\n'
                    return 1, "", f"{self.stderr}\nCommand failed -:{number}\n"
                self.ran.append(line)
            return 0, "", ""
        if argv[-3:] == ("iptables-restore", "--noflush", "-w") or argv[0].endswith("-restore"):
            lines = input.splitlines()
            for number, line in enumerate(lines, start=1):
                if self.fail.search(line):
                    commit = next(n for n in range(number, len(lines) + 1) if lines[n - 1] == "COMMIT")
                    return 1, "", f"iptables-restore: line {commit} failed\n"
            self.ran += [ln for ln in lines if ln[:1] == "-"]
            return 0, "", ""
        line = " ".join(argv)
        if "-C" in argv:
            return (1, "", "") if self.fail.search(line.replace(" -C ", " -D ")) else (0, "", "")
        if self.fail.search(line):
            return 1, "", self.stderr
        self.ran.append(line)
        return 0, "", ""


def _error(
    fake: FakeBinaries, commands: Sequence[Command], cls: type[CommandError] = CommandError
) -> tuple[CommandError, Progress]:
    """The error ``run_all`` raises, and what ``attempt`` says took effect (the same run again)."""
    ran = list(fake.ran)
    with pytest.raises(cls) as info:
        fake.run_all(commands)
    fake.ran[:] = ran
    outcome = fake.attempt(commands)
    assert isinstance(outcome.error, cls) and str(outcome.error) == str(info.value)
    return info.value, outcome.progress


def test_a_failing_batch_line_raises_that_commands_classified_error() -> None:
    fake = FakeBinaries(r"link add name veth-blue", "RTNETLINK answers: File exists")
    commands = scenarios.seed001_bridge().plan().commands
    error, progress = _error(fake, commands, AlreadyExistsError)
    failed = next(i for i, c in enumerate(commands) if "veth-blue" in c.argv and c.argv[2] == "add")
    assert error.argv == commands[failed].full_argv
    assert progress.failed == failed
    assert error.stderr.strip() == "RTNETLINK answers: File exists"
    assert progress.inflight == ()
    # exactly the lines before it in its batch took effect (the host's batch comes first)
    assert [c.line.removeprefix("ip ") for c in (commands[i] for i in progress.completed)] == fake.ran
    assert [r.command for r in error.completed] == [commands[i] for i in progress.completed]


def test_a_missing_ok_line_that_finds_nothing_lets_the_rest_of_the_batch_run() -> None:
    fake = FakeBinaries(r"netns del b$", 'Cannot remove namespace file "/run/netns/b": No such file or directory')
    commands = [Command(("ip", "netns", "del", n), missing_ok=True) for n in "abc"]
    results = fake.run_all(commands)
    assert len(results) == 3
    assert fake.ran == ["netns del a", "netns del c"]


def test_a_line_ip_cannot_parse_leaves_the_batch_in_flight() -> None:
    fake = FakeBinaries(r"link set dev veth-blue", "", parse_error=True)
    commands = scenarios.seed001_bridge().plan().commands
    error, progress = _error(fake, commands)
    assert error.argv[-2:] == ("-batch", "-")
    assert progress.failed is None
    host = {i for i, c in enumerate(commands) if c.netns is None}
    assert set(progress.inflight) == host
    assert any("which lines ran is unknown" in note for note in error.__notes__)


def _bad_prefix(commands: Sequence[Command], where: str) -> tuple[list[Command], int]:
    """``commands`` with the address added ``where`` given a /33 (as tests/stress/test_faults.py does)."""
    commands = list(commands)
    failed = next(i for i, c in enumerate(commands) if c.argv[1:3] == ("addr", "add") and where in c.argv)
    argv = commands[failed].argv
    commands[failed] = change(*argv[:3], re.sub(r"/\d+$", "/33", argv[3]), *argv[4:], netns=commands[failed].netns)
    return commands, failed


def test_a_line_ip_cannot_parse_is_found_by_the_word_ip_quotes() -> None:
    # ip exits on a bad prefix without "Command failed -:N"; the word it quotes is on one line only
    commands, failed = _bad_prefix(scenarios.seed001_bridge().plan().commands, "v-net-0")
    message = f'Error: any valid prefix is expected rather than "{commands[failed].argv[3]}".\n'
    fake = FakeBinaries(re.escape(commands[failed].line.removeprefix("ip ")), "", parse_error=message)
    error, progress = _error(fake, commands)
    assert error.argv == commands[failed].full_argv == ("ip", "addr", "add", "192.168.1.254/33", "dev", "v-net-0")
    assert (error.returncode, error.stderr) == (1, message)
    assert progress.failed == failed
    assert progress.inflight == ()
    assert [c.line.removeprefix("ip ") for c in (commands[i] for i in progress.completed)] == fake.ran


PARSED = [
    change("ip", "link", "set", "dev", "lo", "up"),
    change("ip", "route", "add", "10.0.0.0/24", "dev", "lo", "foo"),
    change("ip", "link", "set", "dev", "eth0", "mtu", "abc"),
    change("ip", "route", "add", "default", "via", "10.0.0.300"),
    change("ip", "addr", "add", "10.0.0.1/24", "dev", "eth0", "label"),
]


@pytest.mark.parametrize(
    ("stderr", "found"),
    [  # what ip 6.1 says for each line of PARSED in a batch (no "Command failed -:N" for any)
        ('Error: either "to" is duplicate, or "foo" is a garbage.\n', [1]),
        ('Error: argument "abc" is wrong: Invalid "mtu" value\n\n', [2]),
        ('Error: any valid address is expected rather than "10.0.0.300".\n', [3]),
        ('Garbage instead of arguments "abc ...". Try "ip link help".\n', [2]),
        ('Error: either "dev" is duplicate, or "eth0" is a garbage.\n', [2, 4]),
        ('Command line is not complete. Try option "help"\n', []),  # no word: which line is unknown
        ("Segmentation fault\n", []),
    ],
)
def test_the_line_ip_could_not_parse_is_the_one_holding_the_words_it_quotes(stderr: str, found: list[int]) -> None:
    assert unparsed_lines(stderr, PARSED) == found


def test_a_word_ip_quotes_from_several_lines_narrows_what_may_have_run() -> None:
    commands = [
        change("ip", "link", "set", "dev", "a", "alias", "foo"),
        change("ip", "link", "set", "dev", "b", "mtu", "1400"),
        change("ip", "link", "set", "dev", "c", "foo"),
        change("ip", "link", "set", "dev", "d", "up"),
    ]
    message = 'Error: either "dev" is duplicate, or "foo" is a garbage.\n'
    fake = FakeBinaries(r"dev c foo", "", parse_error=message)
    error, progress = _error(fake, commands)
    assert error.argv[-2:] == ("-batch", "-")  # it stopped on line 1 or 3: ip did not say which
    assert progress == Progress(completed=(), inflight=(0, 1), failed=None)  # line 3 did nothing either way
    assert any("dev a alias foo" in note and "dev c foo" in note for note in error.__notes__)


def test_a_failing_restore_block_is_replayed_one_by_one_for_the_precise_error() -> None:
    fake = FakeBinaries(r"-A NK-PF-\w+-FWD -s", "iptables: Bad rule (does a matching rule exist in that chain?).")
    commands = scenarios.seed001_nat().plan().commands
    error, progress = _error(fake, commands, NotFoundError)
    assert error.argv[:4] == ("iptables", "-w", "-t", "filter")
    assert error.argv[4:6] == ("-A", error.argv[5]) and "-s" in error.argv
    assert isinstance(error, NotFoundError)
    # the replay ran, one by one, the commands of the failed block before the failing one
    done = [commands[i] for i in progress.completed]
    last = [c for c in done if c.argv[0] == "iptables"][-1]
    assert last.argv[4] == "-A" and last.argv[6] == "-d" and last.argv[3] == "filter"


def test_a_missing_binary_means_nothing_of_its_step_ran() -> None:
    class Missing(FakeBinaries):
        def _execute(self, argv, *, input, timeout, netns=None):  # type: ignore[no-untyped-def]
            if "-restore" in " ".join(argv):
                raise BinaryNotFoundError(argv, 127)
            return super()._execute(argv, input=input, timeout=timeout)

    fake = Missing(r"^$", "")
    outcome = fake.attempt(scenarios.seed001_nat().plan().commands)
    assert isinstance(outcome.error, BinaryNotFoundError)
    assert outcome.progress.inflight == ()


def test_journal_undoes_exactly_what_took_effect_when_it_is_not_a_prefix() -> None:
    # an executor that ran commands 0 and 2 of the plan (netns add, bridge add), then failed on 1
    class OutOfOrder(Recorder):
        def handle(self, commands, *, input=None, timeout=None, on_done=None):  # type: ignore[no-untyped-def]
            if len(commands) == 4:
                error = AlreadyExistsError(commands[1].full_argv, 2, "", "RTNETLINK answers: File exists")
                self.commands += [commands[0], commands[2]]
                return Outcome({}, Progress(completed=(0, 2), failed=1), error)
            return super().handle(commands, input=input, timeout=timeout, on_done=on_done)

    recorder = OutOfOrder()
    topo = Topology([Namespace("a"), Bridge("x")])
    assert len(topo.plan().commands) == 4
    with pytest.raises(AlreadyExistsError):
        topo.up(recorder)
    # the undo of command 2 (the bridge) and of command 0 (the namespace), and nothing else
    assert [c.line for c in recorder.commands[2:]] == ["ip link del dev x", "ip netns del a"]


def test_a_teardown_step_deletes_jumps_first_in_the_order_they_stand() -> None:
    jumps = [change("iptables", "-w", "-t", "nat", "-D", "PREROUTING", "-j", f"NK-{k}") for k in range(300)]
    step = []
    for k in reversed(range(300)):  # undo order: the last one made first
        step += [jumps[k], change("iptables", "-w", "-t", "nat", "-F", f"NK-{k}")]
        step.append(change("iptables", "-w", "-t", "nat", "-X", f"NK-{k}"))

    saved = "*nat\n:PREROUTING ACCEPT [0:0]\n" + "".join(f"-A PREROUTING -j NK-{k}\n" for k in range(300))

    listing = saved + "COMMIT\n"
    assert listing_needed(step, range(len(step))) == Command(("iptables-save",), mutating=False)
    order = deletes_first(step, list(range(len(step))), listing)
    assert [step[i] for i in order[:300]] == jumps  # first-made first: found at the top of the chain
    assert [step[i].argv[4] for i in order[300:]] == ["-F", "-X"] * 300
    # a step that also adds rules, or flushes a chain it deletes from, keeps its order (no listing)
    adding = [change("iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-j", "NK-0"), *step]
    assert listing_needed(adding, range(len(adding))) is None
    assert deletes_first(adding, list(range(len(adding))), listing) == list(range(len(adding)))
    flushing = [change("iptables", "-w", "-t", "nat", "-F", "PREROUTING"), *step]
    assert deletes_first(flushing, list(range(len(flushing))), listing) == list(range(len(flushing)))


def test_an_interruption_while_steps_run_reports_all_that_took_effect(mocker) -> None:  # type: ignore[no-untyped-def]
    import concurrent.futures

    fake = FakeBinaries(r"^$", "")
    fake.parallel = 4
    commands = scenarios.workload(10).plan().commands
    real_wait = concurrent.futures.wait
    calls = {"n": 0}

    def wait_then_ctrl_c(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_wait(*args, **kwargs)

    mocker.patch("concurrent.futures.wait", side_effect=wait_then_ctrl_c)
    outcome = fake.attempt(commands)
    assert isinstance(outcome.error, KeyboardInterrupt)
    # every line that ran is reported as done (or in flight); some did not run at all
    assert len(fake.ran) == len(outcome.progress.completed) + len(outcome.progress.inflight)
    assert 0 < len(fake.ran) < len(commands)


@pytest.mark.parametrize(
    "argv",
    [
        ("ip", "link", "set", "dev", "a", "name", "b"),
        ("ip", "link", "set", "dev", "a", "netns", "red"),
        ("ip", "link", "add", "name", "a", "type", "veth", "peer", "name", "b", "netns", "1"),
        ("ip", "link", "del", "dev", "a"),
        ("ip", "netns", "del", "red"),
        ("kill", "-TERM", "1234"),
    ],
)
def test_what_the_model_does_not_cover_is_a_barrier(argv: tuple[str, ...]) -> None:
    assert effects(Command(argv)).writes == {"*"}
