"""What ``netns-kit --json`` prints: one object per command, ``{"schema":
"netns_kit.COMMAND/1", ...}``, made of data (objects with fields), never of the lines
the command prints for people. The schemas are documented in ``docs/guides/json.rst``;
a new field keeps the version, a field removed or changed in meaning bumps it."""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import attrs

from netns_kit.cli.place import Place
from netns_kit.command import Command
from netns_kit.ops import inventory
from netns_kit.ops.inventory import Inventory, Link, NftTable, Rule
from netns_kit.owner import Owner

#: the version every schema of this netns_kit has
VERSION = 1


def schema(kind: str) -> str:
    return f"netns_kit.{kind}/{VERSION}"


def emit(out: TextIO, kind: str, payload: Mapping[str, Any]) -> None:
    """Print ``payload`` as the JSON document of ``kind``, in one write."""
    out.write(json.dumps({"schema": schema(kind), **payload}, indent=2) + "\n")


def where(here: Place) -> dict[str, Any]:
    """``{"kind": "machine"}`` or ``{"kind": "sandbox", "holder_pid": 4242}``."""
    return {"kind": "machine" if here.holder_pid is None else "sandbox", "holder_pid": here.holder_pid}


def when(timestamp: float) -> str | None:
    """An epoch time as ISO 8601 in UTC (None for 0: not known)."""
    if not timestamp:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def link(item: Link) -> dict[str, Any]:
    return {"name": item.name, "netns": item.netns, "kind": item.kind, "peer_netns": item.peer_netns}


def rule(item: Rule) -> dict[str, Any]:
    return {
        "tool": item.tool,
        "netns": item.netns,
        "table": item.table,
        "chain": item.chain,
        "spec": list(item.spec),
        "target": item.target,
    }


def nft_table(item: NftTable) -> dict[str, Any]:
    return {
        "family": item.family,
        "name": item.name,
        "netns": item.netns,
        "chains": [{"name": c.name, "hook": c.hook, "priority": c.priority, "rules": c.rules} for c in item.chains],
        "rules": item.rules,
    }


def command(item: Command) -> dict[str, Any]:
    return {"argv": list(item.argv), "netns": item.netns, "line": item.line, "mutating": item.mutating}


def objects(found: Inventory, owners: Iterable[Owner]) -> dict[str, Any]:
    """The namespaces, links and rules ``found`` carries the tags of ``owners``, and their nft tables."""
    owners = list(owners)
    tags = {owner.tag for owner in owners}
    attached = {name: pid for owner in owners for name, pid in inventory.attached(found, owner).items()}
    return {
        "namespaces": sorted(name for name, alias in found.namespaces.items() if alias in tags),
        "attached": [{"name": name, "pid": int(pid)} for name, pid in sorted(attached.items())],
        "links": [link(item) for item in found.links if item.alias in tags],
        "rules": [rule(item) for item in found.rules if item.comment in tags],
        "nft_tables": [nft_table(item) for item in found.nft_tables if item.owner in owners],
    }


def value(item: Any) -> Any:
    """A field of a resource as JSON: numbers, strings, booleans and lists as they are;
    addresses, networks and other values as their text."""
    if item is None or isinstance(item, (bool, int, float, str)):
        return item
    if isinstance(item, (list, tuple, set, frozenset)):
        return [value(x) for x in item]
    if isinstance(item, Mapping):
        return {str(k): value(v) for k, v in item.items()}
    if attrs.has(type(item)):
        return {f.name: value(getattr(item, f.name)) for f in attrs.fields(type(item))}
    if isinstance(item, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return item.with_prefixlen
    return str(item)


def resource(table: str, index: int, item: Any, keys: Iterable[str]) -> dict[str, Any]:
    """One entry of a topology file: its table, place in it, class, and the value of
    each key the entry takes (``keys``: what the file may set, after the checks)."""
    return {
        "table": table,
        "index": index,
        "kind": type(item).__name__,
        "fields": {k: value(getattr(item, k)) for k in keys},
    }
