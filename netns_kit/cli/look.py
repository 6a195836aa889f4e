"""The commands that look and change nothing: ``status``, ``ls``, ``inspect``, ``doctor``."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any, TextIO

from netns_kit.cli import data, records
from netns_kit.cli.codes import EXIT_FAILED, EXIT_OK
from netns_kit.cli.hints import elsewhere
from netns_kit.cli.place import CLI_OWNER_PREFIX, Place, origin, owner_for, place
from netns_kit.command import query
from netns_kit.errors import NetnsKitError
from netns_kit.executors import holder
from netns_kit.ops import inventory
from netns_kit.ops.doctor import doctor
from netns_kit.owner import Owner
from netns_kit.topology import tomlfile as topofile


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    if args.sandbox and holder.find() is None:
        print("no sandbox is running: netns_kit owns nothing there", file=out)
        if args.json:
            data.emit(args.stdout, "status", {"where": None, "owners": [], "elsewhere": None})
        return EXIT_OK
    with place(args, out=None) as here:
        found = inventory.scan(here.executor)
        summaries = [inventory.summary(found, owner) for owner in found.owners()]
        for item in summaries:
            item["file"] = origin(here.executor, Owner(item["owner"]))
            item["gone"] = item["state"] == "named" and records.gone(here, Owner(item["owner"]), found)
        hint = None if summaries else elsewhere(here)
    if args.json:
        owners = [
            {
                **{k: item[k] for k in ("owner", "state", "gone", "file", "ledger_files", "changes_standing")},
                **data.objects(found, [Owner(item["owner"])]),
            }
            for item in summaries
        ]
        data.emit(args.stdout, "status", {"where": data.where(here), "owners": owners, "elsewhere": hint})
        return EXIT_OK
    if not summaries:
        print(f"netns_kit owns nothing {here.where}", file=out)
        if hint is not None:
            print(hint, file=out)
        return EXIT_OK
    print(f"netns_kit owns, {here.where}:", file=out)
    for item in summaries:
        _status_of(here, item, out)
    return EXIT_OK


def _status_of(here: Place, item: dict[str, Any], out: TextIO) -> None:
    file = item["file"]
    state = {
        "alive": "its process is running",
        "dead": f"its process is gone: `{here.command('cleanup')}` removes this",
        "named": f"named owner: kept until `{here.command('down', file)}`"
        if file
        else f"named owner: kept until `{here.command('cleanup', '--owner', item['owner'])}` (or down FILE)",
    }[item["state"]]
    if item["gone"]:
        again = f"`{here.command('up', file)}` or `{here.command('down', file)}`" if file else "down FILE"
        state = (
            "recorded as up, but nothing of it is there any more (taken down without netns-kit): "
            f"{again} drops the record"
        )
    print(f"\n{item['owner']}  [{'gone' if item['gone'] else item['state']}] {state}", file=out)
    if file:
        print(f"  from {file}", file=out)
    titles = (("namespaces", "namespaces"), ("attached", "attached namespaces"), ("links", "links"))
    for key, title in (*titles, ("rules", "iptables rules"), ("nft_tables", "nft tables")):
        values = item[key]
        if values:
            print(f"  {title} ({len(values)}):", file=out)
            for value in values:
                print(f"    {value}", file=out)
    if item["ledger_files"]:
        files = len(item["ledger_files"])
        print(f"  ledger: {item['changes_standing']} changes in effect, {files} file(s)", file=out)


@contextlib.contextmanager
def places(args: argparse.Namespace) -> Iterator[list[Place]]:
    """Where ``ls`` and ``inspect`` look: the place ``--sandbox``/``--attach`` name; else
    this machine and, when one runs, the sandbox netns-kit keeps."""
    with contextlib.ExitStack() as stack:
        if args.sandbox or args.attach is not None:
            yield [stack.enter_context(place(args))]
            return
        found = [stack.enter_context(place(args))]
        if holder.find() is not None:
            kept = argparse.Namespace(**{**vars(args), "sandbox": True, "attach": None})
            with contextlib.suppress(NetnsKitError):  # stopped meanwhile
                found.append(stack.enter_context(place(kept)))
        yield found


def cmd_ls(args: argparse.Namespace, out: TextIO) -> int:
    if args.sandbox and holder.find() is None:
        rows: list[tuple[Place | None, dict[str, Any]]] = []
    else:
        with places(args) as found:
            rows = [(here, row) for here in found for row in records.listing(here)]
    if args.json:
        data.emit(args.stdout, "ls", {"topologies": [_ls_data(here, row) for here, row in rows if here is not None]})
        return EXIT_OK
    if not rows:
        print("no topology is up" + (" in the sandbox" if args.sandbox else ""), file=out)
        return EXIT_OK
    table = [("OWNER", "STATE", "WHERE", "NAMESPACES", "LINKS", "CHANGES", "SINCE", "FILE")]
    for here, row in rows:
        assert here is not None
        where = "machine" if not here.option else here.where.removeprefix("in ")
        counts = (str(len(row["namespaces"])), str(len(row["links"])), str(row["changes"]))
        table.append(
            (row["owner"].id, row["state"], where, *counts, data.when(row["since"]) or "-", row["file"] or "-")
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    out.write(
        "".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + f"  {line[-1]}\n" for line in table)
    )
    return EXIT_OK


def _ls_data(here: Place, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "owner": row["owner"].id,
        "name": row["owner"].id.removeprefix(CLI_OWNER_PREFIX) if row["owner"].pid is None else None,
        "state": row["state"],
        "where": data.where(here),
        "file": row["file"],
        "since": data.when(row["since"]),
        "namespaces": sorted(row["namespaces"]),
        "links": [{"name": name, "netns": netns} for name, netns in sorted(row["links"], key=str)],
        "nft_tables": [
            {"family": family, "name": name, "netns": netns}
            for family, name, netns in sorted(row["nft_tables"], key=lambda t: (t[2] or "", t[:2]))
        ],
        "changes": row["changes"],
    }


def cmd_inspect(args: argparse.Namespace, out: TextIO) -> int:
    owner = _owner_named(args.target)
    with places(args) as found:
        for here in found:
            rows = [row for row in records.listing(here) if row["owner"] == owner]
            if rows:
                return _inspect(args, here, owner, rows[0], out)
    raise NetnsKitError(f"{owner.id} is not up {_where_looked(args)}: `netns-kit ls` lists what is")


def _where_looked(args: argparse.Namespace) -> str:
    if args.attach is not None:
        return f"in sandbox holder {args.attach}"
    return "in the sandbox" if args.sandbox else "on this machine nor in the sandbox"


def _owner_named(target: str) -> Owner:
    """``cli.NAME`` and ``PID.START`` as they are; a topology file's owner; else ``cli.TARGET``."""
    if target.endswith(".toml") or "/" in target:
        return owner_for(topofile.head(target))
    if target.startswith(CLI_OWNER_PREFIX) or Owner(target).pid is not None:
        return Owner(target)
    return Owner(CLI_OWNER_PREFIX + target)


