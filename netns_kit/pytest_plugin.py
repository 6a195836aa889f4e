"""pytest fixtures for real, throwaway networks (registered through the ``pytest11`` entry point).

Loaded automatically once netns_kit is installed; it does nothing until a
test asks for one of its fixtures (all named ``netns_*``):

==========================  ====================================================
``netns_sandbox``           the :class:`~netns_kit.Sandbox`, one per session
                            (``--netns-sandbox-scope`` to change); per xdist
                            worker
``netns_executor``          the executor of this test, in effect for it
                            (:func:`netns_kit.use`): the sandbox, or this
                            machine with ``--netns-host`` (root only); checks
                            for leaks after the test
``netns_factory``           a :class:`~netns_kit.testing.Factory`: ``netns_factory(
                            *resources)`` brings a topology up, undone after the
                            test however it ended
``netns_namespace``         a ready-made namespace with a unique name
``netns_pair``              two namespaces joined by a veth, ``10.0.0.1/24`` and
                            ``10.0.0.2/24`` (a :class:`~netns_kit.testing.Pair`)
``netns_unique_name``       :func:`~netns_kit.testing.unique_name`
``netns_recorder``          a :class:`~netns_kit.Recorder` in effect for the test
                            (dry-run: no root, no process)
``netns_assert_plan``       :func:`~netns_kit.testing.assert_plan` with paths
                            relative to the test file and ``--netns-update-golden``
``netns_fresh_sandbox``     a sandbox of the test's own
``netns_firewall``          the firewall backend of the fixtures' executors:
                            ``"iptables"``, ``"nft"`` or ``"auto"``
==========================  ====================================================

``--netns-iptables legacy`` (or ``nft``) runs the sandboxes' ``iptables`` with that
backend, so a suite can be run against both. ``--netns-firewall nft`` (or ``auto``,
``iptables``; the ini option ``netns_firewall``; default ``$NETNS_KIT_FIREWALL``, else
iptables) is the firewall backend of the NAT rules and port forwards that name none, in
every executor these fixtures make (``Sandbox(firewall=...)``); the ``netns_firewall``
fixture says which, so a test can read its rules back the right way.

When real namespaces cannot be made here the fixtures skip with the reason;
``--netns-require`` (or ``NETNS_KIT_REQUIRE_SANDBOX=1``, or the ini option
``netns_require = true``) makes them fail instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from netns_kit.errors import SandboxError, ValidationError
from netns_kit.executors.base import Executor, use
from netns_kit.executors.local import ShExecutor
from netns_kit.executors.recorder import Recorder
from netns_kit.executors.sandbox import Sandbox
from netns_kit.firewall import backend, nftheld
from netns_kit.ops.leakcheck import LeakCheck
from netns_kit.resources.namespace import Namespace
from netns_kit.testing import Factory, Pair, assert_plan, environment_problem, unique_name
from netns_kit.topology.topology import Topology

REQUIRE_ENV = "NETNS_KIT_REQUIRE_SANDBOX"
SCOPES = ("session", "package", "module", "class", "function")

_call_report = pytest.StashKey[pytest.TestReport]()
_executor_fixture = pytest.StashKey[str]()
_host_problem = pytest.StashKey["str | None"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netns_kit", "netns_kit: real throwaway networks")
    group.addoption(
        "--netns-host",
        action="store_true",
        help="run the netns_* fixtures on this machine's own network instead of a sandbox (root only)",
    )
    group.addoption(
        "--netns-require",
        action="store_true",
        help=f"fail, never skip, when real namespaces cannot be made here (also: {REQUIRE_ENV}=1)",
    )
    group.addoption(
        "--netns-sandbox-scope",
        choices=SCOPES,
        help="how long one netns_sandbox lives (default: session, or the ini option netns_sandbox_scope)",
    )
    group.addoption(
        "--netns-update-golden", action="store_true", help="netns_assert_plan rewrites golden files instead"
    )
    group.addoption(
        "--netns-iptables",
        choices=("nft", "legacy"),
        help="the iptables backend inside the sandboxes (default: the machine's; see Sandbox(iptables=))",
    )
    group.addoption(
        "--netns-firewall",
        choices=backend.BACKENDS,
        help="the firewall backend of NAT rules and port forwards that name none, in the fixtures' executors "
        f"(default: the ini option netns_firewall, else ${backend.ENV}, else iptables)",
    )
    parser.addini("netns_require", "fail, never skip, when real namespaces cannot be made", type="bool", default=False)
    parser.addini("netns_firewall", "the firewall backend of the fixtures' executors (iptables, nft, auto)")
    parser.addini("netns_sandbox_scope", "how long one netns_sandbox lives", default="session")


def pytest_report_header(config: pytest.Config) -> str | None:
    """Which firewall backend the fixtures' executors take, when something chose one."""
    chosen = config.getoption("netns_firewall") or config.getini("netns_firewall") or os.environ.get(backend.ENV)
    return f"netns_kit: firewall backend {chosen}" if chosen else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_call_report] = report


