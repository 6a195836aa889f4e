"""The native nftables backend: one table per owner, one atomic ``nft -f -`` per change.

It renders the same rule specs the iptables backend runs
(:class:`~netns_kit.firewall.iptables.Chain` with its rules and hooks), so a
resource describes its rules once. Each own chain becomes a BASE chain of the
owner's table, hooked in at the priority the iptables table has::

    add table inet netns_kit_42.7
    add chain inet netns_kit_42.7 NK-NAT-x-POST { type nat hook postrouting priority srcnat; policy accept; }
    add rule inet netns_kit_42.7 NK-NAT-x-POST ip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "netns_kit:42.7"

A base chain per resource (not a regular chain jumped to from a shared base
chain) makes every delete known up front: ``flush chain`` + ``delete chain``,
no rule handle to read back first, so a dry-run's teardown script and an undo
journal work as they do with iptables. Teardown of an owner is ``delete
table``. A transaction is all or nothing: one bad line and nothing changes.
The price: a hook holds at most 1024 base chains per namespace (the kernel's
MAX_HOOK_COUNT, shared with other tables; "Argument list too long" beyond), so
one namespace takes about a thousand port forwards, not more.

Families: ``inet`` (one table for IPv4 and IPv6; kernel 5.2 for its NAT) or,
where the kernel lacks it, ``ip`` and ``ip6`` tables of the same name
(``split=True``). In an ``inet`` table an IPv6 chain is named ``...-6`` and a
rule that matches no address says its family (``meta nfproto ipv4``), as the
separate iptables and ip6tables would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from netns_kit.command import Command, change
from netns_kit.errors import ValidationError
from netns_kit.firewall.iptables import Chain
from netns_kit.owner import Owner

#: every table netns_kit creates is named this plus the owner's id
TABLE_PREFIX = "netns_kit_"
#: how fine the random share of the loss fallback is (numgen random mod RESOLUTION < N)
RESOLUTION = 1_000_000

#: (iptables table, built-in chain) -> (nft chain type, hook, priority) of the base chain
HOOKS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("raw", "PREROUTING"): ("filter", "prerouting", "raw"),
    ("raw", "OUTPUT"): ("filter", "output", "raw"),
    ("mangle", "PREROUTING"): ("filter", "prerouting", "mangle"),
    ("mangle", "INPUT"): ("filter", "input", "mangle"),
    ("mangle", "FORWARD"): ("filter", "forward", "mangle"),
    ("mangle", "OUTPUT"): ("filter", "output", "mangle"),
    ("mangle", "POSTROUTING"): ("filter", "postrouting", "mangle"),
    ("nat", "PREROUTING"): ("nat", "prerouting", "dstnat"),
    # nft 1.0.6 knows "dstnat" for prerouting only; -100 is the same priority
    ("nat", "OUTPUT"): ("nat", "output", "-100"),
    ("nat", "INPUT"): ("nat", "input", "srcnat"),
    ("nat", "POSTROUTING"): ("nat", "postrouting", "srcnat"),
    ("filter", "INPUT"): ("filter", "input", "filter"),
    ("filter", "FORWARD"): ("filter", "forward", "filter"),
    ("filter", "OUTPUT"): ("filter", "output", "filter"),
}

_CT_STATES = {"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"}
_CT_STATUS = {"DNAT", "SNAT"}
_ADDRTYPES = {"LOCAL": "local", "UNICAST": "unicast", "BROADCAST": "broadcast", "MULTICAST": "multicast"}
_OBJECTS = {"table", "chain", "rule", "set", "map", "element", "flowtable", "counter", "quota", "limit", "ct"}
_FAMILIES = {"ip", "ip6", "inet", "arp", "bridge", "netdev"}
_VERDICTS = {"ACCEPT": "accept", "DROP": "drop", "RETURN": "return", "MASQUERADE": "masquerade"}


class Untranslatable(ValueError):
    """A rule spec uses an iptables option the nft renderer does not know."""


def table_name(owner: Owner) -> str:
    """``netns_kit_<owner id>``: the id's characters ([A-Za-z0-9_.-]) are all valid in an nft name."""
    return TABLE_PREFIX + owner.id


def owner_of(table: str) -> Owner | None:
    """The owner a table name belongs to, or None when it is not one of ours
    (``docker-bridges``, ``netns_kitten``, ``netns_kit_`` alone)."""
    if not table.startswith(TABLE_PREFIX):
        return None
    try:
        return Owner(table[len(TABLE_PREFIX) :])
    except ValueError:
        return None


def families(version: int, split: bool) -> str:
    """The nft family holding an IPv``version`` chain: ``inet``, or ``ip``/``ip6`` when split."""
    if not split:
        return "inet"
    return "ip6" if version == 6 else "ip"


