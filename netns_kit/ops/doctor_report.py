"""The values ``netns-kit doctor`` returns (:class:`Check`, :class:`Report`), and the
:class:`Look` its checks share: where to look and how to run a read-only command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs

from netns_kit.command import query
from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@attrs.frozen
class Check:
    """One finding: ``status`` is ok, warn, fail or skip."""

    name: str
    status: str
    summary: str
    explanation: str = ""
    fix: str = ""

    def lines(self) -> list[str]:
        out = [f"[{self.status.upper():4}] {self.name}: {self.summary}"]
        if self.explanation and self.status != OK:
            out += [f"       {line}" for line in self.explanation.splitlines()]
        if self.fix and self.status in (WARN, FAIL):
            out += [f"       fix: {line}" for line in self.fix.splitlines()]
        return out


@attrs.frozen
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when nothing failed (warnings allowed)."""
        return not any(c.status == FAIL for c in self.checks)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def reason(self) -> str:
        """Why netns_kit cannot run here, in one line (empty when it can): a skip reason."""
        return "; ".join(f"{c.name}: {c.summary} (fix: {c.fix})" for c in self.failures())

    def lines(self) -> list[str]:
        out = [line for check in self.checks for line in check.lines()]
        fails, warns = len(self.failures()), sum(c.status == WARN for c in self.checks)
        out.append("")
        out.append(
            "netns_kit can run here." if not fails else f"{fails} problem(s) stop netns_kit here; see the fixes above."
        )
        if warns:
            out.append(f"{warns} warning(s): netns_kit runs, but read them.")
        return out

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [attrs.asdict(c) for c in self.checks]}


class Where(Protocol):
    """What a check may ask (:class:`netns_kit.ops.doctor.Probes` is one)."""

    which: Callable[[str], str | None]
    read: Callable[[str], str | None]
    euid: Callable[[], int]
    userns_works: Callable[[], tuple[bool, str]]
    rootless_impairments: Callable[[], tuple[str, str]]
    impairments: bool
    sandboxed: bool


class Look:
    """The probes of one doctor run and its executor (the real machine, or a sandbox)."""

    def __init__(self, probes: Where, executor: Executor) -> None:
        self.p = probes
        self.executor = executor

    def run(self, *argv: str) -> tuple[bool, str, str]:
        try:
            result = self.executor.run(query(*argv), check=False)
        except CommandError as error:
            return False, "", error.stderr or error.hint
        return result.ok, result.stdout, result.stderr
