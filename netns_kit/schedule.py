"""Which commands may share one process, and in what order they may run.

A plan lists commands in an order that is always safe. Run one process per
command and 200 namespaces cost thousands of processes; ``ip -batch`` and
``iptables-restore`` take many commands per process, but only for one
namespace (and one set of global options, one iptables family) each. So the
commands are regrouped into :class:`Step` values, each one process, and
reordered only where the order cannot matter.

When the order cannot matter is decided from what each command reads and
writes (:func:`effects`), as keys:

* ``ns:NAME``: the namespace NAME exists (written by ``ip netns add/del``,
  read by every command run in NAME or naming it with ``netns NAME``);
* ``dev:NS:NAME``: the device NAME in NS (``""`` is the host), with its
  addresses, flags and master;
* ``fw4:NS:TABLE`` / ``fw6:NS:TABLE``: the iptables / ip6tables rules of
  one table in NS (a jump only ever goes to a chain of its own table);
* ``all:NS``: everything in NS (routes, sysctls: they depend on devices);
* ``*``: everything (a command netns_kit does not model).

Two commands conflict when one writes a key the other reads or writes
(``all:NS`` covers every key of NS, ``*`` covers all). :func:`schedule`
places each command, in plan order, in a step of its kind, and makes that
step wait for every step holding a command it conflicts with, so every pair
of conflicting commands runs in plan order: whatever order the steps run in
(any that respects the waits, several at a time), the result is one of the
orders the plan allows. A command it does not understand conflicts with
everything and so is never moved.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import attrs

from .command import Command

STAR = "*"
#: the iptables operations ``iptables-restore --noflush`` runs for us
RESTORE_OPS = frozenset({"-N", "-A", "-I", "-D", "-F", "-X"})
_IP_OPTIONS = frozenset({"-4", "-6"})
#: ip reads at most 100 words a line (``largv[100]``); keep well below
_IP_MAX_WORDS = 90


@attrs.frozen
class Effects:
    reads: frozenset[str]
    writes: frozenset[str]


_BARRIER = Effects(frozenset(), frozenset({STAR}))


def _scope(netns: str | None) -> str:
    return netns or ""


def _key_scope(key: str) -> str | None:
    """The namespace a key lives in (None for ``ns:`` keys and ``*``)."""
    if key.startswith(("dev:", "fw4:", "fw6:")):
        return key[4:].rsplit(":", 1)[0]
    if key.startswith("all:"):
        return key[4:]
    return None


def _after(words: Sequence[str], keyword: str) -> str | None:
    for i, word in enumerate(words[:-1]):
        if word == keyword:
            return words[i + 1]
    return None


def _ip_link(netns: str | None, verb: str, args: Sequence[str]) -> Effects | None:
    here = _scope(netns)
    reads: set[str] = set()
    writes: set[str] = set()
    if any(word == "netns" and value.isdigit() for word, value in itertools.pairwise(args)):
        return None  # a namespace given by pid or id: which one is not known here
    if verb == "add":
        split = args.index("type") if "type" in args else len(args)
        head, tail = args[:split], args[split:]
        name = _after(head, "name")
        if name is None or "link" in head:
            return None
        where = _after(head, "netns")
        writes.add(f"dev:{_scope(where) if where else here}:{name}")
        if where:
            reads.add(f"ns:{where}")
        master = _after(head, "master")
        if master:
            reads.add(f"dev:{here}:{master}")
        if "peer" in tail:
            peer_args = tail[tail.index("peer") + 1 :]
            peer = _after(peer_args, "name")
            if peer is None:
                return None
            peer_ns = _after(peer_args, "netns")
            writes.add(f"dev:{_scope(peer_ns) if peer_ns else here}:{peer}")
            if peer_ns:
                reads.add(f"ns:{peer_ns}")
        return Effects(frozenset(reads), frozenset(writes))
    if verb == "set" and args[:1] == ("dev",) and len(args) > 1:
        writes.add(f"dev:{here}:{args[1]}")
        master = _after(args, "master")
        if master:
            reads.add(f"dev:{here}:{master}")
        if "netns" in args or "name" in args:
            return None  # a move or a rename: rare, and not modelled
        return Effects(frozenset(reads), frozenset(writes))
    return None  # del (takes the peer along, wherever it is), ...


def effects(command: Command, kind: str | None = None) -> Effects:
    """What ``command`` reads and writes, as keys (see the module docstring).

    ``kind`` is its :func:`step_kind`, when already known."""
    argv = command.argv
    inside = frozenset({f"ns:{command.netns}"}) if command.netns else frozenset()
    found: Effects | None = None
    if kind is None:
        kind = step_kind(command)[0]
    if argv[0] == "ip":
        found = _ip_effects(command)
    elif kind == "restore":
        family = 6 if argv[0] == "ip6tables" else 4
        found = Effects(frozenset(), frozenset({f"fw{family}:{_scope(command.netns)}:{argv[3]}"}))
    elif argv[:3] == ("sysctl", "-q", "-w"):
        found = Effects(frozenset(), frozenset({f"all:{_scope(command.netns)}"}))
    if found is None:
        return _BARRIER
    return Effects(found.reads | inside, found.writes)


def _ip_effects(command: Command) -> Effects | None:
    words = ip_words(command)
    if words is None or len(words) < 2:
        return None
    obj, verb, args = words[0], words[1], tuple(words[2:])
    here = _scope(command.netns)
    if obj == "netns" and command.netns is None and len(args) == 1:
        if verb == "add":
            return Effects(frozenset(), frozenset({f"ns:{args[0]}"}))
        return None  # del frees devices (and veth peers elsewhere) asynchronously
    if obj == "link":
        return _ip_link(command.netns, verb, args)
    if obj == "addr" and verb in ("add", "del") and "dev" in args:
        return Effects(frozenset(), frozenset({f"dev:{here}:{_after(args, 'dev')}"}))
    if obj == "route" and verb in ("add", "del", "replace"):
        return Effects(frozenset(), frozenset({f"all:{here}"}))
    return None


# -- what can go into a batch ---------------------------------------------------


def ip_options(command: Command) -> tuple[str, ...] | None:
    """The global options of an ``ip`` command (``("-6",)``), or None if it cannot be batched."""
    options = []
    for word in command.argv[1:]:
        if not word.startswith("-"):
            break
        if word not in _IP_OPTIONS:
            return None
        options.append(word)
    return tuple(options)


def ip_words(command: Command) -> tuple[str, ...] | None:
    """The words after ``ip`` and its global options."""
    options = ip_options(command)
    if options is None:
        return None
    return command.argv[1 + len(options) :]


_IP_PLAIN = re.compile(r"[^\s#\\\"'\0]+")
_IP_QUOTABLE = re.compile(r"[^#\\\n\r\0]*")


def ip_word(word: str) -> str | None:
    """``word`` as ``ip -batch`` reads it back, or None if it cannot be said there.

    ip splits batch lines on blanks, honours '...' and "..." (no escapes),
    cuts a line at ``#`` and joins lines ending in a backslash.
    """
    if _IP_PLAIN.fullmatch(word):
        return word
    if not _IP_QUOTABLE.fullmatch(word):
        return None
    if '"' not in word:
        return f'"{word}"'
    if "'" not in word:
        return f"'{word}'"
    return None


def ip_line(command: Command) -> str | None:
    """The ``ip -batch`` line for ``command``, or None if it must run on its own."""
    words = ip_words(command)
    if not command.mutating or command.ok_codes != frozenset({0}) or not words or len(words) > _IP_MAX_WORDS:
        return None
    quoted = [ip_word(w) for w in words]
    if any(q is None for q in quoted):
        return None
    return " ".join(q for q in quoted if q is not None)


_RESTORE_PLAIN = re.compile(r"[A-Za-z0-9_.:,/!+=@%^\[\]-]+")
_RESTORE_QUOTABLE = re.compile(r"[^\"'\\\n\r\0]*")


def restore_word(word: str) -> str | None:
    """``word`` as ``iptables-restore`` reads it back, or None if it cannot be said there."""
    if _RESTORE_PLAIN.fullmatch(word):
        return word
    if _RESTORE_QUOTABLE.fullmatch(word):
        return f'"{word}"'
    return None


def restore_line(command: Command) -> tuple[str, str] | None:
    """``(table, line)`` for ``iptables-restore --noflush``, or None if it must run on its own.

    Only the shape netns_kit plans is taken: ``iptables -w -t TABLE OP ...``
    with OP one of ``-N -A -I -D -F -X``.
    """
    argv = command.argv
    if (
        len(argv) < 6
        or argv[0] not in ("iptables", "ip6tables")
        or argv[1:3] != ("-w", "-t")
        or argv[4] not in RESTORE_OPS
        or not command.mutating
        or command.ok_codes != frozenset({0})
    ):
        return None
    quoted = [restore_word(w) for w in argv[4:]]
    if any(q is None for q in quoted) or not argv[3].isalnum():
        return None
    return argv[3], " ".join(q for q in quoted if q is not None)


# -- steps ----------------------------------------------------------------------


@attrs.define
class Step:
    """One process: an ``ip -batch``, an ``iptables-restore``, or one command alone.

    ``indexes`` point into the commands given to :func:`schedule`, in the
    order the step runs them.
    """

    kind: str  #: "ip", "restore" or "one"
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
        return commands[self.indexes[0]]


def step_kind(command: Command) -> tuple[str, str | None, tuple[str, ...]]:
    """The kind of step ``command`` can join: (kind, netns, options)."""
    return _kind_and_line(command)[0]


def _kind_and_line(command: Command) -> tuple[tuple[str, str | None, tuple[str, ...]], str]:
    if command.argv[0] == "ip":
        line = ip_line(command)
        if line is not None:
            options = ip_options(command)
            assert options is not None
            return ("ip", command.netns, options), line
    found = restore_line(command)
    if found is not None:
        return ("restore", command.netns, (command.argv[0],)), found[1]
    return ("one", command.netns, ()), ""


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
            scope = _key_scope(key)
            if key.startswith("all:"):
                assert scope is not None
                found |= self.scope_read.get(scope, none) | self.scope_written.get(scope, none)
            else:
                found |= self.read.get(key, none) | self.written.get(key, none)
                if scope is not None:
                    found |= self.read.get(f"all:{scope}", none) | self.written.get(f"all:{scope}", none)
        for key in fx.reads:
            scope = _key_scope(key)
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
                scope = _key_scope(key)
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
        kind, line = _kind_and_line(command)
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


def order(steps: Sequence[Step]) -> list[int]:
    """The steps in an order that respects what each waits for (the lowest ready first)."""
    import heapq

    waiting, dependents = graph(steps)
    ready = [p for p, before in waiting.items() if not before]
    heapq.heapify(ready)
    found = []
    while ready:
        p = heapq.heappop(ready)
        found.append(p)
        for q in dependents.get(p, ()):
            waiting[q].discard(p)
            if not waiting[q]:
                heapq.heappush(ready, q)
    assert len(found) == len(steps), "the steps wait for each other in a cycle"
    return found
