"""The sysctl keys netns_kit changes, where their claims live, and the values that
may be written back (see :mod:`netns_kit.lifecycle.sysctl`)."""

from __future__ import annotations

import re

IPV4_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"

#: switches of a whole "host" that the kernel copies to ``default`` and every interface
SWITCHES = {IPV4_FORWARD: "4", IPV6_FORWARD: "6"}

#: where the claims live, under the ledger directory
CLAIMS_DIR = "sysctl"

#: the directory name of the host's claims ("-host-" cannot be a namespace name)
HOST = "-host-"

#: a general sysctl value: ASCII integers, as ``sysctl -n`` prints them
_INTEGERS = re.compile(r"-?[0-9]{1,20}(?:[ \t]+-?[0-9]{1,20}){0,7}", re.ASCII)

#: the last part of the name of keys that are 0 or 1 only
_BOOLEANS = ("ip_forward", "forwarding", "route_localnet")


def forwarding_key(version: int) -> str:
    """The switch that makes a namespace route between interfaces (IPv4 or IPv6)."""
    return IPV6_FORWARD if version == 6 else IPV4_FORWARD


def interface_key(family: str, dev: str, name: str) -> str:
    """``net.ipv4.conf.DEV.NAME``, in the slash form when DEV has a dot (``eth0.10``)."""
    if "." in dev:
        return f"net/{family}/conf/{dev}/{name}"
    return f"net.{family}.conf.{dev}.{name}"


def valid_value(key: str, value: str) -> bool:
    """Whether ``value`` may be written back to ``key`` (see the module doc): ``0`` or ``1``
    for the forwarding switches and ``route_localnet``, else ASCII integers."""
    if key in SWITCHES or key.replace("/", ".").rsplit(".", 1)[-1] in _BOOLEANS:
        return value in ("0", "1")
    return _INTEGERS.fullmatch(value) is not None
