"""iptables and ip6tables: own chains, tagged rules, checked deletes, and the backend.

Every rule netns_kit adds lives in a chain of its own (``NK-...``), reached
by ONE tagged jump rule per built-in chain, and carries the owner's tag
(``-m comment --comment netns_kit:PID.START``)::

    iptables -w -t nat -N NK-NAT-3f1c0a9b2e-POST
    iptables -w -t nat -A NK-NAT-3f1c0a9b2e-POST -s 192.168.1.0/24 -o eth0 -m comment --comment TAG -j MASQUERADE
    iptables -w -t nat -A POSTROUTING -m comment --comment TAG -j NK-NAT-3f1c0a9b2e-POST

so deleting is: remove the jump (checked with ``-C`` first), flush the
chain, delete it. Rules without our tag and chain policies are never touched.

iptables-nft and iptables-legacy keep separate rule sets, and a packet must
pass both: :func:`detect` says which one ``iptables`` is and which rules the
other one holds that can shadow ours.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import attrs

from netns_kit import iptables_save
from netns_kit.command import Command, change, query
from netns_kit.errors import CommandError, ValidationError, classify
from netns_kit.executors.base import Executor

log = logging.getLogger("netns_kit")

#: every chain netns_kit creates starts with this
CHAIN_PREFIX = "NK-"
#: the kernel's limit (XT_EXTENSION_MAXNAMELEN - 1)
CHAIN_MAX = 28
#: the kernel's limit for a comment (XT_MAX_COMMENT_LEN - 1)
COMMENT_MAX = 255

LOOPBACK = {4: "127.0.0.0/8", 6: "::1/128"}


def tool(version: int) -> str:
    return "ip6tables" if version == 6 else "iptables"


@attrs.frozen
class Rule:
    """One rule of an own chain: matches, then the target (``-j ...`` and its options)."""

    matches: tuple[str, ...]
    target: tuple[str, ...]

    def argv(self, tag: str) -> tuple[str, ...]:
        return (*self.matches, "-m", "comment", "--comment", tag, *self.target)


@attrs.frozen
class Hook:
    """Where a chain is entered from: a built-in chain, with ``-I`` (first) or ``-A`` (last)."""

    builtin: str
    first: bool = False
    matches: tuple[str, ...] = ()


@attrs.frozen
class Chain:
    """An own chain in one table of one family, its rules and the built-in chains jumping to it."""

    version: int
    table: str
    name: str
    rules: tuple[Rule, ...]
    hooks: tuple[Hook, ...]

    def __attrs_post_init__(self) -> None:
        if not self.name.startswith(CHAIN_PREFIX) or len(self.name) > CHAIN_MAX:
            raise ValueError(f"chain name {self.name!r} must start with {CHAIN_PREFIX} and fit {CHAIN_MAX} chars")

    def base(self) -> tuple[str, ...]:
        return (tool(self.version), "-w", "-t", self.table)

    def jump(self, hook: Hook, tag: str) -> tuple[str, ...]:
        return (hook.builtin, *hook.matches, "-m", "comment", "--comment", tag, "-j", self.name)

    def plan(self, tag: str, netns: str | None) -> list[Command]:
        """Create the chain, fill it, then hook it in; the chain's undo flushes and deletes it."""
        base = self.base()
        drop = (Command((*base, "-F", self.name), netns=netns), Command((*base, "-X", self.name), netns=netns))
        commands = [change(*base, "-N", self.name, netns=netns, undo=drop)]
        commands += [change(*base, "-A", self.name, *rule.argv(tag), netns=netns) for rule in self.rules]
        for hook in self.hooks:
            spec = self.jump(hook, tag)
            add = (*base, "-I" if hook.first else "-A", *spec)
            commands.append(change(*add, netns=netns, undo=Command((*base, "-D", *spec), netns=netns)))
        return commands


def comment(field: str, tag: str) -> str:
    """The tag as an iptables comment: printable, no quotes, and short enough for the kernel."""
    if len(tag.encode()) > COMMENT_MAX:
        raise ValidationError(field, tag, f"is {len(tag.encode())} bytes; an iptables comment holds {COMMENT_MAX}")
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", tag):
        raise ValidationError(field, tag, "must keep to [A-Za-z0-9_.:-] to be an iptables comment")
    return tag


