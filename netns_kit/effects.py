"""What a command reads and writes, as keys: when two commands may run in either order.

* ``ns:NAME``: the namespace NAME exists (written by ``ip netns add/del``,
  read by every command run in NAME or naming it with ``netns NAME``);
* ``dev:NS:NAME``: the device NAME in NS (``""`` is the host), with its
  addresses, flags and master;
* ``fw4:NS:TABLE`` / ``fw6:NS:TABLE``: the iptables / ip6tables rules of
  one table in NS (a jump only ever goes to a chain of its own table);
* ``all:NS``: everything in NS (routes, sysctls: they depend on devices);
* ``*``: everything (a command netns_kit does not model).

Two commands conflict when one writes a key the other reads or writes
(``all:NS`` covers every key of NS, ``*`` covers all);
:func:`netns_kit.schedule.schedule` keeps conflicting commands in plan order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

from .batchline import ip_words, step_kind
from .command import Command

STAR = "*"


@attrs.frozen
class Effects:
    reads: frozenset[str]
    writes: frozenset[str]


_BARRIER = Effects(frozenset(), frozenset({STAR}))


def _scope(netns: str | None) -> str:
    return netns or ""


def key_scope(key: str) -> str | None:
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
