"""NatRule and PortForward: exact command lines, undo, sysctl restores, chain names, backend."""

from __future__ import annotations

import pytest

import netns_kit
from netns_kit import Command, NatRule, PortForward, Recorder, Result
from netns_kit.errors import CommandError
from netns_kit.firewall.iptables import CHAIN_MAX, Backend, check_backend, detect, shadowing_rules
from netns_kit.topology import scenarios

TAG = "netns_kit:dry-run"
C = f"-m comment --comment {TAG}"


def _answers(table: dict[tuple[str, ...], str | Result]):
    def handler(command: Command) -> str | Result | None:
        return table.get(command.argv)

    return handler


def test_seed001_nat_rule_is_scoped_masquerade_forward_accepts_and_ip_forward() -> None:
    rec = Recorder()
    NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0", executor=rec).create()
    chain = NatRule("192.168.1.0/24", out_interface="eth0", bridge="v-net-0").chain
    post, fwd = chain("POST"), chain("FWD")
    assert rec.lines == [
        f"iptables -w -t nat -N {post}",
        f"iptables -w -t nat -A {post} -s 192.168.1.0/24 -o eth0 {C} -j MASQUERADE",
        f"iptables -w -t nat -A POSTROUTING {C} -j {post}",
        f"iptables -w -t filter -N {fwd}",
        f"iptables -w -t filter -A {fwd} -s 192.168.1.0/24 -i v-net-0 -o eth0 {C} -j ACCEPT",
        f"iptables -w -t filter -A {fwd} -d 192.168.1.0/24 -i eth0 -o v-net-0 "
        f"-m conntrack --ctstate RELATED,ESTABLISHED {C} -j ACCEPT",
        f"iptables -w -t filter -I FORWARD {C} -j {fwd}",
        "sysctl -q -w net.ipv4.ip_forward=1",
    ]
    assert [q.line for q in rec.queries] == ["sysctl -n net.ipv4.ip_forward"]


def test_nat_rule_with_only_a_bridge_masquerades_what_leaves_the_bridge() -> None:
    rec = Recorder()
    rule = NatRule("10.9.0.0/16", bridge="br0", forward=False, executor=rec).create()
    assert rec.lines[1] == f"iptables -w -t nat -A {rule.chain('POST')} -s 10.9.0.0/16 '!' -o br0 {C} -j MASQUERADE"
    assert not any("filter" in line for line in rec.lines)


def test_seed001_port_forward_dnats_local_8080_from_prerouting_and_output() -> None:
    rec = Recorder()
    forward = PortForward(8080, "192.168.1.1", 80, bridge="v-net-0", executor=rec).create()
    pre, out, fwd = forward.chain("PRE"), forward.chain("OUT"), forward.chain("FWD")
    local = "'!' -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 8080"
    dnat = "-j DNAT --to-destination 192.168.1.1:80"
    assert rec.lines == [
        f"iptables -w -t nat -N {pre}",
        f"iptables -w -t nat -A {pre} {local} {C} {dnat}",
        f"iptables -w -t nat -A PREROUTING {C} -j {pre}",
        f"iptables -w -t nat -N {out}",
        f"iptables -w -t nat -A {out} {local} {C} {dnat}",
        f"iptables -w -t nat -A OUTPUT {C} -j {out}",
        f"iptables -w -t filter -N {fwd}",
        f"iptables -w -t filter -A {fwd} -d 192.168.1.1 -o v-net-0 -p tcp -m tcp --dport 80 "
        f"-m conntrack --ctstate DNAT {C} -j ACCEPT",
        f"iptables -w -t filter -A {fwd} -s 192.168.1.1 -i v-net-0 -p tcp -m tcp --sport 80 "
        f"-m conntrack --ctstate RELATED,ESTABLISHED {C} -j ACCEPT",
        f"iptables -w -t filter -I FORWARD {C} -j {fwd}",
        "sysctl -q -w net.ipv4.ip_forward=1",
    ]


