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

__version__ = "0.1.0"

# The names below are imported on first use (PEP 562), so `import netns_kit` and
# loading the pytest plugin cost almost nothing until netns_kit is really used.
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .command import Command, Result, change, query
    from .errors import (
        AlreadyExistsError,
        BinaryNotFoundError,
        CommandError,
        NetnsKitError,
        NotFoundError,
        PermissionDeniedError,
        SandboxError,
        TimeoutError,
        UnsupportedError,
        ValidationError,
    )
    from .executor import Executor, current, use
    from .impairment import Impairment
    from .leftovers import CleanupReport, cleanup
    from .link import Bridge, VethPair
    from .link_impairment import LinkImpairment
    from .namespace import Host, Namespace
    from .nat import NatRule
    from .netns_file import NetnsFile, hosts_files
    from .owner import Owner
    from .partition import LinkDown, Partition
    from .portforward import PortForward
    from .process import PIPE, STDOUT, Process
    from .recorder import Recorder
    from .resource import Resource
    from .route import Address, Route
    from .sandbox import Sandbox
    from .shexecutor import ShExecutor
    from .topology import Topology

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
    "Executor": ".executor",
    "Recorder": ".recorder",
    "ShExecutor": ".shexecutor",
    "current": ".executor",
    "use": ".executor",
    "Impairment": ".impairment",
    "CleanupReport": ".leftovers",
    "cleanup": ".leftovers",
    "Bridge": ".link",
    "VethPair": ".link",
    "LinkImpairment": ".link_impairment",
    "Host": ".namespace",
    "Namespace": ".namespace",
    "NatRule": ".nat",
    "NetnsFile": ".netns_file",
    "hosts_files": ".netns_file",
    "Owner": ".owner",
    "LinkDown": ".partition",
    "Partition": ".partition",
    "PortForward": ".portforward",
    "PIPE": ".process",
    "Process": ".process",
    "STDOUT": ".process",
    "Resource": ".resource",
    "Address": ".route",
    "Route": ".route",
    "Sandbox": ".sandbox",
    "Topology": ".topology",
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
