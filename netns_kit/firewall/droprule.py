"""Tagged DROP rules, built once for adding and for deleting, on either firewall backend.

Used by partitions (drop what comes from the other side) and by the loss
fallback (drop a random share of what arrives). Every rule carries the
owner's tag so crash cleanup finds it.

iptables (:func:`drop_rule`): each rule is ``-m comment --comment TAG -j
DROP``, inserted first in its chain (``-I``) so that no ACCEPT before it lets
packets through, and deleted with the same spec (``-D``).

nft (:meth:`Drops.nft`): the rules of one resource in one namespace are ONE
transaction on the owner's table: the table (``add table``: nothing happens
when it is there), then a base chain per family at the hook and priority of
the iptables chain (filter INPUT: ``hook input priority filter``; raw
PREROUTING: ``hook prerouting priority raw``) holding the drops, each
commented with the tag::

    add table inet netns_kit_42.7
    add chain inet netns_kit_42.7 NK-PART-0c1d2e3f4a-IN { type filter hook input priority filter; policy accept; }
    add rule inet netns_kit_42.7 NK-PART-0c1d2e3f4a-IN ip saddr 10.0.0.2 counter drop comment "netns_kit:42.7"

undone by ``flush chain`` + ``delete chain`` of those chains only (the
other resources' chains in the table stay; the table too, unless this resource
was the last to use it: :class:`TableHold`). A ``drop`` in any base
chain is final in nftables, so these drops hold whatever other tables (or
iptables) accept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import attrs

from netns_kit import shape
from netns_kit.command import Command, change
from netns_kit.errors import CommandError, NetnsKitError
from netns_kit.executors.base import Executor
from netns_kit.firewall import backend, iptables, nft, nftread
from netns_kit.firewall.iptables import Chain, Hook, Rule


def drop_rule(
    match: Sequence[str],
    *,
    tag: str,
    netns: str | None,
    chain: str = "INPUT",
    table: str = "filter",
    ipv6: bool = False,
) -> Command:
    """``iptables -w -t TABLE -I CHAIN MATCH... -m comment --comment TAG -j DROP`` and its ``-D``."""
    binary = "ip6tables" if ipv6 else "iptables"
    spec = (*match, "-m", "comment", "--comment", tag, "-j", "DROP")
    delete = Command((binary, "-w", "-t", table, "-D", chain, *spec), netns=netns)
    return change(binary, "-w", "-t", table, "-I", chain, *spec, netns=netns, undo=delete)


def chain_name(kind: str, spec: object, hook: str) -> str:
    """``NK-<KIND>-<10 hex digits of the spec's hash>-<HOOK>``: stable, unique per spec, within
    iptables' 28 chars (and nft's 256) with the ``-6`` an IPv6 chain of an ``inet`` table adds."""
    digest = hashlib.sha256(repr((kind, spec)).encode()).hexdigest()[:10]
    return f"{iptables.CHAIN_PREFIX}{kind}-{digest}-{hook}"


class TableHold:
    """A resource's hold on the owner's nft table in one namespace (:func:`netns_kit.firewall.
    backend.hold`, which asks for ``netns``, ``backend``, ``adopted`` and ``_state``): while
    any holder is left the table stays; the last to let go deletes it. A partition holds it
    in two namespaces, so each namespace has one of these, kept in the resource's state."""

    adopted = False

    def __init__(self, netns: str | None, backend: str | None) -> None:
        self.netns = netns
        self.backend = backend

    @property
    def _state(self) -> TableHold:
        return self


def let_go(holds: dict[str | None, TableHold], done: bool) -> list[Command]:
    """The resource no longer keeps the owner's table in any namespace of ``holds``: the
    commands deleting each table it was the last holder of (none when ``done`` is False:
    nothing of it took effect)."""
    # asked again (a teardown planned an undo, dropped the plan, undid one by one): the same
    deletes = [c.tolerant() for hold in holds.values() for c in backend.let_go(hold)]
    return deletes if done else []


def tables_held(holds: dict[str | None, TableHold]) -> list[Command]:
    """The commands deleting the owner's table in every namespace of ``holds``, for the
    record of a whole teardown (:func:`netns_kit.firewall.backend.held`)."""
    return [c for hold in holds.values() for c in backend.held(hold)]


