"""Normalized network state, read back through an executor, for comparisons.

:func:`snapshot` reads ``ip netns list``, the files under ``/etc/netns`` and,
in the host and every named namespace, ``ip -j`` links, addresses and
routes, ``tc -j`` qdiscs, the forwarding sysctls, ``iptables-save`` /
``ip6tables-save`` and the native nft tables (``nft -s list ruleset``, without the
tables iptables-nft keeps, which ``iptables-save`` shows); it keeps what identifies an object
and drops what changes from run to run (ifindex, MACs, link-local IPv6,
counters, owner ids in tags, an empty table the kernel created lazily).
Two snapshots are equal when the networks are the same.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from netns_kit import iptables_save
from netns_kit.command import query
from netns_kit.executors.base import Executor, current
from netns_kit.firewall.nft import TABLE_PREFIX
from netns_kit.owner import TAG_PREFIX

SYSCTLS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
_TAG = re.compile(re.escape(TAG_PREFIX) + r"[A-Za-z0-9_.-]+")
_FLAGS = ("UP", "NOARP", "LOOPBACK")
#: tables of iptables-nft (shown by iptables-save, and made lazily by any look at them)
_XTABLES = {f"{family} {name}" for family in ("ip", "ip6") for name in ("filter", "nat", "mangle", "raw", "security")}
_OUR_TABLE = re.compile(re.escape(TABLE_PREFIX) + r"[A-Za-z0-9_.-]+")


def _untag(text: str | None) -> str | None:
    return _TAG.sub(TAG_PREFIX + "*", text) if text else text


def _links(data: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for link in data:
        info = link.get("linkinfo", {})
        slave = info.get("info_slave_kind")
        out.append(
            (
                link["ifname"],
                info.get("info_kind", link.get("link_type")),
                link.get("master"),
                slave,
                link.get("mtu"),
                tuple(f for f in link.get("flags", ()) if f in _FLAGS),
                _untag(link.get("ifalias")),
                link.get("link") if info.get("info_kind") == "veth" else None,
            )
        )
    return sorted(out, key=repr)


def _addresses(data: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted(
        (link["ifname"], f"{a['local']}/{a['prefixlen']}")
        for link in data
        for a in link.get("addr_info", ())
        if not a["local"].startswith("fe80:")
    )


def _routes(data: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            (r.get("dst"), r.get("gateway"), r.get("dev"), r.get("protocol"), r.get("metric"))
            for r in data
            if not str(r.get("dst", "")).startswith(("fe80:", "ff00:"))
        ),
        key=repr,
    )


def _qdiscs(data: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Qdiscs someone configured (not the kernel's defaults), without their numbered handles."""
    return sorted(
        (q.get("dev"), q.get("kind"), "root" if q.get("root") else q.get("parent"))
        for q in data
        if q.get("handle") != "0:"
    )


def iptables_rules(text: str) -> dict[str, list[str]]:
    """``iptables-save`` output as {table: [lines]}, normalized.

    Counters and comments are dropped, owner ids in tags masked, and a table
    holding only built-in chains with ACCEPT policies (created lazily by the
    kernel when anything looks at it) counts as absent. The text is read by
    :func:`netns_kit.iptables_save.parse` (``shlex`` words, never ``str.split``).
    """
    tables: dict[str, list[str]] = {}
    for table in iptables_save.parse(text):
        if not table.committed:
            continue
        if table.rules or any(chain.policy != "ACCEPT" for chain in table.chains):
            tables[table.name] = [f":{chain.name} {chain.policy or '-'}" for chain in table.chains] + [
                shlex.join(_untag(word) or word for word in rule.argv) for rule in table.rules
            ]
    return tables


def nft_tables(text: str) -> dict[str, list[str]]:
    """``nft -s list ruleset`` as {"FAMILY NAME": [lines]}, owner ids in table names and tags masked,
    iptables-nft's tables left out (see :func:`iptables_rules`)."""
    tables: dict[str, list[str]] = {}
    lines: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if raw.startswith("table "):
            # an owned table's line says "{ # progname nft" (nft 1.0.6)
            name = _OUR_TABLE.sub(TABLE_PREFIX + "*", line.removeprefix("table ").split("{")[0].strip())
            lines = None if name in _XTABLES else tables.setdefault(name, [])
        elif lines is not None and line and line != "}":
            lines.append(_untag(line) or line)
    return tables


def snapshot(executor: Executor | None = None, *, firewall: bool = True) -> dict[str, Any]:
    """The normalized state of the executor's host and of every named namespace."""
    executor = executor or current()

    def run(*argv: str, netns: str | None = None) -> str:
        result = executor.run(query(*argv, netns=netns), check=False)
        return result.stdout if result.ok else ""

    def json(*argv: str, netns: str | None = None) -> Any:
        result = executor.run(query("ip", "-j", *argv, netns=netns), check=False)
        return result.json() if result.ok else []

    names = sorted(entry["name"] for entry in json("netns", "list"))
    state: dict[str, Any] = {"netns": names, "etc_netns": sorted(run("find", "/etc/netns", "-mindepth", "1").split())}
    for netns in (None, *names):
        key = netns or "<host>"
        state[key] = {
            "links": _links(json("-d", "link", "show", netns=netns)),
            "addresses": _addresses(json("addr", "show", netns=netns)),
            "routes": _routes(json("-4", "route", "show", "table", "main", netns=netns))
            + _routes(json("-6", "route", "show", "table", "main", netns=netns)),
            "qdiscs": _qdiscs(_tc_json(executor, netns)),
            "sysctl": {k: run("sysctl", "-n", k, netns=netns).strip() for k in SYSCTLS},
        }
        if firewall:
            for tool in ("iptables-save", "ip6tables-save"):
                state[key][tool] = iptables_rules(run(tool, netns=netns))
            state[key]["nft"] = nft_tables(run("nft", "-s", "list", "ruleset", netns=netns))
    return state


def _tc_json(executor: Executor, netns: str | None) -> list[dict[str, Any]]:
    result = executor.run(query("tc", "-j", "qdisc", "show", netns=netns), check=False)
    data: list[dict[str, Any]] = result.json() if result.ok else []
    return data


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal)."""
    problems: list[str] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                walk(f"{path}/{key}", a.get(key), b.get(key))
        elif isinstance(a, list) and isinstance(b, list):
            gone = [x for x in a if x not in b]
            new = [x for x in b if x not in a]
            problems.extend(f"{path}: gone {x!r}" for x in gone)
            problems.extend(f"{path}: new {x!r}" for x in new)
        elif a != b:
            problems.append(f"{path}: {a!r} -> {b!r}")

    walk("", before, after)
    return problems
