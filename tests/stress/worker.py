"""One worker of the concurrency test, run as a separate process.

Usage: python -m tests.stress.worker HOLDER_PID WORKER CYCLES GO_FILE
       python -m tests.stress.worker --race HOLDER_PID NAME GO_FILE

A worker waits for GO_FILE, then builds, checks and tears down its own topology
CYCLES times in the shared sandbox: namespaces red, blue, green on a bridge in the
sandbox's host (names unique to the worker), MASQUERADE out of an uplink to an
"outside" namespace, and the host's port 8000+WORKER forwarded to red's port 80.
Each cycle checks that red reaches the outside through the NAT (ping) and that the
port forward answers. It prints one JSON line: the cycles that worked and every error.

With ``--race`` it creates the namespace NAME and prints ``ok`` or the error's class.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from netns_kit import Bridge, Host, Namespace, NatRule, PortForward, Route, Topology, VethPair
from netns_kit.errors import CommandError
from netns_kit.executors.sandbox import Sandbox
from netns_kit.testing import unique_name
from tests.integration.helpers import request, serve


def wait_go(path: Path) -> None:
    while not path.exists():
        time.sleep(0.005)


def topology(worker: int) -> tuple[Topology, dict[str, str]]:
    n = worker + 1
    names = {what: unique_name(what) for what in ("red", "blue", "green", "out", "br", "up")}
    bridge = names["br"]
    topo = Topology([Bridge(bridge, addresses=f"10.{n}.1.254/24")])
    for number, color in enumerate(("red", "blue", "green"), start=1):
        ns = names[color]
        topo.add(
            Namespace(ns),
            VethPair(
                unique_name(f"v{color[0]}"),
                "eth0",
                peer_netns=ns,
                bridge=bridge,
                peer_addresses=f"10.{n}.1.{number}/24",
            ),
            Route("default", via=f"10.{n}.1.254", netns=ns),
        )
    topo.add(
        Namespace(names["out"]),
        VethPair(
            names["up"], "eth0", peer_netns=names["out"], addresses=f"10.{n}.2.1/24", peer_addresses=f"10.{n}.2.2/24"
        ),
        NatRule(f"10.{n}.1.0/24", out_interface=names["up"], bridge=bridge),
        PortForward(8000 + worker, f"10.{n}.1.1", 80, bridge=bridge),
    )
    return topo, names


def error_record(cycle: int, error: BaseException) -> dict[str, Any]:
    record: dict[str, Any] = {"cycle": cycle, "type": type(error).__name__, "text": str(error)}
    if isinstance(error, CommandError):
        record["stderr"] = error.stderr
    return record


def work(box: Sandbox, worker: int, cycles: int) -> dict[str, Any]:
    n = worker + 1
    ok, errors, times = 0, [], []
    for cycle in range(cycles):
        start = time.monotonic()
        topo, names = topology(worker)
        try:
            with topo:
                red = topo[names["red"]]
                serve(red, 80, f"w{worker}")
                if not _eventually(red.ping, f"10.{n}.2.2"):
                    raise AssertionError(f"red cannot reach the outside 10.{n}.2.2 through the NAT")
                answer = request(Host(executor=box), f"10.{n}.1.254", 8000 + worker)
                if answer is None or not answer.startswith(f"w{worker} "):
                    raise AssertionError(f"the port forward answered {answer!r}")
            ok += 1
        except BaseException as error:  # every failure is reported to the test, none hidden
            errors.append(error_record(cycle, error))
        times.append(time.monotonic() - start)
    return {"worker": worker, "ok": ok, "errors": errors, "seconds": times}


def _eventually(ping: Any, address: str, tries: int = 5) -> bool:
    for _ in range(tries):
        if ping(address, timeout=1):
            return True
        time.sleep(0.1)
    return False


def race(box: Sandbox, name: str) -> str:
    try:
        Namespace(name).create(box)
    except CommandError as error:
        return f"{type(error).__name__}: {error.stderr.strip()}"
    return "ok"


def main() -> None:
    if sys.argv[1] == "--race":
        box = Sandbox.attach(int(sys.argv[2]))
        wait_go(Path(sys.argv[4]))
        print(race(box, sys.argv[3]), flush=True)
        return
    box = Sandbox.attach(int(sys.argv[1]))
    worker, cycles = int(sys.argv[2]), int(sys.argv[3])
    from netns_kit import use

    wait_go(Path(sys.argv[4]))
    with use(box):
        print(json.dumps(work(box, worker, cycles)), flush=True)


if __name__ == "__main__":
    main()
