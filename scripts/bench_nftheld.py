"""What holding the owner's nft table costs (:class:`netns_kit.firewall.nftheld.Held`).

Run as ``.venv/bin/python scripts/bench_nftheld.py`` (``--runs 5 --sizes 200``). Like
``scripts/bench`` it runs in a network + mount namespace of its own (``unshare``) with a private
``/run``: the machine's network is never touched. Interleaved runs, medians, for each N:

* rules: a bridge ``br0``, W(N)'s NAT rule and N port forwards in the host namespace (the
  rule part of W(N); one namespace holds the N addresses they forward to), built and torn
  down with ``firewall="nft"`` through a plain executor (batched: consecutive ``nft -f -``
  as one process) and through ``Held``;
* W(N) whole (its rules are all in the host), the same two ways;
* the nft transactions of those rules alone, one process each, batched, through Held;
* the holder: starting one (``nft -i`` and the owned table) and its memory (``VmRSS``)
  idle and holding W(N)'s rules.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench

import netns_kit
from netns_kit import Bridge, Namespace, NatRule, PortForward, Topology, VethPair
from netns_kit.firewall import nft
from netns_kit.firewall.nftheld import Held
from netns_kit.firewall.nftowner import OwnerHolder
from netns_kit.topology import scenarios


def reexec_isolated(argv: list[str]) -> int:
    """Run this script again in a network + mount namespace of its own (as scripts/bench.py does)."""
    user = [] if bench.os.geteuid() == 0 else ["--user", "--map-root-user"]
    inner = [sys.executable, __file__, *argv]
    script = 'mount -t tmpfs -o mode=0755 bench_run /run && mkdir -p /run/netns && exec "$@"'
    cmd = ["unshare", *user, "--net", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", *inner]
    return bench.subprocess.run(cmd, env={**bench.os.environ, bench.INNER: "1"}, check=False).returncode


def rules(n: int) -> Topology:
    """W(N)'s rules in the host: the bridge they name, the NAT rule, N port forwards, and ONE
    namespace with the N addresses they forward to."""
    addresses = [f"{scenarios.workload_address(i)}/16" for i in range(n)]
    resources = [
        Bridge("br0", addresses=f"{scenarios.WORKLOAD_GATEWAY}/16"),
        Namespace("t0"),
        VethPair("th0", "eth0", peer_netns="t0", bridge="br0", peer_addresses=addresses),
        NatRule(scenarios.WORKLOAD_SUBNET, bridge="br0"),
        *(PortForward(10000 + i, scenarios.workload_address(i), 80, bridge="br0") for i in range(n)),
    ]
    return Topology(resources, firewall="nft")


def whole(n: int) -> Topology:
    topo = scenarios.workload(n)
    topo.firewall = "nft"
    return topo


def timed(make: Callable[[int], Topology], held: bool) -> Callable[[int], tuple[float, float]]:
    def run(n: int) -> tuple[float, float]:
        executor: netns_kit.Executor = netns_kit.ShExecutor()
        if held:
            executor = Held(executor)
        t0 = time.perf_counter()
        topo = make(n)
        topo.up(executor)
        t1 = time.perf_counter()
        topo.down()
        t2 = time.perf_counter()
        if held:
            assert isinstance(executor, Held) and executor.holders() == {}, "the holder outlived the table"
        return t1 - t0, t2 - t1

    return run


def transactions(n: int, how: str) -> tuple[float, float]:
    """The nft part of W(N) alone: the table, the NAT rule and N port forwards as N + 2
    ``nft -f -`` transactions, then their undo and the table's deletion, run ``how``: one process
    each (``per-process``), batched (``batched``: one process), through Held (``held``: lines of
    up to 8 KB), or through Held one ``run`` at a time (``held, one by one``)."""
    base = netns_kit.ShExecutor(batch=how == "batched")
    executor: netns_kit.Executor = Held(base) if how.startswith("held") else base
    table = nft.Table.of(base.owner)
    rules = [NatRule(scenarios.WORKLOAD_SUBNET, bridge="br0")]
    rules += [PortForward(10000 + i, scenarios.workload_address(i), 80, bridge="br0") for i in range(n)]
    up = [nft.Transaction((table.create("inet"),)).command()]
    up += [table.plan(rule.chains(), base.owner.tag) for rule in rules]
    down = [u for command in reversed(up[1:]) for u in command.undo] + [table.delete().command()]
    times = []
    for commands in (up, down):
        t0 = time.perf_counter()
        if how == "held, one by one":
            for command in commands:
                executor.run(command)
        else:
            executor.run_all(commands)
        times.append(time.perf_counter() - t0)
    return times[0], times[1]


def rss(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def holder_costs(n: int, runs: int) -> dict[str, float]:
    executor = netns_kit.ShExecutor()
    starts = []
    for _ in range(runs * 4):
        bench.settle()
        table = nft.Table.of(executor.owner, owned=True)
        t0 = time.perf_counter()
        holder = OwnerHolder(executor, table).start()
        starts.append(time.perf_counter() - t0)
        holder.close()
    held = Held(executor)
    topo = rules(n)
    topo.up(held)
    (pid,) = held.holders().values()
    loaded = rss(pid)
    topo.down()
    idle_holder = OwnerHolder(executor, nft.Table.of(executor.owner, owned=True)).start()
    idle = rss(idle_holder.pid)
    idle_holder.close()
    return {"start_ms": statistics.median(starts) * 1000, "rss_idle_kib": idle, "rss_loaded_kib": loaded}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[200])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not bench.os.environ.get(bench.INNER):
        return reexec_isolated(sys.argv[1:])
    from netns_kit.executors import binaries

    bench.os.environ["PATH"] = bench.os.pathsep.join(binaries.search_path())
    contenders = {
        "rules, plain (batched)": timed(rules, held=False),
        "rules, held": timed(rules, held=True),
        "W(N), plain (batched)": timed(whole, held=False),
        "W(N), held": timed(whole, held=True),
    }
    for how in ("per-process", "batched", "held", "held, one by one"):
        contenders[f"transactions, {how}"] = lambda n, how=how: transactions(n, how)
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for run in range(args.runs):
        for n in args.sizes:
            for name in bench.rotated(list(contenders), run):
                bench.settle()
                build, teardown = contenders[name](n)
                bench.check_clean(f"{name} N={n}")
                results.setdefault((name, n), []).append((build, teardown))
                print(
                    f"run {run + 1} N={n:<4} {name:<24} build {build:7.3f} s  teardown {teardown:7.3f} s",
                    file=sys.stderr,
                )
    print(f"{'contender':<34} {'N':>5} {'build (s)':>10} {'teardown (s)':>13}")
    for (name, n), cells in results.items():
        build = statistics.median(c[0] for c in cells)
        teardown = statistics.median(c[1] for c in cells)
        spread = f"  [{min(c[0] for c in cells):.3f}-{max(c[0] for c in cells):.3f} / "
        spread += f"{min(c[1] for c in cells):.3f}-{max(c[1] for c in cells):.3f}]"
        print(f"{name:<34} {n:>5} {build:>10.3f} {teardown:>13.3f}{spread}")
    for n in args.sizes:
        costs = holder_costs(n, args.runs)
        print(
            f"holder: start {costs['start_ms']:.1f} ms (median of {args.runs * 4}); RSS of nft -i "
            f"{costs['rss_idle_kib']} KiB idle, {costs['rss_loaded_kib']} KiB holding the rules of N={n}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
