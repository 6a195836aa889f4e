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

:func:`load` refuses, with a :class:`TopologyFileError`, a file it cannot read,
one that is not UTF-8 text (``netns-kit plan /bin/ls``), one larger than
:data:`MAX_BYTES` (``/dev/zero``) and TOML nested too deeply to parse.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from netns_kit.errors import ValidationError

if TYPE_CHECKING:
    from netns_kit.lifecycle.resource import Resource
    from netns_kit.topology.topology import Topology

#: TOML table name -> resource class; a new resource kind plugs in with one line
#: (:func:`register`). The built-in ones are filled in on first use (:func:`tables`):
#: what only needs the file's ``[topology]`` table (:func:`head`) imports none of them.
TABLES: dict[str, type[Resource]] = {}
_builtins_in = False


def tables() -> dict[str, type[Resource]]:
    """:data:`TABLES`, with the built-in resource kinds (first, in this order) in it."""
    global _builtins_in
    if not _builtins_in:
        from netns_kit.firewall.nat import NatRule
        from netns_kit.firewall.portforward import PortForward
        from netns_kit.resources.files import NetnsFile
        from netns_kit.resources.link import Bridge, VethPair
        from netns_kit.resources.link_impairment import LinkImpairment
        from netns_kit.resources.namespace import Namespace
        from netns_kit.resources.partition import LinkDown, Partition
        from netns_kit.resources.route import Address, Route

        registered = dict(TABLES)
        TABLES.clear()
        TABLES.update(
            {
                "namespaces": Namespace,
                "bridges": Bridge,
                "veths": VethPair,
                "addresses": Address,
                "routes": Route,
                "nat_rules": NatRule,
                "port_forwards": PortForward,
                "impairments": LinkImpairment,
                "partitions": Partition,
                "links_down": LinkDown,
                "netns_files": NetnsFile,
            }
        )
        TABLES.update(registered)
        _builtins_in = True
    return TABLES


#: keys of the ``[topology]`` table and their TOML types
SETTINGS: dict[str, tuple[type, ...]] = {"name": (str,), "wait": (bool,), "wait_timeout": (int, float)}

#: a topology file larger than this is refused unread (no topology file comes close)
MAX_BYTES = 16 * 1024 * 1024

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,58}$")
_HIDDEN = frozenset({"executor"})


def register(table: str, cls: type[Resource]) -> None:
    """Make ``[[table]]`` entries build ``cls`` (an attrs :class:`Resource`)."""
    TABLES[table] = cls


class TopologyFileError(ValidationError):
    """A topology file is not valid TOML or does not describe a valid topology.

    ``source`` is the file, ``key`` the path to the key inside it
    (``veths[2].peer_netns``), ``value`` what it holds and ``rule`` what is wrong.
    """

    def __init__(self, source: str, key: str, value: Any, rule: str) -> None:
        self.source = source
        self.key = key
        super().__init__(key, value, rule)
        shown = f"{value!r} " if value is not _MISSING else ""
        self.args = (f"{source}: {key}: {shown}{rule}",)

    def __str__(self) -> str:
        return str(self.args[0])


_MISSING: Any = object()


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


@attrs.frozen
class TopologyHead:
    """What a file says about itself, nothing built: enough to name its owner
    (:func:`netns_kit.cli.place.owner_for` takes this or a :class:`TopologyFile`)."""

    source: str
    name: str
    #: the file, symlinks resolved
    path: Path | None = None
    #: ``name`` was set in ``[topology]`` (else it is the file's name)
    named: bool = False


def load(path: str | Path) -> TopologyFile:
    """Read and check a topology file."""
    source, text, resolved = _read(path)
    return attrs.evolve(loads(text, source=source, default_name=resolved.stem), path=resolved)


def head(path: str | Path) -> TopologyHead:
    """Read only what names a topology file's owner: its ``[topology]`` table (checked as
    :func:`load` checks it) and its resolved path. Its resources are neither built nor
    checked: ``netns-kit down`` needs no more, and takes down a file edited since ``up``."""
    source, text, resolved = _read(path)
    settings = _settings(_parse(text, source).get("topology", {}), source)
    name = settings.get("name", _default_name(resolved.stem))
    return TopologyHead(source, name, resolved, named="name" in settings)


def _read(path: str | Path) -> tuple[str, str, Path]:
    """(the name to show, the text, the resolved path) of a topology file, or a
    :class:`TopologyFileError` saying why it is none."""
    path = Path(path)
    source = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
        resolved = path.resolve()
    except OSError as error:
        raise TopologyFileError(source, "(file)", _MISSING, f"cannot be read: {error.strerror}") from None
    if len(data) > MAX_BYTES:
        size = f"{MAX_BYTES >> 20} MiB" if MAX_BYTES % (1 << 20) == 0 else f"{MAX_BYTES} bytes"
        raise TopologyFileError(source, "(file)", _MISSING, f"is larger than {size}: not a topology file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        rule = f"is not a text file (not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start})"
        raise TopologyFileError(source, "(file)", _MISSING, rule) from None
    return source, text, resolved


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TopologyFileError(source, "(syntax)", _MISSING, f"is not valid TOML: {error}") from None
    except RecursionError:
        raise TopologyFileError(source, "(syntax)", _MISSING, "is nested too deeply to be read") from None


