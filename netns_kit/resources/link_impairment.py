"""An :class:`~netns_kit.impairment.Impairment` put on one veth end: ``tc`` and, for loss, maybe iptables.

::

    veth = VethPair("a-eth", "b-eth", netns="a", peer_netns="b", ...)
    slow = LinkImpairment.on(veth, {"rate": "10mbit"}, end="both")
    Topology([..., veth, *slow])

It acts on the packets LEAVING ``dev`` (a root qdisc is egress): ``tc qdisc
add dev DEV root ...`` to create, ``tc qdisc replace`` for :meth:`change`,
``tc qdisc del dev DEV root`` to remove. When loss goes through iptables it
is dropped where those packets arrive: on the ``peer`` end's ingress, in the
raw table's PREROUTING chain, so the sender sees ordinary loss (no error);
with ``backend="nft"``, in a chain of the owner's nft table at ``hook
prerouting priority raw`` (``numgen random mod 1000000 < N drop``).

Where the kernel has no netem, the userspace link emulator does what netem
would (:mod:`netns_kit.linkemu`): it is started in ``dev``'s namespace
serving NFQUEUE ``queue``, then a tagged mangle POSTROUTING rule sends what
leaves ``dev`` to it; teardown removes the rule, then stops it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from netns_kit.command import Command, change, query
from netns_kit.errors import ValidationError
from netns_kit.executors import capability
from netns_kit.executors.base import Executor
from netns_kit.firewall.backend import valid_backend
from netns_kit.firewall.droprule import Drops, TableHold, chain_name, let_go
from netns_kit.impairment import Impairment, to_impairment
from netns_kit.lifecycle.resource import Resource, _State
from netns_kit.linkemu import plan as emulator
from netns_kit.linkemu import probe
from netns_kit.resources.link import VethPair
from netns_kit.validate import to_name, valid_ifname, valid_optional_ifname, valid_optional_netns

ENDS = ("name", "peer", "both")
#: what the loss fallback asks of the nft backend: ``numgen`` (a random share)
LOSS_NEEDS = ("numgen",)


@attrs.define
class _ImpairState(_State):
    #: the impairment in effect after :meth:`LinkImpairment.change` (None: the one given)
    current: Impairment | None = None
    #: the loss fallback on nft: its hold on the owner's table in ``peer_netns``
    holds: dict[str | None, TableHold] = attrs.field(factory=dict)


def _key(command: Command) -> tuple[object, ...]:
    """What tells two rule commands apart: an ``nft -f -`` by its transaction, not its argv alone."""
    return (command.argv, command.netns, command.stdin)


def _valid_queue(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535):
        raise ValidationError("LinkImpairment.queue", value, "must be an NFQUEUE number from 0 to 65535")


def _valid_impairment(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Impairment):
        raise ValidationError("LinkImpairment.impairment", value, "must be an Impairment or a mapping of its settings")


@attrs.frozen
class LinkImpairment(Resource):
    """Impair the packets leaving ``dev`` (in ``netns``; ``None`` is the host).

    ``peer``/``peer_netns`` name the other end of the veth, where loss is
    dropped when it goes through iptables (``Impairment.loss_via``);
    :meth:`on` fills them in from a :class:`VethPair`. ``queue`` is the
    NFQUEUE number the userspace emulator serves in ``netns`` (by default
    one derived from ``dev``; set it when two impaired devices of one
    namespace would share it).
    """

    dev: str = attrs.field(validator=valid_ifname)
    impairment: Impairment = attrs.field(converter=to_impairment, validator=_valid_impairment)
    netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    peer: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_ifname)
    peer_netns: str | None = attrs.field(default=None, converter=to_name, validator=valid_optional_netns)
    queue: int | None = attrs.field(default=None, validator=_valid_queue, kw_only=True)
    #: where loss through iptables (``loss_via="iptables"``) is dropped: ``"iptables"``, ``"nft"``
    #: or ``"auto"`` (None: the topology's ``firewall=``, else the default)
    backend: str | None = attrs.field(default=None, validator=valid_backend, kw_only=True)
    _state: _ImpairState = attrs.field(factory=_ImpairState, init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.impairment:
            raise ValidationError("LinkImpairment.impairment", str(self.impairment), "must set at least one setting")

    @classmethod
    def on(
        cls, veth: VethPair, impairment: Impairment | Mapping[str, Any], *, end: str = "both", **kwargs: Any
    ) -> list[LinkImpairment]:
        """Impair one end of ``veth`` (``"name"``, ``"peer"``) or ``"both"`` (each direction)."""
        if end not in ENDS:
            raise ValidationError("LinkImpairment.end", end, f"must be one of {', '.join(ENDS)}")
        (a, a_ns), (b, b_ns) = veth.ends
        out = []
        if end in ("name", "both"):
            out.append(cls(a, impairment, netns=a_ns, peer=b, peer_netns=b_ns, **kwargs))
        if end in ("peer", "both"):
            out.append(cls(b, impairment, netns=b_ns, peer=a, peer_netns=a_ns, **kwargs))
        return out

    @property
    def current(self) -> Impairment:
        """The impairment in effect (the one given, or the last :meth:`change`)."""
        return self._state.current or self.impairment

    # -- commands --------------------------------------------------------------
    def _qdisc(self, verb: str, args: Sequence[str]) -> Command:
        remove = Command(("tc", "qdisc", "del", "dev", self.dev, "root"), netns=self.netns)
        return change("tc", "qdisc", verb, "dev", self.dev, "root", *args, netns=self.netns, undo=remove)

    @property
    def queue_num(self) -> int:
        """The NFQUEUE the userspace emulator serves for ``dev`` (``queue``, or one derived from ``dev``)."""
        return self.queue if self.queue is not None else emulator.default_queue(self.dev)

    def methods(self, impairment: Impairment, executor: Executor) -> tuple[str | None, str | None]:
        """What does ``impairment`` here: ``(emulation, loss)`` (see :meth:`Impairment.methods`)."""
        # Probe only when the answer matters: a pure rate limit never needs netem.
        if impairment.methods(netem_available=True) == impairment.methods(netem_available=False):
            return impairment.methods(netem_available=True)
        return impairment.methods(netem_available=capability.has_netem(executor))

    def _commands(self, impairment: Impairment, executor: Executor, *, verb: str) -> list[Command]:
        """The qdisc (``add`` or ``replace``), the emulator and the rules ``impairment`` needs."""
        emulation, loss = self.methods(impairment, executor)
        netem_loss = loss == "netem"
        emulated = emulation == "userspace"
        needs = ["loss"] if emulated and netem_loss else impairment.netem_settings(loss=netem_loss)
        if needs and (emulation == "netem" or netem_loss):
            settings = ", ".join(f"{n}={getattr(impairment, n)}" for n in needs)
            capability.require_netem(
                executor,
                f"LinkImpairment on {self.dev}: {settings}",
                "rate limits work without it (tbf), and so does everything else through the userspace "
                "emulator (via='userspace', loss_via='userspace' or 'iptables')",
            )
        commands = []
        args = impairment.qdisc_args(netem_loss=netem_loss, emulated=emulated)
        if args:
            commands.append(self._qdisc(verb, args))
        if emulated:
            settings = ", ".join(f"{k}={v}" for k, v in impairment.to_dict().items() if k not in ("rate", "burst"))
            probe.require_nfqueue(executor, f"LinkImpairment on {self.dev}: {settings}")
            commands += emulator.commands(
                impairment, dev=self.dev, queue=self.queue_num, netns=self.netns, loss=loss == "userspace",
                tag=executor.owner.tag,
            )  # fmt: skip
        if loss == "iptables":
            commands += self._drop_rules(impairment, executor)
        return commands

    def _drop_rules(self, impairment: Impairment, executor: Executor) -> list[Command]:
        if self.peer is None:
            raise ValidationError(
                "LinkImpairment.peer",
                None,
                f"must name the other end of {self.dev} for loss through iptables (it drops where packets "
                "arrive); use LinkImpairment.on(veth, ...), or a kernel with netem",
            )
        return self._loss_drops(impairment).plan(self.backend, executor, LOSS_NEEDS, self._state.holds)

    @property
    def loss_chain(self) -> str:
        """The own chain of the loss fallback on nft (``NK-LOSS-<hash of the ends>-RAW``, ``...-RAW-6``)."""
        return chain_name("LOSS", (self.dev, self.netns, self.peer, self.peer_netns), "RAW")

    def _loss_drops(self, impairment: Impairment) -> Drops:
        """Drop a random share of what arrives on ``peer``, IPv4 and IPv6, before conntrack (raw)."""
        assert self.peer is not None
        match = ("-i", self.peer, "-m", "statistic", "--mode", "random", "--probability", impairment.drop_probability)
        return Drops(self.loss_chain, ((4, match), (6, match)), self.peer_netns, chain="PREROUTING", table="raw")

    def plan(self, executor: Executor) -> list[Command]:
        return self._commands(self.impairment, executor, verb="add")

    def undo(self, executor: Executor, done: Sequence[Command], *, complete: bool) -> None:
        current, self._state.current = self._state.current, None
        if current is None:
            removal = [u for c in reversed(done) for u in c.undo]
        else:  # changed at run time: remove what is in effect now, whatever it is
            removal = [u for c in reversed(self._commands(current, executor, verb="add")) for u in c.undo]
        # then (nft) the owner's table, where the loss fallback was the last to use it
        removal = [u.tolerant() for u in removal] + let_go(self._state.holds, bool(done) or current is not None)
        if removal:
            executor.run_all(removal)

    # -- at run time -----------------------------------------------------------
    def change(self, impairment: Impairment | Mapping[str, Any], executor: Executor | None = None) -> None:
        """Put ``impairment`` in place of the current one (``tc qdisc replace``, no gap).

        Takes effect on the packets queued from then on; teardown removes
        whatever is in effect. ``Impairment()`` (nothing) removes it all.
        """
        executor = self._executor(executor)
        new = to_impairment(impairment)
        if not isinstance(new, Impairment):
            raise ValidationError("LinkImpairment.change", impairment, "must be an Impairment or a mapping")
        old = self._commands(self.current, executor, verb="add")
        planned = self._commands(new, executor, verb="replace")
        old_rules = [c for c in old if c.program != "tc"]  # and the emulator's start
        new_rules = [c for c in planned if c.program != "tc"]
        old_keys, new_keys = {_key(o) for o in old_rules}, {_key(n) for n in new_rules}
        commands = [c for c in planned if c.program == "tc"]
        if not commands and any(c.program == "tc" for c in old):
            commands.append(self._qdisc("add", ()).undo[0].tolerant())
        # only what differs: a new emulator replaces the old one under rules that stay
        # (between the two, the queue drops: fail-closed, never undelayed)
        removed = [c for c in old_rules if _key(c) not in new_keys]
        commands += [u.tolerant() for c in reversed(removed) for u in c.undo]
        commands += [c for c in new_rules if _key(c) not in old_keys]
        executor.run_all(commands)
        self._state.current = new

    def clear(self, executor: Executor | None = None) -> None:
        """Remove the impairment now (teardown then has nothing left to do)."""
        self.change(Impairment(), executor)

    def qdisc(self, executor: Executor | None = None) -> dict[str, Any] | None:
        """The root qdisc of ``dev`` as ``tc -j`` reports it (None: the default one)."""
        result = self._executor(executor).run(
            query("tc", "-j", "qdisc", "show", "dev", self.dev, "root", netns=self.netns)
        )
        data = [q for q in result.json() if q.get("root") and q.get("kind") not in ("noqueue", "pfifo_fast")]
        return data[0] if data else None

    def exists(self, executor: Executor | None = None) -> bool:
        found = self.qdisc(executor)
        return (found is not None and found.get("kind") in ("netem", "tbf")) or self.queue_rule(executor)

    def emulator_alive(self, executor: Executor | None = None) -> bool:
        """Whether an emulator serves this device's queue now (``python3 -m netns_kit.linkemu --status``).

        While the queue rule is in place and none does, the packets leaving ``dev`` are dropped
        (fail-closed: :mod:`netns_kit.linkemu`)."""
        status = query(*emulator.status_command(self.queue_num), netns=self.netns, ok_codes=(0, 1))
        return self._executor(executor).run(status).returncode == 0

    def loss_drops(self, executor: Executor | None = None) -> bool:
        """Whether the loss fallback's drops for the loss in effect are in place on ``peer``
        (read back: ``iptables -C`` each, or the chains of the owner's nft table, ``nft -j``)."""
        if self.peer is None or self.current.loss is None:
            return False
        return self._loss_drops(self.current).present(self.backend, self._executor(executor), LOSS_NEEDS)

    def queue_rule(self, executor: Executor | None = None) -> bool:
        """Whether the rule sending ``dev``'s packets to the emulator's queue is in place."""
        result = self._executor(executor).run(
            query("iptables", "-w", "-t", "mangle", "-S", "POSTROUTING", netns=self.netns), check=False
        )
        wanted = ("-o", self.dev, "--queue-num", str(self.queue_num))
        return any(all(w in shlex.split(line) for w in wanted) for line in result.stdout.splitlines())
