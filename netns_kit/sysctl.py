"""Sysctls a resource turns on and restores: read the prior value when planning, undo to it.

The plan reads the value first (a query: a dry-run answers as a fresh kernel
would) and changes it only when it differs; the undo restores exactly that
prior value, so ``ip_forward`` or ``route_localnet`` come back as they were.
"""

from __future__ import annotations

from .command import Command, change, query
from .executor import Executor

IPV4_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"


def forwarding_key(version: int) -> str:
    """The switch that makes a namespace route between interfaces (IPv4 or IPv6)."""
    return IPV6_FORWARD if version == 6 else IPV4_FORWARD


def interface_key(family: str, dev: str, name: str) -> str:
    """``net.ipv4.conf.DEV.NAME``, in the slash form when DEV has a dot (``eth0.10``)."""
    if "." in dev:
        return f"net/{family}/conf/{dev}/{name}"
    return f"net.{family}.conf.{dev}.{name}"


def read(executor: Executor, key: str, netns: str | None) -> str | None:
    """The value of ``key`` in ``netns``, or None when it does not exist (yet)."""
    result = executor.run(query("sysctl", "-n", key, netns=netns), check=False)
    return result.stdout.strip() if result.ok else None


def plan_set(
    executor: Executor, key: str, value: str, netns: str | None, *, default: str | None = None
) -> list[Command]:
    """The command setting ``key`` to ``value`` with the prior value as its undo; nothing
    if it already has it.

    ``default`` is the key whose value a not-yet-existing key will start with
    (``net.ipv4.conf.default.route_localnet`` for an interface created later
    in the same plan).
    """
    prior = read(executor, key, netns)
    if prior is None and default is not None:
        prior = read(executor, default, netns)
    if prior == value:
        return []
    restore = Command(("sysctl", "-q", "-w", f"{key}={prior if prior is not None else '0'}"), netns=netns)
    return [change("sysctl", "-q", "-w", f"{key}={value}", netns=netns, undo=restore)]
