"""Traffic measured inside namespaces: a bulk TCP transfer, a ping run, and proof that traffic is blocked.

"Blocked" is never "no answer within a short timeout" (that cannot tell blocked from
slow). :func:`assert_dropped` shows the packets dropped: netfilter's DROP counters
(iptables', and those of the owner's nft table) rise by one packet per try.
:func:`assert_unanswered`, for paths with no rule to count (no route, no forwarding,
no NAT), waits :data:`GENEROUS` seconds and then needs a control request on an open
path to be answered right after.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Callable, Sequence

from netns_kit.executors.process import Process
from netns_kit.firewall import nft, nftread
from netns_kit.resources.namespace import _Place

from .helpers import PY, request

SINK = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(4)
while True:
    c, _ = s.accept()
    want = int(c.recv(16).strip())
    got = 0
    while got < want:
        chunk = c.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    c.sendall(str(got).encode())
    c.close()
"""

SEND = """
import json, socket, sys, time
size = int(sys.argv[3])
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
c.sendall(b"%-16d" % size)
start = time.monotonic()
block = b"x" * 65536
left = size
while left > 0:
    left -= c.send(block[: min(left, len(block))])
got = int(c.recv(32))
elapsed = time.monotonic() - start
print(json.dumps({"bytes": got, "seconds": elapsed}))
"""


def start_sink(place: _Place, port: int) -> Process:
    """A server that counts the bytes it is sent and answers with the count."""
    return place.popen([PY, "-c", SINK, str(port)], port=port)


def bulk_mbit(place: _Place, address: str, port: int, size: int) -> float:
    """Send ``size`` bytes to the sink; the throughput in Mbit/s, timed from inside the namespace."""
    result = place.run([PY, "-c", SEND, address, str(port), str(size)], timeout=120)
    data = json.loads(result.stdout)
    assert data["bytes"] == size
    return float(size * 8 / data["seconds"] / 1e6)