def test_port_forward_scoped_by_address_and_inbound_interface() -> None:
    rec = Recorder()
    forward = PortForward(
        5353, "10.0.0.2", protocol="udp", address="203.0.113.1", in_interface="eth0", forward=False, executor=rec
    ).create()
    assert rec.lines[1] == (
        f"iptables -w -t nat -A {forward.chain('PRE')} -i eth0 -d 203.0.113.1 -p udp -m udp --dport 5353 "
        f"{C} -j DNAT --to-destination 10.0.0.2:5353"
    )
    assert rec.lines[4] == (
        f"iptables -w -t nat -A {forward.chain('OUT')} -d 203.0.113.1 -p udp -m udp --dport 5353 "
        f"{C} -j DNAT --to-destination 10.0.0.2:5353"
    )


def test_localhost_opt_in_adds_output_dnat_masquerade_route_localnet_and_guard() -> None:
    rec = Recorder()
    forward = PortForward(8080, "192.168.1.1", 80, bridge="v-net-0", localhost=True, executor=rec).create()
    lines = rec.lines
    assert (
        f"iptables -w -t nat -A {forward.chain('OUT')} -d 127.0.0.0/8 -p tcp -m tcp --dport 8080 "
        f"{C} -j DNAT --to-destination 192.168.1.1:80"
    ) in lines
    assert (
        f"iptables -w -t nat -A {forward.chain('POST')} -s 127.0.0.0/8 -d 192.168.1.1 -o v-net-0 "
        f"-p tcp -m tcp --dport 80 {C} -j MASQUERADE"
    ) in lines
    guard = forward.chain("RAW")
    assert f"iptables -w -t raw -A {guard} -i v-net-0 -d 127.0.0.0/8 {C} -j DROP" in lines
    assert f"iptables -w -t raw -I PREROUTING {C} -j {guard}" in lines
    assert lines[-1] == "sysctl -q -w net.ipv4.conf.v-net-0.route_localnet=1"
    assert not any("conf.all" in line for line in lines)
    assert "sysctl -q -w net.ipv4.conf.v-net-0.route_localnet=0" in rec.teardown_script()


def test_without_opt_ins_there_is_no_localhost_or_hairpin_rule() -> None:
    lines = PortForward(8080, "192.168.1.1", 80, bridge="v-net-0").plan(Recorder())
    text = "\n".join(c.line for c in lines)
    assert "127.0.0.0/8 -p" not in text and "MASQUERADE" not in text
    assert "route_localnet" not in text and "hairpin" not in text and "-t raw" not in text


def test_hairpin_opt_in_masquerades_the_namespace_to_itself_and_sets_hairpin_on() -> None:
    rec = Recorder()
    forward = PortForward(8080, "192.168.1.1", 80, bridge="v-net-0", bridge_port="veth-red", hairpin=True)
    forward.create(rec)
    assert (
        f"iptables -w -t nat -A {forward.chain('POST')} -s 192.168.1.1 -d 192.168.1.1 "
        f"-p tcp -m tcp --dport 80 {C} -j MASQUERADE"
    ) in rec.lines
    assert rec.lines[-1] == "ip link set dev veth-red type bridge_slave hairpin on"
    assert rec.teardown_script().splitlines()[3] == "ip link set dev veth-red type bridge_slave hairpin off"


def test_hairpin_already_on_is_left_alone() -> None:
    on = '[{"ifname": "veth-red", "linkinfo": {"info_slave_data": {"hairpin": true}}}]'
    rec = Recorder(_answers({("ip", "-j", "-d", "link", "show", "dev", "veth-red"): on}))
    PortForward(8080, "192.168.1.1", 80, bridge_port="veth-red", hairpin=True).create(rec)
    assert not any("hairpin" in line for line in rec.lines)