def chain_names(chain: Chain, split: bool) -> list[tuple[str, tuple[str, ...], tuple[str, str, str]]]:
    """The nft base chains for ``chain``: (name, the hook's matches, (type, hook, priority)), one per hook."""
    suffix = "-6" if chain.version == 6 and not split else ""
    out = []
    for hook in chain.hooks:
        spec = HOOKS.get((chain.table, hook.builtin))
        if spec is None:
            raise Untranslatable(f"no nft hook for iptables {chain.table} {hook.builtin} (chain {chain.name})")
        name = chain.name + suffix if len(chain.hooks) == 1 else f"{chain.name}-{hook.builtin}{suffix}"
        out.append((name, hook.matches, spec))
    return out


def translate(words: Sequence[str], version: int, *, inet: bool = True, mark: str | None = None) -> str:
    """The nft expression for iptables matches and target (``-s X -o Y -j MASQUERADE``);
    with ``mark`` (an nft expression), an ACCEPT also sets the packet's mark to it."""
    ip = "ip6" if version == 6 else "ip"
    out: list[str] = []
    proto: str | None = None
    proto_used = False
    addressed = False
    negate = False
    i = 0

    def value() -> str:
        nonlocal i
        if i + 1 >= len(words):
            raise Untranslatable(f"{words[i]!r} without a value in {' '.join(words)!r}")
        i += 1
        return words[i]

    while i < len(words):
        word = words[i]
        op = "!= " if negate else ""
        if word == "!":
            negate = True
            i += 1
            continue
        if word in ("-s", "-d"):
            out.append(f"{ip} {'saddr' if word == '-s' else 'daddr'} {op}{value()}")
            addressed = True
        elif word in ("-i", "-o"):
            out.append(f'{"iifname" if word == "-i" else "oifname"} {op}"{value()}"')
        elif word == "-p":
            proto, proto_used = value(), False
            out.append(f"meta l4proto {op}{proto}")
        elif word in ("--dport", "--sport"):
            if proto is None:
                raise Untranslatable(f"{word} without -p in {' '.join(words)!r}")
            if not proto_used and out and out[-1] == f"meta l4proto {proto}":
                out.pop()  # "tcp dport 80" implies the protocol
            proto_used = True
            out.append(f"{proto} {word[2:]} {op}{value()}")
        elif word == "-m":
            module = value()
            if module not in ("tcp", "udp", "comment", "conntrack", "addrtype", "statistic"):
                raise Untranslatable(f"no nft translation for -m {module} in {' '.join(words)!r}")
        elif word == "--comment":
            value()  # the tag goes last, as nft's comment
        elif word == "--ctstate":
            states = value().split(",")
            if set(states) <= _CT_STATES:
                out.append(f"ct state {op}{','.join(s.lower() for s in states)}")
            elif set(states) <= _CT_STATUS:
                out.append(f"ct status {op}{','.join(s.lower() for s in states)}")
            else:
                raise Untranslatable(f"--ctstate {','.join(states)} mixes states and statuses")
        elif word in ("--dst-type", "--src-type"):
            kind = value()
            if kind not in _ADDRTYPES:
                raise Untranslatable(f"{word} {kind}")
            out.append(f"fib {'daddr' if word == '--dst-type' else 'saddr'} type {op}{_ADDRTYPES[kind]}")
        elif word == "--mode":
            if value() != "random":
                raise Untranslatable(f"--mode {words[i]} (only random)")
        elif word == "--probability":
            share = round(Decimal(value()) * RESOLUTION)
            out.append(f"numgen random mod {RESOLUTION} < {share}")
        elif word == "-j":
            out.append(_target(words[i + 1 :], ip, inet))
            if mark is not None and out[-1] == "accept":
                out[-1] = f"meta mark set {mark} accept"
            break
        else:
            raise Untranslatable(f"no nft translation for {word!r} in {' '.join(words)!r}")
        negate = False
        i += 1
    if inet and not addressed:
        out.insert(0, f"meta nfproto {'ipv6' if version == 6 else 'ipv4'}")
    return " ".join(out)


def _target(words: Sequence[str], ip: str, inet: bool) -> str:
    if not words:
        raise Untranslatable("-j without a target")
    target, options = words[0], list(words[1:])
    if target in _VERDICTS and not options:
        return _VERDICTS[target]
    if target == "DNAT" and len(options) == 2 and options[0] == "--to-destination":
        return f"dnat {ip + ' ' if inet else ''}to {options[1]}"
    if target == "NFQUEUE" and options[:1] == ["--queue-num"] and set(options[2:]) <= {"--queue-bypass"}:
        return f"queue num {options[1]}" + (" bypass" if "--queue-bypass" in options else "")
    raise Untranslatable(f"no nft translation for -j {' '.join(words)}")


def target(line: str) -> tuple[str, str, str, str] | None:
    """``(verb, object, family, table)`` of one line of an nft transaction
    (``add chain inet T c { ... }``: ``("add", "chain", "inet", "T")``); None for a line
    that names no table of a family (a blank line, ``add table T`` with the family left out)."""
    words = line.split(None, 4)
    if len(words) < 4 or words[1] not in _OBJECTS or words[2] not in _FAMILIES:
        return None
    return words[0], words[1], words[2], words[3]


