"""``python3 -m netns_kit.linkemu``: run, start in the background, or stop the link emulator.

::

    python3 -m netns_kit.linkemu --queue 7 --dev a-eth --delay 100ms --jitter 10ms --loss 5%
    python3 -m netns_kit.linkemu --queue 7 --dev a-eth --delay 100ms --background   # returns once bound
    python3 -m netns_kit.linkemu --stop --queue 7 [--owner TAG]                    # in the same namespace
    python3 -m netns_kit.linkemu --list --owner netns_kit:1234.5678   # an owner's, in every namespace seen here
    python3 -m netns_kit.linkemu --stop --owner netns_kit:1234.5678 [--pid P]

It serves the NFQUEUE ``--queue`` of the network namespace it runs in. With
``--background`` it returns (exit 0, the ready line on stdout) once the queue
is bound, and keeps running detached; an error before that exits 1 with the
reason. ``--stop`` ends the emulator of that queue in this namespace
(SIGTERM: it releases the packets it holds at once and exits).
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import os
import random
import select
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from netns_kit.errors import ValidationError
from netns_kit.impairment import Impairment
from netns_kit.linkemu import orphans
from netns_kit.linkemu.fate import Emulation
from netns_kit.linkemu.loop import Emulator
from netns_kit.linkemu.nfq import QueueSocket
from netns_kit.linkemu.orphans import option
from netns_kit.linkemu.probe import run_probe

#: the Impairment settings the emulator takes, as options (``--delay-correlation``)
SETTINGS = (
    "delay",
    "jitter",
    "delay_correlation",
    "distribution",
    "loss",
    "loss_correlation",
    "duplicate",
    "duplicate_correlation",
    "reorder",
    "reorder_correlation",
    "gap",
    "corrupt",
    "corrupt_correlation",
    "limit",
)
INTEGER = ("gap", "limit")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m netns_kit.linkemu", description=__doc__.split("\n\n")[0])
    p.add_argument("--queue", type=int, help="the NFQUEUE number to serve (0-65535)")
    p.add_argument("--dev", help="the device whose packets are queued (exit when it is gone)")
    for name in SETTINGS:
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=int if name in INTEGER else str,
            help=f"as Impairment.{name} (tc-netem's meaning)",
        )
    p.add_argument("--seed", type=int, help="seed the random decisions (repeatable runs)")
    p.add_argument(
        "--fail-open",
        action="store_true",
        help="let packets through when the queue is full (default: drop them, as netem's limit does)",
    )
    p.add_argument(
        "--no-realtime",
        dest="realtime",
        action="store_false",
        help="stay an ordinary process (by default it asks for SCHED_FIFO where allowed)",
    )
    p.add_argument("--background", action="store_true", help="return once the queue is bound; keep running")
    p.add_argument("--log", help="with --background: where its stderr goes (default: nowhere)")
    p.add_argument("--stop", action="store_true", help="stop the emulator serving --queue in this namespace")
    p.add_argument("--status", action="store_true", help="exit 0 if an emulator serves --queue here, else 1")
    p.add_argument("--probe", action="store_true", help="check that NFQUEUE works here (changes this namespace)")
    p.add_argument(
        "--owner",
        action="append",
        help="the owner's tag (netns_kit:...), shown in ps for cleanup; with --list or --stop: "
        "the emulators of this owner (repeatable) in the namespaces seen from here",
    )
    p.add_argument("--list", action="store_true", help="list the emulators of --owner here (JSON lines)")
    p.add_argument("--pid", type=int, help="with --stop --owner: only this emulator")
    return p


def impairment(args: argparse.Namespace) -> Impairment:
    values = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    if values.get("distribution") == "uniform":
        del values["distribution"]
    return Impairment(**values)


def _ready_line(args: argparse.Namespace, what: Impairment) -> str:
    return f"linkemu: queue {args.queue} ready (pid {os.getpid()}, {args.scheduling}): {what}"


def _emulator(args: argparse.Namespace, what: Impairment) -> Emulator:
    args.scheduling = realtime() if args.realtime else "ordinary"
    rng = random.Random(args.seed)
    emulation = Emulation(what, rand32=lambda: rng.getrandbits(32), clock=time.monotonic_ns)
    queue = QueueSocket(args.queue, maxlen=emulation.limit, fail_open=args.fail_open)
    return Emulator(queue, emulation, dev=args.dev)


#: the SCHED_FIFO priority asked for (the lowest band: above every ordinary process, below the kernel's own)
RT_PRIORITY = 10
PR_SET_TIMERSLACK = 29


def realtime() -> str:
    """Wake up on time on a busy machine: SCHED_FIFO where allowed (root, or RLIMIT_RTPRIO), else
    a timer slack of 1 ns; says which. Under a load of 8 on 2 cores this takes the delay's p90 error
    from about 3 ms to 0.3 ms."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        return f"SCHED_FIFO {RT_PRIORITY}"
    except (OSError, AttributeError):
        pass
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return "ordinary"
    return "ordinary, timer slack 1 ns"


