"""Which commands may share one process, and in what order they may run.

A plan lists commands in an order that is always safe. Run one process per
command and 200 namespaces cost thousands of processes; ``ip -batch`` and
``iptables-restore`` take many commands per process, but only for one
namespace (and one set of global options, one iptables family) each. So the
commands are regrouped into :class:`Step` values, each one process, and
reordered only where the order cannot matter.

When the order cannot matter is decided from what each command reads and
writes (:mod:`netns_kit.batching.effects`). Two commands conflict when one writes a key
the other reads or writes. :func:`schedule` places each command, in plan
order, in a step of its kind (:mod:`netns_kit.batching.lines`: which commands an
``ip -batch`` or an ``iptables-restore`` can take, and as which line), and
makes that step wait for every step holding a command it conflicts with, so
every pair of conflicting commands runs in plan order: whatever order the
steps run in (any that respects the waits, several at a time), the result is
one of the orders the plan allows. A command it does not understand
conflicts with everything and so is never moved.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import attrs

from netns_kit.batching.effects import STAR, Effects, effects, key_scope
from netns_kit.batching.lines import kind_and_line
from netns_kit.command import Command


@attrs.define
class Step:
    """One process: an ``ip -batch``, an ``iptables-restore``, or one command alone.

    ``indexes`` point into the commands given to :func:`schedule`, in the
    order the step runs them.
    """

    kind: str  #: "ip", "restore", "nft" or "one"
    netns: str | None
    options: tuple[str, ...]  #: ip's global options, or ("iptables",) / ("ip6tables",)
    indexes: list[int] = attrs.field(factory=list)
    #: each command's line in the batch's input (``ip -batch`` or ``iptables-restore``)
    lines: dict[int, str] = attrs.field(factory=dict, repr=False)
    #: the steps (positions in the schedule) that must be done before this one starts
    after: set[int] = attrs.field(factory=set)

    def process(self, commands: Sequence[Command]) -> Command:
        """The command that runs this step (``ip -batch -``, ``iptables-restore``, or the one)."""
        if self.kind == "ip":
            return Command(("ip", *self.options, "-batch", "-"), netns=self.netns)
        if self.kind == "restore":
            return Command((f"{self.options[0]}-restore", "--noflush", "-w"), netns=self.netns)
        if self.kind == "nft":
            return Command(("nft", "-f", "-"), netns=self.netns)
        return commands[self.indexes[0]]


class _Index:
    """Which steps read or wrote each key (and anything of each namespace), for :func:`schedule`."""

    def __init__(self) -> None:
        self.read: dict[str, set[int]] = {}
        self.written: dict[str, set[int]] = {}
        self.scope_read: dict[str, set[int]] = {}  # any key of a namespace, read
        self.scope_written: dict[str, set[int]] = {}
        self.star: set[int] = set()
        self.touched: set[int] = set()

    def conflicts(self, fx: Effects) -> set[int]:
        """The steps holding a command that conflicts with one of effects ``fx``."""
        if STAR in fx.writes:
            return set(self.touched)
        found = set(self.star)
        none: set[int] = set()
        for key in fx.writes:
            scope = key_scope(key)
            if key.startswith("all:"):
                assert scope is not None
                found |= self.scope_read.get(scope, none) | self.scope_written.get(scope, none)
            else:
                found |= self.read.get(key, none) | self.written.get(key, none)
                if scope is not None:
                    found |= self.read.get(f"all:{scope}", none) | self.written.get(f"all:{scope}", none)
        for key in fx.reads:
            scope = key_scope(key)
            if key.startswith("all:"):
                assert scope is not None
                found |= self.scope_written.get(scope, none)
            else:
                found |= self.written.get(key, none)
                if scope is not None:
                    found |= self.written.get(f"all:{scope}", none)
        return found

    def note(self, fx: Effects, step: int) -> None:
        self.touched.add(step)
        if STAR in fx.writes:
            self.star.add(step)
        for keys, exact, scoped in (
            (fx.reads, self.read, self.scope_read),
            (fx.writes, self.written, self.scope_written),
        ):
            for key in keys:
                exact.setdefault(key, set()).add(step)
                scope = key_scope(key)
                if scope is not None:
                    scoped.setdefault(scope, set()).add(step)


#: an ``ip -batch`` step holds at most this many lines, so that the namespaces'
#: steps can start while the host's later lines still run (a pipeline)
IP_STEP_LINES = 256


def _ancestors(steps: Sequence[Step], start: set[int]) -> set[int]:
    """``start`` and every step they wait for, transitively."""
    seen = set(start)
    todo = list(start)
    while todo:
        for before in steps[todo.pop()].after:
            if before not in seen:
                seen.add(before)
                todo.append(before)
    return seen


def schedule(commands: Sequence[Command]) -> list[Step]:
    """Group ``commands`` into steps (one process each), each with the steps it must wait for.

    A command joins the first step of its kind that has room and that none of
    the steps it conflicts with waits for (so no cycle can form), and then
    that step waits for all of them; otherwise it starts a new step. Every
    pair of conflicting commands thus runs in plan order: in one step in
    order, or in two steps the second of which waits for the first.
    """
    steps: list[Step] = []
    by_kind: dict[tuple[str, str | None, tuple[str, ...]], list[int]] = {}
    index = _Index()
    for i, command in enumerate(commands):
        kind, line = kind_and_line(command)
        fx = effects(command, kind[0])
        conflicting = index.conflicts(fx)
        place = None
        if kind[0] != "one":
            room = IP_STEP_LINES if kind[0] == "ip" and kind[1] is None else None
            for candidate in by_kind.get(kind, ()):
                if room is not None and len(steps[candidate].indexes) >= room:
                    continue
                if candidate not in _ancestors(steps, conflicting - {candidate}):
                    place = candidate
                    break
        if place is None:
            place = len(steps)
            steps.append(Step(kind[0], kind[1], kind[2]))
            by_kind.setdefault(kind, []).append(place)
        step = steps[place]
        step.indexes.append(i)
        step.lines[i] = line
        step.after |= conflicting - {place}
        index.note(fx, place)
    return steps


def graph(steps: Sequence[Step]) -> tuple[dict[int, set[int]], dict[int, list[int]]]:
    """For each step, the steps it waits for (a copy, to tick off) and the steps waiting for it."""
    waiting = {p: set(step.after) for p, step in enumerate(steps)}
    dependents: dict[int, list[int]] = {}
    for p, step in enumerate(steps):
        for before in step.after:
            dependents.setdefault(before, []).append(p)
    return waiting, dependents


#: a rough cost model, in ms, for :func:`priorities`: a process, and a line of each kind
#: (W(200) here: a host veth line ~0.5 ms, a namespace's line ~1-2 ms, a rule ~0.035 ms)
_PROCESS_MS = 3.0
_LINE_MS = {"ip": 0.6, "restore": 0.04, "nft": 0.1, "one": 1.0}


def priorities(steps: Sequence[Step]) -> list[tuple[float, int]]:
    """For each step, a key that sorts the one to start first lowest: the longest
    estimated chain of work from it to the end (the critical path), then the plan.

    With ``parallel`` workers and hundreds of namespaces ready, starting the lowest
    step first left the host's last chunk, and the sysctl and rules waiting for it,
    for the end (W(200): a 70 ms ``iptables-restore`` ran alone after the rest).
    """
    _, dependents = graph(steps)
    rank = [0.0] * len(steps)
    for p in reversed(order(steps)):
        own = _PROCESS_MS + _LINE_MS[steps[p].kind] * len(steps[p].indexes)
        rank[p] = own + max((rank[q] for q in dependents.get(p, ())), default=0.0)
    return [(-rank[p], p) for p in range(len(steps))]


def order(steps: Sequence[Step], keys: Sequence[tuple[float, int]] | None = None) -> list[int]:
    """The steps in an order that respects what each waits for (the lowest ready
    first, or the lowest of ``keys``)."""
    waiting, dependents = graph(steps)
    key = keys or [(0.0, p) for p in range(len(steps))]
    ready = [key[p] for p, before in waiting.items() if not before]
    heapq.heapify(ready)
    found = []
    while ready:
        p = heapq.heappop(ready)[1]
        found.append(p)
        for q in dependents.get(p, ()):
            waiting[q].discard(p)
            if not waiting[q]:
                heapq.heappush(ready, key[q])
    assert len(found) == len(steps), "the steps wait for each other in a cycle"
    return found
