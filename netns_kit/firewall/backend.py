"""Which firewall backend a resource's rules go to: ``iptables`` (the default), ``nft``
(the owner's table, one ``nft -f -`` per change: :mod:`netns_kit.firewall.nft`) or
``auto`` (probed, :mod:`netns_kit.firewall.nftchoice`).

The first that says one wins (:func:`effective`): the resource's ``backend=``, its
topology's ``firewall=`` (given to the resource as its ``backend``), the executor's
``firewall=`` (:attr:`~netns_kit.executors.hook.Executor.firewall`), the environment
variable ``NETNS_KIT_FIREWALL``, and ``iptables``.

A dry-run cannot probe: there ``auto`` picks iptables (the printed script says so in
no way but its commands; ask for ``nft`` to print an nft script).
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import attrs

from netns_kit.command import Command
from netns_kit.errors import CommandError, UnsupportedError, ValidationError
from netns_kit.executors.base import Executor
from netns_kit.firewall import nft, nftchoice
from netns_kit.lifecycle.resource import Resource
from netns_kit.validate import field_name, to_name, valid_optional_netns

#: what a firewall resource may say (None: the topology's choice, else the executor's ...)
BACKENDS = nftchoice.BACKENDS
DEFAULT = "iptables"
#: the environment variable saying the backend where nothing else does
ENV = "NETNS_KIT_FIREWALL"

log = logging.getLogger("netns_kit")

#: how a warning of :func:`drop_warnings` says another table drops our forwarded traffic
DROPPED = "its forwarded traffic will be dropped by "

_probes: weakref.WeakKeyDictionary[Executor, dict[str | None, nftchoice.Probe]] = weakref.WeakKeyDictionary()


def valid_backend(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value not in BACKENDS:
        raise ValidationError(field_name(instance, attribute), value, f"must be one of {', '.join(BACKENDS)}")


def from_environment() -> str | None:
    """``$NETNS_KIT_FIREWALL`` (None when unset or empty); any other value than
    ``auto``, ``iptables`` or ``nft`` raises :class:`ValidationError` naming the variable."""
    value = os.environ.get(ENV, "")
    if not value:
        return None
    if value not in BACKENDS:
        raise ValidationError(
            f"the environment variable {ENV}", value, f"must be one of {', '.join(BACKENDS)} (or unset: iptables)"
        )
    return value


def default(executor: Executor | None) -> str:
    """The backend of a firewall that names none and whose topology names none: the
    executor's ``firewall``, else ``$NETNS_KIT_FIREWALL``, else ``iptables``."""
    if executor is not None and executor.firewall is not None:
        return executor.firewall
    return from_environment() or DEFAULT


def effective(requested: str | None, executor: Executor | None) -> str:
    """``requested`` (a resource's ``backend``), or when None the default (:func:`default`):
    ``"iptables"``, ``"nft"`` or ``"auto"`` (not resolved yet: :func:`resolve`)."""
    return requested if requested is not None else default(executor)


def probe(executor: Executor, netns: str | None) -> nftchoice.Probe:
    """What the machine has, probed once per executor and namespace."""
    seen = _probes.setdefault(getattr(executor, "inner", executor), {})
    if netns not in seen:
        seen[netns] = nftchoice.probe(executor, netns)
    return seen[netns]


def drop_warnings(executor: Executor, netns: str | None, needs: tuple[str, ...]) -> list[str]:
    """What would drop the forwarded traffic of nft rules asked for by name in ``netns``
    (``auto`` refuses such a machine by itself), in the words of ``doctor``: the table and
    chain, and what to do. Nft is used all the same (the drop may be meant, or fixed
    later); a dry-run reads nothing and warns of nothing. The probe is ``auto``'s (read
    once per executor and namespace)."""
    if executor.dry_run:
        return []
    try:
        found = probe(executor, netns)
    except CommandError:
        return []  # nft cannot be read here: its first transaction says so itself
    chosen = nftchoice.choose(found, "nft", needs=needs)
    where = f'firewall="nft" in {netns or "the host"}'
    said = []
    if chosen.backend is None:
        why = chosen.reason.removeprefix("nft cannot work here: ")
        said.append(f"{where}: {chosen.reason}" if why.startswith("missing ") else f"{where}: {DROPPED}{why}")
    return said + [f"{where}: {warning}" for warning in chosen.warnings]


def choice(requested: str | None, executor: Executor, netns: str | None, needs: tuple[str, ...]) -> nftchoice.Choice:
    """The backend for ``requested`` (None: :func:`effective`'s default) in ``netns``:
    ``auto`` probes (a dry-run: iptables)."""
    requested = effective(requested, executor)
    if requested != "auto":
        return nftchoice.Choice(requested, "asked for")
    if executor.dry_run:
        return nftchoice.Choice(DEFAULT, "a dry-run cannot probe: auto prints iptables")
    chosen = nftchoice.choose(probe(executor, netns), "auto", needs=needs)
    if chosen.backend is None:
        raise UnsupportedError("firewall backend", chosen.message())
    return chosen


def resolve(requested: str | None, executor: Executor, netns: str | None, needs: tuple[str, ...]) -> str:
    """``"iptables"`` or ``"nft"``."""
    backend = choice(requested, executor, netns, needs).backend
    assert backend is not None
    return backend


def table(executor: Executor, requested: str | None, netns: str | None, needs: tuple[str, ...]) -> nft.Table:
    """The executor's owner's table (``ip``/``ip6`` when auto found no ``inet`` NAT)."""
    return nft.Table.of(executor.owner, split=choice(requested, executor, netns, needs).split)