def checked_undo(executor: Executor, undo: Sequence[Command]) -> None:
    """Run ``undo`` idempotently (``missing_ok``): a rule, chain or sysctl already gone
    counts as done. The executor decides how a rule deletion is checked: one that runs a
    process per command runs a ``-D`` only after ``-C`` finds the rule; a batching one
    tries them all in one ``iptables-restore`` and checks each ``-D`` only when that fails."""
    executor.run_all([command.tolerant() for command in undo])


# -- the backend -----------------------------------------------------------------

_VERSION = re.compile(r"v(\d+(?:\.\d+)*)\s*(?:\((\w+)\))?")
#: the chains where a DROP of the other backend stops traffic our rules let through
_SHADOW_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "raw": ("PREROUTING", "OUTPUT"),
}


@attrs.frozen
class Backend:
    """Which iptables ``iptables`` is, and what the other backend holds that may shadow ours."""

    name: str  #: "nf_tables", "legacy" or "unknown"
    version: str
    family: int = 4
    #: policies and rules of the other backend that drop or reject in chains we use
    shadowing: tuple[str, ...] = ()

    @property
    def other(self) -> str | None:
        return {"nf_tables": "legacy", "legacy": "nft"}.get(self.name)

    def hint(self) -> str:
        if not self.shadowing:
            return ""
        save = f"{tool(self.family)}-{self.other}-save"
        return (
            f"{tool(self.family)} is {self.name} here, but iptables-{self.other} tables present hold rules "
            f"that shadow netns_kit's (a packet must pass both backends): {'; '.join(self.shadowing[:5])}. "
            f"See them with `{save}`; move them to {self.name} or use the same backend everywhere."
        )

    def error(self) -> CommandError:
        """The classified error for a shadowed backend (its hint names the rules)."""
        argv = (f"{tool(self.family)}-{self.other}-save",)
        error = classify(argv, 1, "", f"# Warning: iptables-{self.other} tables present")
        error.hint = f"{self.hint()} ({error.hint})"
        return error


def shadowing_rules(save_text: str) -> tuple[str, ...]:
    """Lines of ``iptables-save`` output (or of ``-S`` after a ``*TABLE`` line) that drop
    or reject traffic in chains we use."""
    found: list[str] = []
    for table in iptables_save.parse(save_text):
        chains = _SHADOW_CHAINS.get(table.name, ())
        found += [f"{table.name} {c.name} policy DROP" for c in table.chains if c.name in chains and c.policy == "DROP"]
        found += [
            f"{table.name}: {rule.line}"
            for rule in table.rules
            if rule.chain in chains and rule.option("-j") in ("DROP", "REJECT")
        ]
    return tuple(found)


def _other_rules(executor: Executor, program: str, netns: str | None) -> str | None:
    """The other backend's rules in the tables we care about, as ``iptables-save`` text.

    ``PROGRAM-save`` lists the tables through /proc/net/ip_tables_names, which a
    rootless sandbox may not read; ``PROGRAM -t TABLE -S`` works there.
    """
    saved = executor.run(query(f"{program}-save", netns=netns), check=False)
    if saved.ok:
        return saved.stdout
    text = []
    for table in _SHADOW_CHAINS:
        listed = executor.run(query(program, "-w", "-t", table, "-S", netns=netns), check=False)
        if listed.ok:
            text += [f"*{table}", listed.stdout]
    return "\n".join(text) if text else None


def detect(executor: Executor, netns: str | None = None, *, version: int = 4) -> Backend:
    """Ask ``iptables -V`` which backend it is, and read the other backend's rules."""
    result = executor.run(query(tool(version), "-V", netns=netns), check=False)
    match = _VERSION.search(result.stdout)
    if not result.ok or match is None:
        return Backend("unknown", "", version)
    name = match.group(2) or "legacy"
    backend = Backend(name, match.group(1), version)
    if backend.other is None:
        return backend
    other = _other_rules(executor, f"{tool(version)}-{backend.other}", netns)
    if other is None:
        return backend
    return attrs.evolve(backend, shadowing=shadowing_rules(other))


def check_backend(executor: Executor, netns: str | None = None, *, version: int = 4) -> Backend:
    """:func:`detect`, raising the classified :class:`CommandError` when the other
    backend holds rules that shadow ours."""
    backend = detect(executor, netns, version=version)
    if backend.shadowing:
        raise backend.error()
    return backend
