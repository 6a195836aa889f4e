"""The commands that put the link emulator on one device, and take it off.

Two steps, each with its undo, in this order (teardown runs them backwards):

1. ``python3 -m netns_kit.linkemu --queue N --dev DEV ... --background`` in
   the device's namespace: returns once queue N is bound; undone by
   ``... --stop --queue N --owner TAG`` there.
2. ``iptables -t mangle -I POSTROUTING -o DEV ... -j NFQUEUE --queue-num N``
   (and ``ip6tables``), tagged with the owner's comment: the packets leaving
   DEV go to the queue. No ``--queue-bypass``: while nothing serves the
   queue its packets are dropped (fail-closed; see :mod:`netns_kit.linkemu`).
"""

from __future__ import annotations

import sys
import zlib

from netns_kit.command import Command, change
from netns_kit.impairment import Impairment

#: the interpreter that runs the emulator (this one: it has netns_kit)
PYTHON = sys.executable or "python3"
MODULE = "netns_kit.linkemu"


def default_queue(dev: str) -> int:
    """A queue number for ``dev``, the same in every run (queues are per namespace, devices too)."""
    return 1000 + zlib.crc32(dev.encode()) % 64000


def status_command(queue: int) -> tuple[str, ...]:
    """The argv that exits 0 when an emulator serves ``queue`` in the namespace it runs in, else 1."""
    return (PYTHON, "-m", MODULE, "--status", "--queue", str(queue))


def stop_command(queue: int, netns: str | None, tag: str) -> Command:
    """Stop the emulator of ``tag`` serving ``queue`` in ``netns`` (never another owner's)."""
    return Command((PYTHON, "-m", MODULE, "--stop", "--queue", str(queue), "--owner", tag), netns=netns)


def start_command(impairment: Impairment, *, dev: str, queue: int, netns: str | None, loss: bool, tag: str) -> Command:
    """Start the emulator for ``impairment`` (its loss too when ``loss``) in the background."""
    argv = (PYTHON, "-m", MODULE, "--queue", str(queue), "--dev", dev, *impairment.emulator_options(loss=loss))
    return change(*argv, "--owner", tag, "--background", netns=netns, undo=stop_command(queue, netns, tag))


def queue_rules(*, dev: str, queue: int, netns: str | None, tag: str) -> list[Command]:
    """The tagged rules sending what leaves ``dev`` to ``queue`` (IPv4 and IPv6)."""
    spec = ("POSTROUTING", "-o", dev, "-m", "comment", "--comment", tag, "-j", "NFQUEUE", "--queue-num", str(queue))
    out = []
    for binary in ("iptables", "ip6tables"):
        delete = Command((binary, "-w", "-t", "mangle", "-D", *spec), netns=netns)
        out.append(change(binary, "-w", "-t", "mangle", "-I", *spec, netns=netns, undo=delete))
    return out


def commands(impairment: Impairment, *, dev: str, queue: int, netns: str | None, loss: bool, tag: str) -> list[Command]:
    """The emulator's start, then the queue rules."""
    start = start_command(impairment, dev=dev, queue=queue, netns=netns, loss=loss, tag=tag)
    return [start, *queue_rules(dev=dev, queue=queue, netns=netns, tag=tag)]
