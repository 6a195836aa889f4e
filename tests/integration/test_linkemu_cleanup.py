"""Crash cleanup stops the link emulators of the owners it cleans, and no one else's.

When the impaired device is adopted (made by someone else, so cleanup does not delete it
or its namespace) and the owner is SIGKILLed, nothing else would stop its emulator:
``netns-kit cleanup`` finds it by its command line (``-m netns_kit.linkemu ... --owner TAG``)
in the namespaces of the executor, and stops it; an emulator of another owner on the same
device's namespace is left running.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Command
from netns_kit.executors.sandbox import Sandbox
from netns_kit.linkemu.plan import MODULE, PYTHON
from netns_kit.ops import state

from .helpers import PY

#: a child that impairs the adopted a-eth (in the adopted namespace "own-a", or in the sandbox's
#: own namespace when argv[2] is empty) and dies by SIGKILL as soon as its emulator is started:
#: before its ledger marks the start done, so the ledger alone cannot prove it ran
CRASHING_CHILD = """
import os, signal, sys
from netns_kit import LinkImpairment, Namespace, Topology
from netns_kit.linkemu.plan import MODULE
from netns_kit.executors.sandbox import Sandbox


class KillingSandbox(Sandbox):
    def _run_one(self, command, input, timeout):
        result = super()._run_one(command, input, timeout)
        if MODULE in command.argv and "--background" in command.argv:
            print(self.owner.tag, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return result


box = KillingSandbox.attach(int(sys.argv[1]))
box.batch = False  # one process per change: killed right after the emulator's start
impaired = LinkImpairment("a-eth", {"delay": "20ms", "via": "userspace"}, netns=sys.argv[2] or None, queue=9)
Topology([*([Namespace(sys.argv[2], adopt=True)] if sys.argv[2] else []), impaired]).up(box)
"""


def emulators() -> dict[int, list[str]]:
    """The link emulators running (pid: argv); the sandbox shares our pid namespace."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except OSError:
            continue
        if MODULE in argv and "--background" in argv:
            found[int(entry.name)] = argv
    return found


def of_queue(queue: int) -> list[int]:
    return sorted(pid for pid, argv in emulators().items() if argv[argv.index("--queue") + 1] == str(queue))


@pytest.fixture
def adopted(sb: Sandbox, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A veth made by hand (not netns_kit's: cleanup never deletes it), its a-eth end in the
    namespace asked for (a namespace made by hand too, or the sandbox's own)."""
    netns: str | None = request.param
    made = []
    if netns is not None:
        sb.run(Command(("ip", "netns", "add", netns)))
        made.append(netns)
    sb.run(Command(("ip", "netns", "add", "own-b")))
    made.append("own-b")
    sb.run(Command(("ip", "link", "add", "a-eth", "type", "veth", "peer", "name", "b-eth", "netns", "own-b"),
                   netns=netns))  # fmt: skip
    sb.run(Command(("ip", "link", "set", "a-eth", "up"), netns=netns))
    try:
        yield netns
    finally:
        for pid in of_queue(9) + of_queue(11):
            sb.run(Command(("kill", "-KILL", str(pid))), check=False)
        sb.run(Command(("ip", "link", "del", "a-eth"), netns=netns), check=False)
        for name in made:
            sb.run(Command(("ip", "netns", "del", name)))


@pytest.mark.parametrize("adopted", ["own-a", None], indirect=True, ids=["adopted-netns", "sandbox-netns"])
def test_cleanup_stops_the_emulator_of_a_killed_owner_on_an_adopted_device_and_no_one_elses(
    sb: Sandbox, adopted: str | None
) -> None:
    before = state.snapshot(sb)
    # another owner's emulator, started by hand on a queue of its own in the same namespace
    # (owned by this test's own owner, which is alive: never cleanup's to stop)
    decoy = Command(
        (PYTHON, "-m", MODULE, "--queue", "11", "--dev", "a-eth", "--delay", "1ms", "--owner", sb.owner.tag,
         "--background"),
        netns=adopted,
    )  # fmt: skip
    sb.run(decoy)
    [decoy_pid] = of_queue(11)
    child = subprocess.run([PY, "-c", CRASHING_CHILD, str(sb.pid), adopted or ""], capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    tag = child.stdout.strip()
    [orphan] = of_queue(9)
    assert emulators()[orphan][-3:] == ["--owner", tag, "--background"]

    result = subprocess.run([PY, "-m", "netns_kit.cli", "cleanup", "--attach", str(sb.pid)], capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # stopped by cleanup itself (its device is still there: it would idle on forever)
    assert of_queue(9) == []
    where = f" in {adopted}" if adopted else ""
    assert f"removed: link emulator pid {orphan} (queue 9, dev a-eth{where}) of {tag.removeprefix('netns_kit:')}" in (
        result.stdout
    )
    assert of_queue(11) == [decoy_pid]
    sb.run(Command((PYTHON, "-m", MODULE, "--stop", "--queue", "11"), netns=adopted))
    deadline = time.monotonic() + 10
    while of_queue(11) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert of_queue(11) == []
    # the queue rules went too; the adopted device and namespaces stay (the fixture removes them)
    assert state.diff(before, state.snapshot(sb)) == []


@pytest.mark.parametrize("adopted", [None], indirect=True, ids=["sandbox-netns"])
def test_an_owners_stop_of_a_queue_leaves_another_owners_emulator_on_that_queue(
    sb: Sandbox, adopted: str | None
) -> None:
    """The undo a ledger holds (``--stop --queue N --owner TAG``) stops only that owner's
    emulator: once A's emulator died, B may serve the same queue there."""
    sb.run(Command((PYTHON, "-m", MODULE, "--queue", "11", "--dev", "a-eth", "--owner", "netns_kit:cli.b",
                    "--background")))  # fmt: skip
    [b] = of_queue(11)
    sb.run(Command((PYTHON, "-m", MODULE, "--stop", "--queue", "11", "--owner", "netns_kit:cli.a")))
    assert of_queue(11) == [b]
    sb.run(Command((PYTHON, "-m", MODULE, "--stop", "--queue", "11", "--owner", "netns_kit:cli.b")))
    assert of_queue(11) == []
