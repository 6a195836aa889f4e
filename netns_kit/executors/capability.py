"""What the kernel behind an executor can do, probed once per executor.

The netem qdisc (``sch_netem``) is missing from some kernels (minimal CI and
container kernels, WSL2 for years). The probe tries it for real in a
throwaway network namespace (``unshare --net tc qdisc add dev lo root netem
...``), which changes nothing that outlives the probe, and remembers the
answer for that executor. A dry-run (:class:`~netns_kit.executors.recorder.Recorder`)
answers as a full kernel would, unless its handler says otherwise.
"""

from __future__ import annotations

import weakref

import attrs

from netns_kit.command import Command, query
from netns_kit.errors import BinaryNotFoundError, UnsupportedError
from netns_kit.executors.hook import Executor

#: what the probe runs (through the executor, so inside a sandbox when there is one)
NETEM_PROBE: Command = query(
    "unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", ok_codes=range(256)
)


@attrs.frozen
class Probe:
    """The answer to one probe: ``available``, and why not when it is not."""

    available: bool
    reason: str = ""


_netem: weakref.WeakKeyDictionary[Executor, Probe] = weakref.WeakKeyDictionary()


def netem(executor: Executor) -> Probe:
    """Whether the netem qdisc works behind ``executor`` (probed once, then remembered)."""
    executor = executor.underlying  # a planning view answers for what it wraps
    probe = _netem.get(executor)
    if probe is None:
        try:
            result = executor.run(NETEM_PROBE)
        except BinaryNotFoundError as error:  # unshare or tc is not installed
            probe = _netem[executor] = Probe(False, f"the netem probe could not run: {error.hint}")
            return probe
        stderr = result.stderr.strip()
        if result.returncode == 0:
            probe = Probe(True)
        elif "qdisc kind is unknown" in stderr:
            probe = Probe(False, f"this kernel has no netem qdisc (tc says: {stderr})")
        else:
            probe = Probe(False, f"the netem probe failed ({NETEM_PROBE.line}: {stderr or result.returncode})")
        _netem[executor] = probe
    return probe


def has_netem(executor: Executor) -> bool:
    return netem(executor).available


def require_netem(executor: Executor, settings: str, instead: str = "") -> None:
    """Raise :class:`UnsupportedError` naming ``settings`` when netem is missing."""
    probe = netem(executor)
    if not probe.available:
        message = (
            f"{settings} needs the netem qdisc (kernel option CONFIG_NET_SCH_NETEM, module sch_netem), "
            f"but {probe.reason}"
        )
        if instead:
            message += f"; {instead}"
        raise UnsupportedError("netem qdisc", message)