def loads(text: str, *, source: str = "<string>", default_name: str = "topology") -> TopologyFile:
    """Parse and check the TOML text of a topology file."""
    return from_dict(_parse(text, source), source=source, default_name=default_name)


def from_dict(data: Mapping[str, Any], *, source: str = "<dict>", default_name: str = "topology") -> TopologyFile:
    """Build from already parsed data (what :func:`tomllib.loads` returns)."""
    from netns_kit.topology.topology import Topology

    settings = _settings(data.get("topology", {}), source)
    name = settings.get("name", _default_name(default_name))
    known = tables()
    entries: list[tuple[str, int, Resource]] = []
    for table, items in data.items():
        if table == "topology":
            continue
        cls = known.get(table)
        if cls is None:
            raise TopologyFileError(source, table, _MISSING, _unknown("table", table, [*known, "topology"]))
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            rule = f"must be an array of tables: write [[{table}]] above each entry"
            raise TopologyFileError(source, table, _MISSING, rule)
        for index, item in enumerate(items):
            entries.append((table, index, build(cls, item, source=source, key=f"{table}[{index}]")))
    topology = Topology(wait=settings.get("wait", False), wait_timeout=float(settings.get("wait_timeout", 10.0)))
    try:
        topology.add(*(resource for _, _, resource in entries))
    except ValidationError as error:
        key = _locate(error, entries)
        raise TopologyFileError(source, key, error.value, error.rule) from None
    return TopologyFile(source, name, topology, tuple(entries), named="name" in settings)


def fields(cls: type[Resource]) -> dict[str, attrs.Attribute[Any]]:
    """The keys an entry for ``cls`` takes: its attrs fields set at construction."""
    return {a.name: a for a in attrs.fields(cls) if a.init and a.name not in _HIDDEN}


def build(cls: type[Resource], item: Mapping[str, Any], *, source: str, key: str) -> Resource:
    """One resource from one table entry, with errors pointing to ``key.field``."""
    known = fields(cls)
    for name, value in item.items():
        if name not in known:
            raise TopologyFileError(source, f"{key}.{name}", value, _unknown(f"key for {cls.__name__}", name, known))
        _check_type(source, f"{key}.{name}", known[name], value)
    for name, field in known.items():
        if field.default is attrs.NOTHING and name not in item:
            raise TopologyFileError(source, f"{key}.{name}", _MISSING, f"is missing: {cls.__name__} needs it")
    try:
        return cls(**{name: _convert(known[name], value) for name, value in item.items()})
    except ValidationError as error:
        owner, _, attr = error.field.rpartition(".")
        if owner == cls.__name__ and attr in known:
            where = f"{key}.{attr}"
        else:  # a value inside a table of this entry (impairment = {delay = ...})
            nested = [name for name, f in known.items() if owner and str(f.type).startswith(owner)]
            where = f"{key}.{nested[0]}.{attr}" if nested else key
        raise TopologyFileError(source, where, error.value, error.rule) from None


def _convert(field: attrs.Attribute[Any], value: Any) -> Any:
    # TOML arrays become tuples for tuple fields; the class's converters do the rest
    return tuple(value) if isinstance(value, list) else value


def _check_type(source: str, key: str, field: attrs.Attribute[Any], value: Any) -> None:
    """Check the TOML type against the field's annotation, so the message speaks TOML."""
    annotation = str(field.type or "")
    expected: tuple[type, ...]
    if annotation == "bool":
        expected, words = (bool,), "true or false"
    elif annotation.startswith("tuple["):
        expected, words = (str, list), "a string or an array of strings"
    elif annotation in ("int", "int | None"):
        expected, words = (int,), "an integer"
    elif "str" in annotation and "int" not in annotation:
        expected, words = (str,), "a string"
    else:
        return
    ok = isinstance(value, expected) and not (bool not in expected and isinstance(value, bool))
    if isinstance(value, list):
        ok = ok and all(isinstance(v, str) for v in value)
    if not ok:
        raise TopologyFileError(source, key, value, f"must be {words} (TOML {_toml_type(value)} given)")


def _toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


def _settings(table: Any, source: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise TopologyFileError(source, "topology", table, "must be a table: write [topology]")
    for name, value in table.items():
        if name not in SETTINGS:
            raise TopologyFileError(source, f"topology.{name}", value, _unknown("setting", name, SETTINGS))
        types = SETTINGS[name]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            words = " or ".join(_toml_type(t()) for t in types)
            raise TopologyFileError(source, f"topology.{name}", value, f"must be a {words}")
    name = table.get("name")
    if name is not None and not _NAME.match(name):
        rule = "must be 1-58 characters from [A-Za-z0-9_.-] (it names the owner: cli.NAME)"
        raise TopologyFileError(source, "topology.name", name, rule)
    return dict(table)


def _default_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", stem)[:58]
    return name or "topology"


def _unknown(what: str, name: str, known: Any) -> str:
    choices = sorted(known)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"is not a known {what}{hint}; known: {', '.join(choices)}"


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
