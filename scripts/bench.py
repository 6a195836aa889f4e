"""Benchmark W(N): netns_kit batched and not, the recorder's script, pyroute2, the plan.

Run it as ``scripts/bench`` (it builds the venvs). The whole run happens in a
network + mount namespace of its own (``unshare``, with ``--user`` when not
root) with a private ``/run``: the machine's network is never touched.

For each N and each contender, ``--runs`` times, interleaved (run 1 of every
contender and N, then run 2, ...; the order of the contenders rotated by one
each run, so that none always runs first after the slowest; before each, the
machine is let settle until nothing else is runnable, at most 5 s), it measures

* build: from the resource values to a working topology;
* teardown: until every device is gone (names reusable at once).

and prints the medians, with ratios to pyroute2 from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INNER = "NETNS_KIT_BENCH_INNER"


def reexec_isolated(argv: list[str]) -> int:
    """Run this script again in a network + mount namespace of its own."""
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    inner = [sys.executable, __file__, *argv]
    script = 'mount -t tmpfs -o mode=0755 bench_run /run && mkdir -p /run/netns && exec "$@"'
    cmd = ["unshare", *user, "--net", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", *inner]
    return subprocess.run(cmd, env={**os.environ, INNER: "1"}, check=False).returncode


class Pyroute2:
    """The pyroute2 worker (scripts/bench_pyroute2.py), run by the bench venv's python."""

    def __init__(self, python: str) -> None:
        worker = str(Path(__file__).with_name("bench_pyroute2.py"))
        self.proc = subprocess.Popen([python, worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, n: int, mode: str) -> tuple[float, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"n": n, "mode": mode}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the pyroute2 worker died (mode {mode}, N={n})")
        answer = json.loads(line)
        return answer["build"], answer["teardown"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


def runnable() -> int:
    """How many tasks of the whole machine are runnable now (this one included)."""
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])


def settle(limit: float = 5.0, running: Callable[[], int] = runnable, pause: float = 0.02) -> float:
    """Wait until nothing but this process is runnable (the kernel done freeing what the
    last contender's teardown left: RCU callbacks, namespace cleanup), three looks
    ``pause`` apart in a row, at most ``limit`` seconds; return how long it took."""
    start = time.perf_counter()
    quiet = 0
    while quiet < 3 and time.perf_counter() - start < limit:
        quiet = quiet + 1 if running() <= 1 else 0
        time.sleep(pause)
    return time.perf_counter() - start


def rotated(names: list[str], run: int) -> list[str]:
    """The contenders' order for run ``run``: rotated by one each run, so that the one
    right after pyroute2's veth-by-veth teardown (the kernel still freeing) changes."""
    k = run % len(names)
    return names[k:] + names[:k]


