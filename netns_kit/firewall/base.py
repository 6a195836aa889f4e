"""What NAT rules and port forwards share: a namespace, own chains named from the spec,
checked deletes, and a look at the iptables backend before a real run.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import weakref
from collections.abc import Collection, Mapping, Sequence
from typing import Any, ClassVar, Self

import attrs

from netns_kit.command import Command, query
from netns_kit.errors import ValidationError
from netns_kit.executors.base import Executor
from netns_kit.firewall import backend, iptables, nft
from netns_kit.lifecycle import sysctl
from netns_kit.lifecycle.interfaces import Interfaces, Whole
from netns_kit.lifecycle.resource import Resource
from netns_kit.validate import field_name, to_name, valid_bool, valid_optional_netns

log = logging.getLogger("netns_kit")

#: the longest ``name=`` that leaves room for the prefix and the hook suffix
NAME_MAX = 16
_HOOKS = ("PRE", "OUT", "POST", "FWD", "RAW")

_checked: weakref.WeakKeyDictionary[Executor, set[tuple[str | None, int]]] = weakref.WeakKeyDictionary()


def valid_chain_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``name=``: a short word that goes into the chain names (``NK-NAT-<name>-POST``)."""
    if value is None:
        return
    field = field_name(instance, attribute)
    if not isinstance(value, str) or not value:
        raise ValidationError(field, value, "must be a non-empty string (it names the iptables chains)")
    if len(value) > NAME_MAX:
        rule = f"is {len(value)} chars; chain names hold {iptables.CHAIN_MAX}, which leaves {NAME_MAX} for the name"
        raise ValidationError(field, value, rule)
    if not all(c.isascii() and (c.isalnum() or c in "_-") for c in value):
        raise ValidationError(field, value, "must keep to [A-Za-z0-9_-] (it names the iptables chains)")


def public_network(field: str, network: Any) -> None:
    """Reject networks no NAT rule can sensibly apply to."""
    if network.is_multicast or network.is_loopback or network.is_link_local or network.is_unspecified:
        raise ValidationError(field, str(network), "must be a unicast subnet (not loopback, link-local or multicast)")


