"""The pytest plugin, tested the way users meet it: pytest run on a user's test file.

These runs are in-process (``pytester.runpytest``): the plugin under test
starts its own sandbox, so every namespace they make lives inside one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import netns_kit
from netns_kit.executors.sandbox import Sandbox

README = Path(__file__).parents[2] / "README.rst"

EVERY_FIXTURE = """
import sys

import netns_kit
from netns_kit import Host, Namespace, Topology, VethPair
from netns_kit.testing import wait_reachable

MADE = []


def test_sandbox_is_a_running_sandbox(netns_sandbox):
    assert isinstance(netns_sandbox, netns_kit.Sandbox)
    assert Host(executor=netns_sandbox).run(["ip", "-br", "link"]).stdout.startswith("lo ")


def test_executor_is_the_sandbox_and_in_effect(netns_executor, netns_sandbox):
    assert netns_kit.current() is netns_executor is netns_sandbox
    with Namespace("red") as red:
        assert red.exists()
        assert red.sysctl("net.ipv4.ip_forward") == "0"


def test_factory_brings_resources_up(netns_factory, netns_unique_name):
    a, b = netns_unique_name("a"), netns_unique_name("b")
    topo = netns_factory(
        Namespace(a),
        Namespace(b),
        VethPair("x", "y", netns=a, peer_netns=b, addresses="10.1.0.1/24", peer_addresses="10.1.0.2/24"),
        wait=True,
    )
    topo[a].wait_reachable("10.1.0.2")
    MADE.extend([a, b])


def test_factory_brings_a_topology_up(netns_factory):
    topo = netns_factory(Topology([Namespace("t1")]))
    assert topo.is_up and Namespace("t1").exists()
    MADE.append("t1")


def test_what_the_factory_made_is_gone_after_its_test(netns_executor):
    assert len(MADE) == 3
    assert [name for name in MADE if Namespace(name).exists()] == []


def test_namespace_is_ready_made(netns_namespace):
    assert netns_namespace.exists()
    assert len(netns_namespace.name.encode()) <= 15
    lo = {link["ifname"]: link for link in netns_namespace.links()}["lo"]
    assert "UP" in lo["flags"]


def test_pair_passes_tcp_traffic(netns_pair):
    assert (netns_pair.a_address, netns_pair.b_address) == ("10.0.0.1", "10.0.0.2")
    netns_pair.a.wait_reachable(netns_pair.b_address)
    netns_pair.b.popen([sys.executable, "-m", "http.server", "--bind", "10.0.0.2", "8080"])
    wait_reachable(netns_pair.a, "10.0.0.2", port=8080)
    get = "import urllib.request; print(urllib.request.urlopen('http://10.0.0.2:8080/').status)"
    assert netns_pair.a.run([sys.executable, "-c", get]).stdout.strip() == "200"


def test_unique_names_differ(netns_unique_name):
    assert len({netns_unique_name("x") for _ in range(500)}) == 500


def test_recorder_records_and_runs_nothing(netns_recorder):
    Namespace("dry").create()
    assert netns_recorder.lines == ["ip netns add dry", "ip -n dry link set dev lo alias netns_kit:dry-run up"]
    assert netns_kit.current() is netns_recorder


def test_fresh_sandbox_is_a_host_of_its_own(netns_fresh_sandbox, netns_sandbox):
    assert netns_fresh_sandbox.pid != netns_sandbox.pid
    Namespace("elsewhere").create(netns_fresh_sandbox)
    assert Namespace("elsewhere").exists(netns_fresh_sandbox)
    assert not Namespace("elsewhere").exists(netns_sandbox)
"""


def test_every_fixture_works_in_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=EVERY_FIXTURE)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=10)


def test_the_plugin_does_nothing_for_tests_that_ask_for_none_of_its_fixtures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("netns_kit ran something for a test that did not ask")

    monkeypatch.setattr(Sandbox, "start", forbidden)
    monkeypatch.setattr(netns_kit.Executor, "run", forbidden)
    pytester.makepyfile(
        """
        def test_plain(request):
            assert request.config.pluginmanager.hasplugin("netns_kit")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


