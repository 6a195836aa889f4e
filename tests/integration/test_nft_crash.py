"""SIGKILL of the owner after each step of building its nft table, then: with the ``owner``
flag nothing to do (the kernel deletes the table), whether the steps went to the holder by hand
or as the plain transactions through the held executor (:class:`~netns_kit.firewall.nftheld.Held`);
without it, cleanup by table name.
Either way 0 leftovers, and tables made by others (decoys, made by hand) are untouched.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from netns_kit.command import Command
from netns_kit.executors.base import use, wait_until
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nftread

#: the steps: table + NAT, a TCP port forward, a UDP one, one removed again
STEPS = 4

CHILD = """
import os, signal, sys
import netns_kit
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.nftheld import Held
from netns_kit.firewall.nftowner import OwnerHolder
from netns_kit.firewall.portforward import PortForward

sandbox = Sandbox.attach(int(sys.argv[1]))
k, how = int(sys.argv[2]), sys.argv[3]
owned = how == "owned"
table = nft.Table.of(sandbox.owner, owned=owned)
tcp = PortForward(8080, "192.168.1.1", 80, bridge="v-net-0")
udp = PortForward(8080, "192.168.1.1", 80, protocol="udp", bridge="v-net-0")
steps = [
    table.add(NatRule("192.168.1.0/24", out_interface="eth0").chains(), sandbox.owner.tag),
    table.add(tcp.chains(), sandbox.owner.tag),
    table.add(udp.chains(), sandbox.owner.tag),
    table.remove(tcp.chains()),
]
holder = OwnerHolder(sandbox, table).start() if owned else None
executor = Held(sandbox) if how == "held" else sandbox  # the plain transactions, held
for step in steps[:k]:
    if holder is not None:
        holder.apply(step)
    else:
        executor.run(step.command())
print(table.name, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

DECOYS = [("inet", "docker-bridges"), ("inet", "netns_kitten"), ("ip", "netns_kit")]


@pytest.fixture
def sb(fresh_sandbox: Sandbox) -> Iterator[Sandbox]:
    """A sandbox of this test's own: these tests read the whole nft ruleset, and the tests
    before them in a shared sandbox leave iptables-nft's (empty) tables there."""
    with use(fresh_sandbox):
        yield fresh_sandbox


def _tables(sb: Sandbox) -> list[tuple[str, str]]:
    return sorted((t.family, t.name) for t in nftread.list_tables(sb))


@pytest.mark.parametrize("how", ["owned", "held", "plain"], ids=["owner-flag", "held", "cleanup"])
@pytest.mark.parametrize("k", range(STEPS + 1))
def test_sigkill_after_step_k_leaves_nothing_of_ours_and_all_of_theirs(sb: Sandbox, k: int, how: str) -> None:
    sb.run(Command(("nft", "-f", "-"), stdin="".join(f"add table {f} {n}\n" for f, n in DECOYS)))
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(sb.pid), str(k), how],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert child.returncode == -9, child.stderr
        (name,) = child.stdout.split()
        if how != "plain":
            # no cleanup of any kind: the holder saw end-of-file and the kernel deleted the table
            wait_until(lambda: _tables(sb) == sorted(DECOYS), timeout=5, what=f"the kernel to delete {name}")
        else:
            assert _tables(sb) == sorted([*DECOYS, *([("inet", name)] if k else [])])
            command = nftread.delete_tables(nftread.dead_tables(nftread.list_tables(sb)))
            if command is not None:
                sb.run(command)
        assert _tables(sb) == sorted(DECOYS)
    finally:
        sb.run(Command(("nft", "-f", "-"), stdin="".join(f"delete table {f} {n}\n" for f, n in DECOYS)))
    assert _tables(sb) == []
