"""``netns-kit doctor``: can netns_kit work here, and what to change if not.

:func:`doctor` returns a :class:`Report` of :class:`Check` values, each with
a status (``ok``, ``warn``, ``fail``, ``skip``), a one-line summary, an
explanation and a fix. It only reads: it never changes the machine. Where it
looks is a :class:`Probes` value (which binaries exist, files under
``/proc``, the effective uid, whether a user namespace can be made, and the
executor that runs the read-only commands), so every branch can be tested,
and the pytest plugin can reuse :meth:`Report.reason` as its skip reason.

The checks live in :mod:`~netns_kit.ops.doctor_system` (programs, privileges,
forwarding, impairments) and :mod:`~netns_kit.ops.doctor_firewall` (the
iptables backends, the FORWARD policy, br_netfilter); the values in
:mod:`~netns_kit.ops.doctor_report`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import attrs

from netns_kit.command import Command
from netns_kit.executors import binaries
from netns_kit.executors.base import Executor
from netns_kit.executors.local import ShExecutor
from netns_kit.executors.sandbox import Sandbox
from netns_kit.linkemu import probe
from netns_kit.ops import doctor_firewall as firewall
from netns_kit.ops import doctor_system as system
from netns_kit.ops.doctor_report import FAIL, OK, SKIP, WARN, Check, Look, Report
from netns_kit.ops.doctor_system import PACKAGES

__all__ = ["FAIL", "OK", "PACKAGES", "SKIP", "WARN", "Check", "Probes", "Report", "doctor"]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _userns_works() -> tuple[bool, str]:
    """Really try to make a user + network namespace, as this user."""
    result = ShExecutor().run(
        Command(("unshare", "--user", "--map-root-user", "--net", "true"), mutating=False), check=False
    )
    return result.ok, result.stderr.strip()


def _rootless_impairments() -> tuple[str, str]:
    """netem and NFQUEUE probed in a throwaway rootless sandbox (the probes make namespaces)."""
    with Sandbox() as sandbox:
        return probe.backend(sandbox)


@attrs.define
class Probes:
    """Where doctor looks. Replace any field to simulate a machine."""

    # looked up when a Probes is made, so a test may monkeypatch the module functions;
    # which: the way every process start finds programs (PATH, then /usr/sbin, /sbin)
    which: Callable[[str], str | None] = attrs.field(factory=lambda: binaries.which)
    read: Callable[[str], str | None] = attrs.field(factory=lambda: _read)
    euid: Callable[[], int] = attrs.field(factory=lambda: os.geteuid)
    userns_works: Callable[[], tuple[bool, str]] = attrs.field(factory=lambda: _userns_works)
    #: probe what Impairment(via="auto") uses (netem, NFQUEUE: namespaces made and thrown away)
    impairments: bool = True
    #: what Impairment(via="auto") uses in a throwaway rootless sandbox (doctor without root)
    rootless_impairments: Callable[[], tuple[str, str]] = attrs.field(factory=lambda: _rootless_impairments)
    #: runs the read-only commands (versions, iptables); None: the real machine
    executor: Executor | None = None
    #: the executor is a sandbox (its firewall may be probed more freely)
    sandboxed: bool = False


def doctor(executor: Executor | None = None, *, probes: Probes | None = None) -> Report:
    """Check this machine (or, with a sandbox executor, the sandbox) for netns_kit."""
    probes = probes or Probes()
    if executor is not None:
        probes = attrs.evolve(probes, executor=executor, sandboxed=isinstance(executor, Sandbox))
    where = probes.executor if probes.executor is not None else ShExecutor()
    return Report(tuple(_checks(Look(probes, where))))


def _checks(look: Look) -> list[Check]:
    found = [system.package(look, *package) for package in system.PACKAGES]
    found.append(system.privileges(look))
    found.append(system.forwarding(look))
    have_iptables = all(look.p.which(b) for b in system.PACKAGES[1][1])
    if not have_iptables:
        why = "iptables is not installed"
        found += [Check(name, SKIP, why) for name in ("iptables backend", "other backend", "FORWARD policy")]
        found.append(firewall.br_netfilter(look, None))
        if look.p.impairments:
            found.append(system.impairments(look))
        return found
    backend = firewall.backend(look)
    found.append(backend)
    found.append(firewall.other_backend(look, backend))
    policy = firewall.forward_policy(look)
    found.append(policy)
    found.append(firewall.br_netfilter(look, policy))
    found.append(firewall.nft_choice(look))
    if look.p.impairments:
        found.append(system.impairments(look))
    return found
