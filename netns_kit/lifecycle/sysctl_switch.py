"""Reading and writing a sysctl, and the forwarding switches read back through
``ip -j netconf`` (see :mod:`netns_kit.lifecycle.sysctl`)."""

from __future__ import annotations

import logging

from netns_kit.command import Command, change, query
from netns_kit.errors import NetnsKitError
from netns_kit.executors.base import Executor
from netns_kit.sysctl_keys import SWITCHES, interface_key

log = logging.getLogger("netns_kit")

#: how many times a disagreeing interface is written again before giving up
_REPAIRS = 3


def read(executor: Executor, key: str, netns: str | None) -> str | None:
    """The value of ``key`` in ``netns``, or None when it does not exist (yet)."""
    result = executor.run(query("sysctl", "-n", key, netns=netns), check=False)
    return result.stdout.strip() if result.ok else None


def write(executor: Executor, key: str, value: str, netns: str | None, *, undo: Command | None = None) -> None:
    """Write ``key=value`` (call it under the claims lock for a switch) and, for a
    switch, check that ``default`` and every interface followed (see the module doc)."""
    executor.run(change("sysctl", "-q", "-w", f"{key}={value}", netns=netns, undo=undo or ()))
    if key in SWITCHES:
        settle(executor, key, value, netns, everywhere=True)


def netconf(executor: Executor, family: str, netns: str | None) -> dict[str, bool] | None:
    """``{interface, "all", "default": forwarding}`` of IPv``family`` (``ip -j netconf show``,
    one process); None when it cannot be told."""
    result = executor.run(query("ip", f"-{family}", "-j", "netconf", "show", netns=netns), check=False)
    try:
        entries = result.json() if result.ok else []
    except ValueError:
        return None
    seen = {str(e.get("interface")): bool(e.get("forwarding")) for e in entries if isinstance(e, dict)}
    return seen if "all" in seen and "default" in seen else None


def disagreeing(executor: Executor, key: str, value: str, netns: str | None) -> list[str] | None:
    """The places (``default`` or an interface) whose forwarding is not ``value`` while
    switch ``key`` is; None when it cannot be told (no ``ip netconf`` answer)."""
    seen = netconf(executor, SWITCHES[key], netns)
    if seen is None:
        return None
    on = value.strip() not in ("0", "")
    return [name for name, forwards in seen.items() if name != "all" and forwards != on]


def settle(executor: Executor, key: str, value: str, netns: str | None, *, everywhere: bool) -> None:
    """Make ``default`` and the interfaces agree with switch ``key`` = ``value`` (call it
    locked). ``everywhere``: right after our write, every interface must agree; else only
    a ``default`` that disagrees is taken as the sign of a broken switch."""
    family = "ipv6" if SWITCHES[key] == "6" else "ipv4"
    off = disagreeing(executor, key, value, netns)
    if not off or (not everywhere and "default" not in off):
        return
    where = netns or "the host"
    log.warning("%s=%s in %s, but forwarding differs on %s: writing them again", key, value, where, ", ".join(off))
    for _ in range(_REPAIRS):
        for name in off:
            each = interface_key(family, name, "forwarding")
            executor.run(Command(("sysctl", "-q", "-w", f"{each}={value}"), netns=netns, missing_ok=True), check=False)
        off = disagreeing(executor, key, value, netns)
        if not off:
            return
    raise NetnsKitError(
        f"{key} is {value} in {where}, but forwarding stays {'off' if value == '1' else 'on'} on "
        f"{', '.join(off[:10])}{' ...' if len(off) > 10 else ''} after writing them again: something "
        f"else writes forwarding at the same time (run `netns-kit doctor`); to set every interface "
        f"again: sysctl -w {key}={'0' if value == '1' else '1'} && sysctl -w {key}={value}"
    )


def forwarding_problem(executor: Executor, netns: str | None = None) -> str | None:
    """What is wrong with the forwarding switches where ``executor`` acts, or None.

    A switch reads one value while ``conf/default`` (or every interface) holds the
    other: what racing writes of it leave. ``ip_forward`` reading 1 then forwards
    nothing (and a later ``sysctl -w ip_forward=1`` changes nothing); reading 0, the
    interfaces may still forward.
    """
    problems = []
    for key, family in SWITCHES.items():
        value = read(executor, key, netns)
        seen = netconf(executor, family, netns) if value is not None else None
        if value is None or seen is None:
            continue
        on = value not in ("0", "")
        interfaces = [n for n, forwards in seen.items() if n not in ("all", "default") and forwards != on]
        total = len(seen) - 2
        if seen["default"] == on and (not interfaces or len(interfaces) < total):
            continue  # none, or a few interfaces set apart on purpose
        state = "off" if on else "on"
        places = ([] if seen["default"] == on else ["conf/default"]) + interfaces[:5]
        more = f" and {len(interfaces) - 5} more" if len(interfaces) > 5 else ""
        effect = "nothing is forwarded" if on else "traffic may still be forwarded"
        problems.append(
            f"{key} reads {value}, but forwarding is {state} on {', '.join(places)}{more}: {effect}; "
            f"fix: sysctl -w {key}={'0' if on else '1'} && sysctl -w {key}={value} "
            "(which sets conf/default and every interface again)"
        )
    return "\n".join(problems) or None
