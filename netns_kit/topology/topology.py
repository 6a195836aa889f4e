"""Many resources applied as one unit: order, rollback, teardown.

::

    topo = Topology([Namespace("red"), Bridge("br0", addresses="10.0.0.254/24"), ...])
    with topo:              # up: all or nothing
        ...                 # use it
                            # down: everything undone, in reverse

A failure at any step undoes every step already done, in reverse, and
re-raises the original error (cleanup errors attached, never masking it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Self, TypeVar

import attrs

from netns_kit import signals
from netns_kit.command import query
from netns_kit.errors import NetnsKitTimeoutError, ValidationError
from netns_kit.executors.base import Executor, current
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall import backend
from netns_kit.firewall.base import Firewall, look_for_interfaces
from netns_kit.lifecycle.interfaces import Interfaces
from netns_kit.lifecycle.journal import Journal
from netns_kit.lifecycle.resource import Resource
from netns_kit.owner import Owner
from netns_kit.resources.link import Bridge, VethPair
from netns_kit.resources.namespace import Namespace
from netns_kit.topology import checks

R = TypeVar("R", bound=Resource)


def _rank(resource: Resource) -> int:
    return resource.rank


_backend_kinds: dict[type, bool] = {}


def _has_backend(kind: type) -> bool:
    """Whether resources of ``kind`` have a ``backend`` field (the topology's ``firewall`` is given to them)."""
    has = _backend_kinds.get(kind)
    if has is None:
        has = _backend_kinds[kind] = attrs.has(kind) and "backend" in attrs.fields_dict(kind)
    return has


class Topology:
    """A set of resources brought up and down as one unit.

    ``wait=True`` blocks after ``up()`` (up to ``wait_timeout`` seconds) until
    every link it created is up and no address is still tentative, so the
    first packet of a test does not get lost.
    """

    def __init__(
        self,
        resources: Iterable[Resource] = (),
        *,
        executor: Executor | None = None,
        wait: bool = False,
        wait_timeout: float = 10.0,
        firewall: str | None = None,
    ) -> None:
        self.resources: list[Resource] = []
        self._firewall: str | None = None
        self._given: set[int] = set()  # ids of the copies that took the topology's backend
        self.executor = executor
        self.wait = wait
        self.wait_timeout = wait_timeout
        self._journal: Journal | None = None
        self.firewall = firewall
        self._adopted: list[Resource] = []
        self._guard = signals.Guard()
        self.add(*resources)

    def __repr__(self) -> str:
        kinds = Counter(type(r).__name__ for r in self.resources)
        state = "up" if self.is_up else "down"
        return f"<Topology {state}: {', '.join(f'{n} {k}' for k, n in kinds.items())}>"

    def add(self, *resources: Resource) -> Self:
        for resource in resources:
            if not isinstance(resource, Resource):
                raise ValidationError("Topology.resources", resource, "must be netns_kit resources")
        self.resources.extend(self._give(r) for r in resources)
        self.check()
        return self

    @property
    def firewall(self) -> str | None:
        """The backend (``"iptables"``, ``"nft"``, ``"auto"``) of each resource with a ``backend``
        field that names none (None: the executor's ``firewall``, else ``$NETNS_KIT_FIREWALL``, else
        iptables); set it before ``up()``: such resources are replaced by copies saying it."""
        return self._firewall

    @firewall.setter
    def firewall(self, value: str | None) -> None:
        if value is not None and value not in backend.BACKENDS:
            raise ValidationError("Topology.firewall", value, f"must be one of {', '.join(backend.BACKENDS)}")
        if self._journal is not None:
            raise ValidationError("Topology.firewall", value, "cannot change while the topology is up")
        self._firewall = value
        self.resources = [self._give(r) for r in self.resources]

    def _give(self, resource: Resource) -> Resource:
        """``resource``, or a copy with the topology's backend if it has a ``backend`` field
        (a firewall, a partition ...) that names none."""
        if not _has_backend(type(resource)):
            return resource
        kind: Any = resource  # any resource kind with the field
        if kind.backend == self._firewall:
            return resource
        if kind.backend is not None and id(resource) not in self._given:
            return resource
        self._given.discard(id(resource))
        copy: Resource = attrs.evolve(kind, backend=self._firewall)
        if self._firewall is not None:
            self._given.add(id(copy))
        return copy

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.ordered())

    def of_type(self, cls: type[R]) -> list[R]:
        return [r for r in self.resources if isinstance(r, cls)]

    def namespace(self, name: str) -> Namespace:
        """The namespace called ``name`` (for ``run``, ``popen``, ``ping`` ...)."""
        for ns in self.of_type(Namespace):
            if ns.name == name:
                return ns
        raise KeyError(name)

    __getitem__ = namespace

    def ordered(self) -> list[Resource]:
        """Resources in creation order: by :attr:`Resource.rank <netns_kit.lifecycle.resource.Resource.rank>`
        (namespaces, bridges, veths, addresses, routes, NAT, forwards, the rest), else as given."""
        return sorted(self.resources, key=_rank)

    # -- checks done before anything runs --------------------------------------
    def check(self) -> None:
        """Raise :class:`ValidationError` for what cannot work as a whole (:mod:`netns_kit.topology.checks`)."""
        checks.check(self, self.resources)

    # -- life cycle ----------------------------------------------------------
    @property
    def is_up(self) -> bool:
        return self._journal is not None

    @property
    def journal(self) -> Journal | None:
        """What :meth:`up` did, as its journal (None while down): for tools that keep
        a record of it (``netns-kit up`` seals its ledger: :mod:`netns_kit.ops.quickdown`)."""
        return self._journal

    def _executor(self, executor: Executor | None = None) -> Executor:
        return executor or self.executor or current()

    def up(self, executor: Executor | None = None) -> Self:
        """Create everything, in order; on failure undo it all and re-raise."""
        if self._journal is not None:
            raise ValidationError("Topology", self, "is already up")
        executor = self._executor(executor)
        journal = Journal(executor)
        resources = self.ordered()
        with signals.terminate_cleanly():  # SIGTERM half-way: rolled back, not left half-made
            try:
                # what is there already and says adopt=True is used as it is (one look each)
                self._adopted = [r for r in resources if r.adopts(executor)]
                self._look_for_interfaces(executor)
                journal.apply_all(self._with_tables([r for r in resources if not r.adopted], executor))  # rolls back
                self._journal = journal
            except BaseException as error:
                self._journal = None
                self._let_go()
                if not journal.units:  # rolled back already (a failed run)
                    raise
                # a SIGTERM landing after the run, before the topology knew it was up
                journal.fail(error)
            if self.wait:
                try:
                    self.wait_ready(timeout=self.wait_timeout, executor=executor)
                except BaseException as error:
                    self._journal = None
                    self._let_go()
                    journal.fail(error)
        return self

    @staticmethod
    def _with_tables(resources: list[Resource], executor: Executor) -> list[Resource]:
        """``resources`` and the owner's nft table in each namespace whose firewalls use nft,
        by their own choice or ``executor``'s default (made before them, deleted after them)."""
        tables = backend.owner_tables([r for r in resources if isinstance(r, Firewall)], executor)
        return sorted([*resources, *tables], key=_rank) if tables else resources

    def _look_for_interfaces(self, executor: Executor) -> None:
        """Warn about interfaces firewall rules name that neither exist nor are made here."""
        made = Interfaces.of(self).made
        new = {ns.name for ns in self.of_type(Namespace) if not ns.adopted}
        rules = [r for r in self.of_type(Firewall) if not r.adopted]
        look_for_interfaces(executor, rules, made=made, new_namespaces=new)

    def down(self) -> None:
        """Undo everything ``up()`` did, in reverse order (a no-op when down)."""
        # held back from here: a SIGTERM between taking the journal and undoing it left all
        with signals.shielded():
            journal, self._journal = self._journal, None
            try:
                if journal is not None:
                    journal.close()
            finally:
                self._let_go()

    def _let_go(self) -> None:
        """Forget the adopted resources (they are never deleted)."""
        for resource in self._adopted:
            resource.delete()  # an adopted resource's delete only forgets it
        self._adopted = []

    def __enter__(self) -> Self:
        # while the block runs, SIGTERM unwinds it (and so tears down): see netns_kit.signals
        self._guard.enter()
        try:
            return self.up()
        except BaseException:
            try:
                self.down()  # a SIGTERM between up() returning and the block: no __exit__ then
            finally:
                self._guard.exit()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.down()
        except BaseException:
            if self._journal is not None:  # a signal landed before down() could hold it back
                self.down()
            raise
        finally:
            self._guard.exit()

    def plan(self, *, owner: Owner | None = None) -> Recorder:
        """A dry-run of ``up()``: a :class:`Recorder` holding the commands.

        ``topo.plan().script()`` is the set-up script and
        ``topo.plan().teardown_script()`` the tear-down script. The tags in
        it name ``owner`` (default: ``dry-run``). The firewall backend a resource and this
        topology leave to the executor is the one of ``up()``'s (``executor=``, else the one in
        effect: :attr:`~netns_kit.executors.hook.Executor.firewall`).
        """
        recorder = Recorder(owner=owner, firewall=self._executor().firewall)
        Journal(recorder).apply_all(self._with_tables(self.ordered(), recorder))
        return recorder

    # -- readiness -------------------------------------------------------------
    def wait_ready(self, timeout: float = 10.0, executor: Executor | None = None) -> None:
        """Block until the links this topology made are up and no address is tentative."""
        executor = self._executor(executor)
        if executor.dry_run:
            return
        expected: dict[str | None, set[str]] = {}
        for veth in self.of_type(VethPair):
            if veth.up:
                expected.setdefault(veth.netns, set()).add(veth.name)
                expected.setdefault(veth.peer_netns, set()).add(veth.peer)
        for bridge in self.of_type(Bridge):
            expected.setdefault(bridge.netns, set())
        deadline = time.monotonic() + timeout
        pending = dict(expected)
        while pending:
            for netns, names in list(pending.items()):
                result = executor.run(query("ip", "-j", "addr", "show", netns=netns), check=False)
                if result.ok and _ready(result.json(), names):
                    del pending[netns]
            if not pending:
                return
            if time.monotonic() >= deadline:
                where = ", ".join(n or "the host" for n in pending)
                raise NetnsKitTimeoutError(f"links not ready after {timeout:g} s in: {where}")
            time.sleep(0.01)


def _ready(links: list[dict[str, Any]], names: set[str]) -> bool:
    seen = {link["ifname"]: link for link in links}
    for name in names:
        link = seen.get(name)
        if link is None or link.get("operstate") not in ("UP", "UNKNOWN"):
            return False
    # link-local IPv6 addresses stay tentative for a while (DAD); they carry no test traffic
    return not any(
        info.get("tentative") and not str(info.get("local", "")).startswith("fe80:")
        for link in links
        for info in link.get("addr_info", ())
    )
