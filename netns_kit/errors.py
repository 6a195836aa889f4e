"""The error tree, and the ONE table that turns a failed process into it.

::

    NetnsKitError
    ├── ValidationError          (also a ValueError) bad input, raised before any command
    ├── SandboxError             the sandbox could not start (user namespaces refused, ...)
    ├── NetnsKitTimeoutError     a wait with a deadline ran out (also the builtin
    │                            TimeoutError; public as ``netns_kit.TimeoutError``)
    ├── UnsupportedError         this kernel lacks a feature asked for (the netem qdisc, ...)
    └── CommandError             a command exited with a code it does not accept
        ├── NotFoundError        no such device / namespace / rule / chain
        ├── AlreadyExistsError   the name (or address, route, chain) is taken
        ├── PermissionDeniedError  not root, no CAP_NET_ADMIN
        └── BinaryNotFoundError  ip / iptables / nsenter ... is not installed (nothing ran)

Every ``CommandError`` carries ``argv``, ``returncode``, ``stdout``, ``stderr``
and a ``hint``; :func:`classify` picks the subclass from stderr and the exit
code, using :data:`TABLE` and nothing else.
"""

from __future__ import annotations

import builtins
import re
import shlex
import signal
from collections.abc import Callable, Sequence
from typing import Any

from netns_kit import shape


class NetnsKitError(Exception):
    """Base class of every error netns_kit raises on purpose."""


class ValidationError(NetnsKitError, ValueError):
    """Bad input, found before any command exists.

    ``field`` names what was wrong (``"VethPair.name"``), ``value`` is what
    was given and ``rule`` says what it must be.
    """

    def __init__(self, field: str, value: Any, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}: {value!r} {rule}")


class SandboxError(NetnsKitError):
    """The sandbox could not be started or reached."""


class NetnsKitTimeoutError(NetnsKitError, builtins.TimeoutError):
    """A wait with a deadline ran out.

    Public as ``netns_kit.TimeoutError`` (and ``netns_kit.errors.TimeoutError``);
    named so here that it does not shadow the builtin it also is: an
    ``except TimeoutError`` catches it.
    """


class UnsupportedError(NetnsKitError):
    """This kernel (or a binary) lacks a feature that was asked for.

    ``feature`` names what is missing (``"netem qdisc"``); the message says
    which settings need it and what works instead.
    """

    def __init__(self, feature: str, message: str) -> None:
        self.feature = feature
        super().__init__(message)


class CommandError(NetnsKitError):
    """A command exited with a code it does not accept."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        hint: str = "",
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.hint = hint
        #: results of the commands that took effect before this one failed
        #: (set by :meth:`Executor.run_all`, for exact rollback)
        self.completed: tuple[Any, ...] = ()
        super().__init__(argv, returncode, stdout, stderr, hint)

    def __str__(self) -> str:
        lines = [f"command failed with exit code {self.returncode}: {shlex.join(self.argv)}"]
        if self.stderr.strip():
            lines.append("stderr: " + self.stderr.strip().replace("\n", "\n        "))
        if self.stdout.strip():
            lines.append("stdout: " + self.stdout.strip()[:2000].replace("\n", "\n        "))
        if self.hint:
            lines.append("hint: " + self.hint)
        return "\n".join(lines)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.argv, self.returncode, self.stdout, self.stderr, self.hint))


class NotFoundError(CommandError):
    """The device, namespace, address, route, rule or chain does not exist."""


class AlreadyExistsError(CommandError):
    """The name (or address, route, chain) is already taken."""


class PermissionDeniedError(CommandError):
    """The command needs privileges this process does not have."""


class BinaryNotFoundError(CommandError):
    """A program netns_kit runs is not installed: found neither on ``PATH`` nor in
    ``/usr/sbin``, ``/sbin``, ``/usr/local/sbin`` (:mod:`netns_kit.executors.binaries`).
    Nothing ran. ``binary`` names the program (the argv's program, or the one ``nsenter``,
    ``unshare``, ``env`` or ``ip netns exec`` could not start)."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: str = "",
        stderr: str = "",
        hint: str = "",
        *,
        binary: str = "",
    ) -> None:
        super().__init__(argv, returncode, stdout, stderr, hint)
        self.binary = binary or shape.program(argv)

    def __reduce__(self) -> tuple[Any, ...]:
        return (*super().__reduce__(), {"binary": self.binary})


