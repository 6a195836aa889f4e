"""Traffic for the emulation tests: a bulk TCP transfer and a ping run, measured inside namespaces."""

from __future__ import annotations

import json
import re

from netns_kit.namespace import _Place
from netns_kit.process import Process

from .helpers import PY

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