# -- helpers -------------------------------------------------------------------


def _required(config: pytest.Config) -> bool:
    env = os.environ.get(REQUIRE_ENV, "")
    return bool(config.getoption("netns_require") or config.getini("netns_require") or env not in ("", "0"))


def _cannot_run(config: pytest.Config, reason: str) -> NoReturn:
    message = f"netns_kit cannot make real namespaces here: {reason}"
    if _required(config):
        pytest.fail(message, pytrace=False)
    pytest.skip(f"{message} (--netns-require or {REQUIRE_ENV}=1 to fail instead)")


def _firewall(config: pytest.Config) -> str:
    """``--netns-firewall``, else the ini option ``netns_firewall``, else ``$NETNS_KIT_FIREWALL``, else iptables."""
    chosen = config.getoption("netns_firewall") or config.getini("netns_firewall")
    if chosen and chosen not in backend.BACKENDS:
        raise pytest.UsageError(f"netns_firewall = {chosen!r}: must be one of {', '.join(backend.BACKENDS)}")
    try:
        return str(chosen) if chosen else backend.default(None)
    except ValidationError as error:
        raise pytest.UsageError(str(error)) from None


def _sandbox_scope(fixture_name: str, config: pytest.Config) -> Any:
    scope = config.getoption("netns_sandbox_scope") or config.getini("netns_sandbox_scope")
    if scope not in SCOPES:
        raise pytest.UsageError(f"netns_sandbox_scope = {scope!r}: must be one of {', '.join(SCOPES)}")
    return scope


@contextlib.contextmanager
def _sandbox(config: pytest.Config) -> Iterator[Sandbox]:
    """A started sandbox, stopped at the end; skip (or fail) with the reason when it cannot start."""

    problem = environment_problem(start=False)
    if problem:
        _cannot_run(config, problem)
    try:
        sandbox = Sandbox(iptables=config.getoption("netns_iptables"), firewall=_firewall(config)).start()
    except SandboxError as error:
        _cannot_run(config, str(error))
    try:
        yield sandbox
    finally:
        sandbox.close()


def _host(config: pytest.Config) -> Executor:

    if _host_problem not in config.stash:
        config.stash[_host_problem] = environment_problem(sandbox=False)
    problem = config.stash[_host_problem]
    if problem and os.geteuid() != 0:
        pytest.fail(f"--netns-host: {problem}; drop --netns-host to use a rootless sandbox", pytrace=False)
    if problem:
        _cannot_run(config, problem)
    # this machine's own network outlives the test run: its nft tables are held (flags
    # owner), so the kernel deletes them if the run is killed (a sandbox dies with it anyway)
    return nftheld.held(ShExecutor(firewall=_firewall(config)))


