"""tests/conftest.py: a test that needs a kernel feature this machine lacks FAILS, unless an
explicit opt-out (``NETNS_KIT_NO_<NAME>=1``) leaves it out, and the end of the run says so."""

from __future__ import annotations

import pytest

from tests import conftest as root

NEEDING = """
import pytest

@pytest.mark.needs("netem")
def test_delay():
    pass

def test_other():
    pass
"""

HOOKS = (
    "from tests.conftest import (pytest_collection_modifyitems, pytest_configure, "
    "pytest_report_header, pytest_runtest_setup, pytest_terminal_summary)\n"
)


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("NETNS_KIT_NO_NETEM", raising=False)
    pytester.makeconftest(HOOKS)
    pytester.makepyfile(test_needing=NEEDING)
    return pytester


def kernel(monkeypatch: pytest.MonkeyPatch, available: bool | None) -> None:
    monkeypatch.setattr(root, "NEEDS", {"netem": lambda: (available, "this kernel has no netem qdisc")})


def test_a_missing_feature_fails_the_tests_that_need_it_and_says_how_to_leave_them_out(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel(monkeypatch, False)
    result = suite.runpytest_inprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "netem: NOT available (this kernel has no netem qdisc); its tests will FAIL (NETNS_KIT_NO_NETEM=1 *",
            "*needs netem, and this kernel has no netem qdisc. This test cannot run here*NETNS_KIT_NO_NETEM=1*",
            "ERROR test_needing.py::test_delay*",
        ]
    )
    assert "NOT RUN" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_the_opt_out_leaves_them_out_and_the_summary_lists_them(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel(monkeypatch, False)
    monkeypatch.setenv("NETNS_KIT_NO_NETEM", "1")
    result = suite.runpytest_inprocess()
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            "netem: NOT available (this kernel has no netem qdisc); NETNS_KIT_NO_NETEM=1: its tests are left out",
            "*NOT RUN: tests left out on purpose*",
            "1 test(s) that need netem were not run: this kernel has no netem qdisc; "
            "NETNS_KIT_NO_NETEM=1 is set, which says to leave them out:",
            "  test_needing.py::test_delay",
        ]
    )
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("available", [True, None])
def test_tests_run_where_the_feature_is_there_or_cannot_be_probed(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, available: bool | None
) -> None:
    """None: the sandbox cannot start; the tests then go through its fixtures (skip, or fail on request)."""
    kernel(monkeypatch, available)
    monkeypatch.setenv("NETNS_KIT_NO_NETEM", "1")  # an opt-out changes nothing where nothing is missing
    result = suite.runpytest_inprocess()
    result.assert_outcomes(passed=2)
    assert "NOT RUN" not in result.stdout.str()


def test_an_unknown_need_is_a_usage_error(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel(monkeypatch, True)
    suite.makepyfile(test_typo='import pytest\n\n@pytest.mark.needs("netme")\ndef test_x():\n    pass\n')
    result = suite.runpytest_inprocess()
    result.stderr.fnmatch_lines(["*test_typo.py::test_x: unknown need 'netme' (known: netem)*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_netns_kit_s_own_netem_tests_are_marked() -> None:
    from tests.integration import test_netem

    assert test_netem.pytestmark.name == "needs" and test_netem.pytestmark.args == ("netem",)


def test_no_not_run_section_when_no_test_that_needs_it_was_collected(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel(monkeypatch, False)
    monkeypatch.setenv("NETNS_KIT_NO_NETEM", "1")
    result = suite.runpytest_inprocess("-k", "other")
    result.assert_outcomes(passed=1, deselected=1)  # deselected by -k, before the needs are looked at
    assert "NOT RUN" not in result.stdout.str()
