"""netns_kit: real, throwaway Linux network topologies, built with ip and iptables.

::

    import netns_kit
    from netns_kit import Namespace, VethPair

    with netns_kit.Sandbox() as sandbox, netns_kit.use(sandbox):
        with Namespace("red"), Namespace("blue"), VethPair(
            "veth-red", "veth-blue", netns="red", peer_netns="blue",
            addresses="192.168.1.1/24", peer_addresses="192.168.1.2/24",
        ):
            Namespace("red").wait_reachable("192.168.1.2")
"""

from __future__ import annotations

# The names below are imported on first use (PEP 562), so `import netns_kit` and
# loading the pytest plugin cost almost nothing until netns_kit is really used.
import importlib
from typing import TYPE_CHECKING, Any

from netns_kit.version import __version__ as __version__

if TYPE_CHECKING:
    from netns_kit.command import Command, Result, change, query
    from netns_kit.errors import (
        AlreadyExistsError,
        BinaryNotFoundError,
        CommandError,
        NetnsKitError,
        NotFoundError,
        PermissionDeniedError,
        SandboxError,
        UnsupportedError,
        ValidationError,
    )
    from netns_kit.errors import (
        NetnsKitTimeoutError as TimeoutError,
    )
    from netns_kit.executors.base import Executor, current, use
    from netns_kit.executors.local import ShExecutor
    from netns_kit.executors.process import PIPE, STDOUT, Process
    from netns_kit.executors.recorder import Recorder
    from netns_kit.executors.sandbox import Sandbox
    from netns_kit.firewall.nat import NatRule
    from netns_kit.firewall.nftheld import Held
    from netns_kit.firewall.portforward import PortForward
    from netns_kit.impairment import Impairment
    from netns_kit.lifecycle.resource import Resource
    from netns_kit.ops.cleanup import CleanupReport, cleanup
    from netns_kit.owner import Owner
    from netns_kit.resources.files import NetnsFile, hosts_files
    from netns_kit.resources.link import Bridge, VethPair
    from netns_kit.resources.link_impairment import LinkImpairment
    from netns_kit.resources.namespace import AttachedNamespace, Host, Namespace
    from netns_kit.resources.partition import LinkDown, Partition
    from netns_kit.resources.route import Address, Route
    from netns_kit.topology.topology import Topology

_WHERE = {
    "Command": ".command",
    "Result": ".command",
    "change": ".command",
    "query": ".command",
    "AlreadyExistsError": ".errors",
    "BinaryNotFoundError": ".errors",
    "CommandError": ".errors",
    "NetnsKitError": ".errors",
    "NotFoundError": ".errors",
    "PermissionDeniedError": ".errors",
    "SandboxError": ".errors",
    "TimeoutError": ".errors",
    "UnsupportedError": ".errors",
    "ValidationError": ".errors",
    "Executor": ".executors.base",
    "Recorder": ".executors.recorder",
    "ShExecutor": ".executors.local",
    "current": ".executors.base",
    "use": ".executors.base",
    "Impairment": ".impairment",
    "CleanupReport": ".ops.cleanup",
    "cleanup": ".ops.cleanup",
    "Bridge": ".resources.link",
    "VethPair": ".resources.link",
    "LinkImpairment": ".resources.link_impairment",
    "AttachedNamespace": ".resources.namespace",
    "Host": ".resources.namespace",
    "Namespace": ".resources.namespace",
    "NatRule": ".firewall.nat",
    "Held": ".firewall.nftheld",
    "NetnsFile": ".resources.files",
    "hosts_files": ".resources.files",
    "Owner": ".owner",
    "LinkDown": ".resources.partition",
    "Partition": ".resources.partition",
    "PortForward": ".firewall.portforward",
    "PIPE": ".executors.process",
    "Process": ".executors.process",
    "STDOUT": ".executors.process",
    "Resource": ".lifecycle.resource",
    "Address": ".resources.route",
    "Route": ".resources.route",
    "Sandbox": ".executors.sandbox",
    "Topology": ".topology.topology",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'netns_kit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "Address",
    "AlreadyExistsError",
    "AttachedNamespace",
    "BinaryNotFoundError",
    "Bridge",
    "CleanupReport",
    "Command",
    "CommandError",
    "Executor",
    "Host",
    "Impairment",
    "LinkDown",
    "LinkImpairment",
    "Namespace",
    "NatRule",
    "Held",
    "NetnsFile",
    "NetnsKitError",
    "NotFoundError",
    "Owner",
    "PIPE",
    "Partition",
    "PermissionDeniedError",
    "PortForward",
    "Process",
    "Recorder",
    "Resource",
    "Result",
    "Route",
    "Sandbox",
    "SandboxError",
    "STDOUT",
    "ShExecutor",
    "TimeoutError",
    "Topology",
    "UnsupportedError",
    "ValidationError",
    "VethPair",
    "change",
    "cleanup",
    "current",
    "hosts_files",
    "query",
    "use",
]