@attrs.frozen(kw_only=True)
class Firewall(Resource):
    """Base class of :class:`~netns_kit.firewall.nat.NatRule` and
    :class:`~netns_kit.firewall.portforward.PortForward`."""

    #: the namespace whose firewall this is (None: the executor's host)
    netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    #: a short word for the chain names (default: a hash of the spec)
    name: str | None = attrs.field(default=None, validator=valid_chain_name)
    #: add the FORWARD accepts the traffic needs (limited to the bridge and subnet)
    forward: bool = attrs.field(default=True, validator=valid_bool)
    #: ``"iptables"``, ``"nft"`` or ``"auto"`` (None: the topology's ``firewall=``, else iptables);
    #: not part of the spec, so the chain names are the same with either
    backend: str | None = attrs.field(default=None, validator=backend.valid_backend)

    KIND = "FW"
    #: what its rules need of the nft backend (:func:`netns_kit.firewall.nftchoice.choose`)
    needs: ClassVar[tuple[str, ...]] = ("nat", "forward")

    @property
    def version(self) -> int:
        raise NotImplementedError

    def _spec(self) -> tuple[Any, ...]:
        """The fields that define this resource (executor and adopt left out)."""
        return tuple(
            (a.name, str(getattr(self, a.name)))
            for a in attrs.fields(type(self))
            if a.init and a.name not in ("executor", "adopt", "name", "backend")
        )

    @functools.cached_property
    def id(self) -> str:
        """The name (or 10 hex digits of the spec's hash) in this resource's chain names."""
        if self.name is not None:
            return self.name
        return hashlib.sha256(repr((self.KIND, self._spec())).encode()).hexdigest()[:10]

    def chain(self, hook: str) -> str:
        """``NK-<KIND>-<id>-<HOOK>``: deterministic, unique per spec, at most 28 chars."""
        assert hook in _HOOKS
        return f"{iptables.CHAIN_PREFIX}{self.KIND}-{self.id}-{hook}"

    def chains(self) -> list[iptables.Chain]:
        raise NotImplementedError

    def extra(self, executor: Executor) -> list[Command]:
        """Commands beyond iptables (sysctls, bridge port flags), planned with their undo."""
        return []

    def named_interfaces(self) -> dict[str, str]:
        """The interfaces its rules match by name (``-o``/``-i``), by field: ``{"NatRule.out_interface": "eth0"}``."""
        return {}

    def named_bridges(self) -> dict[str, str]:
        """The bridges its rules name, by field (``{"NatRule.bridge": "br0"}``): a topology holding
        this resource must make them (:meth:`check_topology`)."""
        return {}

    def create(self, executor: Executor | None = None) -> Self:
        """Create it (a real run first says when an interface it names is not there)."""
        executor = self._executor(executor)
        look_for_interfaces(executor, [self])
        super().create(executor)
        backend.hold(self, executor, self.needs)  # on nft, the last made on its own deletes the owner's table
        return self

    def plan(self, executor: Executor) -> list[Command]:
        tag = iptables.comment(f"{type(self).__name__}.executor.owner.tag", executor.owner.tag)
        self._state.claims_released = False
        if backend.resolve(self.backend, executor, self.netns, self.needs) == "nft":
            table = backend.table(executor, self.backend, self.netns, self.needs)
            commands = [table.plan(self.chains(), tag, self.netns)]
        else:
            self._look_at_backend(executor)
            commands = [c for chain in self.chains() for c in chain.plan(tag, self.netns)]
        # switched on once the rules are in place (and so restored first on delete)
        return commands + self.extra(executor)

    def _undo_commands(self, done: Sequence[Command]) -> list[Command]:
        undo = [u for command in reversed(done) for u in command.undo]
        state = self._state
        if state.claims:
            # a shared sysctl is restored only by the last one relying on it (netns_kit.lifecycle.sysctl)
            state.claims_released = True
            return sysctl.release(state.claims, undo)
        if state.claims_released:
            return [c for c in undo if c.program != "sysctl"]
        return undo

    def undo(self, executor: Executor, done: Sequence[Command], *, complete: bool) -> None:
        iptables.checked_undo(executor, self._undo_commands(done) + backend.let_go(self))

    def undo_plan(self, done: Sequence[Command]) -> list[Command] | None:
        """The undo, for a batching executor (which checks a ``-D`` when its batch fails)."""
        return [u.tolerant() for u in self._undo_commands(done) + backend.let_go(self)]

    def undo_record(self, done: Sequence[Command]) -> list[Command] | None:
        """The undo for another process (its sysctls restored from their claims then)."""
        return [u for c in reversed(done) for u in c.undo if u.program != "sysctl"]

    def vanishes_with(self, doomed: frozenset[str]) -> tuple[tuple[str | None, str], ...] | None:
        return () if self.netns in doomed else None

    def exists(self, executor: Executor | None = None) -> bool:
        """True if the jump into this resource's first chain is there."""
        executor = self._executor(executor)
        chain = self.chains()[0]
        if backend.resolve(self.backend, executor, self.netns, self.needs) == "nft":
            table = backend.table(executor, self.backend, self.netns, self.needs)
            family = nft.families(chain.version, table.split)
            name = nft.chain_names(chain, table.split)[0][0]
            listing = ("nft", "list", "chain", family, table.name, name)
            look = Command(listing, netns=self.netns, mutating=False, ok_codes=(0, 1))
            return executor.run(look).returncode == 0
        argv = (*chain.base(), "-C", *chain.jump(chain.hooks[0], executor.owner.tag))
        return executor.run(Command(argv, netns=self.netns, mutating=False, ok_codes=(0, 1, 2))).returncode == 0

    def _look_at_backend(self, executor: Executor) -> None:
        """On a real run, warn (once per executor and namespace) when the other
        iptables backend holds rules that will shadow ours."""
        if executor.dry_run:
            return
        seen = _checked.setdefault(getattr(executor, "inner", executor), set())
        if (self.netns, self.version) in seen:
            return
        seen.add((self.netns, self.version))
        backend = iptables.detect(executor, self.netns, version=self.version)
        if backend.shadowing:
            log.warning("%s", backend.hint())

    def check_topology(self, topology: Whole) -> None:
        """No two firewalls make the same chains; ``bridge`` is a bridge ``topology`` makes."""
        chains = chains_of(topology)
        for name in (c.name for c in self.chains()):
            other = next((f for f in chains.get((self.netns, name), ()) if f is not self), None)
            if other is not None:
                raise ValidationError(
                    f"{type(self).__name__}.name",
                    self.id,
                    f"gives the same chains as another {type(other).__name__} in {self.netns or 'the host'}; "
                    "two rules need different specs or names",
                )
        for field, bridge in self.named_bridges().items():
            bridges = Interfaces.of(topology).bridges.get(self.netns, set())
            if bridge not in bridges:
                raise ValidationError(
                    field,
                    bridge,
                    f"is not a bridge of this topology in {self.netns or 'the host'} (have: {sorted(bridges)})",
                )