LEAKS = """
from netns_kit import Host, Namespace


def test_leaks_a_namespace(netns_executor):
    Host().run(["ip", "netns", "add", "leaky"], mutating=True)


def test_leaks_an_iptables_rule(netns_executor):
    Host().run(["iptables", "-w", "-A", "INPUT", "-s", "10.9.9.9", "-j", "DROP"], mutating=True)


def test_cleans_up_after_itself(netns_executor):
    with Namespace("tidy"):
        pass
    Host().run(["iptables", "-w", "-A", "INPUT", "-s", "10.9.9.8", "-j", "DROP"], mutating=True)
    Host().run(["iptables", "-w", "-D", "INPUT", "-s", "10.9.9.8", "-j", "DROP"], mutating=True)
    Host().run(["iptables", "-w", "-t", "nat", "-L", "-n"])  # creates an empty nat table: not a leak


def test_the_tests_after_a_leak_start_clean(netns_executor):
    assert not Namespace("leaky").exists()
    assert "10.9.9.9" not in Host().run(["iptables-save"]).stdout
"""


def test_leak_check_fails_the_tests_that_leaked_and_passes_the_clean_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaks=LEAKS)
    result = pytester.runpytest()
    # a leak is an error at teardown: pytest counts the test's call as passed and adds the error
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_namespace*",
            "*the test left this behind:",
            "*  namespace leaky",
            "*(the sandbox was replaced by a fresh one for the tests that follow)",
            "*ERROR at teardown of test_leaks_an_iptables_rule*",
            "*  the host, iptables-save filter: new '-A INPUT -s 10.9.9.9/32 -j DROP'",
        ]
    )
    assert "test_cleans_up_after_itself" not in "".join(re.findall(r"ERROR at teardown of \S+", result.stdout.str()))