_ROOT_HINT = (
    "this needs CAP_NET_ADMIN: run as root, or run inside netns_kit.Sandbox() (rootless, through user namespaces)"
)
_TAKEN_HINT = (
    "the name is already taken: pick another one, delete the old object, or pass "
    "adopt=True to use the existing one (netns_kit never deletes what it adopted)"
)
_MISSING_HINT = "it does not exist (yet): check the name, the namespace it lives in, and the order of creation"

#: the package each program netns_kit runs comes in (Debian/Ubuntu)
PACKAGES = {
    "ip": "iproute2",
    "tc": "iproute2",
    "ss": "iproute2",
    "iptables": "iptables",
    "ip6tables": "iptables",
    "iptables-save": "iptables",
    "ip6tables-save": "iptables",
    "iptables-restore": "iptables",
    "ip6tables-restore": "iptables",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "sysctl": "procps",
    "kill": "procps",
    "ping": "iputils-ping",
    "env": "coreutils",
}


def _missing_hint(binary: str) -> str:
    name = binary.rsplit("/", 1)[-1]
    hint = f"{binary!r} is not installed (looked on PATH, then in /usr/sbin, /sbin, /usr/local/sbin)"
    package = PACKAGES.get(name)
    if package:
        hint += f": apt-get install {package} (Debian/Ubuntu; or your distribution's package)"
    return hint


def _owned_hint(match: re.Match[str]) -> str:
    table = f"{match['family']} {match['table']}"
    return (
        f"{_ROOT_HINT}. As root this means table {table} has `flags owner` and another process "
        "holds it: the kernel lets only that process change or delete it, and deletes it when that "
        f"process exits (`nft list table {table}` shows `flags owner`). A netns_kit table made with "
        "an owner holder (owned=True) belongs to the holder, an `nft -i` child of the process that "
        "made it: change it through that process, or let it exit"
    )


def _missing(match: re.Match[str]) -> str:
    return _missing_hint(match["binary"])


#: (stderr pattern, exit codes or None for any, error class, hint: text, or made from the
#: match). First match wins. Every row is a message seen from iproute2 6.1 /
#: iptables 1.8.9 / util-linux 2.38 / coreutils 9.1. A ``binary`` group names the
#: program a wrapper (nsenter, unshare, env, ip netns exec) could not start.
TABLE: tuple[
    tuple[re.Pattern[str], frozenset[int] | None, type[CommandError], str | Callable[[re.Match[str]], str]], ...
] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.MULTILINE), codes, cls, hint)
    for pattern, codes, cls, hint in (
        # a wrapper found the program nowhere: nothing ran
        (
            r"^(?:\S*/)?(?:nsenter|unshare): failed to execute (?P<binary>.+?): No such file",
            frozenset({127}),
            BinaryNotFoundError,
            _missing,
        ),
        (  # coreutils quotes the name as the locale does: \u2018NAME\u2019 or 'NAME'
            r"^(?:\S*/)?env: [\u2018'\"]?(?P<binary>.+?)[\u2019'\"]?: No such file",
            frozenset({127}),
            BinaryNotFoundError,
            _missing,
        ),
        (r"^exec of \"(?P<binary>.*)\" failed: No such file", None, BinaryNotFoundError, _missing),
        (  # nft names the line it failed on; the table may be another process's (flags owner)
            r"Could not process rule: Operation not permitted\n(?:add|create|insert|replace|delete|destroy|flush) "
            r"(?:table|chain|rule|set|map|element|flowtable) (?P<family>ip6?|inet|arp|bridge|netdev) "
            r"(?P<table>[A-Za-z0-9_.-]+)",
            None,
            PermissionDeniedError,
            _owned_hint,
        ),
        (
            r"Operation not permitted|Permission denied|you must be root|"
            r"permission denied on key|must be run as root",
            None,
            PermissionDeniedError,
            _ROOT_HINT,
        ),
        (r"File exists|Address already assigned|Chain already exists", None, AlreadyExistsError, _TAKEN_HINT),
        (
            r"Couldn't load (match|target) `|Extension .* not supported, missing kernel module|"
            r"table '.*' does not exist",
            None,
            CommandError,
            "iptables lacks an extension or the kernel a module for this rule (comment, addrtype, "
            "conntrack, MASQUERADE, DNAT, the nat or raw table): install the iptables package's "
            "extensions, or modprobe the module (xt_comment, xt_addrtype, xt_conntrack, iptable_nat, "
            "ip6table_nat, nft_compat for the nf_tables backend)",
        ),
        (
            r"Specified qdisc kind is unknown",
            None,
            CommandError,
            "this kernel lacks that qdisc (for netem: CONFIG_NET_SCH_NETEM, module sch_netem); "
            "netns_kit.executors.capability.has_netem() probes for it",
        ),
        (
            r"Cannot find device|Device does not exist|No such device|"
            r"Cannot open network namespace|Cannot remove namespace file|"
            r"Cannot delete qdisc with handle of zero|Cannot find specified qdisc|"
            r"Invalid \"netns\" value|"
            r"No such file or directory|No such process|Address not found|FIB table does not exist|"
            r"does a matching rule exist|No chain/target/match by that name|"
            r"Chain '.*' does not exist|Cannot assign requested address",
            None,
            NotFoundError,
            _MISSING_HINT,
        ),
        (
            r"iptables-legacy tables present|iptables-nft tables present",
            None,
            CommandError,
            "rules are held by the other iptables backend (nf_tables vs legacy) and may "
            "shadow ours: run `netns-kit doctor`",
        ),
        (
            r"Nexthop has invalid gateway|Network is unreachable",
            None,
            CommandError,
            "the gateway is not on a connected subnet: give the interface an address in "
            "the gateway's subnet first (or add the route with onlink)",
        ),
    )
)