def _why(error: BaseException) -> str:
    """The reason, with the kernel option when the kernel has no nfnetlink_queue."""
    if isinstance(error, OSError) and error.errno in (errno.EPROTONOSUPPORT, errno.EOPNOTSUPP):
        return f"{error} (this kernel has no nfnetlink_queue: CONFIG_NETFILTER_NETLINK_QUEUE)"
    if isinstance(error, OSError) and error.errno == errno.EPERM:
        return f"{error} (binding a queue needs CAP_NET_ADMIN in this network namespace)"
    if isinstance(error, OSError) and error.errno == errno.EBUSY:
        return f"{error} (another process serves this queue here)"
    return str(error)


#: how long --background waits for the queue to be bound
READY_TIMEOUT = 10.0


def _read_until_closed(fd: int, timeout: float) -> str | None:
    """What is written to pipe ``fd`` until its writer closes it (None: not within ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                return None
            chunk = pipe.read(4096)
            if not chunk:
                return b"".join(chunks).decode(errors="replace")
            chunks.append(chunk)


def _background(args: argparse.Namespace, what: Impairment) -> int:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child:
        os.close(write_end)
        answer = _read_until_closed(read_end, READY_TIMEOUT)
        if answer is None:
            os.kill(child, signal.SIGKILL)
            print(f"linkemu: the emulator was not ready after {READY_TIMEOUT:g} s: killed", file=sys.stderr)
            return 1
        if answer.startswith("linkemu: queue"):
            print(answer.strip(), flush=True)
            return 0
        print(answer.strip() or "linkemu: the emulator exited before binding its queue", file=sys.stderr)
        return 1
    os.close(read_end)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if args.log else null
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    # hold no one else's pipe open (whoever started it waits for them to close)
    os.closerange(3, write_end)
    os.closerange(write_end + 1, 65536)
    try:
        emulator = _emulator(args, what)
    except Exception as error:  # the reason goes to the waiting parent
        os.write(write_end, f"linkemu: cannot serve queue {args.queue}: {_why(error)}\n".encode())
        os._exit(1)

    def ready() -> None:
        os.write(write_end, (_ready_line(args, what) + "\n").encode())
        os.close(write_end)

    os._exit(emulator.run(ready=ready))


def running(queue: int, owners: Sequence[str] | None = None) -> list[int]:
    """The pids of emulators serving ``queue`` in this process's network namespace (of
    one of ``owners``, the tags given with ``--owner``, when given)."""
    here = os.readlink("/proc/self/ns/net")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if os.readlink(entry / "ns" / "net") != here:
                continue
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in argv]
        serving = "netns_kit.linkemu" in words and not {"--stop", "--status", "--probe", "--list"} & set(words)
        mine = owners is None or option(words, "--owner") in owners
        if serving and mine and option(words, "--queue") == str(queue):
            found.append(int(entry.name))
    return sorted(found)


def stop(queue: int, owners: Sequence[str] | None = None, timeout: float = 5.0) -> int:
    pids = running(queue, owners)
    if not pids:
        print(f"linkemu: no emulator serves queue {queue} here", file=sys.stderr)
        return 0
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running(queue, owners) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in running(queue, owners):
        os.kill(pid, signal.SIGKILL)
    print(f"linkemu: stopped queue {queue} (pid {' '.join(map(str, pids))})", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.probe:
        works, why = run_probe()
        print(f"linkemu: {why}", file=sys.stdout if works else sys.stderr)
        return 0 if works else 1
    if (args.list or args.stop) and args.owner and args.queue is None:
        return orphans.list_main(args.owner) if args.list else orphans.stop_main(args.owner, args.pid)
    if args.queue is None:
        print("linkemu: --queue is required", file=sys.stderr)
        return 2
    if not 0 <= args.queue <= 65535:
        print(f"linkemu: --queue {args.queue}: must be 0 to 65535", file=sys.stderr)
        return 2
    if args.stop:
        return stop(args.queue, args.owner)
    if args.status:
        pids = running(args.queue)
        print(
            f"linkemu: queue {args.queue}: " + (f"served by pid {' '.join(map(str, pids))}" if pids else "not served")
        )
        return 0 if pids else 1
    try:
        what = impairment(args)
    except ValidationError as error:
        print(f"linkemu: {error}", file=sys.stderr)
        return 2
    if args.background:
        return _background(args, what)
    try:
        emulator = _emulator(args, what)
    except OSError as error:
        print(f"linkemu: cannot serve queue {args.queue}: {_why(error)}", file=sys.stderr)
        return 1

    def ready() -> None:
        print(_ready_line(args, what), flush=True)

    return emulator.run(ready=ready)
