"""The fast teardown's order (no privileges: a batching recorder that plays a kernel).

Deleting namespaces is the kernel's slow part; the teardown arranges the rest
around it: bridges down (they stop flooding) and sysctls before (a sysctl write spins on the lock the kernel frees
devices under), firewall rules meanwhile, each found nearest the head of its
chain, and links after the namespaces were deleted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import Bridge, Command, Namespace, Result, Topology, VethPair
from netns_kit.lifecycle.teardown import head_first
from netns_kit.topology import scenarios

from .fakes import BatchingHost


@pytest.fixture
def teardown(tmp_path: Path) -> list[str]:
    """The commands W(3)'s teardown runs, in order."""
    host = BatchingHost(tmp_path)
    topology = scenarios.workload(3).up(host)
    host.clear()
    topology.down()
    return host.lines


def test_the_bridge_goes_down_and_forwarding_off_before_anything_else(teardown: list[str]) -> None:
    # forwarding first: a shared switch is restored as its last claim goes, under the claims
    # lock (netns_kit.lifecycle.sysctl), when the teardown is planned
    assert teardown[:2] == ["sysctl -q -w net.ipv4.ip_forward=0", "ip link set dev br0 down"]
    assert teardown.count("ip link set dev br0 down") == 1


class HostWithBridge(BatchingHost):
    """A host where ``br0`` is already there."""

    def answer(self, command: Command) -> Result | str | None:
        if command.argv[:4] == ("ip", "-j", "link", "show") and command.argv[-1] == "br0":
            return '[{"ifname": "br0"}]'
        return super().answer(command)


def test_an_adopted_bridge_is_neither_set_down_nor_deleted(tmp_path: Path) -> None:
    host = HostWithBridge(tmp_path)
    topology = Topology(
        [
            Bridge("br0", adopt=True),
            Namespace("a"),
            Namespace("b"),
            VethPair("ha", "eth0", peer_netns="a", bridge="br0"),
            VethPair("hb", "eth0", peer_netns="b", bridge="br0"),
        ]
    ).up(host)
    host.clear()
    topology.down()
    assert host.lines[:2] == ["ip netns del a", "ip netns del b"]
    assert not [line for line in host.lines if "br0" in line]


def test_every_rule_goes_before_any_chain_and_appended_jumps_oldest_first(teardown: list[str]) -> None:
    rules = [i for i, line in enumerate(teardown) if " -D " in line]
    chains = [i for i, line in enumerate(teardown) if " -F " in line or " -X " in line]
    assert len(rules) == 3 * 3 + 2 and len(chains) == 2 * (3 * 3 + 2)
    assert max(rules) < min(chains)
    # port forwards 0, 1, 2 appended their jumps to PREROUTING (host ports 10000...)
    prerouting = [teardown[i] for i in rules if " -D PREROUTING " in teardown[i]]
    assert [line.split("-j NK-PF-")[1] for line in prerouting] == [
        line.split("-j NK-PF-")[1]
        for line in scenarios.workload(3).plan().lines
        if " -A PREROUTING " in line and "NK-PF-" in line
    ]


def test_inserted_jumps_go_newest_first(teardown: list[str]) -> None:
    made = [line.split("-j ")[1] for line in scenarios.workload(3).plan().lines if " -I FORWARD " in line]
    deleted = [line.split("-j ")[1] for line in teardown if " -D FORWARD " in line]
    assert deleted == made[::-1]


def test_links_go_after_the_namespaces_were_deleted(teardown: list[str]) -> None:
    deleted = [i for i, line in enumerate(teardown) if line.startswith("ip netns del ")]
    assert len(deleted) == 3
    assert teardown.index("ip link del dev br0") > max(deleted)


def test_head_first_keeps_what_is_not_a_rule_deletion_in_order() -> None:
    def cmd(*argv: str) -> Command:
        return Command(("iptables", "-w", "-t", "nat", *argv))

    appended = {(None, cmd("-D", "OUTPUT", "-j", c).argv) for c in ("A", "B")}
    undo = [
        cmd("-D", "OUTPUT", "-j", "B"),
        cmd("-F", "B"),
        cmd("-X", "B"),
        cmd("-D", "OUTPUT", "-j", "A"),
        cmd("-D", "FORWARD", "-j", "Y"),
        cmd("-F", "A"),
        cmd("-X", "A"),
        cmd("-D", "FORWARD", "-j", "X"),
    ]
    assert [" ".join(c.argv[4:]) for c in head_first(undo, appended)] == [
        "-D FORWARD -j Y",
        "-D FORWARD -j X",
        "-D OUTPUT -j A",
        "-D OUTPUT -j B",
        "-F B",
        "-X B",
        "-F A",
        "-X A",
    ]
