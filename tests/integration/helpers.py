"""Tiny TCP/UDP servers and clients run inside namespaces with this interpreter; the firewall's
rules read back from the backend the tests run on (``NETNS_KIT_FIREWALL``, ``--netns-firewall``)."""

from __future__ import annotations

import shlex
import sys
import time

from netns_kit.executors.process import Process
from netns_kit.firewall import backend, nft, nftread
from netns_kit.firewall.base import Firewall
from netns_kit.ops import state
from netns_kit.resources.namespace import _Place

PY = sys.executable

TCP_SERVER = """
import socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, peer = s.accept()
    data = c.recv(1024)
    time.sleep(float(sys.argv[4]))
    c.sendall(sys.argv[3].encode() + b" " + peer[0].encode() + b" " + data)
    c.close()
"""

TCP_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
c.sendall(b"hello")
print(c.recv(1024).decode())
"""

UDP_SERVER = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = s.recvfrom(1024)
    s.sendto(sys.argv[3].encode() + b" " + peer[0].encode() + b" " + data, peer)
"""

UDP_CLIENT = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
c = socket.socket(family, socket.SOCK_DGRAM)
c.settimeout(float(sys.argv[3]))
c.sendto(b"hello", (sys.argv[1], int(sys.argv[2])))
print(c.recv(1024).decode())
"""


def serve(
    place: _Place, port: int, reply: str, *, bind: str = "0.0.0.0", udp: bool = False, slow: float = 0.0
) -> Process:
    """Start an echo-ish server: it answers '<reply> <peer address> <data>' (TCP: ``slow`` s late)."""
    code = UDP_SERVER if udp else TCP_SERVER
    process = place.popen([PY, "-c", code, bind, str(port), reply, str(slow)])
    wait_listening(place, port, udp=udp)
    return process


def wait_listening(place: _Place, port: int, timeout: float = 10.0, *, udp: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = place.run(["ss", "-Hlun" if udp else "-Hltn", f"sport = :{port}"]).stdout
        if out.strip():
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on port {port}")


def request(
    place: _Place, address: str, port: int, *, udp: bool = False, timeout: float = 2.0, attempts: int = 5
) -> str | None:
    """Send 'hello'; return the answer, or None if none came after a few tries."""
    code = UDP_CLIENT if udp else TCP_CLIENT
    for _ in range(attempts):
        result = place.run([PY, "-c", code, address, str(port), str(timeout)], check=False)
        if result.ok:
            return result.stdout.strip()
        time.sleep(0.1)
    return None


# -- the firewall's rules, read back from the backend in use -------------------------------


def firewall_backend(place: _Place) -> str:
    """``"iptables"`` or ``"nft"``: where the rules of a NAT rule or port forward that names no
    backend go in ``place`` (``NETNS_KIT_FIREWALL`` / ``--netns-firewall``; ``auto`` resolved)."""
    return backend.resolve(None, place._executor(), place._where(), Firewall.needs)


def saved_rules(place: _Place) -> dict[str, object]:
    """Every rule of ``place``'s firewall, as the state snapshots read them: ``iptables-save``,
    ``ip6tables-save`` and the native nft tables (``nft -s list ruleset``, our owner ids masked)."""
    return {
        "iptables": state.iptables_rules(place.run(["iptables-save"]).stdout),
        "ip6tables": state.iptables_rules(place.run(["ip6tables-save"]).stdout),
        "nft": state.nft_tables(place.run(["nft", "-s", "list", "ruleset"]).stdout),
    }


def our_rules(place: _Place) -> list[tuple[str, str | None]]:
    """The rules our firewalls made in ``place``, on the backend in use, each as (chain, comment):
    from ``iptables-save``/``ip6tables-save`` (the rules in an ``NK-`` chain or jumping to one),
    or from ``nft -j`` (every rule in the owner's table)."""
    if firewall_backend(place) == "nft":
        executor, netns = place._executor(), place._where()
        name = nft.table_name(executor.owner)
        found: list[tuple[str, str | None]] = []
        for table in nftread.list_tables(executor, netns):
            if table.name == name:
                ruleset = nftread.list_table(executor, table.family, table.name, netns)
                found += [(rule.chain, rule.comment) for rule in ruleset.rules]
        return found
    return [(chain, comment) for chain, comment, ours in _iptables_rules(place) if ours]


def our_chains(place: _Place) -> dict[str, list[str]]:
    """The chains of the owner's nft table(s) in ``place`` by name, each as its lines of
    ``nft -s list table`` (no counter values): the hook line first, then one line per rule."""
    executor, netns = place._executor(), place._where()
    name = nft.table_name(executor.owner)
    chains: dict[str, list[str]] = {}
    for table in nftread.list_tables(executor, netns):
        if table.name != name:
            continue
        lines: list[str] | None = None
        for raw in place.run(["nft", "-s", "list", "table", table.family, name]).stdout.splitlines():
            line = raw.strip()
            if line.startswith("chain ") and line.endswith("{"):
                lines = chains.setdefault(line.split()[1], [])
            elif line == "}":
                lines = None
            elif lines is not None and line:
                lines.append(line)
    return chains


def untagged_rules_are_not_ours(place: _Place) -> None:
    """Every iptables rule in an ``NK-`` chain or jumping to one carries a netns_kit tag, and no
    other rule does; on nft, every rule in the owner's table carries the owner's tag."""
    for chain, comment, ours in _iptables_rules(place):
        tagged = comment is not None and comment.startswith("netns_kit:")
        assert ours == tagged, (chain, comment)
    if firewall_backend(place) == "nft":
        tag = place._executor().owner.tag
        rules = our_rules(place)
        assert rules and all(comment == tag for _, comment in rules), rules


def _iptables_rules(place: _Place) -> list[tuple[str, str | None, bool]]:
    """Each ``-A`` rule of ``iptables-save`` and ``ip6tables-save``: (chain, comment, whether it
    is in an ``NK-`` chain or jumps to one)."""
    found = []
    for tool in ("iptables-save", "ip6tables-save"):
        for line in place.run([tool]).stdout.splitlines():
            if not line.startswith("-A "):
                continue
            parts = shlex.split(line)
            comment = parts[parts.index("--comment") + 1] if "--comment" in parts else None
            found.append((parts[1], comment, parts[1].startswith("NK-") or parts[-1].startswith("NK-")))
    return found