def check_clean(where: str) -> None:
    """Every run must leave the benchmark's own network empty."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip() for line in links.splitlines()]
    left = [n for n in names if n != "lo"] + sorted(os.listdir("/run/netns"))
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    left += [line for line in rules.splitlines() if line.startswith("-A")][:3]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    left += [line for line in tables.splitlines() if "netns_kit" in line]
    if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "0":
        left.append("net.ipv4.ip_forward=1")
    if left:
        raise RuntimeError(f"{where} left {left[:5]} behind")


def netns_kit_contenders(sandbox: Any) -> dict[str, Callable[[int], tuple[float, float]]]:
    import netns_kit
    from netns_kit.topology import scenarios

    def library(executor: Any, firewall: str | None = None, **options: Any) -> Callable[[int], tuple[float, float]]:
        def run(n: int) -> tuple[float, float]:
            t0 = time.perf_counter()
            topo = scenarios.workload(n, **options)
            if firewall:
                topo.firewall = firewall
            topo.up(executor)
            t1 = time.perf_counter()
            topo.down()
            return t1 - t0, time.perf_counter() - t1

        return run

    def script(n: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        plan = scenarios.workload(n).plan()
        up, down = plan.script(), plan.teardown_script()
        subprocess.run(["sh", "-s"], input=up.encode(), check=True)
        t1 = time.perf_counter()
        subprocess.run(["sh", "-s"], input=down.encode(), check=True)
        from netns_kit.lifecycle.teardown import wait_gone

        wait_gone(netns_kit.ShExecutor(), [(None, f"wh{i}") for i in range(n)])
        return t1 - t0, time.perf_counter() - t1

    def plan(n: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        scenarios.workload(n).plan()
        return time.perf_counter() - t0, 0.0

    def cli(n: int) -> tuple[float, float]:
        """``netns-kit up FILE`` and ``netns-kit down FILE`` of W(N), each a process of its own
        (Python's start included, as a user sees it), on the same host as "netns_kit batched"."""
        path = workload_file(n)
        command = cli_command()
        t0 = time.perf_counter()
        subprocess.run([*command, "up", str(path)], check=True, capture_output=True)
        t1 = time.perf_counter()
        subprocess.run([*command, "down", str(path)], check=True, capture_output=True)
        return t1 - t0, time.perf_counter() - t1

    return {
        "netns_kit batched": library(netns_kit.ShExecutor()),
        "netns_kit batched, Sandbox": library(sandbox),
        "netns_kit batched, nft firewall": library(netns_kit.ShExecutor(), firewall="nft"),
        # not W(N): its veths get no IPv6 link-local address, which the bridge floods about
        "netns_kit batched, addrgenmode none": library(netns_kit.ShExecutor(), addrgenmode="none"),
        "netns_kit one process per command": library(netns_kit.ShExecutor(batch=False)),
        "recorder's script by /bin/sh": script,
        "dry-run plan alone": plan,
        CLI: cli,
    }


#: the CLI's row: compare with "netns_kit batched" (the same host, the same executor)
CLI = "netns-kit up / down (CLI)"


def cli_command() -> list[str]:
    """The installed ``netns-kit`` console script next to this Python, else ``python -m``."""
    script = Path(sys.executable).with_name("netns-kit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "netns_kit.cli"]


def workload_toml(n: int) -> str:
    """W(N) (``netns_kit.topology.scenarios.workload``) as a topology file."""
    from netns_kit.topology import scenarios

    gateway = scenarios.WORKLOAD_GATEWAY
    parts = [
        f'[topology]\nname = "bench-w{n}"\n',
        f'[[bridges]]\nname = "br0"\naddresses = ["{gateway}/16"]\n',
    ]
    for i in range(n):
        address = scenarios.workload_address(i)
        parts += [
            f'[[namespaces]]\nname = "w{i}"\n',
            f'[[veths]]\nname = "wh{i}"\npeer = "eth0"\npeer_netns = "w{i}"\nbridge = "br0"\n'
            f'peer_addresses = ["{address}/16"]\n',
            f'[[routes]]\ndestination = "default"\nvia = "{gateway}"\nnetns = "w{i}"\n',
        ]
    parts.append(f'[[nat_rules]]\nsource = "{scenarios.WORKLOAD_SUBNET}"\nbridge = "br0"\n')
    parts += [
        f'[[port_forwards]]\nport = {10000 + i}\nto = "{scenarios.workload_address(i)}"\nto_port = 80\nbridge = "br0"\n'
        for i in range(n)
    ]
    return "\n".join(parts)


def workload_file(n: int) -> Path:
    """W(N)'s topology file (written once, checked to plan exactly what W(N) plans)."""
    from netns_kit import Owner
    from netns_kit.topology import scenarios
    from netns_kit.topology import tomlfile as topofile

    path = Path("/run") / f"bench-w{n}.toml"  # the private /run of the benchmark's namespace
    if not path.exists():
        text = workload_toml(n)
        owner = Owner("cli.bench")
        mine = topofile.loads(text).topology.plan(owner=owner).script()
        if mine != scenarios.workload(n).plan(owner=owner).script():
            raise RuntimeError(f"the topology file of W({n}) does not plan what W({n}) plans")
        path.write_text(text)
    return path


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import netns_kit

    results: dict[str, dict[int, dict[str, list[float]]]] = {}
    pyroute2 = Pyroute2(args.pyroute2_python) if args.pyroute2_python else None
    with netns_kit.Sandbox() as sandbox:
        contenders = netns_kit_contenders(sandbox)
        if pyroute2 is not None:
            contenders["pyroute2 idiomatic (NetNS)"] = lambda n: pyroute2.run(n, "idiomatic")
            contenders["pyroute2 without forks"] = lambda n: pyroute2.run(n, "nofork")
        slow = {"netns_kit one process per command", "recorder's script by /bin/sh"}
        for run in range(args.runs):
            for n in args.sizes:
                for name in rotated(list(contenders), run):
                    contender = contenders[name]
                    if args.only and not any(word in name for word in args.only):
                        continue
                    if name in slow and n > args.slow_max:
                        continue
                    settle()
                    build, teardown = contender(n)
                    check_clean(f"{name} N={n}")
                    if name == "netns_kit batched, Sandbox":
                        sandbox_left = sandbox.run(netns_kit.query("ip", "-o", "link", "show")).stdout
                        if len(sandbox_left.splitlines()) != 1:
                            raise RuntimeError(f"{name} N={n} left links in the sandbox")
                    cell = results.setdefault(name, {}).setdefault(n, {"build": [], "teardown": []})
                    cell["build"].append(build)
                    cell["teardown"].append(teardown)
                    progress = f"run {run + 1}/{args.runs} N={n:<4} {name:<36}"
                    print(f"{progress} build {build:8.3f} s  teardown {teardown:8.3f} s", file=sys.stderr, flush=True)
    if pyroute2 is not None:
        pyroute2.close()
    return results


def summarize(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    for name, by_n in results.items():
        for n, cell in sorted(by_n.items()):
            rows.append(
                {
                    "contender": name,
                    "n": n,
                    "runs": len(cell["build"]),
                    "build": statistics.median(cell["build"]),
                    "teardown": statistics.median(cell["teardown"]),
                    "build_all": cell["build"],
                    "teardown_all": cell["teardown"],
                }
            )
    load = os.getloadavg()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}",
        "python": platform.python_version(),
        "load": [round(x, 2) for x in load],
        "root": os.environ.get("NETNS_KIT_BENCH_ROOT") == "1",
        "sizes": args.sizes,
        "runs": args.runs,
        "rows": rows,
    }


def table(summary: dict[str, Any]) -> str:
    rows = summary["rows"]
    base = {(r["n"], "build"): r["build"] for r in rows if r["contender"] == "pyroute2 idiomatic (NetNS)"}
    base.update({(r["n"], "teardown"): r["teardown"] for r in rows if r["contender"] == "pyroute2 idiomatic (NetNS)"})
    nofork = {r["n"]: r["build"] for r in rows if r["contender"] == "pyroute2 without forks"}

    def ratio(value: float, ref: float | None) -> str:
        return f"{value / ref:6.2f}" if ref else "     -"

    lines = [
        f"W(N) medians of {summary['runs']} interleaved runs; {summary['machine']}; load {summary['load']}",
        "ratios: to pyroute2 idiomatic (x idiom.) and to pyroute2 without forks (x nofork)",
        "",
        f"{'contender':<36} {'N':>4} {'build s':>9} {'x idiom.':>8} {'x nofork':>8} {'per ns ms':>9}"
        f" {'teardown s':>10} {'x idiom.':>8}",
    ]
    for r in sorted(rows, key=lambda r: (r["n"], r["contender"])):
        n = r["n"]
        lines.append(
            f"{r['contender']:<36} {n:>4} {r['build']:9.3f} {ratio(r['build'], base.get((n, 'build'))):>8}"
            f" {ratio(r['build'], nofork.get(n)):>8} {1000 * r['build'] / n:9.2f}"
            f" {r['teardown']:10.3f} {ratio(r['teardown'], base.get((n, 'teardown'))):>8}"
        )
    return "\n".join(lines)


def rst(summary: dict[str, Any]) -> str:
    """The table as reStructuredText (for README.rst)."""
    rows = summary["rows"]
    ref = {
        (r["n"], k): r[k] for r in rows if r["contender"] == "pyroute2 idiomatic (NetNS)" for k in ("build", "teardown")
    }
    nofork = {r["n"]: r["build"] for r in rows if r["contender"] == "pyroute2 without forks"}
    head = ["contender", "N", "build s", "x idiomatic", "x no-fork", "ms per ns", "teardown s", "x idiomatic"]
    body = []
    for r in sorted(rows, key=lambda r: (r["n"], r["contender"])):
        n = r["n"]
        body.append(
            [
                r["contender"],
                str(n),
                f"{r['build']:.3f}",
                f"{r['build'] / ref[(n, 'build')]:.2f}" if (n, "build") in ref else "",
                f"{r['build'] / nofork[n]:.2f}" if n in nofork else "",
                f"{1000 * r['build'] / n:.1f}",
                f"{r['teardown']:.3f}" if r["teardown"] else "",
                f"{r['teardown'] / ref[(n, 'teardown')]:.3f}" if (n, "teardown") in ref and r["teardown"] else "",
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    rule = " ".join("=" * w for w in widths)
    line = lambda cells: " ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([rule, line(head), rule, *(line(b) for b in body), rule])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10, 50, 200, 500])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="N = 3,10 and 2 runs: a smoke test")
    parser.add_argument("--slow-max", type=int, default=10**6, help="largest N for the one-process-per-command ones")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--only",
        type=lambda s: s.split(","),
        default=[],
        help="run only the contenders whose name holds one of these words (comma-separated): --only CLI,batched",
    )
    parser.add_argument("--pyroute2-python", help="python of the venv holding pyroute2 (none: leave it out)")
    parser.add_argument("--rst", type=Path, help="print the table of a --json FILE as reStructuredText and exit")
    args = parser.parse_args()
    if args.rst:
        print(rst(json.loads(args.rst.read_text())))
        return 0
    if args.quick:
        args.sizes, args.runs = [3, 10], 2
    if not os.environ.get(INNER):
        os.environ["NETNS_KIT_BENCH_ROOT"] = "1" if os.geteuid() == 0 else "0"
        return reexec_isolated(sys.argv[1:])
    from netns_kit.executors import binaries

    # the printed scripts, iptables-save and iptables-restore found as netns_kit finds
    # them (an ordinary user's login PATH has no /usr/sbin)
    os.environ["PATH"] = os.pathsep.join(binaries.search_path())
    summary = summarize(measure(args), args)
    print(table(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