def _inspect(args: argparse.Namespace, here: Place, owner: Owner, row: dict[str, Any], out: TextIO) -> int:
    file = row["file"]
    described = None
    if file is not None:
        with contextlib.suppress(NetnsKitError, OSError):
            described = [data.resource(t, i, r, topofile.fields(type(r))) for t, i, r in topofile.load(file).entries]
    found = inventory.scan(here.executor)
    objects = data.objects(found, [owner])
    addresses = {name: _addresses(here, name) for name in objects["namespaces"]}
    if args.json:
        payload = {
            "owner": owner.id,
            "state": row["state"],
            "where": data.where(here),
            "file": file,
            "since": data.when(row["since"]),
            "changes": row["changes"],
            "described": described,
            "read_back": {**objects, "addresses": addresses},
        }
        data.emit(args.stdout, "inspect", payload)
        return EXIT_OK
    print(
        f"{owner.id}: {row['state']} {here.where}, since {data.when(row['since'])}, {row['changes']} changes", file=out
    )
    if file:
        print(f"  from {file}", file=out)
    if described is None:
        print("as its file describes it: (the file cannot be read any more)", file=out)
    else:
        print(f"as its file describes it ({len(described)} entries):", file=out)
        for entry in described:
            print(f"  {entry['table']}[{entry['index']}] {entry['kind']}: {_fields(entry['fields'])}", file=out)
    print("as read back:", file=out)
    for name in objects["namespaces"]:
        shown = ", ".join(f"{i['ifname']} {' '.join(i['addresses']) or '-'}" for i in addresses[name])
        print(f"  namespace {name}: {shown or 'no interfaces'}", file=out)
    for link in objects["links"]:
        if link["netns"] is None:
            print(f"  {link['name']} ({link['kind'] or 'link'} in the host)", file=out)
    for rule in objects["rules"]:
        print(f"  {rule['tool']} -t {rule['table']} -A {rule['chain']} {' '.join(rule['spec'])}", file=out)
    for table in found.nft_tables:
        if table.owner == owner:
            print(f"  {table}", file=out)
            for chain in table.chains:
                print(f"    {chain}", file=out)
    return EXIT_OK


def _fields(fields: Any) -> str:
    if not isinstance(fields, dict):
        return str(fields)
    shown = [f"{k}={v}" for k, v in fields.items() if v not in (None, [], False, "", {})]
    return ", ".join(shown)


def _addresses(here: Place, netns: str) -> list[dict[str, Any]]:
    """The interfaces of ``netns`` other than ``lo``, with their addresses (CIDR)."""
    result = here.executor.run(query("ip", "-j", "addr", "show", netns=netns), check=False)
    found = []
    for item in (result.json() or []) if result.ok else []:
        if item.get("ifname") == "lo":
            continue
        cidrs = [f"{a['local']}/{a['prefixlen']}" for a in item.get("addr_info", []) if a.get("scope") != "link"]
        found.append({"ifname": item["ifname"], "state": item.get("operstate"), "addresses": cidrs})
    return found


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:
    if args.sandbox or args.attach is not None:
        with place(args) as here:
            report = doctor(here.executor)
    else:
        report = doctor(None)
    if args.json:
        data.emit(args.stdout, "doctor", report.to_json())
    else:
        for line in report.lines():
            print(line, file=out)
    return EXIT_OK if report.ok else EXIT_FAILED