@attrs.frozen
class Drops:
    """The DROP rules of one resource in one namespace, at one built-in chain.

    ``rules``: ``(IP version, iptables matches)`` each, in order; ``name``: the own chain
    holding them on nft (an IPv6 one is ``name-6`` in an ``inet`` table).
    """

    name: str
    rules: tuple[tuple[int, tuple[str, ...]], ...]
    netns: str | None
    chain: str = "INPUT"
    table: str = "filter"

    def iptables(self, tag: str) -> list[Command]:
        """One :func:`drop_rule` per rule (iptables or ip6tables by its version)."""
        return [
            drop_rule(match, tag=tag, netns=self.netns, chain=self.chain, table=self.table, ipv6=version == 6)
            for version, match in self.rules
        ]

    def chains(self) -> list[Chain]:
        """The nft form: one own chain per family holding its drops, hooked in at ``chain``."""
        out = []
        for version in (4, 6):
            rules = tuple(Rule(match, ("-j", "DROP")) for v, match in self.rules if v == version)
            if rules:
                out.append(Chain(version, self.table, self.name, rules, (Hook(self.chain),)))
        return out

    def nft(self, owned: nft.Table, tag: str) -> Command:
        """ONE ``nft -f -``: the table (if missing), the chains and their drops, each counting
        what it drops (as iptables rules do); undone by flushing and deleting these chains
        (nothing else of the table)."""
        chains = self.chains()
        added = owned.add(chains, iptables.comment("Drops.tag", tag))
        lines = tuple(_counted(line) for line in added.lines)
        return nft.Transaction(lines).command(self.netns, undo=owned.remove(chains))

    def plan(
        self,
        requested: str | None,
        executor: Executor,
        needs: tuple[str, ...],
        holds: dict[str | None, TableHold] | None = None,
    ) -> list[Command]:
        """The commands on the backend ``requested`` resolves to in this namespace. On nft,
        the resource keeps the owner's table there (``holds``, by namespace: :func:`let_go`)."""
        tag = executor.owner.tag
        if backend.resolve(requested, executor, self.netns, needs) == "nft":
            if holds is not None:
                hold = holds.setdefault(self.netns, TableHold(self.netns, requested))
                backend.hold(hold, executor, needs)
            return [self.nft(backend.table(executor, requested, self.netns, needs), tag)]
        return self.iptables(tag)

    def present(self, requested: str | None, executor: Executor, needs: tuple[str, ...]) -> bool:
        """Whether every drop is in place: ``iptables -C`` each, or (nft) each chain of the
        owner's table there with as many drops carrying the tag as planned (``nft -j``)."""
        tag = executor.owner.tag
        if backend.resolve(requested, executor, self.netns, needs) != "nft":
            checks = [_check(rule) for rule in self.iptables(tag)]
            return all(executor.run(check, check=False).ok for check in checks)
        owned = backend.table(executor, requested, self.netns, needs)
        try:
            tables = {(t.family, t.name) for t in nftread.list_tables(executor, self.netns)}
            for chain in self.chains():
                family = nft.families(chain.version, owned.split)
                if (family, owned.name) not in tables:
                    return False
                ruleset = nftread.list_table(executor, family, owned.name, self.netns)
                for name, _, _ in nft.chain_names(chain, owned.split):
                    drops = [r for r in ruleset.tagged(tag) if r.chain == name and "drop" in r.verdicts]
                    if name not in {c.name for c in ruleset.chains} or len(drops) < len(chain.rules):
                        return False
        except CommandError:  # no nft, or the table went between the two reads
            return False
        return True


def _counted(line: str) -> str:
    """``add rule ... drop comment "TAG"`` as ``... counter drop comment "TAG"``: nft counts
    only where asked (``nft list ruleset`` then shows ``counter packets N bytes M drop``)."""
    head, verdict, tail = line.rpartition(' drop comment "')
    if not line.startswith("add rule ") or not verdict:
        return line
    return f"{head} counter{verdict}{tail}"


def _check(rule: Command) -> Command:
    """The ``-C`` query of a planned drop rule: is it there?"""
    argv = shape.with_verb(rule.argv, "-C")
    if argv is None:
        raise NetnsKitError(f"not an iptables rule: {rule.line}")
    return Command(argv, netns=rule.netns, mutating=False)