#: who keeps the owner's table in a namespace of a machine: (id of the executor's
#: ``underlying``, netns, table name) -> the ids of its holders' run-time states (firewalls
#: made on their own, by their ``create()``; topologies' :class:`OwnerTable` s)
_holders: dict[tuple[int, str | None, str], set[int]] = {}
#: a holder's state id -> per key it holds, the command deleting that table
_held: dict[int, dict[tuple[int, str | None, str], Command]] = {}
#: a holder's state id -> what its let-go said to run, until it holds again (a teardown
#: may plan an undo, drop that plan and undo one resource at a time: the second let-go
#: must say the same)
_said: dict[int, list[Command]] = {}


def hold(
    resource: Any, executor: Executor, needs: tuple[str, ...], namespaces: Iterable[str | None] | None = None
) -> None:
    """``resource`` (a firewall made on its own, a topology's :class:`OwnerTable`; anything
    with ``backend``, ``adopted`` and a run-time ``_state``) keeps the owner's table in each of
    ``namespaces`` (default: its ``netns``) where its rules go to nft: the last holder to let
    go (:func:`let_go`) deletes a table; while another holds it, it stays."""
    if resource.adopted:
        return
    state = id(resource._state)
    _said.pop(state, None)
    for netns in [resource.netns] if namespaces is None else namespaces:
        if resolve(resource.backend, executor, netns, needs) != "nft":
            continue
        owned = table(executor, resource.backend, netns, needs)
        if state not in _held:
            weakref.finalize(resource._state, _forget, state)  # a holder dropped unused holds nothing
        key = (id(executor.underlying), netns, owned.name)
        _holders.setdefault(key, set()).add(state)
        _held.setdefault(state, {})[key] = owned.delete().command(netns)


def let_go(resource: Any) -> list[Command]:
    """``resource`` no longer keeps the owner's tables: the commands deleting each table it
    was the last holder of (none else). Forgets it; a second call says the same again."""
    state = id(resource._state)
    if state in _held:
        held = _forget(state)
        _said[state] = [delete for key, delete in held.items() if key not in _holders]
    return list(_said.get(state, ()))


def held(resource: Any) -> list[Command]:
    """The commands deleting every table ``resource`` holds, whoever else holds it too: for
    a record another process carries out when the whole owner goes (the sealed teardown of
    ``netns-kit up``). Changes nothing here."""
    return list(_held.get(id(resource._state), {}).values())


def _forget(state: int) -> dict[tuple[int, str | None, str], Command]:
    _said.pop(state, None)
    held = _held.pop(state, {})
    for key in held:
        holders = _holders[key]
        holders.discard(state)
        if not holders:
            del _holders[key]
    return held


@attrs.frozen(kw_only=True)
class OwnerTable(Resource):
    """The owner's nft table in one namespace, made before the firewall resources of a
    topology that use nft and deleted after them (their removes leave it empty), unless
    firewalls made on their own still use it (:func:`hold`): the last of those deletes it."""

    netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    backend: str | None = attrs.field(default="nft", validator=valid_backend)
    needs: tuple[str, ...] = ("nat", "forward")

    #: after routes, before NAT rules (5) and port forwards (6)
    rank: ClassVar[int] = 4

    def plan(self, executor: Executor) -> list[Command]:
        if resolve(self.backend, executor, self.netns, self.needs) != "nft":
            return []
        if effective(self.backend, executor) == "nft":  # asked for by name: say what will drop
            for warning in drop_warnings(executor, self.netns, self.needs):
                log.warning("%s", warning)
        owned = table(executor, self.backend, self.netns, self.needs)
        lines = tuple(owned.create(family) for family in owned.families)
        hold(self, executor, self.needs)
        return [nft.Transaction(lines).command(self.netns, undo=owned.delete())]

    def undo(self, executor: Executor, done: Sequence[Command], *, complete: bool) -> None:
        undo = self.undo_plan(done)
        if undo:
            executor.run_all(undo)

    def undo_plan(self, done: Sequence[Command]) -> list[Command] | None:
        """The table deleted, unless a firewall made on its own still uses it (:func:`let_go`)."""
        deleted = let_go(self)
        return [c.tolerant() for c in deleted] if done else []

    def undo_record(self, done: Sequence[Command]) -> list[Command] | None:
        """For another process (the owner is gone then): the table deleted."""
        return [u for c in reversed(done) for u in c.undo]

    def vanishes_with(self, doomed: frozenset[str]) -> tuple[tuple[str | None, str], ...] | None:
        return () if self.netns in doomed else None


def owner_tables(firewalls: list[Any], executor: Executor | None = None) -> list[OwnerTable]:
    """One :class:`OwnerTable` per namespace whose firewalls ask for nft (or auto), theirs
    or, when they name none, ``executor``'s default (:func:`effective`)."""
    wanted: dict[str | None, tuple[str, set[str]]] = {}
    for firewall in firewalls:
        asked = effective(firewall.backend, executor)
        if asked in ("nft", "auto") and not firewall.adopted:
            backend, needs = wanted.setdefault(firewall.netns, (asked, set()))
            if backend != asked:
                wanted[firewall.netns] = ("nft" if "nft" in (backend, asked) else backend, needs)
            needs.update(firewall.needs)
    return [OwnerTable(netns=ns, backend=b, needs=tuple(sorted(n))) for ns, (b, n) in wanted.items()]
