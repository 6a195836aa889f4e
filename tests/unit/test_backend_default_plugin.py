"""The pytest plugin's ``--netns-firewall`` (ini ``netns_firewall``, default
``$NETNS_KIT_FIREWALL``): the ``netns_firewall`` fixture says it, and the executors the
fixtures make take it (the dry-run's commands here; the sandbox's in the integration tests)."""

from __future__ import annotations

import pytest

SAYS = """
from netns_kit.firewall.nat import NatRule

def test_says(netns_firewall, netns_recorder):
    NatRule("10.0.0.0/24", out_interface="eth0").create()
    programs = ",".join(sorted({c.argv[0] for c in netns_recorder.commands if c.argv[0] in ("nft", "iptables")}))
    print(f"chosen={netns_firewall} recorder={netns_recorder.firewall} programs={programs}")
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_says=SAYS)
    return pytester.runpytest_inprocess("-s", "-p", "no:cacheprovider", *args)


def test_iptables_when_nothing_says(pytester: pytest.Pytester) -> None:
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*chosen=iptables recorder=iptables programs=iptables*"])
    assert "firewall backend" not in result.stdout.str()  # nothing chosen: no header line


def test_the_option_sets_the_fixtures_executors(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--netns-firewall=nft")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["netns_kit: firewall backend nft", "*chosen=nft recorder=nft programs=nft*"])


def test_the_environment_is_the_default_and_the_option_says_over_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nft")
    _run(pytester).stdout.fnmatch_lines(["netns_kit: firewall backend nft", "*chosen=nft recorder=nft programs=nft*"])
    _run(pytester, "--netns-firewall", "iptables").stdout.fnmatch_lines(
        ["*chosen=iptables recorder=iptables programs=iptables*"]
    )


def test_the_ini_option_says_over_the_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "iptables")
    pytester.makeini("[pytest]\nnetns_firewall = auto\n")
    # a dry-run cannot probe: auto prints iptables
    _run(pytester).stdout.fnmatch_lines(["*chosen=auto recorder=auto programs=iptables*"])
    _run(pytester, "--netns-firewall=nft").stdout.fnmatch_lines(["*chosen=nft recorder=nft programs=nft*"])


def test_a_bad_option_value_is_refused(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--netns-firewall=pf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--netns-firewall: invalid choice: 'pf'*"])


def test_a_bad_ini_value_is_an_error_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnetns_firewall = nftables\n")
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*netns_firewall = 'nftables': must be one of auto, iptables, nft*"])


def test_a_bad_environment_value_is_an_error_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nftables")
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*NETNS_KIT_FIREWALL: 'nftables' must be one of auto, iptables, nft*"])
