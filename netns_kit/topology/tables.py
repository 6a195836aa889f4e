"""The TOML tables of a topology file: table name -> resource class, and one entry -> one resource.

Each array of tables names a resource class (:data:`TABLES`); each entry's keys
are that class's attrs fields, checked here (unknown keys, missing required keys,
wrong TOML types, so the message speaks TOML) and then by the class's own validators.
A new resource kind plugs in with one line (:func:`register`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from netns_kit.errors import ValidationError
from netns_kit.firewall.nat import NatRule
from netns_kit.firewall.portforward import PortForward
from netns_kit.lifecycle.resource import Resource
from netns_kit.resources.files import NetnsFile
from netns_kit.resources.link import Bridge, VethPair
from netns_kit.resources.link_impairment import LinkImpairment
from netns_kit.resources.namespace import AttachedNamespace, Namespace
from netns_kit.resources.partition import LinkDown, Partition
from netns_kit.resources.route import Address, Route
from netns_kit.topology.tomlread import MISSING, TopologyFileError, toml_type, unknown

#: TOML table name -> resource class: the built-in kinds, in this order, then those
#: registered (:func:`register`)
TABLES: dict[str, type[Resource]] = {
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

_HIDDEN = frozenset({"executor"})


def tables() -> dict[str, type[Resource]]:
    """:data:`TABLES`: the built-in resource kinds first, then those registered."""
    return TABLES


def register(table: str, cls: type[Resource]) -> None:
    """Make ``[[table]]`` entries build ``cls`` (an attrs :class:`Resource`)."""
    TABLES[table] = cls


def fields(cls: type[Resource]) -> dict[str, attrs.Attribute[Any]]:
    """The keys an entry for ``cls`` takes: its attrs fields set at construction."""
    return {a.name: a for a in attrs.fields(cls) if a.init and a.name not in _HIDDEN}


def build(cls: type[Resource], item: Mapping[str, Any], *, source: str, key: str) -> Resource:
    """One resource from one table entry, with errors pointing to ``key.field``."""
    cls = variant(cls, item)
    known = fields(cls)
    for name, value in item.items():
        if name not in known:
            offered = fields(AttachedNamespace) if cls is Namespace else known  # pid, container too
            raise TopologyFileError(source, f"{key}.{name}", value, unknown(f"key for {cls.__name__}", name, offered))
        _check_type(source, f"{key}.{name}", known[name], value)
    for name, field in known.items():
        if field.default is attrs.NOTHING and name not in item:
            raise TopologyFileError(source, f"{key}.{name}", MISSING, f"is missing: {cls.__name__} needs it")
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


def variant(cls: type[Resource], item: Mapping[str, Any]) -> type[Resource]:
    """The class an entry builds: a ``[[namespaces]]`` entry with ``pid`` or
    ``container`` is someone else's namespace (:class:`AttachedNamespace`)."""
    if cls is Namespace and ("pid" in item or "container" in item):
        return AttachedNamespace
    return cls


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
        raise TopologyFileError(source, key, value, f"must be {words} (TOML {toml_type(value)} given)")
