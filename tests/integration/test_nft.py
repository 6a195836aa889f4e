"""The nft backend by hand, in the sandbox: seed 001's NAT and port forward as nft transactions,
real TCP and UDP traffic through them, state read back with ``nft -j``, the table deleted whole.

The topology is made by the library (bridge, namespaces, veths, the outside behind ``eth0``);
the rules by the renderer (:mod:`netns_kit.firewall.nft`), applied with ``nft -f -``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Host, NatRule, PortForward, Topology
from netns_kit.command import Command, query
from netns_kit.errors import CommandError
from netns_kit.executors.base import use, wait_until
from netns_kit.executors.recorder import Recorder
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft, nftchoice, nftread
from netns_kit.firewall.nftowner import OwnerHolder
from netns_kit.owner import Owner
from netns_kit.topology import scenarios

from .helpers import request, serve
from .traffic import assert_unanswered

OUT = scenarios.OUTSIDE_ADDRESS
HOST_OUT = scenarios.HOST_OUTSIDE_ADDRESS
GATEWAY = "192.168.1.254"
RED = "192.168.1.1"
NAT = NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0")
FORWARDS = {p: PortForward(8080, RED, 80, protocol=p, bridge="v-net-0") for p in ("tcp", "udp")}


@pytest.fixture
def sb(fresh_sandbox: Sandbox) -> Iterator[Sandbox]:
    """A sandbox of this test's own: these tests read the whole nft ruleset, and the tests
    before them in a shared sandbox leave iptables-nft's (empty) tables there."""
    with use(fresh_sandbox):
        yield fresh_sandbox


def _tables(sb: Sandbox) -> list[tuple[str, str]]:
    return [(t.family, t.name) for t in nftread.list_tables(sb)]


@pytest.fixture
def world(sb: Sandbox) -> Iterator[Topology]:
    """Seed 001's bridge, red/blue/green with default routes, the outside, forwarding on; no firewall."""
    topo = scenarios.seed001_bridge().add(*scenarios.outside())
    topo.wait = True
    prior = sb.run(query("sysctl", "-n", "net.ipv4.ip_forward")).stdout.strip()
    sb.run(Command(("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")))
    try:
        with topo:
            yield topo
    finally:
        sb.run(Command(("sysctl", "-q", "-w", f"net.ipv4.ip_forward={prior}")))
        assert not [t for t in _tables(sb) if t[1].startswith("netns_kit")], "a test left an nft table"


def test_nat_and_port_forward_in_one_owner_table_carry_tcp_and_udp(sb: Sandbox, world: Topology) -> None:
    table = nft.Table.of(sb.owner)
    red, outside = world["red"], world[scenarios.OUTSIDE]
    serve(outside, 9000, "outside")
    serve(red, 80, "red")
    serve(red, 80, "red", udp=True)
    assert_unanswered(red, OUT, 9000, control=lambda: request(Host(), OUT, 9000) is not None)

    chains = [*NAT.chains(), *(c for f in FORWARDS.values() for c in f.chains())]
    add = table.plan(chains, sb.owner.tag)
    sb.run(add)
    try:
        # MASQUERADE: the outside sees the host's address
        assert request(red, OUT, 9000) == f"outside {HOST_OUT} hello"
        # DNAT from outside, TCP and UDP; the return path through the FORWARD accepts
        assert request(outside, HOST_OUT, 8080) == f"red {OUT} hello"
        assert request(outside, HOST_OUT, 8080, udp=True) == f"red {OUT} hello"
        # and from the host itself (OUTPUT)
        assert request(Host(), GATEWAY, 8080) == f"red {GATEWAY} hello"

        # read back: every rule tagged, one base chain per own chain, at its hook
        ruleset = nftread.list_table(sb, "inet", table.name)
        assert {c.name: (c.type, c.hook, c.prio) for c in ruleset.chains} == {
            "NK-NAT-2a7a2e2a23-POST": ("nat", "postrouting", 100),
            "NK-NAT-2a7a2e2a23-FWD": ("filter", "forward", 0),
            **{f"NK-PF-{f.id}-PRE": ("nat", "prerouting", -100) for f in FORWARDS.values()},
            **{f"NK-PF-{f.id}-OUT": ("nat", "output", -100) for f in FORWARDS.values()},
            **{f"NK-PF-{f.id}-FWD": ("filter", "forward", 0) for f in FORWARDS.values()},
        }
        assert len(ruleset.rules) == sum(len(c.rules) for c in chains) == len(ruleset.tagged(sb.owner.tag))

        # removing one resource: its chains go, the rest stays and works
        sb.run(table.plan(FORWARDS["udp"].chains(), sb.owner.tag).undo[0])
        left = {c.name for c in nftread.list_table(sb, "inet", table.name).chains}
        assert left == {c.name for c in chains} - {c.name for c in FORWARDS["udp"].chains()}
        assert request(outside, HOST_OUT, 8080) == f"red {OUT} hello"
        assert request(outside, HOST_OUT, 8080, udp=True, attempts=2) is None
    finally:
        sb.run(table.delete().command())
    assert _tables(sb) == []
    assert_unanswered(red, OUT, 9000, control=lambda: request(Host(), OUT, 9000) is not None)


