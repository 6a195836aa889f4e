"""What a command reads and writes, as keys: when two commands may run in either order.

* ``ns:NAME``: the namespace NAME exists (written by ``ip netns add/del``,
  read by every command run in NAME or naming it with ``netns NAME``);
* ``dev:NS:NAME``: the device NAME in NS (``""`` is the host), with its
  addresses, flags and master;
* ``fw4:NS:TABLE`` / ``fw6:NS:TABLE``: the iptables / ip6tables rules of
  one table in NS (a jump only ever goes to a chain of its own table);
* ``sys:NS:forwarding``: the forwarding switches of NS (``ip_forward`` and the
  ``all.forwarding`` of either family: the kernel applies them to every device
  and to ``default``, so devices made later get them too, and the order against
  devices cannot matter). A write of one reads every firewall table of NS: the
  rules planned before it (a NAT's MASQUERADE and FORWARD accepts) are in place
  before anything is forwarded;
* ``all:NS``: everything in NS (routes, other sysctls: they depend on devices,
  a ``default`` value only on devices made after it); a sysctl of one device
  (``net.ipv4.conf.DEV.KEY``) is ``dev:NS:DEV``;
* ``*``: everything (a command netns_kit does not model).

Two commands conflict when one writes a key the other reads or writes
(``all:NS`` covers every key of NS, ``*`` covers all);
:func:`netns_kit.batching.schedule.schedule` keeps conflicting commands in plan order.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import attrs

from netns_kit import shape
from netns_kit.batching.lines import ip_words, step_kind
from netns_kit.command import Command

STAR = "*"


@attrs.frozen
class Effects:
    reads: frozenset[str]
    writes: frozenset[str]


_BARRIER = Effects(frozenset(), frozenset({STAR}))


def _scope(netns: str | None) -> str:
    return netns or ""


#: sysctls that switch forwarding on or off for a whole namespace
FORWARDING = frozenset({"net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv6.conf.all.forwarding"})


def key_scope(key: str) -> str | None:
    """The namespace a key lives in (None for ``ns:`` keys and ``*``)."""
    if key.startswith(("dev:", "fw4:", "fw6:", "sys:")):
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
    if command.program == "ip":
        found = _ip_effects(command)
    elif kind == "restore":
        fw = shape.planned_iptables(argv)
        if fw is not None:
            found = Effects(frozenset(), frozenset({f"fw{fw.family}:{_scope(command.netns)}:{fw.table}"}))
    elif kind == "nft":  # the owner's table: ordered with that namespace's iptables and its sysctls
        found = Effects(frozenset(), _firewall(_scope(command.netns)))
    elif (write := shape.sysctl_write(argv)) is not None:
        written = _sysctl_key(write.key, command.netns)
        reads = _firewall(_scope(command.netns)) if written.startswith("sys:") else frozenset()
        found = Effects(reads, frozenset({written}))
    if found is None:
        return _BARRIER
    return Effects(found.reads | inside, found.writes)


@functools.cache
def _firewall(here: str) -> frozenset[str]:
    """The keys of every firewall table of a namespace, both families."""
    tables = ("filter", "nat", "mangle", "raw", "security")
    return frozenset(f"fw{family}:{here}:{table}" for family in (4, 6) for table in tables)


def _sysctl_key(name: str, netns: str | None) -> str:
    """The key a sysctl write writes (see the module docstring)."""
    here = _scope(netns)
    # in the slash form, dots inside a part belong to it (a device eth0.10)
    parts = name.split("/") if "/" in name else name.split(".")
    if ".".join(parts) in FORWARDING:
        return f"sys:{here}:forwarding"
    per_device = len(parts) == 5 and parts[:3] in (["net", "ipv4", "conf"], ["net", "ipv6", "conf"])
    if per_device and parts[3] not in ("all", "default"):
        return f"dev:{here}:{parts[3]}"
    return f"all:{here}"


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
