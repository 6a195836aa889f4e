"""Topology files: a whole network described in TOML (stdlib :mod:`tomllib`).

Each array of tables names a resource class (:data:`TABLES`); each entry's
keys are that class's fields, checked against its attrs fields (unknown
keys, missing required keys, wrong TOML types) and then by the class's own
validators. Errors point to the key and say what is wrong::

    net.toml: veths[2].peer_netns: 'bleu' is not a namespace of this topology (have: ['blue', 'red']) ...

A ``[topology]`` table holds settings: ``name`` (chosen on purpose, it names
the CLI's owner ``cli.NAME``; without it the owner is named after the file's
resolved path, see :func:`netns_kit.cli.place.owner_for`), ``wait`` and
``wait_timeout``. See the README for the full schema by example.

:func:`load` refuses what :func:`~netns_kit.topology.tomlread.read` refuses (a file it
cannot read, not UTF-8 text, larger than :data:`MAX_BYTES`, TOML nested too deeply).
Reading (:mod:`~netns_kit.topology.tomlread`, with :func:`head`) and the tables
(:mod:`~netns_kit.topology.tables`, with :func:`register`) are modules of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from netns_kit.errors import ValidationError
from netns_kit.lifecycle.resource import Resource
from netns_kit.topology.tables import TABLES, build, fields, register, tables
from netns_kit.topology.tomlread import (
    MAX_BYTES,
    MISSING,
    SETTINGS,
    TopologyFileError,
    TopologyHead,
    head,
    name_from_stem,
    parse,
    read,
    settings_of,
    unknown,
)
from netns_kit.topology.topology import Topology

__all__ = [
    "MAX_BYTES",
    "SETTINGS",
    "TABLES",
    "TopologyFile",
    "TopologyFileError",
    "TopologyHead",
    "build",
    "fields",
    "from_dict",
    "head",
    "load",
    "loads",
    "register",
    "tables",
]


@attrs.frozen
class TopologyFile:
    """What a file describes: its settings and the :class:`Topology`."""

    source: str
    name: str
    topology: Topology
    #: (table, index, resource) for each entry, in file order
    entries: tuple[tuple[str, int, Resource], ...]
    #: the file, symlinks resolved (None when not read from a file)
    path: Path | None = None
    #: ``name`` was set in ``[topology]`` (else it is the file's name)
    named: bool = False


def load(path: str | Path) -> TopologyFile:
    """Read and check a topology file."""
    source, text, resolved = read(path)
    return attrs.evolve(loads(text, source=source, default_name=resolved.stem), path=resolved)


def loads(text: str, *, source: str = "<string>", default_name: str = "topology") -> TopologyFile:
    """Parse and check the TOML text of a topology file."""
    return from_dict(parse(text, source), source=source, default_name=default_name)


def from_dict(data: Mapping[str, Any], *, source: str = "<dict>", default_name: str = "topology") -> TopologyFile:
    """Build from already parsed data (what :func:`tomllib.loads` returns)."""
    settings = settings_of(data.get("topology", {}), source)
    name = settings.get("name", name_from_stem(default_name))
    known = tables()
    entries: list[tuple[str, int, Resource]] = []
    for table, items in data.items():
        if table == "topology":
            continue
        cls = known.get(table)
        if cls is None:
            raise TopologyFileError(source, table, MISSING, unknown("table", table, [*known, "topology"]))
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            rule = f"must be an array of tables: write [[{table}]] above each entry"
            raise TopologyFileError(source, table, MISSING, rule)
        for index, item in enumerate(items):
            entries.append((table, index, build(cls, item, source=source, key=f"{table}[{index}]")))
    topology = Topology(
        wait=settings.get("wait", False),
        wait_timeout=float(settings.get("wait_timeout", 10.0)),
        firewall=settings.get("firewall"),
    )
    try:
        topology.add(*(resource for _, _, resource in entries))
    except ValidationError as error:
        key = _locate(error, entries)
        raise TopologyFileError(source, key, error.value, error.rule) from None
    return TopologyFile(source, name, topology, tuple(entries), named="name" in settings)


def _locate(error: ValidationError, entries: list[tuple[str, int, Resource]]) -> str:
    """The key a whole-topology check (Topology.check) is about, best effort."""
    cls_name, _, attr = error.field.partition(".")
    wanted = str(error.value)
    candidates = []
    for table, index, resource in entries:
        if attr and type(resource).__name__ == cls_name:
            value = getattr(resource, attr, None)
            shown = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
            if wanted in shown:
                candidates.append(f"{table}[{index}].{attr}")
        elif not attr:  # "interface name": 'veth-red (in red)'
            name = wanted.split(" (in ", 1)[0]
            for field in ("name", "peer"):
                if getattr(resource, field, None) == name and table != "namespaces":
                    candidates.append(f"{table}[{index}].{field}")
    # a duplicate is reported where it appears again
    return candidates[-1] if candidates else error.field
