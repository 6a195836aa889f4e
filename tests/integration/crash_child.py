"""Run as a child process: build a topology in an attached sandbox, SIGKILL itself after step k.

Usage: python crash_child.py HOLDER_PID K SCENARIO
"""

from __future__ import annotations

import os
import signal
import sys

import attrs

import netns_kit
from netns_kit import Command, Resource, Result, change
from netns_kit.executors.base import Executor
from netns_kit.executors.sandbox import Sandbox
from netns_kit.topology import scenarios


@attrs.frozen
class TaggedRules(Resource):
    """Hand-made rules following the NatRule/PortForward conventions: an NK- chain
    reached by a tagged jump, tagged rules inside."""

    chain: str = "NK-crash"
    subnet: str = "192.168.1.0/24"

    def plan(self, executor: Executor) -> list[Command]:
        tag = ("-m", "comment", "--comment", executor.owner.tag)
        ipt = ("iptables", "-w", "-t", "filter")
        jump = (*ipt, "FORWARD", "-s", self.subnet, *tag, "-j", self.chain)
        rule = (*ipt, self.chain, "-s", self.subnet, *tag, "-j", "ACCEPT")
        return [
            change(*ipt, "-N", self.chain, undo=Command((*ipt, "-X", self.chain))),
            change(*ipt[:4], "-A", *rule[4:], undo=Command((*ipt[:4], "-D", *rule[4:]))),
            change(*ipt[:4], "-A", *jump[4:], undo=Command((*ipt[:4], "-D", *jump[4:]))),
        ]


class KillingSandbox(Sandbox):
    """Dies by SIGKILL just before its (k+1)-th change: steps 1..k took effect."""

    kill_after = 0
    changes = 0

    def _run_one(self, command: Command, input: str | None, timeout: float | None) -> Result:
        # every process of one command (batch=False: each change is one) starts here
        if command.mutating:
            if self.changes == self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            self.changes += 1
        return super()._run_one(command, input, timeout)


def topology() -> netns_kit.Topology:
    """Seed 001 in full (bridge, routes, NatRule, PortForward, sysctl) plus hand-made tagged rules."""
    topo = scenarios.seed001_nat()
    topo.add(TaggedRules())
    return topo


def main() -> None:
    pid, k = int(sys.argv[1]), int(sys.argv[2])
    box = KillingSandbox.attach(pid)
    box.batch = False  # one process per change, so "after step k" is exact
    box.kill_after = k
    topo = topology()
    topo.up(box)
    # every step done: die holding it all
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