def classify(argv: Sequence[str], returncode: int, stdout: str = "", stderr: str = "") -> CommandError:
    """Return the most precise :class:`CommandError` for a failed process."""
    if returncode == 127 and not stderr.strip():
        return BinaryNotFoundError(argv, returncode, stdout, stderr, _missing_hint(shape.program(argv)))
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else f"signal {-returncode}"
        killed = f"killed by {name} (Ctrl-C, a timeout, a kill): it may or may not have taken effect"
        return CommandError(argv, returncode, stdout, stderr, killed)
    for pattern, codes, cls, hint in TABLE:
        if codes is not None and returncode not in codes:
            continue
        match = pattern.search(stderr)
        if match is None:
            continue
        text = hint if isinstance(hint, str) else hint(match)
        if cls is BinaryNotFoundError:
            return BinaryNotFoundError(argv, returncode, stdout, stderr, text, binary=match["binary"])
        return cls(argv, returncode, stdout, stderr, text)
    return CommandError(argv, returncode, stdout, stderr)


def not_started(argv: Sequence[str], returncode: int, stdout: str = "", stderr: str = "") -> BinaryNotFoundError | None:
    """The error when a wrapper in ``argv`` (nsenter, unshare, env, ip netns exec) could
    not start the program it was to run, so that nothing ran; else None.

    Only a program named in ``argv`` counts: ``sh -s`` reporting that a line of its
    script could not start a program is the script's own failure (lines before it ran).
    """
    if returncode == 0:
        return None
    error = classify(argv, returncode, stdout, stderr)
    if not isinstance(error, BinaryNotFoundError) or not stderr.strip():
        return None
    named = error.binary.rsplit("/", 1)[-1]
    return error if any(word.rsplit("/", 1)[-1] == named for word in shape.arguments(argv)) else None


def binary_not_found(argv: Sequence[str]) -> BinaryNotFoundError:
    """The error for a program that could not be started at all."""
    return BinaryNotFoundError(argv, 127, "", "", _missing_hint(shape.program(argv)))


def __getattr__(name: str) -> type[NetnsKitTimeoutError]:
    # ``netns_kit.errors.TimeoutError``, as before, without shadowing the builtin in this module
    if name == "TimeoutError":
        return NetnsKitTimeoutError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
