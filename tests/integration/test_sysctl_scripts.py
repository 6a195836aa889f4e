"""Printed scripts on a used machine: forwarding on (as on a Docker host) or off before.

The set-up script claims ``ip_forward`` where the library keeps its claims; the
tear-down script, the library's cleanup and ``netns-kit down`` all restore the value
found before, only when the last claim goes. Each pair (script up + script down,
script up + library/CLI down, library/CLI up + printed down) must leave the whole
state as it was: links, addresses, routes, rules, the forwarding switch on ``all``,
``default`` and every interface, and no claim or directory under /run/netns_kit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import netns_kit
from netns_kit import Command, Owner, Topology, query
from netns_kit.executors.sandbox import Sandbox
from netns_kit.ops import state
from netns_kit.topology import scenarios

from .cli import netns_kit as cli

EXAMPLE = str(Path(__file__).parents[2] / "examples" / "seed001-bridge-nat.toml")
OWNER = Owner("cli.used-machine")


def whole_state(box: Sandbox) -> dict[str, Any]:
    """The normalized state, forwarding everywhere, and what is kept under /run/netns_kit/sysctl."""
    found = state.snapshot(box)
    for family in ("-4", "-6"):
        netconf = box.run(query("ip", family, "-j", "netconf", "show")).json()
        found[f"forwarding{family}"] = sorted((e["interface"], e["forwarding"]) for e in netconf)
    claims = box.root_path("/run/netns_kit/sysctl")
    found["claims"] = sorted(str(p) for p in claims.rglob("*")) if claims.exists() else None
    return found


def forwarding(box: Sandbox) -> str:
    return box.run(query("sysctl", "-n", "net.ipv4.ip_forward")).stdout.strip()


@pytest.fixture(params=["1", "0"], ids=["forwarding-on-before", "forwarding-off-before"])
def box(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A sandbox that is not fresh: a device of its own, forwarding as a Docker host has it (or off)."""
    with Sandbox(owner=OWNER) as sandbox:
        sandbox.run(Command(("ip", "link", "add", "name", "docker0", "type", "bridge")))
        sandbox.run(Command(("sysctl", "-q", "-w", f"net.ipv4.ip_forward={request.param}")))
        yield sandbox


def plan() -> netns_kit.Recorder:
    return scenarios.seed001_nat().plan(owner=OWNER)


def test_printed_up_then_printed_down_gives_back_the_state_before(box: Sandbox) -> None:
    before = whole_state(box)
    box.run_script(plan().script())
    assert forwarding(box) == "1"
    box.run_script(plan().teardown_script())
    assert state.diff(before, whole_state(box)) == []


def test_printed_up_then_the_library_cleanup_of_its_owner_gives_back_the_state_before(box: Sandbox) -> None:
    before = whole_state(box)
    box.run_script(plan().script())
    report = netns_kit.cleanup(box, owner=OWNER)  # what `netns-kit down FILE` does
    assert report.errors == []
    assert state.diff(before, whole_state(box)) == []


def test_library_up_then_printed_down_gives_back_the_state_before(box: Sandbox) -> None:
    before = whole_state(box)
    topology = scenarios.seed001_nat().up(box)
    assert forwarding(box) == "1"
    box.run_script(plan().teardown_script())
    after = whole_state(box)
    assert state.diff(before, after) == []
    topology.down()  # undoes nothing more: everything is gone already (and so is its claim)
    assert state.diff(before, whole_state(box)) == []


def test_printed_down_leaves_forwarding_on_while_another_owner_relies_on_it(box: Sandbox) -> None:
    before = whole_state(box)
    box.run_script(plan().script())
    elsewhere = Sandbox.attach(box.pid)
    elsewhere.owner = Owner.current()  # this process: another owner than the script's
    other = Topology(
        [netns_kit.Bridge("other-br", addresses="10.9.0.1/24"), netns_kit.NatRule("10.9.0.0/24", bridge="other-br")]
    ).up(elsewhere)
    box.run_script(plan().teardown_script())
    assert forwarding(box) == "1"  # still relied on
    other.down()
    assert state.diff(before, whole_state(box)) == []


def test_cli_plan_piped_to_sh_then_cli_down_and_cli_up_then_printed_down(box: Sandbox) -> None:
    before = whole_state(box)
    attach = ("--attach", str(box.pid))
    script = cli("plan", EXAMPLE)
    assert script.returncode == 0, script.stderr
    box.run_script(script.stdout)  # netns-kit plan FILE | sh
    assert forwarding(box) == "1"
    down = cli("down", *attach, EXAMPLE)
    assert down.returncode == 0, down.stdout + down.stderr
    assert state.diff(before, whole_state(box)) == []
    up = cli("up", *attach, EXAMPLE)
    assert up.returncode == 0, up.stdout + up.stderr
    assert forwarding(box) == "1"
    teardown = cli("plan", "--down", EXAMPLE)
    assert teardown.returncode == 0, teardown.stderr
    box.run_script(teardown.stdout)  # netns-kit plan --down FILE | sh
    assert state.diff(before, whole_state(box)) == []


def test_cli_up_then_cli_down_restores_forwarding_claimed_by_a_process_gone(box: Sandbox) -> None:
    before = whole_state(box)
    attach = ("--attach", str(box.pid))
    up = cli("up", *attach, EXAMPLE)
    assert up.returncode == 0, up.stdout + up.stderr
    assert forwarding(box) == "1"
    down = cli("down", *attach, EXAMPLE)  # the claim is the named owner's: it counts until down
    assert down.returncode == 0, down.stdout + down.stderr
    assert state.diff(before, whole_state(box)) == []


def test_printed_down_never_writes_back_a_damaged_prior_value() -> None:
    """A prior value that is not 0 or 1 (a torn write, a stranger) is left alone and said so."""
    with Sandbox(owner=OWNER) as box:
        box.run_script(plan().script())
        prior = box.root_path("/run/netns_kit/sysctl/-host-/net.ipv4.ip_forward/prior")
        assert prior.read_text() == "0\n"
        prior.write_text("garbage\n")
        result = box.run_script(plan().teardown_script())
        assert forwarding(box) == "1"
        assert "prior holds no value of net.ipv4.ip_forward: left as it is" in result.stderr
        assert not box.root_path("/run/netns_kit/sysctl").exists()
