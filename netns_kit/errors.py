"""The error tree, and the ONE table that turns a failed process into it.

::

    NetnsKitError
    ├── ValidationError          (also a ValueError) bad input, raised before any command
    ├── SandboxError             the sandbox could not start (user namespaces refused, ...)
    ├── TimeoutError             a wait with a deadline ran out
    ├── UnsupportedError         this kernel lacks a feature asked for (the netem qdisc, ...)
    └── CommandError             a command exited with a code it does not accept
        ├── NotFoundError        no such device / namespace / rule / chain
        ├── AlreadyExistsError   the name (or address, route, chain) is taken
        ├── PermissionDeniedError  not root, no CAP_NET_ADMIN
        └── BinaryNotFoundError  ip / iptables / nsenter ... is not installed

Every ``CommandError`` carries ``argv``, ``returncode``, ``stdout``, ``stderr``
and a ``hint``; :func:`classify` picks the subclass from stderr and the exit
code, using :data:`TABLE` and nothing else.
"""

from __future__ import annotations

import re
import shlex
import signal
from collections.abc import Sequence
from typing import Any


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


class TimeoutError(NetnsKitError):
    """A wait with a deadline ran out."""


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
    """A binary netns_kit runs is not installed (or not on PATH)."""


_ROOT_HINT = (
    "this needs CAP_NET_ADMIN: run as root, or run inside netns_kit.Sandbox() (rootless, through user namespaces)"
)
_TAKEN_HINT = (
    "the name is already taken: pick another one, delete the old object, or pass "
    "adopt=True to use the existing one (netns_kit never deletes what it adopted)"
)
_MISSING_HINT = "it does not exist (yet): check the name, the namespace it lives in, and the order of creation"

#: (stderr pattern, exit codes or None for any, error class, hint). First match wins.
#: Every row is a message seen from iproute2 6.1 / iptables 1.8.9 / util-linux 2.38.
TABLE: tuple[tuple[re.Pattern[str], frozenset[int] | None, type[CommandError], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), codes, cls, hint)
    for pattern, codes, cls, hint in (
        (
            r"exec of \".*\" failed: No such file",
            None,
            BinaryNotFoundError,
            "the program to run inside the namespace is not installed or not on PATH",
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
            "netns_kit.capability.has_netem() probes for it",
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
        return BinaryNotFoundError(argv, returncode, stdout, stderr, f"{argv[0]!r} is not installed or not on PATH")
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else f"signal {-returncode}"
        hint = f"killed by {name} (Ctrl-C, a timeout, a kill): it may or may not have taken effect"
        return CommandError(argv, returncode, stdout, stderr, hint)
    for pattern, codes, cls, hint in TABLE:
        if (codes is None or returncode in codes) and pattern.search(stderr):
            return cls(argv, returncode, stdout, stderr, hint)
    return CommandError(argv, returncode, stdout, stderr)


def binary_not_found(argv: Sequence[str]) -> BinaryNotFoundError:
    """The error for a binary that could not be started at all."""
    package = {
        "ip": "iproute2",
        "tc": "iproute2",
        "iptables": "iptables",
        "ip6tables": "iptables",
        "iptables-save": "iptables",
        "iptables-restore": "iptables",
        "nsenter": "util-linux",
        "unshare": "util-linux",
        "ping": "iputils-ping",
    }.get(argv[0].rsplit("/", 1)[-1])
    hint = f"{argv[0]!r} is not installed or not on PATH"
    if package:
        hint += f" (Debian/Ubuntu: apt-get install {package})"
    return BinaryNotFoundError(argv, 127, "", "", hint)
