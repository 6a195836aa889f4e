"""The JSON schemas of ``netns-kit --json`` (documented in docs/guides/json.rst), in a
JSON-Schema-like form, and a small validator for them: ``type`` (a name or a list),
``properties``/``required``/``additionalProperties: False``, ``items``, ``enum``,
``const``, ``pattern``. Every object lists all its fields: a field that is added
or renamed without a schema (and its documentation) fails the tests."""

from __future__ import annotations

import re
from typing import Any

Schema = dict[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}


def obj(required: dict[str, Schema], **extra: Any) -> Schema:
    """An object with exactly these fields, all of them required."""
    return {
        "type": "object",
        "properties": required,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
BOOL: Schema = {"type": "boolean"}
NSTR: Schema = {"type": ["string", "null"]}
TIME: Schema = {"type": ["string", "null"], "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}

WHERE = obj({"kind": {"enum": ["machine", "sandbox"]}, "holder_pid": {"type": ["integer", "null"]}})
LINK = obj({"name": STR, "netns": NSTR, "kind": NSTR, "peer_netns": NSTR})
RULE = obj({"tool": STR, "netns": NSTR, "table": STR, "chain": STR, "spec": array(STR), "target": NSTR})
COMMAND = obj({"argv": array(STR), "netns": NSTR, "line": STR, "mutating": BOOL})
ATTACHED = obj({"name": STR, "pid": INT})
NFT_CHAIN = obj({"name": STR, "hook": NSTR, "priority": {"type": ["integer", "null"]}, "rules": INT})
NFT_TABLE = obj({"family": STR, "name": STR, "netns": NSTR, "chains": array(NFT_CHAIN), "rules": INT})
OBJECTS: dict[str, Schema] = {
    "namespaces": array(STR),
    "attached": array(ATTACHED),
    "links": array(LINK),
    "rules": array(RULE),
    "nft_tables": array(NFT_TABLE),
}


def document(kind: str, fields: dict[str, Schema]) -> Schema:
    return obj({"schema": {"const": f"netns_kit.{kind}/1"}, **fields})


SCHEMAS: dict[str, Schema] = {
    "plan": document("plan", {"name": STR, "file": NSTR, "owner": STR, "up": array(COMMAND), "down": array(COMMAND)}),
    "up": document(
        "up",
        {
            "name": STR,
            "file": NSTR,
            "owner": STR,
            "where": {"anyOf": [WHERE, {"type": "null"}]},
            "changes": INT,
            "seconds": {"type": "number"},
            "down": NSTR,
        },
    ),
    "down": document(
        "down",
        {
            "where": WHERE,
            "topologies": array(obj({"owner": STR, "file": NSTR, "removals": INT, **OBJECTS, "errors": array(STR)})),
        },
    ),
    "status": document(
        "status",
        {
            "where": {"anyOf": [WHERE, {"type": "null"}]},
            "owners": array(
                obj(
                    {
                        "owner": STR,
                        "state": {"enum": ["alive", "dead", "named"]},
                        "gone": BOOL,
                        "file": NSTR,
                        "ledger_files": array(STR),
                        "changes_standing": INT,
                        **OBJECTS,
                    }
                )
            ),
            "elsewhere": NSTR,
        },
    ),
    "ls": document(
        "ls",
        {
            "topologies": array(
                obj(
                    {
                        "owner": STR,
                        "name": NSTR,
                        "state": {"enum": ["alive", "up", "leftover"]},
                        "where": WHERE,
                        "file": NSTR,
                        "since": TIME,
                        "namespaces": array(STR),
                        "links": array(obj({"name": STR, "netns": NSTR})),
                        "nft_tables": array(obj({"family": STR, "name": STR, "netns": NSTR})),
                        "changes": INT,
                    }
                )
            )
        },
    ),
    "inspect": document(
        "inspect",
        {
            "owner": STR,
            "state": {"enum": ["alive", "up", "leftover"]},
            "where": WHERE,
            "file": NSTR,
            "since": TIME,
            "changes": INT,
            "described": {
                "anyOf": [
                    array(obj({"table": STR, "index": INT, "kind": STR, "fields": {"type": "object"}})),
                    {"type": "null"},
                ]
            },
            "read_back": obj(
                {
                    **OBJECTS,
                    "addresses": {
                        "type": "object",
                        "additionalProperties": array(obj({"ifname": STR, "state": NSTR, "addresses": array(STR)})),
                    },
                }
            ),
        },
    ),
    "cleanup": document(
        "cleanup",
        {
            "where": WHERE,
            "dry_run": BOOL,
            "owners": array(STR),
            "removals": INT,
            **OBJECTS,
            "notes": array(STR),
            "errors": array(STR),
        },
    ),
    "doctor": document(
        "doctor",
        {
            "ok": BOOL,
            "checks": array(
                obj(
                    {
                        "name": STR,
                        "status": {"enum": ["ok", "warn", "fail", "skip"]},
                        "summary": STR,
                        "explanation": STR,
                        "fix": STR,
                    }
                )
            ),
        },
    ),
}


def problems(value: Any, schema: Schema, path: str = "$") -> list[str]:
    """What is wrong with ``value`` against ``schema`` (empty: it is valid)."""
    if "anyOf" in schema:
        if any(not problems(value, option, path) for option in schema["anyOf"]):
            return []
        return [f"{path}: {value!r} matches none of {len(schema['anyOf'])} choices"]
    found: list[str] = []
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        types = tuple(t for name in names for t in _TYPES[name])
        is_bool = isinstance(value, bool)
        if not isinstance(value, types) or (is_bool and "boolean" not in names):
            return [*found, f"{path}: {value!r} is not of type {names}"]
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        found.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{path}: {name!r} is missing" for name in schema.get("required", ()) if name not in value]
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                found += problems(item, properties[name], f"{path}.{name}")
            elif extra is False:
                found.append(f"{path}: {name!r} is not in the schema")
            elif isinstance(extra, dict):
                found += problems(item, extra, f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += problems(item, schema["items"], f"{path}[{index}]")
    return found


def assert_valid(document: Any, command: str) -> None:
    """``document`` is a valid ``netns_kit.COMMAND/1`` document."""
    found = problems(document, SCHEMAS[command])
    assert not found, "\n".join(found)