def test_a_transaction_with_one_bad_line_changes_nothing(sb: Sandbox, world: Topology) -> None:
    table = nft.Table.of(sb.owner)
    sb.run(table.plan(NAT.chains(), sb.owner.tag))
    try:
        before = sb.run(query("nft", "-j", "list", "ruleset")).stdout
        good = table.add(FORWARDS["tcp"].chains(), sb.owner.tag)
        bad = nft.Transaction((*good.lines[:-1], f"add rule inet {table.name} NK-PF-nope-FWD bogus thing"))
        with pytest.raises(CommandError) as caught:
            sb.run(bad.command())
        assert "bogus" in caught.value.stderr
        assert sb.run(query("nft", "-j", "list", "ruleset")).stdout == before
        # a line the kernel refuses (not the parser): the same
        refused = nft.Transaction((*good.lines, f"delete chain inet {table.name} NK-no-such-chain"))
        with pytest.raises(CommandError):
            sb.run(refused.command())
        assert sb.run(query("nft", "-j", "list", "ruleset")).stdout == before
    finally:
        sb.run(table.delete().command())


def test_cleanup_deletes_dead_owners_tables_and_no_decoy(sb: Sandbox) -> None:
    dead, live = Owner("999999999.1"), sb.owner
    decoys = [("inet", "docker-bridges"), ("inet", "netns_kitten"), ("ip", "netns_kit"), ("inet", "netns_kit_")]
    made = [*decoys, ("inet", nft.table_name(dead)), ("ip6", nft.table_name(dead)), ("inet", nft.table_name(live))]
    sb.run(Command(("nft", "-f", "-"), stdin="".join(f"add table {f} {n}\n" for f, n in made)))
    try:
        assert sorted(_tables(sb)) == sorted(made)
        doomed = nftread.dead_tables(nftread.list_tables(sb))
        assert sorted((t.family, t.name) for t in doomed) == [
            ("inet", "netns_kit_999999999.1"),
            ("ip6", "netns_kit_999999999.1"),
        ]
        command = nftread.delete_tables(doomed)
        assert command is not None
        sb.run(command)
        sb.run(command)  # again: nothing left to delete is no error
        assert sorted(_tables(sb)) == sorted([*decoys, ("inet", nft.table_name(live))])
    finally:
        sb.run(
            Command(("nft", "-f", "-"), stdin="".join(f"add table {f} {n}\ndelete table {f} {n}\n" for f, n in made))
        )
    assert _tables(sb) == []