def test_a_failing_test_that_leaks_reports_its_own_failure_and_the_leak_as_a_section(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from netns_kit import Host

        def test_fails_and_leaks(netns_executor):
            Host().run(["ip", "netns", "add", "left"], mutating=True)
            assert False, "the test's own failure"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: the test's own failure*", "*netns_kit leaks*", "*namespace left*"])


def test_a_failing_test_still_tears_down_everything(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from netns_kit import Namespace

        SEEN = []

        def test_fails_half_way(netns_factory, netns_namespace, netns_pair):
            netns_factory(Namespace("mine"))
            SEEN.extend(["mine", netns_namespace.name, netns_pair.a.name, netns_pair.b.name])
            assert False, "boom"

        def test_everything_was_torn_down(netns_executor):
            assert len(SEEN) == 4
            assert [name for name in SEEN if Namespace(name).exists()] == []
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, passed=1)


def test_a_teardown_error_never_hides_the_tests_own_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import attrs
        from netns_kit import Namespace, Resource, change

        @attrs.frozen
        class Brittle(Resource):
            def plan(self, executor):
                return [change("true")]

            def undo(self, executor, done, *, complete):
                raise RuntimeError("teardown broke")

        def test_fails_and_its_teardown_breaks(netns_factory):
            netns_factory.create(Namespace("first"))
            netns_factory.create(Brittle())
            assert False, "the test's own failure"

        def test_the_rest_was_still_torn_down(netns_executor):
            assert not Namespace("first").exists()
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, errors=1, passed=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_fails_and_its_teardown_breaks*", "*teardown broke*"])
    result.stdout.fnmatch_lines(["*FAILURES*", "*AssertionError: the test's own failure*"])
    result.stdout.fnmatch_lines(
        ["FAILED test_*::test_fails_and_its_teardown_breaks*", "ERROR test_*::test_fails_and_its_teardown_breaks*"]
    )


def test_netns_assert_plan_writes_on_request_then_compares(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from netns_kit import Namespace, Topology

        def test_plan(netns_assert_plan):
            netns_assert_plan(Topology([Namespace("g")]), "golden/g.sh")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*golden file */golden/g.sh does not exist*"])
    pytester.runpytest("--netns-update-golden").assert_outcomes(passed=1)
    golden = pytester.path / "golden" / "g.sh"
    assert "ip netns add g\n" in golden.read_text()
    pytester.runpytest().assert_outcomes(passed=1)
    golden.write_text(golden.read_text().replace("add g", "add h"))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*-ip netns add h", "*+ip netns add g"])


def readme_example() -> str:
    """The first python block after the README heading "Using netns_kit in your tests"."""
    text = README.read_text()
    section = text[text.index("Using netns_kit in your tests") :]
    block = section[section.index(".. code-block:: python") :].split("\n\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines)


def test_the_readme_example_passes(pytester: pytest.Pytester) -> None:
    code = readme_example()
    assert "def test_" in code
    pytester.makepyfile(test_readme=code)
    pytester.runpytest("-v").assert_outcomes(passed=code.count("\ndef test_"))


def test_the_recorder_and_the_executor_cannot_both_be_in_effect(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_both(netns_recorder, netns_executor):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*netns_executor and netns_recorder both set the executor in effect*"])


SANDBOX_PIDS = """
PIDS = []

def test_one(netns_sandbox):
    PIDS.append(netns_sandbox.pid)

def test_two(netns_sandbox):
    PIDS.append(netns_sandbox.pid)

def test_count(netns_sandbox):
    print("sandboxes:", len(set(PIDS)))
"""


@pytest.mark.parametrize(("args", "sandboxes"), [((), 1), (("--netns-sandbox-scope=function",), 2)])
def test_one_sandbox_per_session_unless_told_otherwise(
    args: tuple[str, ...], sandboxes: int, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(SANDBOX_PIDS)
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"*sandboxes: {sandboxes}*"])


def test_a_bad_sandbox_scope_in_the_ini_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nnetns_sandbox_scope = forever\n")
    pytester.makepyfile(SANDBOX_PIDS)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*netns_sandbox_scope = 'forever': must be one of session, package, module*"])
    assert result.ret != 0


EMULATION = """
from tests.integration.traffic import assert_dropped

MADE = []


def test_partition_and_heal_through_the_factory(netns_pair, netns_factory):
    netns_pair.a.wait_reachable(netns_pair.b_address)
    cut = netns_factory.partition(netns_pair.a, netns_pair.b)
    assert_dropped(netns_pair.a, netns_pair.b_address, by=(netns_pair.a, netns_pair.b))
    cut.heal()
    netns_pair.a.wait_reachable(netns_pair.b_address)


def test_rate_limit_through_the_factory(netns_pair, netns_factory):
    shaped = netns_factory.impair(netns_pair.veth, {"rate": "8mbit"})
    assert [s.qdisc()["kind"] for s in shaped] == ["tbf", "tbf"]


def test_starts_a_server_and_leaves_it_running(netns_namespace):
    MADE.append(netns_namespace.popen(["sleep", "600"]))


def test_the_server_was_stopped_at_teardown(netns_executor):
    assert MADE[0].returncode is not None
"""


def test_emulation_works_through_the_fixtures_and_leaves_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_emulation_user=EMULATION)
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=4)


ON_THE_CHOSEN_BACKEND = """
from netns_kit import Bridge, NatRule, Namespace, Sandbox
from netns_kit.firewall import nft, nftread


def test_nat_goes_to_the_chosen_backend(netns_firewall, netns_sandbox, netns_factory, netns_executor):
    assert netns_firewall == netns_sandbox.firewall
    ns = netns_factory.namespace()
    netns_factory(Bridge("br0", netns=ns.name, addresses="10.7.0.1/24"), Namespace(ns.name, adopt=True))
    with NatRule("10.7.0.0/24", bridge="br0", netns=ns.name):
        on_nft = nft.table_name(netns_executor.owner) in [t.name for t in nftread.list_tables(netns_executor, ns.name)]
        on_iptables = "NK-NAT-" in ns.run(["iptables-save"]).stdout
        print(f"chosen={netns_firewall} nft={on_nft} iptables={on_iptables}")
    # the leak check after the test: the table went with the rule


def test_a_fresh_sandbox_too(netns_firewall, netns_fresh_sandbox):
    assert netns_fresh_sandbox.firewall == netns_firewall
"""


@pytest.mark.parametrize(
    ("how", "chosen"),
    [((), "iptables"), (("--netns-firewall=nft",), "nft"), (("--netns-firewall", "iptables"), "iptables")],
)
def test_the_fixtures_sandboxes_take_the_chosen_firewall_backend(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: tuple[str, ...], chosen: str
) -> None:
    monkeypatch.delenv("NETNS_KIT_FIREWALL", raising=False)
    pytester.makepyfile(test_user=ON_THE_CHOSEN_BACKEND)
    result = pytester.runpytest_inprocess("-s", *how)
    result.assert_outcomes(passed=2)
    on_nft = chosen == "nft"
    result.stdout.fnmatch_lines([f"*chosen={chosen} nft={on_nft} iptables={not on_nft}*"])


def test_the_environment_variable_chooses_when_no_option_does(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETNS_KIT_FIREWALL", "nft")
    pytester.makepyfile(test_user=ON_THE_CHOSEN_BACKEND)
    result = pytester.runpytest_inprocess("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*chosen=nft nft=True iptables=False*"])
