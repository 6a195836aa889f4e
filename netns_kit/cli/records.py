"""What the records of a place say about its topologies: whether one recorded as up
is gone (:func:`gone`), and the list ``netns-kit ls`` prints (:func:`listing`), read
from the ledgers and origin records (files: no process) and one ``ip netns list``."""

from __future__ import annotations

from typing import Any, TextIO

from netns_kit.cli.output import lines
from netns_kit.cli.place import Place, forget, origin
from netns_kit.command import query
from netns_kit.firewall.nftread import tables_in
from netns_kit.lifecycle import sysctl
from netns_kit.lifecycle.ledger import created_by
from netns_kit.ops import cleanup as opscleanup
from netns_kit.ops import inventory
from netns_kit.owner import Owner


def gone(here: Place, owner: Owner, found: inventory.Inventory | None = None) -> bool:
    """Whether ``owner``'s ledgers say it is up ``here`` while nothing of it is: what they
    record making carries its tag (a namespace, a link, a rule; an nft table its name), and no such object nor
    a claim on a shared switch of it is left. So it was taken down without netns-kit
    (the printed teardown, ``netns-kit plan --down FILE | sh``, or by hand). A ledger
    that made nothing tagged proves nothing either way: it is not called gone."""
    if found is None:
        found = inventory.scan(here.executor)
    tag = owner.tag
    standing = [e.command for lf in found.ledgers if lf.owner == owner for e in lf.standing]
    if not any(created_by(command) or tag in command.argv or tables_in(command) for command in standing):
        return False
    if any(alias == tag for alias in found.namespaces.values()):
        return False
    if any(link.alias == tag for link in found.links) or any(rule.comment == tag for rule in found.rules):
        return False
    if any(table.owner == owner for table in found.nft_tables):
        return False
    return not sysctl.leftovers(here.executor, owner)


def forget_gone(here: Place, owner: Owner, out: TextIO) -> None:
    """Drop the records of ``owner``, gone (:func:`gone`), before it is brought up again."""
    report = opscleanup.cleanup(here.executor, owner=owner)  # its ledgers; what else they still prove is there
    forget(here.executor, owner)
    print(
        f"up: note: {owner.id} was recorded as up {here.where}, but nothing of it is there any more "
        "(taken down without netns-kit, e.g. by the printed teardown): its records are dropped",
        file=out,
    )
    lines(out, report.lines())


def listing(here: Place) -> list[dict[str, Any]]:
    """One row per owner with a ledger ``here``: the topologies up (and the leftovers).

    ``objects`` counts what its ledgers record making (namespaces, links, nft tables, and
    the other changes in effect); ``state`` is ``alive`` when its process runs (or, for a named
    owner, ``up``: a namespace or link it made is there), else ``leftover``."""
    listed = here.executor.run(query("ip", "-j", "netns", "list"), check=False)
    present = {entry["name"] for entry in (listed.json() or [])} if listed.ok else set()
    rows: dict[Owner, dict[str, Any]] = {}
    for lf in inventory.read_ledgers(here.executor):
        row = rows.setdefault(
            lf.owner,
            {
                "owner": lf.owner,
                "namespaces": set(),
                "links": set(),
                "nft_tables": set(),
                "changes": 0,
                "since": 0.0,
                "files": 0,
            },
        )
        row["files"] += 1
        standing = lf.standing
        row["changes"] += len(standing)
        if lf.started and (not row["since"] or lf.started < row["since"]):
            row["since"] = lf.started
        for entry in standing:
            for made in created_by(entry.command):
                (row["namespaces"] if isinstance(made, str) else row["links"]).add(made)
            for verb, family, name in tables_in(entry.command):
                if verb in ("add", "create") and entry.command.undo:  # not a delete's own "add" first
                    row["nft_tables"].add((family, name, entry.command.netns))
    out = []
    for owner, row in sorted(rows.items(), key=lambda item: item[0].id):
        if not row["changes"]:
            continue  # an emptied ledger: nothing of it is in effect
        if owner.pid is not None:
            state = "alive" if owner.is_alive() else "leftover"
        elif row["namespaces"]:
            state = "up" if row["namespaces"] & present else "leftover"
        else:
            state = "leftover" if gone(here, owner) else "up"
        out.append({**row, "file": origin(here.executor, owner), "state": state})
    return out
