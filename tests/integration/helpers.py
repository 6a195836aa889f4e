"""Tiny TCP/UDP servers and clients run inside namespaces with this interpreter."""

from __future__ import annotations

import sys
import time

from netns_kit.executors.process import Process
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
