"""One tagged iptables DROP rule, built once for adding and for deleting.

Used by partitions (drop what comes from the other side) and by the loss
fallback (drop a random share of what arrives). The rule carries the owner's
tag as ``-m comment --comment netns_kit:...`` so crash cleanup finds it, is
inserted first in its chain (``-I``) so that no ACCEPT before it lets
packets through, and is deleted with the same spec (``-D``).
"""

from __future__ import annotations

from collections.abc import Sequence

from netns_kit.command import Command, change


def drop_rule(
    match: Sequence[str],
    *,
    tag: str,
    netns: str | None,
    chain: str = "INPUT",
    table: str = "filter",
    ipv6: bool = False,
) -> Command:
    """``iptables -w -t TABLE -I CHAIN MATCH... -m comment --comment TAG -j DROP`` and its ``-D``."""
    binary = "ip6tables" if ipv6 else "iptables"
    spec = (*match, "-m", "comment", "--comment", tag, "-j", "DROP")
    delete = Command((binary, "-w", "-t", table, "-D", chain, *spec), netns=netns)
    return change(binary, "-w", "-t", table, "-I", chain, *spec, netns=netns, undo=delete)
