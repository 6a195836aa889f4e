"""Benchmark the userspace link emulator (netns_kit.linkemu) against the delay it is set to.

Run it as ``scripts/bench --linkemu`` (or ``.venv/bin/python scripts/bench_linkemu.py``).
Everything happens inside a netns_kit Sandbox of its own (rootless too): two
namespaces ``a`` and ``b`` joined by a veth; the impairment sits on ``a``'s end.

For each row (a delay and a packet rate), ``a`` sends numbered 64-byte UDP
datagrams to ``b`` at that rate, each carrying its send time (CLOCK_REALTIME,
ns); ``b`` reads the kernel's receive timestamp of each (``SO_TIMESTAMPNS``).
The one-way latency minus the configured delay is the emulator's error: its
p50, p90, p99 and max are printed, with how many datagrams arrived (the rate
the emulator keeps up with is the highest rate at which all of them did, the
receiving socket's own drops, column ``rcvbuf``, not counted against it), the
rate the sender really reached, the emulator's scheduling class and the load
average while the row ran. A first row without any impairment is the floor
(what the veth and the probe cost). Where the kernel has netem, the same rows
run through ``tc qdisc ... netem delay`` beside the emulator's; where it has
not, the output says so.

    scripts/bench --linkemu                 delay 10 ms at 100/1000/5000/20000 pps, 100 ms at 1000 pps, 3 s each
    scripts/bench --linkemu --quick         a smoke test (10 ms at 200 pps, 1 s)
    scripts/bench --linkemu --json FILE     also write the rows as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import netns_kit  # noqa: E402
from netns_kit import LinkImpairment, Namespace, Topology, VethPair  # noqa: E402
from netns_kit.executors.capability import netem  # noqa: E402
from netns_kit.linkemu import plan  # noqa: E402

PY = sys.executable
PORT = 9999
ADDRESS = "10.9.0.2"

RECEIVE = r"""
import json, socket, struct, sys
n, idle = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS: the kernel's receive time
s.bind(("0.0.0.0", int(sys.argv[3])))
s.settimeout(30)
lat = []
try:
    while len(lat) < n:
        data, anc, _, _ = s.recvmsg(256, 64)
        sec, nsec = struct.unpack("qq", anc[0][2][:16])
        lat.append((sec * 10**9 + nsec - struct.unpack("q", data[:8])[0]) / 1e6)
        s.settimeout(idle)
except socket.timeout:
    pass
