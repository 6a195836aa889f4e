"""How a command is said as one line of ``ip -batch -`` or ``iptables-restore --noflush``.

Only what reads back exactly is taken: words ``ip`` or ``iptables-restore``
would split, cut or unquote differently make the command run on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from netns_kit import shape
from netns_kit.command import Command

#: the iptables operations ``iptables-restore --noflush`` runs for us
RESTORE_OPS = frozenset({"-N", "-A", "-I", "-D", "-F", "-X"})
_IP_OPTIONS = frozenset({"-4", "-6"})
#: ip reads at most 100 words a line (``largv[100]``); keep well below
_IP_MAX_WORDS = 90


def ip_options(command: Command) -> tuple[str, ...] | None:
    """The global options of an ``ip`` command (``("-6",)``), or None if it cannot be batched."""
    options = []
    for word in shape.arguments(command.argv):
        if not word.startswith("-"):
            break
        if word not in _IP_OPTIONS:
            return None
        options.append(word)
    return tuple(options)


def ip_words(command: Command) -> tuple[str, ...] | None:
    """The words after ``ip`` and its global options."""
    options = ip_options(command)
    if options is None:
        return None
    return shape.arguments(command.argv)[len(options) :]


_IP_WORD = r"[^\s#\\\"'\0]+"
_IP_PLAIN = re.compile(_IP_WORD)
_IP_PLAIN_LINE = re.compile(f"{_IP_WORD}(?: {_IP_WORD})*")
_IP_QUOTABLE = re.compile(r"[^#\\\n\r\0]*")


def ip_word(word: str) -> str | None:
    """``word`` as ``ip -batch`` reads it back, or None if it cannot be said there.

    ip splits batch lines on blanks, honours '...' and "..." (no escapes),
    cuts a line at ``#`` and joins lines ending in a backslash.
    """
    if _IP_PLAIN.fullmatch(word):
        return word
    if not _IP_QUOTABLE.fullmatch(word):
        return None
    if '"' not in word:
        return f'"{word}"'
    if "'" not in word:
        return f"'{word}'"
    return None


def ip_line(command: Command) -> str | None:
    """The ``ip -batch`` line for ``command``, or None if it must run on its own."""
    words = ip_words(command)
    if not command.mutating or command.ok_codes != frozenset({0}) or not words or len(words) > _IP_MAX_WORDS:
        return None
    return _plain_line(words, _IP_PLAIN_LINE) or _quoted_line(words, ip_word)


_RESTORE_WORD = r"[A-Za-z0-9_.:,/!+=@%^\[\]-]+"
_RESTORE_PLAIN = re.compile(_RESTORE_WORD)
_RESTORE_PLAIN_LINE = re.compile(f"{_RESTORE_WORD}(?: {_RESTORE_WORD})*")
_RESTORE_QUOTABLE = re.compile(r"[^\"'\\\n\r\0]*")


def restore_word(word: str) -> str | None:
    """``word`` as ``iptables-restore`` reads it back, or None if it cannot be said there."""
    if _RESTORE_PLAIN.fullmatch(word):
        return word
    if _RESTORE_QUOTABLE.fullmatch(word):
        return f'"{word}"'
    return None


def restore_line(command: Command) -> tuple[str, str] | None:
    """``(table, line)`` for ``iptables-restore --noflush``, or None if it must run on its own.

    Only the shape netns_kit plans is taken: ``iptables -w -t TABLE OP ...``
    with OP one of ``-N -A -I -D -F -X``.
    """
    fw = shape.planned_iptables(command.argv)
    if fw is None or fw.verb not in RESTORE_OPS or not command.mutating or command.ok_codes != frozenset({0}):
        return None
    if not fw.table.isalnum():
        return None
    words = fw.from_verb
    line = _plain_line(words, _RESTORE_PLAIN_LINE) or _quoted_line(words, restore_word)
    return (fw.table, line) if line is not None else None


def _plain_line(words: Sequence[str], plain_line: re.Pattern[str]) -> str | None:
    """The words joined, when every one is plain (one regex for the line, not one per
    word: W(200) plans 24 000 words)."""
    line = " ".join(words)
    if plain_line.fullmatch(line) and line.count(" ") == len(words) - 1:
        return line
    return None


def _quoted_line(words: Sequence[str], quote: Callable[[str], str | None]) -> str | None:
    quoted = [quote(w) for w in words]
    if any(q is None for q in quoted):
        return None
    return " ".join(q for q in quoted if q is not None)


def step_kind(command: Command) -> tuple[str, str | None, tuple[str, ...]]:
    """The kind of step ``command`` can join: (kind, netns, options)."""
    return kind_and_line(command)[0]


def kind_and_line(command: Command) -> tuple[tuple[str, str | None, tuple[str, ...]], str]:
    """:func:`step_kind` and the command's line in such a step (``""`` for "one")."""
    if command.program == "ip":
        line = ip_line(command)
        if line is not None:
            options = ip_options(command)
            assert options is not None
            return ("ip", command.netns, options), line
    if command.argv == ("nft", "-f", "-") and command.stdin:
        return ("nft", command.netns, ()), command.stdin  # one atomic transaction: nft -f - of them all
    found = restore_line(command)
    if found is not None:
        return ("restore", command.netns, (command.program,)), found[1]
    return ("one", command.netns, ()), ""