@attrs.frozen
class Transaction:
    """Lines of nft commands applied as ONE transaction (``nft -f -``: all or nothing)."""

    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """For ``nft -f -`` (and a script's here-document)."""
        return "".join(line + "\n" for line in self.lines)

    @property
    def one_line(self) -> str:
        """For an ``nft -i`` session, which runs each line it reads as one transaction."""
        return " ; ".join(self.lines)

    def __add__(self, other: Transaction) -> Transaction:
        return Transaction(self.lines + other.lines)

    def command(self, netns: str | None = None, *, undo: Transaction | None = None) -> Command:
        """``nft -f -`` with this text on stdin (and the undo transaction as its undo)."""
        back = () if undo is None else (undo.command(netns).tolerant(),)
        return change("nft", "-f", "-", netns=netns, stdin=self.text, undo=back)


def _mark(value: str) -> str | None:
    """``"0x1/0x1"`` (or ``"0x1"``) as the nft expression setting those bits of the mark, or None."""
    bits, _, mask = value.partition("/")
    try:
        number, width = int(bits, 0), int(mask or "0xffffffff", 0)
    except ValueError:
        return None
    if not (0 <= number <= 0xFFFFFFFF and 0 < width <= 0xFFFFFFFF) or number & ~width:
        return None
    if width == 0xFFFFFFFF:
        return f"{number:#x}"
    keep = ~width & 0xFFFFFFFF
    return f"meta mark & {keep:#x} | {number:#x}" if number else f"meta mark & {keep:#x}"


def _valid_mark(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or _mark(value) is None):
        raise ValidationError("Table.accept_mark", value, "must be VALUE/MASK of 32 bits, VALUE within MASK (0x1/0x1)")


@attrs.frozen
class Table:
    """The owner's table(s): ``inet NAME``, or ``ip NAME`` + ``ip6 NAME`` when ``split``."""

    name: str
    split: bool = False
    #: made with ``flags owner`` by an ``nft -i`` holder (:mod:`netns_kit.firewall.nftowner`): every
    #: ``add table`` must say so (the kernel refuses one that would drop the flag)
    owned: bool = False
    #: ``VALUE/MASK`` (``"0x1/0x1"``): what another table's forward chain accepts (Docker 29's
    #: ``--bridge-accept-fwmark``): our forward accepts set it, from a chain at ``filter - 1``
    accept_mark: str | None = attrs.field(default=None, validator=_valid_mark)

    @classmethod
    def of(cls, owner: Owner, *, split: bool = False, owned: bool = False, accept_mark: str | None = None) -> Table:
        return cls(table_name(owner), split, owned, accept_mark)

    def create(self, family: str, *, owned: bool | None = None) -> str:
        """``add table FAMILY NAME`` (with its flags): nothing happens when it is there.
        ``owned`` (None: :attr:`owned`) says whether it carries ``flags owner``."""
        owned = self.owned if owned is None else owned
        return f"add table {family} {self.name}" + (" { flags owner ; }" if owned else "")

    @property
    def families(self) -> tuple[str, ...]:
        return ("ip", "ip6") if self.split else ("inet",)

    def add(self, chains: Iterable[Chain], tag: str) -> Transaction:
        """Create the table (if missing), then each chain, hooked in, with its rules tagged."""
        chains = list(chains)
        used = dict.fromkeys(families(c.version, self.split) for c in chains)
        lines = [self.create(family) for family in used]
        for chain in chains:
            family = families(chain.version, self.split)
            where = f"{family} {self.name}"
            for name, hook_matches, (kind, hook, priority) in chain_names(chain, self.split):
                mark = _mark(self.accept_mark) if self.accept_mark and hook == "forward" else None
                at = "filter - 1" if mark else priority  # before the others' filter chains: they see the mark
                lines.append(f"add chain {where} {name} {{ type {kind} hook {hook} priority {at}; policy accept; }}")
                for rule in chain.rules:
                    words = (*hook_matches, *rule.matches, *rule.target)
                    expr = translate(words, chain.version, inet=not self.split, mark=mark)
                    lines.append(f'add rule {where} {name} {expr} comment "{tag}"')
        return Transaction(tuple(lines))

    def remove(self, chains: Iterable[Chain]) -> Transaction:
        """Delete the chains (flushed first: older kernels refuse to delete a chain with rules)."""
        lines = []
        for chain in reversed(list(chains)):
            where = f"{families(chain.version, self.split)} {self.name}"
            for name, _, _ in reversed(chain_names(chain, self.split)):
                lines += [f"flush chain {where} {name}", f"delete chain {where} {name}"]
        return Transaction(tuple(lines))

    def delete(self) -> Transaction:
        """Delete the table(s) whole; ``add`` first, so that it succeeds when one is already gone."""
        lines = [
            line for family in self.families for line in (self.create(family), f"delete table {family} {self.name}")
        ]
        return Transaction(tuple(lines))

    def plan(self, chains: Sequence[Chain], tag: str, netns: str | None = None) -> Command:
        """ONE ``nft -f -`` that adds ``chains``; its undo removes them (one more)."""
        return self.add(chains, tag).command(netns, undo=self.remove(chains))