def test_ipv6_uses_ip6tables_bracketed_destination_and_ipv6_forwarding() -> None:
    rec = Recorder()
    forward = PortForward(8080, "fd00:1::1", 80, bridge="v-net-0", executor=rec).create()
    assert rec.lines[1] == (
        f"ip6tables -w -t nat -A {forward.chain('PRE')} '!' -d ::1/128 -m addrtype --dst-type LOCAL "
        f"-p tcp -m tcp --dport 8080 {C} -j DNAT --to-destination '[fd00:1::1]:80'"
    )
    assert rec.lines[-1] == "sysctl -q -w net.ipv6.conf.all.forwarding=1"
    assert all(line.startswith(("ip6tables ", "sysctl ")) for line in rec.lines)
    rec2 = Recorder()
    NatRule("fd00:1::/64", out_interface="eth0", executor=rec2).create()
    assert rec2.lines[1].startswith("ip6tables -w -t nat -A NK-NAT-")
    assert rec2.lines[-1] == "sysctl -q -w net.ipv6.conf.all.forwarding=1"


def test_forward_in_a_router_namespace_runs_there() -> None:
    rec = Recorder()
    NatRule("10.0.0.0/24", out_interface="wan0", netns="router", executor=rec).create()
    assert all(line.startswith("ip netns exec router ") for line in rec.lines)
    assert [q.line for q in rec.queries] == ["ip netns exec router sysctl -n net.ipv4.ip_forward"]


# -- sysctls: the prior value ------------------------------------------------------


def test_forwarding_already_on_is_neither_set_nor_restored() -> None:
    rec = Recorder(_answers({("sysctl", "-n", "net.ipv4.ip_forward"): "1"}))
    NatRule("10.0.0.0/24", out_interface="eth0").create(rec)
    assert not any("sysctl" in line for line in rec.lines)
    assert "sysctl" not in rec.teardown_script()


def test_route_localnet_prior_value_comes_from_the_default_when_the_bridge_is_not_there_yet() -> None:
    missing = Result(Command(("sysctl",)), 255, "", "sysctl: cannot stat /proc/sys/net/ipv4/conf/br0/route_localnet")
    rec = Recorder(
        _answers(
            {
                ("sysctl", "-n", "net.ipv4.conf.br0.route_localnet"): missing,
                ("sysctl", "-n", "net.ipv4.conf.default.route_localnet"): "1",
            }
        )
    )
    PortForward(80, "10.0.0.2", bridge="br0", localhost=True).create(rec)
    assert not any("route_localnet" in line for line in rec.lines)


def test_dotted_bridge_names_use_the_slash_form_of_the_key() -> None:
    rec = Recorder()
    PortForward(80, "10.0.0.2", bridge="br.10", localhost=True).create(rec)
    assert rec.lines[-1] == "sysctl -q -w net/ipv4/conf/br.10/route_localnet=1"


# -- chains ----------------------------------------------------------------------


def test_chain_names_are_deterministic_unique_short_and_prefixed() -> None:
    a = PortForward(8080, "192.168.1.1", 80)
    assert a.chain("PRE") == PortForward(8080, "192.168.1.1", 80).chain("PRE")
    assert a.chain("PRE") != PortForward(8081, "192.168.1.1", 80).chain("PRE")
    assert a.chain("PRE") != PortForward(8080, "192.168.1.1", 80, protocol="udp").chain("PRE")
    assert a.chain("PRE") != PortForward(8080, "192.168.1.1", 80, netns="r").chain("PRE")
    longest = NatRule("10.0.0.0/8", bridge="br0", name="x" * 16).chain("POST")
    assert longest == "NK-NAT-" + "x" * 16 + "-POST" and len(longest) == CHAIN_MAX
    assert NatRule("10.0.0.0/8", bridge="br0", name="lan").chain("FWD") == "NK-NAT-lan-FWD"
    for rule in (NatRule("10.0.0.0/8", bridge="br0"), a):
        assert all(c.name.startswith("NK-") and len(c.name) <= CHAIN_MAX for c in rule.chains())


def test_every_rule_and_jump_carries_exactly_the_owner_tag() -> None:
    owner = netns_kit.Owner("1234.5678")
    rec = Recorder(owner=owner)
    PortForward(8080, "192.168.1.1", 80, bridge="b", bridge_port="p", localhost=True, hairpin=True).create(rec)
    NatRule("192.168.1.0/24", out_interface="eth0", bridge="b").create(rec)
    iptables = [c.argv for c in rec.commands if c.argv[0].rsplit("/", 1)[-1] == "iptables"]
    rules = [argv for argv in iptables if "-N" not in argv]  # a new chain is named, not tagged
    assert len(rules) == 18  # forward: 13 (8 rules, 5 jumps); NAT: 5 (3 rules, 2 jumps)
    for argv in rules:
        assert ("-A" in argv) != ("-I" in argv), argv
        assert argv.count("--comment") == 1, argv
        assert argv[argv.index("--comment") + 1] == "netns_kit:1234.5678"