def _claim(request: pytest.FixtureRequest) -> None:
    """Only one fixture may set the executor in effect for a test."""
    other = request.node.stash.get(_executor_fixture, None)
    if other is not None and other != request.fixturename:
        pytest.fail(
            f"{request.fixturename} and {other} both set the executor in effect: use one "
            "(and pass executor= to what should use the other)",
            pytrace=False,
        )
    request.node.stash[_executor_fixture] = request.fixturename


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope=_sandbox_scope)
def netns_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A sandbox: throwaway user+net+mount namespaces (rootless when not root)."""
    with _sandbox(request.config) as sandbox:
        yield sandbox


@pytest.fixture
def netns_fresh_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A sandbox of this test's own, stopped after it (for tests about a whole "host")."""
    with _sandbox(request.config) as sandbox:
        yield sandbox


@pytest.fixture
def netns_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """The executor of this test, in effect for it; what the test leaves behind fails it.

    The sandbox by default (leaks: anything that differs, then the sandbox
    is replaced by a fresh one); this machine with ``--netns-host`` (leaks:
    what this process made and did not undo, so xdist workers never blame
    each other; see :mod:`netns_kit.ops.leakcheck`).
    """

    _claim(request)
    host = bool(request.config.getoption("netns_host"))
    executor: Executor = _host(request.config) if host else request.getfixturevalue("netns_sandbox")
    check = LeakCheck(executor, exclusive=not host)
    with use(executor):
        yield executor
    leaks = check.leaks()
    if not leaks:
        return
    text = "\n".join(f"  {leak}" for leak in leaks)
    if isinstance(executor, Sandbox):
        executor.close()
        executor.start()
        text += "\n(the sandbox was replaced by a fresh one for the tests that follow)"
    call = request.node.stash.get(_call_report, None)
    if call is not None and call.failed:
        request.node.add_report_section("teardown", "netns_kit leaks", text)
        return
    pytest.fail(f"the test left this behind:\n{text}", pytrace=False)


@pytest.fixture
def netns_recorder(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """A dry-run :class:`~netns_kit.Recorder`, in effect for this test."""

    _claim(request)
    recorder = Recorder(firewall=_firewall(request.config))
    with use(recorder):
        yield recorder


@pytest.fixture
def netns_firewall(request: pytest.FixtureRequest) -> str:
    """The firewall backend of the executors these fixtures make (``--netns-firewall``):
    ``"iptables"``, ``"nft"`` or ``"auto"`` (:func:`netns_kit.firewall.backend.resolve` says
    which ``auto`` takes in a place)."""
    return _firewall(request.config)


@pytest.fixture
def netns_unique_name() -> Callable[[str], str]:
    """``netns_unique_name("red")``: a name (<= 15 bytes) no other process or xdist worker uses."""

    return unique_name


@pytest.fixture
def netns_factory(netns_executor: Executor) -> Iterator[Factory]:
    """``netns_factory(*resources, wait=True)`` or ``netns_factory(topology)``: brought up now, down after the test."""

    with Factory(netns_executor) as factory:
        yield factory


@pytest.fixture
def netns_namespace(netns_factory: Factory) -> Namespace:
    """A new namespace with a unique name, deleted after the test."""
    return netns_factory.namespace()


@pytest.fixture
def netns_pair(netns_factory: Factory) -> Pair:
    """Namespaces ``a`` (10.0.0.1/24) and ``b`` (10.0.0.2/24) joined by a veth ``eth0``, ready for traffic."""
    return netns_factory.pair()


@pytest.fixture
def netns_assert_plan(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``netns_assert_plan(recorder_or_topology, "golden/x.sh")``: compare with a golden file
    (relative to the test file; ``--netns-update-golden`` rewrites it)."""

    update = True if request.config.getoption("netns_update_golden") else None
    base = Path(request.path).parent

    def check(plan: Recorder | Topology, golden: str | Path, *, teardown: bool = False) -> None:
        assert_plan(plan, base / golden, teardown=teardown, update=update)

    return check