def test_probe_reads_this_sandbox(sb: Sandbox) -> None:
    found = nftchoice.probe(sb)
    assert found.nft is not None and {"inet", "inet-nat", "masquerade", "fib", "numgen"} <= found.features
    assert found.drops == ()
    sb.run(
        Command(
            ("nft", "-f", "-"),
            stdin="table ip decoy-docker { chain f { type filter hook forward priority 0; policy drop; }; }\n",
        )
    )
    try:
        found = nftchoice.probe(sb)
        assert found.drops == (nftread.Drop("nft", "ip decoy-docker", "f", "policy drop"),)
        assert "ip decoy-docker" in found.native_tables
        assert nftchoice.choose(found).backend is None
    finally:
        sb.run(Command(("nft", "delete", "table", "ip", "decoy-docker")))
    assert _tables(sb) == []


# -- the owner flag --------------------------------------------------------------

HOLDING_CHILD = """
import os, signal, sys
import netns_kit
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.nftowner import OwnerHolder
sandbox = Sandbox.attach(int(sys.argv[1]))
table = nft.Table.of(sandbox.owner, owned=True)
holder = OwnerHolder(sandbox, table).start()
holder.apply(table.add(NatRule("192.168.1.0/24", out_interface="eth0").chains(), sandbox.owner.tag))
print(table.name, holder.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_owned_table_held_by_nft_i_is_deleted_by_the_kernel_when_the_owner_is_killed(sb: Sandbox) -> None:
    child = subprocess.run(
        [sys.executable, "-c", HOLDING_CHILD, str(sb.pid)], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == -9, child.stderr
    name, holder_pid = child.stdout.split()
    assert name.startswith(nft.TABLE_PREFIX)
    # no cleanup of any kind: the holder reads end-of-file, exits, and the kernel deletes its table
    wait_until(lambda: _tables(sb) == [], timeout=5, what=f"the kernel to delete {name}")
    assert not Path(f"/proc/{holder_pid}").exists() or Path(f"/proc/{holder_pid}/stat").read_text().split()[2] == "Z"


def test_owned_table_changes_only_through_its_holder_and_goes_with_it(sb: Sandbox) -> None:
    table = nft.Table.of(sb.owner, owned=True)
    with OwnerHolder(sb, table) as holder:
        holder.apply(table.add(NAT.chains(), sb.owner.tag))
        assert {c.name for c in nftread.list_table(sb, "inet", table.name).chains} == {c.name for c in NAT.chains()}
        with pytest.raises(CommandError) as caught:  # another process may not touch it
            sb.run(table.delete().command())
        assert "Operation not permitted" in caught.value.stderr
        with pytest.raises(CommandError) as bad:  # a failed transaction through the holder changes nothing
            holder.apply(nft.Transaction((f"delete chain inet {table.name} {NAT.chains()[0].name}", "bogus")))
        assert "syntax error" in bad.value.stderr
        assert len(nftread.list_table(sb, "inet", table.name).chains) == 2
        holder.apply(table.remove(NAT.chains()))
        assert nftread.list_table(sb, "inet", table.name).chains == ()
    wait_until(lambda: _tables(sb) == [], timeout=5, what=f"the kernel to delete {table.name}")


def test_sigkill_of_the_holder_itself_deletes_the_table(sb: Sandbox) -> None:
    table = nft.Table.of(sb.owner, owned=True)
    holder = OwnerHolder(sb, table).start()
    try:
        assert _tables(sb) == [("inet", table.name)]
        process = holder._process
        assert process is not None
        process.kill()
        process.wait()
        wait_until(lambda: _tables(sb) == [], timeout=5, what=f"the kernel to delete {table.name}")
    finally:
        holder.close()


DOCKER_LIKE = (
    "table ip decoy-docker {\n"
    "  chain filter-FORWARD {\n"
    "    type filter hook forward priority filter; policy drop;\n"
    '    meta mark & 0x1 == 0x1 accept comment "bridge-accept-fwmark"\n'
    "  }\n"
    "}\n"
)


def test_a_docker_like_forward_drop_stops_our_accepts_unless_they_carry_its_accept_mark(
    sb: Sandbox, world: Topology
) -> None:
    red, outside = world["red"], world[scenarios.OUTSIDE]
    serve(outside, 9000, "outside")
    sb.run(Command(("nft", "-f", "-"), stdin=DOCKER_LIKE))
    try:
        choice = nftchoice.choose(nftchoice.probe(sb))
        assert choice.backend is None and "ip decoy-docker chain filter-FORWARD: policy drop" in choice.reason
        plain = nft.Table.of(sb.owner)
        sb.run(plain.plan(NAT.chains(), sb.owner.tag))
        try:  # an accept in our table does not override the other table's drop
            assert_unanswered(red, OUT, 9000, control=lambda: request(Host(), OUT, 9000) is not None)
        finally:
            sb.run(plain.delete().command())
        assert nftchoice.choose(nftchoice.probe(sb), accept_mark="0x1/0x1").backend == "nft"
        marked = nft.Table.of(sb.owner, accept_mark="0x1/0x1")
        sb.run(marked.plan(NAT.chains(), sb.owner.tag))
        try:
            assert request(red, OUT, 9000) == f"outside {HOST_OUT} hello"
        finally:
            sb.run(marked.delete().command())
    finally:
        sb.run(Command(("nft", "delete", "table", "ip", "decoy-docker")))


def test_the_printed_script_makes_the_same_nft_state_and_its_teardown_takes_it_away(sb: Sandbox) -> None:
    """Dry-run fidelity for the nft transactions: the here-documents survive /bin/sh."""
    fresh_sandbox = Sandbox().start()  # a second clean sandbox, for the printed script
    chains = [
        *NAT.chains(),
        *FORWARDS["tcp"].chains(),
        *PortForward(
            8080, RED, 80, protocol="udp", bridge="v-net-0", bridge_port="veth-red", localhost=True, hairpin=True
        ).chains(),
    ]
    recorder = Recorder(owner=sb.owner)
    table = nft.Table.of(sb.owner)
    recorder.run(table.plan(chains, sb.owner.tag))

    def ruleset(box: Sandbox) -> str:
        return box.run(query("nft", "-s", "list", "ruleset")).stdout

    sb.run(table.plan(chains, sb.owner.tag))
    try:
        fresh_sandbox.run_script(recorder.script())
        assert ruleset(fresh_sandbox) == ruleset(sb)
        assert ruleset(sb).count('comment "netns_kit:') == sum(len(c.rules) for c in chains) > 0
        fresh_sandbox.run_script(recorder.teardown_script())
        assert ruleset(fresh_sandbox) == f"table inet {table.name} {{\n}}\n"  # what the owner's delete takes
        fresh_sandbox.run(table.delete().command())
        assert ruleset(fresh_sandbox) == ""
    finally:
        sb.run(table.delete().command())
        fresh_sandbox.close()


FORKING_CHILD = """
import os, signal, sys, time
import netns_kit
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import nft
from netns_kit.firewall.nftowner import OwnerHolder
sandbox = Sandbox.attach(int(sys.argv[1]))
table = nft.Table.of(sandbox.owner, owned=True)
holder = OwnerHolder(sandbox, table).start()
pid = os.fork()
if pid == 0:  # a fork without exec (multiprocessing, say): it must not keep the table alive
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)  # (nor the test's pipes)
    os.dup2(devnull, 2)
    time.sleep(60)
    os._exit(0)
print(table.name, pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_forked_child_of_the_owner_does_not_keep_its_owned_table(sb: Sandbox) -> None:
    child = subprocess.run(
        [sys.executable, "-c", FORKING_CHILD, str(sb.pid)], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == -9, child.stderr
    name, forked = child.stdout.split()
    try:
        assert Path(f"/proc/{forked}").exists()  # the fork lives on, holding a copy of the pipe's descriptor
        wait_until(lambda: _tables(sb) == [], timeout=5, what=f"the kernel to delete {name}")
    finally:
        os.kill(int(forked), signal.SIGKILL)