def test_delete_checks_each_jump_before_removing_it() -> None:
    gone = Result(Command(("iptables",)), 1, "", "iptables: Bad rule (does a matching rule exist in that chain?).")
    rec = Recorder(lambda c: gone if "-C" in c.argv and "PREROUTING" in c.argv else None)
    forward = PortForward(8080, "192.168.1.1", 80, forward=False)
    forward.delete(rec)
    checks = [q.line for q in rec.queries if "-C" in q.argv]
    assert checks == [
        f"iptables -w -t nat -C OUTPUT {C} -j {forward.chain('OUT')}",
        f"iptables -w -t nat -C PREROUTING {C} -j {forward.chain('PRE')}",
    ]
    assert rec.lines == [
        f"iptables -w -t nat -D OUTPUT {C} -j {forward.chain('OUT')}",
        f"iptables -w -t nat -F {forward.chain('OUT')}",
        f"iptables -w -t nat -X {forward.chain('OUT')}",
        f"iptables -w -t nat -F {forward.chain('PRE')}",
        f"iptables -w -t nat -X {forward.chain('PRE')}",
    ]


def test_delete_twice_is_a_no_op_the_second_time() -> None:
    missing_chain = Result(Command(("iptables",)), 1, "", "iptables: No chain/target/match by that name.")
    no_jump = Result(Command(("iptables",)), 2, "", "iptables v1.8.9 (nf_tables): Chain 'NK-X' does not exist")

    def handler(command: Command) -> Result | None:
        if "-C" in command.argv:
            return no_jump
        if "-F" in command.argv or "-X" in command.argv:
            return missing_chain
        return None

    rec = Recorder(handler)
    NatRule("10.0.0.0/24", out_interface="eth0").delete(rec)
    assert not any("-D" in c.argv for c in rec.commands)


def test_leaving_the_context_undoes_exactly_what_create_did() -> None:
    rec = Recorder()
    forward = PortForward(8080, "192.168.1.1", 80, bridge="b", bridge_port="p", localhost=True, hairpin=True)
    with netns_kit.use(rec), forward:
        created = list(rec.commands)
    undone = rec.commands[len(created) :]
    assert [c.argv for c in undone] == [u.argv for c in reversed(created) for u in c.undo]
    made = sorted(c.argv[-1] for c in created if "-N" in c.argv)
    assert len(made) == 5 and made == sorted(c.argv[-1] for c in undone if "-X" in c.argv)


# -- the seed-001 scenario -----------------------------------------------------


def test_seed001_nat_scripts_match_golden_files(golden) -> None:
    plan = scenarios.seed001_nat().plan()
    golden("seed001_nat.up.sh", plan.script())
    golden("seed001_nat.down.sh", plan.teardown_script())


def test_seed001_nat_plan_is_the_same_on_every_run() -> None:
    assert scenarios.seed001_nat().plan().script() == scenarios.seed001_nat().plan().script()


def _failing_at(k: int):
    count = {"n": 0}

    def handler(command: Command) -> Result | None:
        if command.mutating:
            count["n"] += 1
            if count["n"] == k:
                return Result(command, 1, "", "iptables: Chain already exists.")
        return None

    return handler


@pytest.mark.parametrize("k", range(1, len(scenarios.seed001_nat().plan().commands) + 1))
def test_failure_at_every_step_of_seed001_nat_undoes_exactly_what_was_done(k: int) -> None:
    recorder = Recorder(_failing_at(k))
    with pytest.raises(CommandError):
        scenarios.seed001_nat().up(recorder)
    done = recorder.commands[: k - 1]
    assert [c.argv for c in recorder.commands[k - 1 :]] == [u.argv for c in reversed(done) for u in c.undo]


