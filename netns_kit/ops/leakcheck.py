"""Did a test leave something behind? Compare what exists before and after it.

Two ways, picked by whether the test has its network to itself:

* **exclusive** (a sandbox of its own): the whole normalized state
  (:func:`netns_kit.ops.state.snapshot`) before and after, so anything left
  behind is found, even what was made with raw ``ip``/``iptables`` commands;
* **shared** (the machine's own network, other test processes working
  alongside, as under pytest-xdist): only what this process made through
  netns_kit (its ledger of changes not undone yet, and the host's links and
  iptables rules that carry its owner tag and the host's nft table named
  after it, with its chains), so other processes' work is never blamed on
  this test. What was made without netns_kit is not seen.
"""

from __future__ import annotations

import copy
from typing import Any

from netns_kit.command import query
from netns_kit.executors import binaries
from netns_kit.executors.base import Executor
from netns_kit.firewall import nftread
from netns_kit.lifecycle import ledger
from netns_kit.ops import inventory, state

_FIREWALL = ("iptables-save", "ip6tables-save")
_STANDING = ("ok", "in-flight")
#: lines of ``nft -s list ruleset`` inside a table that are not rules
_NOT_RULES = ("chain ", "type ", "policy ", "flags ", "set ", "map ", "elements ", "#")


class LeakCheck:
    """``LeakCheck(executor, exclusive=...)`` records the state; :meth:`leaks` lists what is new."""

    def __init__(self, executor: Executor, *, exclusive: bool) -> None:
        self.executor = executor
        self.exclusive = exclusive
        self.before = self._take()

    def _take(self) -> Any:
        if self.exclusive:
            return state.snapshot(self.executor)
        return owned(self.executor)

    def leaks(self) -> list[str]:
        """What exists now and did not before (and, exclusive, what changed or vanished)."""
        after = self._take()
        if self.exclusive:
            return describe(self.before, after)
        return sorted(after - self.before)


def describe(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """:func:`netns_kit.ops.state.diff`, with one line per new or vanished namespace."""
    new = sorted(set(after["netns"]) - set(before["netns"]))
    gone = sorted(set(before["netns"]) - set(after["netns"]))
    a = {k: v for k, v in before.items() if k not in gone}
    b = {k: v for k, v in after.items() if k not in new}
    a["netns"] = b["netns"] = []
    tables: list[str] = []
    for key in sorted(set(a) & set(b) - {"netns"}):
        if not isinstance(a[key], dict):
            continue  # not a place: e.g. the files under /etc/netns
        a[key], b[key] = copy.deepcopy(a[key]), copy.deepcopy(b[key])
        for tool in _FIREWALL:
            _same_tables(a[key].get(tool, {}), b[key].get(tool, {}))
        tables += _nft_tables(key, a[key].get("nft", {}), b[key].get("nft", {}))
    changes = [_where(line) for line in state.diff(a, b)]
    return [f"namespace {name}" for name in new] + [f"namespace {name} is gone" for name in gone] + tables + changes


def _nft_tables(key: str, a: dict[str, list[str]], b: dict[str, list[str]]) -> list[str]:
    """A whole nft table only one side has (``inet netns_kit_*``): taken out of both, one line
    each, counting its chains and rules (a table on both sides is compared line by line)."""
    place = "the host" if key == "<host>" else f"namespace {key}"
    lines = []
    for table in sorted(set(a) ^ set(b)):
        what, body = ("new", b.pop(table)) if table in b else ("gone", a.pop(table))
        chains = sum(1 for line in body if line.startswith("chain "))
        rules = sum(1 for line in body if not line.startswith(_NOT_RULES))
        lines.append(f"{place}, nft: {what} table {table} ({chains} chains, {rules} rules)")
    return lines


def _where(line: str) -> str:
    """``/red/links: new ...`` -> ``namespace red, links: new ...``."""
    path, _, what = line.partition(": ")
    _, key, *rest = path.split("/")
    place = {"<host>": "the host", "etc_netns": "files under /etc/netns"}.get(key, f"namespace {key}")
    return f"{place}, {' '.join(rest)}: {what}"


def _same_tables(a: dict[str, list[str]], b: dict[str, list[str]]) -> None:
    """A table only one side has: give the other side its empty built-in chains,
    so the difference is the rules, one line each."""
    for table in set(a) ^ set(b):
        have = a.get(table, b.get(table, []))
        empty = [line for line in have if line.startswith(":")]
        a.setdefault(table, list(empty))
        b.setdefault(table, list(empty))


def owned(executor: Executor) -> set[str]:
    """What this owner made and has not undone, without entering any namespace.

    From the owner's own write-ahead ledgers: every change not undone yet
    (``ip netns add leaky``, say); on the host: links whose alias and
    iptables rules whose comment carry the owner's tag. (Looking inside
    namespaces would put a process in other owners' namespaces, where it
    would show up in their ``ip netns pids``.)
    """
    found: set[str] = set()
    directory = executor.ledger_dir
    for owner, path in ledger.files(directory) if directory is not None else ():
        if owner != executor.owner:
            continue
        try:
            entries = ledger.read(path)
        except FileNotFoundError:
            continue
        found.update(
            f"{nftread.describe(e.command) or e.command.line} (not undone)"
            for e in entries
            if e.state in _STANDING and e.command.undo
        )
    tag = executor.owner.tag
    links = executor.run(query("ip", "-j", "link", "show"), check=False)
    found.update(f"the host, link {link['ifname']}" for link in links.json() if link.get("ifalias") == tag)
    for tool in _FIREWALL:
        if binaries.which(tool) is None:  # where every process start finds it
            continue
        result = executor.run(query(tool), check=False)
        found.update(f"the host, {tool}: {line}" for line in result.stdout.splitlines() if tag in line)
    if binaries.which("nft") is not None:
        found.update(_nft_owned(executor))
    return found


def _nft_owned(executor: Executor) -> set[str]:
    """The host's nft table(s) named after this owner, each with its chains: one line per table
    and one per chain (the same count a left-behind iptables rule gets)."""
    found: set[str] = set()
    for table in inventory.read_nft_tables(executor, None):
        if table.owner != executor.owner:
            continue
        found.add(f"the host, {table}")
        found.update(f"the host, nft table {table.family} {table.name}: {chain}" for chain in table.chains)
    return found