def ping_loss(place: _Place, address: str, *, count: int, interval: float = 0.002) -> tuple[int, int]:
    """(sent, received) of a ping run of ``count`` echo requests."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", f"{interval:g}", "-W", "1", address]
    out = place.run(argv, check=False, timeout=120).stdout
    match = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert match, out
    return int(match.group(1)), int(match.group(2))


def binomial_bound(p: float, n: int, sigmas: float = 5.0) -> tuple[float, float]:
    """The range a loss share of ``p`` over ``n`` packets stays in but for ~1e-6 of runs."""
    spread = sigmas * (p * (1 - p) / n) ** 0.5
    return p - spread, p + spread


#: how long :func:`assert_unanswered` waits: an answer between namespaces of one machine
#: this late is lost, not slow (TCP sends its second SYN at 1 s and its third at 3 s)
GENEROUS = 3.5


def dropped(*places: _Place, families: Sequence[int] = (4, 6)) -> int:
    """Packets netfilter has dropped in ``places`` so far, in ``families`` (IPv4, IPv6): the
    counters of every DROP or REJECT rule and of every chain whose policy is DROP, plus
    (either backend: a resource may name its own) the counters of the drops in the owner's
    nft table (:func:`nft_dropped`).

    Read with ``iptables-save -c``; where that cannot list the tables (iptables-legacy in a
    rootless sandbox cannot read /proc/net/ip_tables_names), with ``-t TABLE -S -v``.
    """
    total = sum(nft_dropped(place, families=families) for place in places)
    for place in places:
        for tool in [{4: "iptables", 6: "ip6tables"}[family] for family in families]:
            saved = place.run([f"{tool}-save", "-c"], check=False)
            if saved.ok:
                total += sum(_dropped_by(line) for line in saved.stdout.splitlines())
                continue
            for table in ("filter", "raw", "mangle"):
                listed = place.run([tool, "-w", "-t", table, "-S", "-v"])
                total += sum(_dropped_by(line) for line in listed.stdout.splitlines())
    return total


def nft_dropped(place: _Place, *, families: Sequence[int] = (4, 6)) -> int:
    """Packets the drops of the owner's nft table in ``place`` have counted (``nft -j``: the
    ``counter`` of each rule with a ``drop`` or ``reject``; every drop of ours has one), in
    ``families``: an ``ip``/``ip6`` table's own, an ``inet`` table's by chain (an IPv6 chain is
    named ``...-6``: netns_kit.firewall.nft). No nft, or no such table: 0.

    Only the owner's table: iptables-nft's tables are iptables' (counted by :func:`dropped`
    through ``iptables-save``), and counting them here too would count each drop twice."""
    listed = place.run(["nft", "list", "tables"], check=False)  # "table inet netns_kit_42.7" a line
    executor, netns = place._executor(), place._where()
    name = nft.table_name(executor.owner)
    ours = [line.split()[1] for line in listed.stdout.splitlines() if listed.ok and line.split()[2:] == [name]]
    total = 0
    for family_name in ours:
        for rule in nftread.list_table(executor, family_name, name, netns).rules:
            family = {"ip": 4, "ip6": 6}.get(rule.family, 6 if rule.chain.endswith("-6") else 4)
            if family in families and rule.verdicts & {"drop", "reject"}:
                total += sum(s["counter"]["packets"] for s in rule.expr if isinstance(s, dict) and "counter" in s)
    return total


def _dropped_by(line: str) -> int:
    """The packets one line of ``-save -c`` or ``-S -v`` output counts as dropped (else 0)."""
    if line.startswith(":"):  # :FORWARD DROP [5:420]
        _, policy, counters = line.split()
        return int(counters.strip("[]").split(":")[0]) if policy == "DROP" else 0
    if line.startswith("["):  # [3:252] -A INPUT -s 10.8.0.2/32 -j DROP
        counters, rule = line.split(" ", 1)
        words = [*shlex.split(rule), "-c", counters.strip("[]").split(":")[0], "0"]
    elif line.startswith(("-P ", "-A ")):  # -P FORWARD DROP -c 5 420 / -A INPUT -s ... -c 3 252 -j DROP
        words = shlex.split(line)
    else:
        return 0
    packets = int(words[words.index("-c") + 1])
    if words[0] == "-P":
        return packets if words[2] == "DROP" else 0
    target = words[len(words) - 1 - words[::-1].index("-j") + 1] if "-j" in words[:-1] else ""
    return packets if target in ("DROP", "REJECT") else 0


def _answer(place: _Place, address: str, port: int | None, *, udp: bool, timeout: float) -> str | None:
    """One try: a ping (``port`` None) or a TCP/UDP request; the answer, or None."""
    if port is None:
        return f"{address} answered a ping" if place.ping(address, timeout=timeout) else None
    return request(place, address, port, udp=udp, timeout=timeout, attempts=1)


def assert_dropped(
    place: _Place,
    address: str,
    port: int | None = None,
    *,
    udp: bool = False,
    by: Sequence[_Place],
    tries: int = 3,
) -> None:
    """Nothing ``place`` sends to ``address`` (pings, or TCP/UDP requests to ``port``) is answered,
    because netfilter in ``by`` drops it: their DROP counters rise by at least one packet per try.

    A path that is only slow drops nothing, so this cannot pass for it; a drop still on its way
    when the try gives up is waited for (up to :data:`GENEROUS` s). Only the address's family
    is counted: IPv6 chatter on the link (neighbour discovery) dropped by the same partition
    must not stand in for the tries.
    """
    family = [6 if ":" in address else 4]
    before = dropped(*by, families=family)
    for _ in range(tries):
        answer = _answer(place, address, port, udp=udp, timeout=0.5)
        assert answer is None, f"{address}:{port} was reached: {answer!r}"
    deadline = time.monotonic() + GENEROUS
    while (rose := dropped(*by, families=family) - before) < tries and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rose >= tries, (
        f"{tries} tries at {address}:{port} went unanswered, but only {rose} packet(s) were dropped in {list(by)}: "
        "nothing shows they were blocked rather than slow"
    )


def assert_unanswered(
    place: _Place,
    address: str,
    port: int | None = None,
    *,
    udp: bool = False,
    control: Callable[[], object],
    wait: float = GENEROUS,
) -> None:
    """Nothing ``place`` sends to ``address`` (a ping, or a TCP/UDP request to ``port``) is answered
    within ``wait`` seconds, and ``control`` (a request on an open path, sent right after) is:
    a network too slow to answer in time fails the control instead of passing as "blocked"."""
    answer = _answer(place, address, port, udp=udp, timeout=wait)
    assert answer is None, f"{address}:{port} was reached: {answer!r}"
    assert control(), "the control request on an open path went unanswered: the silence above proves nothing"