# -- the backend ----------------------------------------------------------------

LEGACY_DOCKER = """\
# Generated by iptables-save v1.8.9 on Thu Jan  1 00:00:00 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A INPUT -s 10.0.0.0/8 -m comment --comment "no such \\"net\\"" -j REJECT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
COMMIT
"""


def test_backend_is_read_from_iptables_version() -> None:
    rec = Recorder(_answers({("iptables", "-V"): "iptables v1.8.9 (legacy)\n"}))
    backend = detect(rec)
    assert (backend.name, backend.version, backend.other) == ("legacy", "1.8.9", "nft")
    assert [q.line for q in rec.queries] == ["iptables -V", "iptables-nft-save"]


def test_drops_held_by_the_other_backend_are_found() -> None:
    assert shadowing_rules(LEGACY_DOCKER) == (
        "filter FORWARD policy DROP",
        'filter: -A INPUT -s 10.0.0.0/8 -m comment --comment "no such \\"net\\"" -j REJECT',
    )


def test_shadowing_rules_of_the_other_backend_raise_with_a_clear_hint() -> None:
    rec = Recorder(
        _answers(
            {("iptables", "-V"): "iptables v1.8.9 (nf_tables)\n", ("iptables-legacy-save",): LEGACY_DOCKER},
        )
    )
    with pytest.raises(CommandError) as info:
        check_backend(rec)
    hint = info.value.hint
    assert "iptables is nf_tables here" in hint and "iptables-legacy tables present" in hint
    assert "filter FORWARD policy DROP" in hint and "iptables-legacy-save" in hint


def test_a_clean_other_backend_passes() -> None:
    rec = Recorder(_answers({("ip6tables", "-V"): "ip6tables v1.8.9 (nf_tables)\n"}))
    assert check_backend(rec, version=6) == Backend("nf_tables", "1.8.9", 6)


def test_a_real_run_looks_at_the_backend_once_per_namespace_and_a_dry_run_never() -> None:
    class Real(Recorder):
        dry_run = False

    real = Real()
    NatRule("10.0.0.0/24", out_interface="eth0").create(real)
    PortForward(80, "10.0.0.2").create(real)
    assert [q.line for q in real.queries].count("iptables -V") == 1
    rec = Recorder()
    NatRule("10.0.0.0/24", out_interface="eth0").create(rec)
    assert "iptables -V" not in [q.line for q in rec.queries]


def test_where_the_save_program_cannot_list_tables_each_table_is_listed() -> None:
    denied = Result(
        Command(("iptables-legacy-save",)),
        1,
        "",
        "Failed to list table names in /proc/net/ip_tables_names: Permission denied",
    )
    rec = Recorder(
        _answers(
            {
                ("iptables", "-V"): "iptables v1.8.9 (nf_tables)\n",
                ("iptables-legacy-save",): denied,
                ("iptables-legacy", "-w", "-t", "filter", "-S"): "-P INPUT ACCEPT\n-P FORWARD DROP\n",
            }
        )
    )
    assert detect(rec).shadowing == ("filter FORWARD policy DROP",)
    assert [q.line for q in rec.queries][2:] == [
        "iptables-legacy -w -t filter -S",
        "iptables-legacy -w -t raw -S",
    ]


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "stderr",
    [
        "iptables v1.8.9 (nf_tables): Couldn't load match `addrtype':No such file or directory",
        "iptables v1.8.9 (legacy): Couldn't load target `MASQUERADE':No such file or directory",
        "iptables: Extension conntrack revision 0 not supported, missing kernel module?",
        "iptables v1.8.9 (nf_tables): table 'nat' does not exist",
    ],
)
def test_a_missing_extension_is_not_mistaken_for_a_missing_rule(stderr: str) -> None:
    from netns_kit.errors import NotFoundError, classify

    error = classify(("iptables", "-w", "-t", "nat", "-A", "X"), 2, "", stderr)
    assert type(error) is CommandError and not isinstance(error, NotFoundError)
    assert "modprobe" in error.hint
