"""Per-namespace files: ``/etc/netns/NAME/hosts``, ``resolv.conf``, ...

``ip netns exec NAME cmd`` bind-mounts each file of ``/etc/netns/NAME`` over
the one of the same name in ``/etc`` for ``cmd``: a namespace can have its
own ``/etc/hosts`` (names for the other namespaces) and its own
``/etc/resolv.conf``. Processes started after the file is written see it.

A :class:`NetnsFile` is written through the executor like every other change
(``install -m 0644 /dev/stdin PATH`` fed the content, a quoted here-document
in a dry-run script) and removed on delete, with its directory when that is
left empty. It refuses to overwrite a file it did not write (``adopt=True``
uses it as it is). In the :class:`~netns_kit.executors.sandbox.Sandbox`, ``/etc`` is a
private overlay, so nothing reaches the machine's own ``/etc``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from netns_kit.command import Command, change, query
from netns_kit.errors import NetnsKitError, ValidationError
from netns_kit.executors.base import Executor
from netns_kit.lifecycle.interfaces import Interfaces
from netns_kit.lifecycle.resource import Resource
from netns_kit.resources.namespace import Namespace
from netns_kit.validate import IPAddress, check_name, parse_address, to_name, valid_netns

ETC_NETNS = "/etc/netns"
_LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _valid_file_name(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_name("NetnsFile.name", value, limit=255, kind="file", reserved={".", ".."})


def _valid_content(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise ValidationError("NetnsFile.content", value, "must be text")
    if value and not value.endswith("\n"):
        raise ValidationError("NetnsFile.content", value[-40:], "must end with a newline")
    if "\0" in value:
        raise ValidationError("NetnsFile.content", value[:40], "must not contain NUL")


@attrs.frozen
class NetnsFile(Resource):
    """The file ``/etc/netns/NETNS/NAME`` with ``content`` (``hosts``, ``resolv.conf``, ...)."""

    netns: str = attrs.field(converter=to_name, validator=valid_netns)
    name: str = attrs.field(validator=_valid_file_name)
    content: str = attrs.field(validator=_valid_content)

    @classmethod
    def hosts(cls, netns: Any, names: Mapping[str, Iterable[Any]], **kwargs: Any) -> NetnsFile:
        """An ``/etc/hosts`` for ``netns``: localhost, then ``address<TAB>name`` for each given."""
        lines = [_LOCALHOST]
        for name, addresses in names.items():
            check_name("NetnsFile.hosts", name, limit=253, kind="host", reserved=())
            for address in addresses:
                lines.append(f"{_address('NetnsFile.hosts', address)}\t{name}\n")
        return cls(netns, "hosts", "".join(lines), **kwargs)

    @classmethod
    def resolv_conf(
        cls, netns: Any, nameservers: Iterable[Any], *, search: Iterable[str] = (), **kwargs: Any
    ) -> NetnsFile:
        """An ``/etc/resolv.conf`` for ``netns`` (``nameserver`` lines, an optional ``search`` line)."""
        servers = [parse_address("NetnsFile.nameservers", s) for s in nameservers]
        if not servers:
            raise ValidationError("NetnsFile.nameservers", [], "must hold at least one address")
        domains = list(search)
        for domain in domains:
            check_name("NetnsFile.search", domain, limit=253, kind="domain", reserved=())
        text = "".join(f"nameserver {s}\n" for s in servers)
        if domains:
            text += f"search {' '.join(domains)}\n"
        return cls(netns, "resolv.conf", text, **kwargs)

    @property
    def directory(self) -> str:
        return f"{ETC_NETNS}/{self.netns}"

    @property
    def path(self) -> str:
        return f"{self.directory}/{self.name}"

    def _existing(self, executor: Executor) -> set[str]:
        # find prints the paths that exist; a dry-run answers "" (a fresh machine: none)
        result = executor.run(query("find", self.directory, self.path, "-maxdepth", "0", ok_codes=(0, 1)))
        return set(result.stdout.split("\n")) - {""}

    def plan(self, executor: Executor) -> list[Command]:
        existing = self._existing(executor)
        if self.path in existing:
            raise NetnsKitError(
                f"{self.path} already exists and netns_kit did not write it: remove it, "
                "or pass adopt=True to use it as it is"
            )
        commands = []
        if self.directory not in existing:
            rmdir = Command(("rmdir", "--ignore-fail-on-non-empty", self.directory))
            commands.append(change("mkdir", "-p", self.directory, undo=rmdir))
        remove = Command(("rm", "-f", self.path))
        commands.append(change("install", "-m", "0644", "/dev/stdin", self.path, stdin=self.content, undo=remove))
        return commands

    def exists(self, executor: Executor | None = None) -> bool:
        return self.path in self._existing(self._executor(executor))

    def read(self, executor: Executor | None = None) -> str:
        """The file's content as it is now."""
        return self._executor(executor).run(query("cat", self.path)).stdout


def _address(field: str, value: Any) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value.ip
    if isinstance(value, str) and "/" in value:
        try:
            return ipaddress.ip_interface(value).ip
        except ValueError:
            pass
    return parse_address(field, value)


def addresses_by_namespace(resources: Iterable[Any]) -> dict[str, list[IPAddress]]:
    """The addresses each namespace gets from ``resources`` (the interfaces they declare:
    veths, bridges, ``Address``), in order.

    Works on a :class:`~netns_kit.topology.topology.Topology` (it iterates over its
    resources) without reading anything from the system.
    """
    index = Interfaces.build(r for r in resources if isinstance(r, Resource))
    return {netns: [a.ip for _, a in on] for netns, on in index.by_namespace.items() if netns is not None}


def hosts_files(resources: Iterable[Any], *, extra: Mapping[str, Iterable[Any]] | None = None) -> list[NetnsFile]:
    """One ``/etc/hosts`` per namespace in ``resources``, naming every namespace by its addresses.

    ::

        topo.add(*hosts_files(topo))   # then, in red: curl http://blue:8000/

    ``extra`` adds names (``{"db": ["10.0.0.9"]}``). Namespaces without an
    address get a file too (they can still resolve the others).
    """
    resources = list(resources)
    names: dict[str, list[Any]] = {
        name: list(addresses) for name, addresses in addresses_by_namespace(resources).items()
    }
    for name, addresses in (extra or {}).items():
        names.setdefault(name, []).extend(addresses)
    namespaces = [r.name for r in resources if isinstance(r, Namespace)]
    return [NetnsFile.hosts(netns, names) for netns in namespaces]