print(json.dumps(lat))
"""

SEND = r"""
import socket, struct, sys, time
rate, n = float(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
gap = 1 / rate
start = t = time.monotonic()
for i in range(n):
    s.sendto(struct.pack("q", time.time_ns()) + b"x" * 56, (sys.argv[1], int(sys.argv[4])))
    t += gap
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)
print(n / (time.monotonic() - start))
"""

FULL = [(10, 100), (10, 1000), (10, 5000), (10, 20000), (100, 1000)]
QUICK = [(10, 200)]


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def scheduling(dev: str) -> str:
    """The scheduling class of the emulator serving ``dev`` (the sandbox shares our pid namespace)."""
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if plan.MODULE in argv and "--background" in argv and "--dev" in argv and argv[argv.index("--dev") + 1] == dev:
            try:
                policy = os.sched_getscheduler(int(entry.name))
            except OSError:
                return "?"
            return {os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR"}.get(policy, "ordinary")
    return "-"


def rcvbuf_errors(topo: Topology) -> int:
    """UDP datagrams ``b`` dropped for a full receive buffer (``/proc/net/snmp``)."""
    lines = [line.split() for line in topo["b"].run(["cat", "/proc/net/snmp"]).stdout.splitlines()]
    names, values = next(pair for pair in zip(lines[::2], lines[1::2], strict=True) if pair[0][0] == "Udp:")
    return int(values[names.index("RcvbufErrors")])


def measure(topo: Topology, delay: int, rate: int, seconds: float) -> dict[str, Any]:
    n = max(10, int(rate * seconds))
    receiver = topo["b"].popen([PY, "-c", RECEIVE, str(n), str(1.0 + 2 * delay / 1000), str(PORT)])
    receiver.wait_port(PORT, udp=True)
    rcvbuf_before = rcvbuf_errors(topo)
    load_before = loadavg()
    sent = topo["a"].run([PY, "-c", SEND, ADDRESS, str(rate), str(n), str(PORT)], timeout=seconds * 10 + 60)
    load_after = loadavg()
    receiver.wait(120)
    lines = receiver.stdout.strip().splitlines()
    errors = sorted(x - delay for x in json.loads(lines[-1]))
    row: dict[str, Any] = {
        "delay_ms": delay,
        "rate_pps": rate,
        "sent_pps": round(float(sent.stdout), 1),
        # lost at the receiving socket (the probe's loss, not the emulator's)
        "rcvbuf_drops": rcvbuf_errors(topo) - rcvbuf_before,
        "sent": n,
        "received": len(errors),
        "load": round(max(load_before, load_after), 2),
    }
    if errors:
        row.update(
            p50_ms=round(quantile(errors, 0.5), 3),
            p90_ms=round(quantile(errors, 0.9), 3),
            p99_ms=round(quantile(errors, 0.99), 3),
            max_ms=round(errors[-1], 3),
        )
    return row


def run_rows(topo: Topology, via: str, cases: list[tuple[int, int]], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for delay, rate in cases:
        impaired = LinkImpairment("ea", {"delay": f"{delay}ms", "via": via}, netns="a")
        with impaired:
            row = measure(topo, delay, rate, seconds)
            row["scheduling"] = scheduling("ea") if via == "userspace" else "kernel"
        row["via"] = via
        rows.append(row)
        print(line(row), flush=True)
    return rows


HEADER = (
    f"{'via':<10} {'delay':>6} {'rate':>6} {'sent/s':>8} {'received':>13} {'rcvbuf':>6} "
    f"{'err p50':>8} {'p90':>7} {'p99':>7} {'max':>7} {'load':>5}  scheduling"
)


def line(row: dict[str, Any]) -> str:
    got = f"{row['received']}/{row['sent']}"
    figures = " ".join(
        f"{row[k]:>{w}.3f}" if k in row else f"{'-':>{w}}"
        for k, w in (("p50_ms", 8), ("p90_ms", 7), ("p99_ms", 7), ("max_ms", 7))
    )
    delay = f"{row['delay_ms']}ms"
    return (
        f"{row['via']:<10} {delay:>6} {row['rate_pps']:>6} {row['sent_pps']:>8.0f} {got:>13} "
        f"{row['rcvbuf_drops']:>6} {figures} {row['load']:>5.2f}  {row.get('scheduling', '-')}"
    )


def keeps_up(rows: list[dict[str, Any]], via: str) -> str:
    """The highest rate at which every datagram arrived (at the delay most rows use), as sent."""
    ok = [r for r in rows if r["via"] == via and r["received"] + r["rcvbuf_drops"] >= r["sent"] and r["delay_ms"] == 10]
    if not ok:
        return "none of the rates tried (each lost some)"
    best = max(ok, key=lambda r: r["sent_pps"])
    out = f"{best['sent_pps']:.0f} pps"
    if best["sent_pps"] < 0.95 * best["rate_pps"]:
        out += f", asked {best['rate_pps']}: the sender's own limit here, not the emulator's"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 10 ms at 200 pps for 1 s")
    parser.add_argument("--seconds", type=float, help="how long each row sends (default 3, 1 with --quick)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    cases = QUICK if args.quick else FULL
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    veth = VethPair("ea", "eb", netns="a", peer_netns="b", addresses="10.9.0.1/24", peer_addresses=ADDRESS + "/24")
    started_load = loadavg()
    with netns_kit.Sandbox() as sandbox, netns_kit.use(sandbox):
        kernel_netem = netem(sandbox)
        with Topology([Namespace("a"), Namespace("b"), veth], wait=True) as topo:
            print(f"linkemu bench: {platform.node()}, {os.cpu_count()} cpus, load {started_load:.2f} at start, "
                  f"{'root' if os.geteuid() == 0 else 'rootless'}; {seconds:g} s a row, 64-byte UDP, "
                  "error = one-way latency (kernel receive timestamp) - configured delay, ms")  # fmt: skip
            print(HEADER)
            floor = measure(topo, 0, cases[0][1], seconds) | {"via": "none", "scheduling": "-"}
            print(line(floor), flush=True)
            rows = [floor, *run_rows(topo, "userspace", cases, seconds)]
            if kernel_netem.available:
                rows += run_rows(topo, "netem", cases, seconds)
    print()
    top = keeps_up(rows, "userspace")
    print(f"userspace emulator: kept up without loss to {top} (the highest rate at 10 ms with none lost)")
    if kernel_netem.available:
        print(f"netem: kept up without loss to {keeps_up(rows, 'netem')}")
    else:
        print(f"netem: not available on this kernel ({kernel_netem.reason}): no netem rows to compare")
    print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "netem": kernel_netem.available, "netem_reason": kernel_netem.reason}, indent=2)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
