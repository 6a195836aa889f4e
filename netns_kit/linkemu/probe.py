"""Can the link emulator work behind an executor? Probed once, for real, in a throwaway namespace.

``unshare --net python3 -m netns_kit.linkemu --probe`` (through the executor,
so inside a sandbox when there is one) sets lo up, adds an NFQUEUE rule for
lo, binds the queue, and passes one UDP datagram through it: the rule's
target (``xt_NFQUEUE``), the queue (``nfnetlink_queue``) and the verdict all
work, or the probe says which did not. Nothing outlives the namespace.
"""

from __future__ import annotations

import select
import socket
import subprocess
import weakref

from netns_kit.command import Command, query
from netns_kit.errors import BinaryNotFoundError, UnsupportedError
from netns_kit.executors import binaries
from netns_kit.executors.base import Executor
from netns_kit.executors.capability import Probe, netem
from netns_kit.linkemu.nfq import QueueSocket
from netns_kit.linkemu.plan import MODULE, PYTHON

PROBE: Command = query("unshare", "--net", PYTHON, "-m", MODULE, "--probe", ok_codes=range(256))
PROBE_QUEUE = 31337
PROBE_PORT = 9

_nfqueue: weakref.WeakKeyDictionary[Executor, Probe] = weakref.WeakKeyDictionary()


def nfqueue(executor: Executor) -> Probe:
    """Whether NFQUEUE works behind ``executor`` (probed once, then remembered)."""
    executor = executor.underlying
    probe = _nfqueue.get(executor)
    if probe is None:
        try:
            result = executor.run(PROBE)
        except BinaryNotFoundError as error:
            probe = _nfqueue[executor] = Probe(False, f"the NFQUEUE probe could not run: {error.hint}")
            return probe
        if result.returncode == 0:
            probe = Probe(True)
        else:
            probe = Probe(False, (result.stdout + result.stderr).strip() or f"{PROBE.line} exited {result.returncode}")
        _nfqueue[executor] = probe
    return probe


def require_nfqueue(executor: Executor, settings: str) -> None:
    """Raise :class:`UnsupportedError` when the emulator cannot work here (naming why, and netem's state)."""
    probe = nfqueue(executor)
    if not probe.available:
        kernel = netem(executor)
        netem_state = (
            "netem is available (via='netem')" if kernel.available else f"netem is missing too: {kernel.reason}"
        )
        raise UnsupportedError(
            "NFQUEUE",
            f"{settings} needs the userspace link emulator, which needs NFQUEUE (CONFIG_NETFILTER_NETLINK_QUEUE, "
            f"CONFIG_NETFILTER_XT_TARGET_NFQUEUE), but {probe.reason}; {netem_state}",
        )


def backend(executor: Executor) -> tuple[str, str]:
    """What ``via="auto"`` uses behind ``executor`` (``netem``, ``userspace`` or ``none``), and why: for doctor."""
    kernel = netem(executor)
    if kernel.available:
        return "netem", "the kernel has the netem qdisc"
    queue = nfqueue(executor)
    if queue.available:
        return "userspace", f"{kernel.reason}; NFQUEUE works, so the userspace link emulator stands in (±1 ms typical)"
    return "none", f"{kernel.reason}; and {queue.reason}: only rate limits (tbf) and plain loss (iptables) work"


def run_probe() -> tuple[bool, str]:
    """The probe itself, run inside a fresh network namespace: (works, what failed)."""
    # where netns_kit finds them (an ordinary user's login PATH has no /usr/sbin)
    ip, iptables = binaries.which("ip") or "ip", binaries.which("iptables") or "iptables"
    steps = [
        [ip, "link", "set", "lo", "up"],
        [iptables, "-w", "-t", "mangle", "-A", "OUTPUT", "-o", "lo", "-p", "udp", "--dport", str(PROBE_PORT),
         "-j", "NFQUEUE", "--queue-num", str(PROBE_QUEUE)],
    ]  # fmt: skip
    for argv in steps:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError as error:
            return False, f"{' '.join(argv)}: {error}"
        if done.returncode:
            return False, f"{' '.join(argv)}: {done.stderr.strip()}"
    try:
        queue = QueueSocket(PROBE_QUEUE, maxlen=10)
    except OSError as error:
        return False, f"binding an NFQUEUE failed: {error}"
    with (
        queue,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", PROBE_PORT))
        tx.sendto(b"probe", ("127.0.0.1", PROBE_PORT))
        if not select.select([queue], [], [], 2.0)[0] or not (packets := queue.receive()):
            return False, "a queued datagram never reached the queue's socket"
        queue.verdict(packets[0].id)
        if not select.select([rx], [], [], 2.0)[0]:
            return False, "a datagram accepted by verdict was not delivered"
    return True, "NFQUEUE works"
