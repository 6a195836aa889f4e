from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"

# the netns_kit plugin itself is tested by running pytest on test files written by the tests
pytest_plugins = ("pytester",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """Compare text with tests/golden/NAME (rewrite it with --update-golden)."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update or not path.exists():
            if not update:
                pytest.fail(f"golden file {path} is missing: run with --update-golden to create it")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert text == path.read_text(), f"differs from golden file {path}"

    return check


@functools.cache
def kernel_probes() -> dict[str, tuple[bool | None, str]]:
    """What this kernel has, asked once per session inside a throwaway sandbox:
    ``{need: (available, why not)}``; available is None when the sandbox cannot start."""
    from netns_kit import SandboxError, query
    from netns_kit.executors import capability
    from netns_kit.executors.sandbox import Sandbox

    try:
        with Sandbox() as box:
            netem = capability.netem(box)
            bridged = box.run(query("sysctl", "-n", "net.bridge.bridge-nf-call-iptables"), check=False)
    except SandboxError as error:
        unknown = (None, f"the sandbox cannot start, so the kernel cannot be probed: {error}")
        return dict.fromkeys(("netem", "br_netfilter"), unknown)
    why_not = f"br_netfilter is not loaded (sysctl says: {bridged.stderr.strip() or bridged.returncode})"
    return {"netem": (netem.available, netem.reason), "br_netfilter": (bridged.ok, "" if bridged.ok else why_not)}


#: what a test can need from the kernel (``@pytest.mark.needs("netem")``), and how to ask for it.
#: Where it is missing, those tests FAIL, unless NETNS_KIT_NO_<NAME>=1 leaves them out on purpose:
#: then they are deselected and the end of the run says what was not run and why.
NEEDS: dict[str, Callable[[], tuple[bool | None, str]]] = {
    "netem": lambda: kernel_probes()["netem"],
    "br_netfilter": lambda: kernel_probes()["br_netfilter"],
}

_not_run = pytest.StashKey[dict[str, list[str]]]()
_missing = pytest.StashKey[str]()


def opt_out_variable(need: str) -> str:
    return f"NETNS_KIT_NO_{need.upper()}"


def _opted_out(need: str) -> bool:
    return os.environ.get(opt_out_variable(need), "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    # The tests send Ctrl-C (SIGINT) to the processes they start. A runner started in the
    # background (`cmd &` in a script: the shell sets SIGINT to "ignore") hands that
    # ignore down to every child it starts, which would then never see the Ctrl-C. A
    # handler (unlike an ignore) is reset to the default at exec: the children get it.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers",
        f"needs(name): needs a kernel feature ({', '.join(NEEDS)}); fails where it is missing, "
        "unless NETNS_KIT_NO_<NAME>=1 leaves the test out (said at the end of the run)",
    )


def _needs(item: pytest.Item) -> list[str]:
    names = [name for mark in item.iter_markers("needs") for name in mark.args]
    unknown = [name for name in names if name not in NEEDS]
    if unknown:
        raise pytest.UsageError(f"{item.nodeid}: unknown need {unknown[0]!r} (known: {', '.join(NEEDS)})")
    return names


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for need, probe in NEEDS.items():
        available, reason = probe()
        if available:
            lines.append(f"{need}: available; tests marked needs({need!r}) run")
        elif available is None:
            lines.append(f"{need}: unknown ({reason}); tests marked needs({need!r}) go with the sandbox's fate")
        elif _opted_out(need):
            lines.append(f"{need}: NOT available ({reason}); {opt_out_variable(need)}=1: its tests are left out")
        else:
            lines.append(
                f"{need}: NOT available ({reason}); its tests will FAIL ({opt_out_variable(need)}=1 leaves them out)"
            )
    return lines


@pytest.hookimpl(trylast=True)  # after -k and -m: only what would run is looked at
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, left_out = [], []
    not_run: dict[str, list[str]] = {}
    for item in items:
        missing = [need for need in _needs(item) if NEEDS[need]()[0] is False]
        if not missing:
            kept.append(item)
        elif all(_opted_out(need) for need in missing):
            left_out.append(item)
            for need in missing:
                not_run.setdefault(need, []).append(item.nodeid)
        else:
            need = next(need for need in missing if not _opted_out(need))
            reason = NEEDS[need]()[1]
            message = (
                f"needs {need}, and {reason}. This test cannot run here: it fails rather than pass unproven. "
                f"Set {opt_out_variable(need)}=1 to leave out every test that needs {need} (the end of the "
                "run lists them as not run)."
            )
            item.stash[_missing] = message  # kept: it fails at setup
            kept.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
    config.stash[_not_run] = not_run


def pytest_runtest_setup(item: pytest.Item) -> None:
    message = item.stash.get(_missing, None)
    if message is not None:
        pytest.fail(message, pytrace=False)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    not_run = config.stash.get(_not_run, {})
    # under xdist the workers collect: this process knows only which needs were left out
    xdist = getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput")
    left_out = [
        need for need, probe in NEEDS.items() if (need in not_run or xdist) and _opted_out(need) and probe()[0] is False
    ]
    if not left_out:
        return
    terminalreporter.section("NOT RUN: tests left out on purpose", sep="=", yellow=True, bold=True)
    for need in left_out:
        nodeids = not_run.get(need, [])
        which = f"{len(nodeids)} test(s) that need {need} were" if nodeids else f"The tests that need {need} were"
        listed = ":" if nodeids else " (collected by the xdist workers, so not listed here)."
        terminalreporter.write_line(
            f"{which} not run: {NEEDS[need]()[1]}; {opt_out_variable(need)}=1 is set, which says to leave them out"
            + listed
        )
        for nodeid in nodeids:
            terminalreporter.write_line(f"  {nodeid}")