def look_for_interfaces(
    executor: Executor,
    firewalls: Sequence[Firewall],
    *,
    made: Mapping[str | None, Collection[str]] | None = None,
    new_namespaces: Collection[str] = (),
) -> list[str]:
    """On a real run, warn (``logging``, once per interface) about each interface the rules of
    ``firewalls`` match by name that is not there when they are made, and return the warnings.

    Not an error: ``-o NAME`` / ``-i NAME`` match by name, packet by packet, so such a rule
    acts from the moment an interface of that name appears, and some do appear later (a
    VPN's ``tun0``, a PPP link, one another topology makes). But a typo or a machine whose
    uplink is not ``eth0`` looks the same, and a NAT that masquerades nothing is silent.
    ``made``: the interfaces a topology makes, by namespace (they do not exist yet);
    ``new_namespaces``: those it makes (nothing else is in them but ``lo``). A dry-run
    never looks (it must not read the machine).
    """
    if executor.dry_run:
        return []
    made = made or {}
    missing: dict[tuple[str | None, str], list[str]] = {}
    for firewall in firewalls:
        for field, name in firewall.named_interfaces().items():
            if name not in made.get(firewall.netns, ()):
                fields = missing.setdefault((firewall.netns, name), [])
                if field not in fields:
                    fields.append(field)
    warnings: list[str] = []
    present: dict[str | None, set[str] | None] = {}
    for (netns, name), fields in missing.items():
        if netns not in present:
            present[netns] = {"lo"} if netns in new_namespaces else _links(executor, netns)
        there = present[netns]
        if there is None or name in there:
            continue  # cannot tell (the namespace cannot be read), or it is there
        names = sorted(there | set(made.get(netns, ())))
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        warning = (
            f"{', '.join(fields)} {name!r} is no interface of {netns or 'the host'} now (it has: {shown}); "
            "the rule matches it by name, so it acts only once an interface of that name appears "
            "(a VPN's tun0, say, or one made later); if none will, correct the name"
        )
        log.warning("%s", warning)
        warnings.append(warning)
    return warnings


def _links(executor: Executor, netns: str | None) -> set[str] | None:
    """The names of the links in ``netns`` (None: they cannot be read)."""
    if netns is None:
        devices = executor.host_devices()
        if devices is not None:
            return devices
    result = executor.run(query("ip", "-j", "link", "show", netns=netns), check=False)
    if not result.ok:
        return None
    return {str(link.get("ifname", "")) for link in result.json()}


def chains_of(topology: Whole) -> dict[tuple[str | None, str], list[Firewall]]:
    """(netns, chain name) -> the firewalls of ``topology`` making that chain, gathered once per
    change of ``topology`` (so checking N port forwards is O(N), not O(N²))."""
    resources = topology.resources
    key = (len(resources), id(resources[-1]) if resources else None)
    cached = _chains.get(topology)
    if cached is not None and cached[0] == key:
        return cached[1]
    chains: dict[tuple[str | None, str], list[Firewall]] = {}
    for firewall in resources:
        if isinstance(firewall, Firewall):
            for chain in firewall.chains():
                chains.setdefault((firewall.netns, chain.name), []).append(firewall)
    _chains[topology] = (key, chains)
    return chains


_chains: weakref.WeakKeyDictionary[
    Whole, tuple[tuple[int, int | None], dict[tuple[str | None, str], list[Firewall]]]
] = weakref.WeakKeyDictionary()
