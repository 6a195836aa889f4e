"""The shapes of the argv tuples netns_kit builds, read in one place (``argv[N]`` lives here only).

Code that needs to know what a command does (which program, the namespace it
runs in, the ip object and verb, the iptables table, verb and chain, the
sysctl key) asks here instead of indexing ``argv[N]``::

    >>> fw = iptables(("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE"))
    >>> fw.table, fw.verb, fw.chain, fw.spec, fw.family
    ('nat', '-A', 'POSTROUTING', ('-j', 'MASQUERADE'), 4)
    >>> ip(("ip", "-6", "link", "set", "dev", "v0", "up")).device
    'v0'
    >>> sysctl(("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
    Sysctl(key='net.ipv4.ip_forward', value='1')
    >>> in_netns(("ip", "netns", "exec", "ns1", "iptables-save"))
    ('ns1', ('iptables-save',))

:func:`planned_iptables`, :func:`sysctl_read` and :func:`sysctl_write` read only
the exact shapes netns_kit builds, and cheaply (the batcher asks for every
command of a topology).

Each reader returns ``None`` for an argv of another program or shape. The
shapes are named tuples (no attrs: :mod:`netns_kit.errors` reads the program
here, and stays cheap to import).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

#: iptables programs, each with its -legacy/-nft/-save/-restore variants
FIREWALL_TOOLS = ("iptables", "ip6tables")

#: the iptables commands (short and long) that take a chain (optional for the last six)
_IPTABLES_VERBS = {
    "-A": "-A", "--append": "-A", "-C": "-C", "--check": "-C", "-D": "-D", "--delete": "-D",
    "-I": "-I", "--insert": "-I", "-R": "-R", "--replace": "-R", "-N": "-N", "--new-chain": "-N",
    "-P": "-P", "--policy": "-P", "-E": "-E", "--rename-chain": "-E",
    "-F": "-F", "--flush": "-F", "-X": "-X", "--delete-chain": "-X", "-Z": "-Z", "--zero": "-Z",
    "-S": "-S", "--list-rules": "-S", "-L": "-L", "--list": "-L",
}  # fmt: skip
_CHAIN_OPTIONAL = frozenset({"-F", "-X", "-Z", "-S", "-L"})
#: ip's options that take a value (``ip -n NS``, ``ip -b FILE``...)
_IP_VALUED = frozenset({"-n", "-netns", "--netns", "-b", "-batch", "--batch", "-f", "-family", "-rc", "-l", "-loops"})


def program(argv: Sequence[str]) -> str:
    """The program run (``""`` for an empty argv)."""
    return argv[0] if argv else ""


def arguments(argv: Sequence[str]) -> tuple[str, ...]:
    """Every word after the program."""
    return tuple(argv[1:])


def firewall_family(argv: Sequence[str]) -> int | None:
    """4 or 6 for an iptables or ip6tables program (any variant: ``-save``, ``-nft``...)."""
    name = program(argv).rsplit("/", 1)[-1]
    if name.startswith("ip6tables"):
        return 6
    return 4 if name.startswith("iptables") else None


def in_netns(full_argv: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """The namespace a full argv runs in and the argv it runs there:
    ``ip netns exec NS ARGV...`` and ``ip|tc -n NS ARGS...`` name one; anything else runs in place."""
    words = tuple(full_argv)
    if len(words) >= 5 and words[:3] == ("ip", "netns", "exec"):
        return words[3], words[4:]
    if len(words) >= 3 and words[0] in ("ip", "tc") and words[1] in ("-n", "-netns", "--netns"):
        return words[2], (words[0], *words[3:])
    return None, words


class Iptables(NamedTuple):
    """``TOOL [-w] [-t TABLE] VERB [CHAIN] SPEC...`` (table ``filter`` when not named)."""

    tool: str
    table: str
    #: the short form: ``-A``, ``-D``, ``-N``, ``-F``, ``-X``...
    verb: str
    chain: str | None
    #: the words after the chain (a rule's match and target; a policy)
    spec: tuple[str, ...]

    @property
    def family(self) -> int:
        tool = self.tool
        if tool in {"iptables", "ip6tables"}:  # the batcher asks for each rule: no rsplit
            return 4 if tool == "iptables" else 6
        return 6 if tool.rsplit("/", 1)[-1].startswith("ip6tables") else 4

    @property
    def last(self) -> str | None:
        """The last word (a rule's comment or target; the chain when no spec follows it)."""
        return self.spec[-1] if self.spec else self.chain

    @property
    def from_verb(self) -> tuple[str, ...]:
        """The words from the verb on: ``-A CHAIN SPEC...`` (a line of ``iptables-restore``)."""
        return (self.verb, *self.spec) if self.chain is None else (self.verb, self.chain, *self.spec)


def iptables(argv: Sequence[str]) -> Iptables | None:
    """The table, verb and chain of an iptables/ip6tables command; None for others."""
    if firewall_family(argv) is None:
        return None
    table = "filter"
    words = tuple(argv)
    i = 1
    while i < len(words):
        word = words[i]
        if word in ("-t", "--table") and i + 1 < len(words):
            table, i = words[i + 1], i + 2
        elif word.startswith("--table="):
            table, i = word.partition("=")[2], i + 1
        elif word in _IPTABLES_VERBS:
            verb = _IPTABLES_VERBS[word]
            rest = words[i + 1 :]
            if not rest or (verb in _CHAIN_OPTIONAL and rest[0].startswith("-")):
                return Iptables(words[0], table, verb, None, rest)
            return Iptables(words[0], table, verb, rest[0], rest[1:])
        else:
            i += 1
    return None


_NEW = tuple.__new__
#: the short verbs :func:`planned_iptables` takes
_SHORT_VERBS = frozenset(_IPTABLES_VERBS.values())


@functools.lru_cache(maxsize=16384)
def planned_iptables(argv: tuple[str, ...]) -> Iptables | None:
    """``iptables|ip6tables -w -t TABLE VERB CHAIN [SPEC...]`` exactly, VERB a short one
    (the shape netns_kit plans); None for any other.

    The batcher asks several times for each of the thousands of rules of a
    topology: a few index reads (no option scan), and the last 16384 argvs
    (tuples: a ``Command.argv``) remembered (a hit costs a quarter of a miss)."""
    if (
        len(argv) < 6
        or argv[0] not in FIREWALL_TOOLS
        or argv[1] != "-w"
        or argv[2] != "-t"
        or argv[4] not in _SHORT_VERBS
    ):
        return None
    return _NEW(Iptables, (argv[0], argv[3], argv[4], argv[5], argv[6:]))  # NamedTuple's __new__ costs 1/3 more


def with_verb(fw_argv: Sequence[str], verb: str) -> tuple[str, ...] | None:
    """An iptables command with its verb swapped (``-A`` -> ``-C``: is the rule there?),
    every other word kept; None for an argv :func:`iptables` does not read."""
    words = tuple(fw_argv)
    found = _verb_index(words)
    return None if found is None else (*words[:found], verb, *words[found + 1 :])


def _verb_index(words: tuple[str, ...]) -> int | None:
    i = 1
    while i < len(words):
        word = words[i]
        if word in ("-t", "--table") and i + 1 < len(words):
            i += 2
        elif word in _IPTABLES_VERBS:
            return i
        else:
            i += 1
    return None


class Ip(NamedTuple):
    """``ip [OPTIONS] OBJECT [VERB [ARGS...]]``."""

    options: tuple[str, ...]
    object: str
    verb: str | None
    args: tuple[str, ...]

    @property
    def device(self) -> str | None:
        """The value after ``dev`` (``ip link set dev v0 up``, ``ip addr add A dev v0``)."""
        for key, value in zip(self.args, self.args[1:], strict=False):
            if key == "dev":
                return value
        return None


def ip(argv: Sequence[str]) -> Ip | None:
    """The object, verb and arguments of an ``ip`` command; None for others."""
    if program(argv) != "ip":
        return None
    words = tuple(argv)
    i = 1
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in _IP_VALUED else 1
    if i >= len(words):
        return None
    verb = words[i + 1] if i + 1 < len(words) else None
    return Ip(words[1:i], words[i], verb, words[i + 2 :])


def netns_attach(argv: Sequence[str]) -> tuple[str, str] | None:
    """``ip netns attach NAME PID``: (NAME, PID), the name given someone else's namespace; None for others."""
    shape = ip(argv)
    if shape is None or shape.options or (shape.object, shape.verb) != ("netns", "attach") or len(shape.args) != 2:
        return None
    name, pid = shape.args
    return name, pid


class Sysctl(NamedTuple):
    """A sysctl read (``sysctl -n KEY``: ``value`` None) or write (``sysctl -q -w KEY=VALUE``)."""

    key: str
    value: str | None


def sysctl(argv: Sequence[str]) -> Sysctl | None:
    """The key (and the value written) of a ``sysctl`` command; None for others."""
    if program(argv) != "sysctl":
        return None
    for word in argv[1:]:
        if not word.startswith("-"):
            key, sep, value = word.partition("=")
            return Sysctl(key, value if sep else None)
    return None


def sysctl_read(argv: Sequence[str]) -> str | None:
    """The key of ``sysctl -n KEY`` exactly (a value read); None for any other."""
    if len(argv) == 3 and argv[0] == "sysctl" and argv[1] == "-n":
        return argv[2]
    return None


def sysctl_write(argv: Sequence[str]) -> Sysctl | None:
    """Key and value of ``sysctl -q -w KEY=VALUE`` exactly (value ``""`` without a ``=``);
    None for any other."""
    if len(argv) == 4 and argv[0] == "sysctl" and argv[1] == "-q" and argv[2] == "-w":
        key, _, value = argv[3].partition("=")
        return Sysctl(key, value)
    return None
