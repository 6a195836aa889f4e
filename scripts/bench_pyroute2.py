"""The pyroute2 yardstick for scripts/bench: W(N) built and torn down in-process.

Runs in the benchmark's own venv (pyroute2 is not a netns_kit dependency) and
answers JSON lines on stdin: {"n": N, "mode": "idiomatic" | "nofork"} ->
{"build": seconds, "teardown": seconds}.

* idiomatic: ``NetNS(name)`` per namespace (pyroute2 forks a helper to create
  the namespace and another to open a netlink socket inside it);
* nofork: the calling thread enters each namespace itself (``netns.pushns`` /
  ``popns`` around an in-process ``unshare``), one netlink socket at a time.

Both create the veth peer directly inside its namespace, and apply the
firewall rules (the same scope as netns_kit's: MASQUERADE + FORWARD for the
subnet, DNAT from PREROUTING and OUTPUT plus a FORWARD accept per namespace)
with ONE ``iptables-restore --noflush`` (pyroute2 has no iptables API; this is
the fastest way a pyroute2 user has). Teardown deletes veth by veth (each
synchronous in the kernel), then the namespaces, bridge and rules.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from pyroute2 import IPRoute, NetNS, netns

GATEWAY = "10.200.255.254"
SUBNET = "10.200.0.0/16"


def address(i: int) -> str:
    return f"10.200.{i // 250}.{i % 250 + 1}"


def rules(n: int, op: str) -> str:
    nat = [f"{op} POSTROUTING -s {SUBNET} ! -o br0 -j MASQUERADE"]
    filt = [
        f"{op} FORWARD -s {SUBNET} -i br0 ! -o br0 -j ACCEPT",
        f"{op} FORWARD -d {SUBNET} -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    for i in range(n):
        dnat = f"-p tcp -m tcp --dport {10000 + i} -j DNAT --to-destination {address(i)}:80"
        local = "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL"
        nat += [f"{op} PREROUTING {local} {dnat}", f"{op} OUTPUT {local} {dnat}"]
        filt.append(f"{op} FORWARD -d {address(i)} -o br0 -p tcp -m tcp --dport 80 -j ACCEPT")
    return "\n".join(["*nat", *nat, "COMMIT", "*filter", *filt, "COMMIT", ""])


def restore(text: str) -> None:
    subprocess.run(["iptables-restore", "--noflush", "-w"], input=text.encode(), check=True)


def set_forwarding(value: str) -> None:
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write(value)


def configure(ns: IPRoute, i: int) -> None:
    lo = ns.link_lookup(ifname="lo")[0]
    eth0 = ns.link_lookup(ifname="eth0")[0]
    ns.link("set", index=lo, state="up")
    ns.addr("add", index=eth0, address=address(i), prefixlen=16)
    ns.link("set", index=eth0, state="up")
    ns.route("add", dst="0.0.0.0/0", gateway=GATEWAY)


def build(n: int, mode: str) -> None:
    with IPRoute() as ipr:
        ipr.link("add", ifname="br0", kind="bridge")
        br0 = ipr.link_lookup(ifname="br0")[0]
        ipr.addr("add", index=br0, address=GATEWAY, prefixlen=16)
        ipr.link("set", index=br0, state="up")
        for i in range(n):
            name = f"w{i}"
            if mode == "idiomatic":
                ns = NetNS(name)
            else:
                netns.pushns()
                netns.setns(name, fork=False)  # creates it: unshare in this thread
                ns = IPRoute()
            try:
                if mode != "idiomatic":
                    netns.popns()
                ipr.link("add", ifname=f"wh{i}", kind="veth", peer={"ifname": "eth0", "net_ns_fd": name})
                host = ipr.link_lookup(ifname=f"wh{i}")[0]
                ipr.link("set", index=host, master=br0, state="up")
                configure(ns, i)
            finally:
                ns.close()
    restore(rules(n, "-A"))
    set_forwarding("1")


def teardown(n: int) -> None:
    set_forwarding("0")
    restore(rules(n, "-D"))
    with IPRoute() as ipr:
        for i in range(n):
            ipr.link("del", ifname=f"wh{i}")
        for i in range(n):
            netns.remove(f"w{i}")
        ipr.link("del", ifname="br0")


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        t0 = time.perf_counter()
        build(request["n"], request["mode"])
        t1 = time.perf_counter()
        teardown(request["n"])
        t2 = time.perf_counter()
        print(json.dumps({"build": t1 - t0, "teardown": t2 - t1}), flush=True)


if __name__ == "__main__":
    main()
