"""Reading a topology file, nothing built: the text, its ``[topology]`` table, the errors.

:func:`head` reads only what names a file's owner (its ``[topology]`` table and
its resolved path); this module imports no resource, so ``netns-kit down`` does
not either. :func:`read` refuses, with a :class:`TopologyFileError`, a file it
cannot read, one that is not UTF-8 text (``netns-kit plan /bin/ls``), one larger
than :data:`MAX_BYTES` (``/dev/zero``), and :func:`parse` TOML nested too deeply.
Building the resources is :mod:`netns_kit.topology.tomlfile`'s.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

import attrs

from netns_kit.errors import ValidationError

#: keys of the ``[topology]`` table and their TOML types
SETTINGS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "wait": (bool,),
    "wait_timeout": (int, float),
    "firewall": (str,),  # the backend of firewall entries that name none: iptables, nft, auto
}

#: a topology file larger than this is refused unread (no topology file comes close)
MAX_BYTES = 16 * 1024 * 1024

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,58}$")

#: the ``value`` of an error about something missing (nothing is shown for it)
MISSING: Any = object()


class TopologyFileError(ValidationError):
    """A topology file is not valid TOML or does not describe a valid topology.

    ``source`` is the file, ``key`` the path to the key inside it
    (``veths[2].peer_netns``), ``value`` what it holds and ``rule`` what is wrong.
    """

    def __init__(self, source: str, key: str, value: Any, rule: str) -> None:
        self.source = source
        self.key = key
        super().__init__(key, value, rule)
        shown = f"{value!r} " if value is not MISSING else ""
        self.args = (f"{source}: {key}: {shown}{rule}",)

    def __str__(self) -> str:
        return str(self.args[0])


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


def head(path: str | Path) -> TopologyHead:
    """Read only what names a topology file's owner: its ``[topology]`` table (checked as
    :func:`~netns_kit.topology.tomlfile.load` checks it) and its resolved path. Its resources are neither built nor
    checked: ``netns-kit down`` needs no more, and takes down a file edited since ``up``."""
    source, text, resolved = read(path)
    table = topology_alone(text)
    if table is None:
        table = parse(text, source).get("topology", {})
    settings = settings_of(table, source)
    name = settings.get("name", name_from_stem(resolved.stem))
    return TopologyHead(source, name, resolved, named="name" in settings)


#: a line that opens the ``[topology]`` table, and any line that opens a table
_TOPOLOGY_HEADER = re.compile(r"^[ \t]*\[[ \t]*topology[ \t]*\][ \t]*(#.*)?$", re.MULTILINE)
_ANY_HEADER = re.compile(r"^[ \t]*\[", re.MULTILINE)


def topology_alone(text: str) -> dict[str, Any] | None:
    """The ``[topology]`` table of ``text``, parsed alone (W(200)'s file: 0.2 ms, not the
    whole file's 30 ms), when that is certain to be what the whole file says; else None.

    Certain when the word ``topology`` occurs once, in that table's header line (no
    dotted key, inline table or sub-table defines it elsewhere; no ``\\u`` escape
    spells it in a quoted key), no multi-line string opens before that line (so the
    header is one), and the lines up to the next header parse by themselves (a value
    cut short by a line that opens with ``[`` does not).
    """
    header = _TOPOLOGY_HEADER.search(text)
    if header is None or text.count("topology") != 1 or "\\u" in text or "\\U" in text:
        return None
    if '"""' in text[: header.start()] or "'''" in text[: header.start()]:
        return None
    following = _ANY_HEADER.search(text, header.end())
    try:
        table = tomllib.loads(text[header.start() : following.start() if following else len(text)])
    except tomllib.TOMLDecodeError:
        return None
    found = table.get("topology")
    return found if isinstance(found, dict) else None


def read(path: str | Path) -> tuple[str, str, Path]:
    """(the name to show, the text, the resolved path) of a topology file, or a
    :class:`TopologyFileError` saying why it is none."""
    path = Path(path)
    source = str(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
        resolved = path.resolve()
    except OSError as error:
        raise TopologyFileError(source, "(file)", MISSING, f"cannot be read: {error.strerror}") from None
    if len(data) > MAX_BYTES:
        size = f"{MAX_BYTES >> 20} MiB" if MAX_BYTES % (1 << 20) == 0 else f"{MAX_BYTES} bytes"
        raise TopologyFileError(source, "(file)", MISSING, f"is larger than {size}: not a topology file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        rule = f"is not a text file (not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start})"
        raise TopologyFileError(source, "(file)", MISSING, rule) from None
    return source, text, resolved


def parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise TopologyFileError(source, "(syntax)", MISSING, f"is not valid TOML: {error}") from None
    except RecursionError:
        raise TopologyFileError(source, "(syntax)", MISSING, "is nested too deeply to be read") from None


def settings_of(table: Any, source: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise TopologyFileError(source, "topology", table, "must be a table: write [topology]")
    for name, value in table.items():
        if name not in SETTINGS:
            raise TopologyFileError(source, f"topology.{name}", value, unknown("setting", name, SETTINGS))
        types = SETTINGS[name]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            words = " or ".join(toml_type(t()) for t in types)
            raise TopologyFileError(source, f"topology.{name}", value, f"must be a {words}")
    if table.get("firewall", "iptables") not in ("auto", "iptables", "nft"):
        raise TopologyFileError(source, "topology.firewall", table["firewall"], "must be auto, iptables or nft")
    name = table.get("name")
    if name is not None and not _NAME.match(name):
        rule = "must be 1-58 characters from [A-Za-z0-9_.-] (it names the owner: cli.NAME)"
        raise TopologyFileError(source, "topology.name", name, rule)
    return dict(table)


def name_from_stem(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", stem)[:58]
    return name or "topology"


def unknown(what: str, name: str, known: Any) -> str:
    choices = sorted(known)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"is not a known {what}{hint}; known: {', '.join(choices)}"


def toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)
