"""TOML topology files: the schema, the registry, and errors that point to the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs
import pytest

from netns_kit import Command, LinkImpairment, Namespace, Resource, VethPair, change
from netns_kit.executors.base import Executor
from netns_kit.topology import scenarios, tomlread
from netns_kit.topology import tables as tables_module
from netns_kit.topology import tomlfile as topofile
from netns_kit.topology.tomlfile import TopologyFileError, loads

EXAMPLES = Path(__file__).parents[2] / "examples"

PIPE = """
[[namespaces]]
name = "red"
[[namespaces]]
name = "blue"
[[veths]]
name = "veth-red"
netns = "red"
addresses = ["192.168.1.1/24"]
peer = "veth-blue"
peer_netns = "blue"
peer_addresses = "192.168.1.2/24"
"""


def error_of(text: str) -> str:
    with pytest.raises(TopologyFileError) as info:
        loads(text, source="net.toml")
    return str(info.value)


def test_a_file_builds_the_same_commands_as_the_python_scenario() -> None:
    loaded = loads(PIPE)
    assert loaded.topology.plan().lines == scenarios.seed001_pipe().plan().lines


@pytest.mark.parametrize(
    ("example", "scenario"),
    [
        ("seed001-pipe", "seed001_pipe"),
        ("seed001-bridge-nat", "seed001_nat"),
        ("seed002-ns1-host", "seed002_host"),
        ("seed004-red-blue", "seed004_pipe"),
    ],
)
def test_examples_describe_the_seed_scenarios(example: str, scenario: str) -> None:
    loaded = topofile.load(EXAMPLES / f"{example}.toml")
    assert loaded.name == example
    assert loaded.topology.plan().lines == getattr(scenarios, scenario)().plan().lines


def test_every_example_loads() -> None:
    files = sorted(EXAMPLES.glob("*.toml"))
    assert len(files) == 6
    for path in files:
        assert topofile.load(path).topology.resources, path


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my net.toml"
    path.write_text(PIPE)
    assert topofile.load(path).name == "my-net"


def test_settings_table_sets_wait() -> None:
    loaded = loads('[topology]\nname = "x"\nwait = true\nwait_timeout = 3\n' + PIPE)
    assert (loaded.name, loaded.topology.wait, loaded.topology.wait_timeout) == ("x", True, 3.0)


def test_unknown_namespace_points_to_the_key() -> None:
    text = PIPE + '[[veths]]\nname = "a"\npeer = "b"\n[[veths]]\nname = "c"\npeer = "d"\npeer_netns = "bleu"\n'
    message = error_of(text)
    assert message.startswith("net.toml: veths[2].peer_netns: 'bleu' is not a namespace of this topology")
    assert "['blue', 'red']" in message


def test_unknown_key_suggests_the_close_one() -> None:
    message = error_of('[[veths]]\nname = "a"\npeer = "b"\npeer_ns = "red"\n')
    assert message.startswith("net.toml: veths[0].peer_ns: 'red' is not a known key for VethPair")
    assert "did you mean 'peer_netns'?" in message


def test_unknown_table_suggests_the_close_one() -> None:
    message = error_of('[[veth]]\nname = "a"\n')
    assert message.startswith("net.toml: veth: is not a known table (did you mean 'veths'?)")


def test_a_table_instead_of_an_array_of_tables_says_how_to_write_it() -> None:
    assert "write [[namespaces]] above each entry" in error_of('[namespaces]\nname = "red"\n')


def test_missing_required_key() -> None:
    assert error_of('[[veths]]\nname = "a"\n') == "net.toml: veths[0].peer: is missing: VethPair needs it"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('mtu = "1500"', "veths[0].mtu: '1500' must be an integer (TOML string given)"),
        ("addresses = 5", "veths[0].addresses: 5 must be a string or an array of strings (TOML integer given)"),
        ('up = "yes"', "veths[0].up: 'yes' must be true or false (TOML string given)"),
        ("netns = 1", "veths[0].netns: 1 must be a string (TOML integer given)"),
        ("addresses = [1]", "veths[0].addresses: [1] must be a string or an array of strings"),
    ],
)
def test_wrong_toml_types_are_named(entry: str, expected: str) -> None:
    assert expected in error_of(f'[[veths]]\nname = "a"\npeer = "b"\n{entry}\n')


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('name = "veth-much-too-long"\npeer = "b"', "veths[0].name: 'veth-much-too-long' is 18 bytes"),
        ('name = "a"\npeer = "b"\naddresses = "10.0.0.1"', "veths[0].addresses: '10.0.0.1' must be an address"),
        ('name = "a"\npeer = "b"\nmtu = 20', "veths[0].mtu: 20 must be an int from 68 to 65535"),
    ],
)
def test_resource_validation_errors_point_to_the_key(entry: str, expected: str) -> None:
    assert expected in error_of(f"[[veths]]\n{entry}\n")


def test_duplicate_namespace_points_to_the_second_one() -> None:
    message = error_of('[[namespaces]]\nname = "red"\n[[namespaces]]\nname = "red"\n')
    assert message.startswith("net.toml: namespaces[1].name: 'red' appears 2 times")


def test_gateway_off_subnet_points_to_the_route() -> None:
    text = PIPE + '[[routes]]\ndestination = "default"\nvia = "10.9.9.9"\nnetns = "red"\n'
    assert error_of(text).startswith("net.toml: routes[0].via: '10.9.9.9' is not on a subnet of red")


def test_bad_toml_syntax_says_where() -> None:
    message = error_of('[[namespaces]]\nname = "red\n')
    assert message.startswith("net.toml: (syntax): is not valid TOML")
    assert "line 2" in message


def test_bad_settings() -> None:
    assert "topology.nmae: 'x' is not a known setting (did you mean 'name'?)" in error_of('[topology]\nnmae = "x"\n')
    assert "topology.wait: 'yes' must be a boolean" in error_of('[topology]\nwait = "yes"\n')
    assert "topology.name: 'a b' must be 1-58 characters" in error_of('[topology]\nname = "a b"\n')


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyFileError, match=r"nope.toml: \(file\): cannot be read"):
        topofile.load(tmp_path / "nope.toml")


def test_error_is_a_validation_error_and_a_value_error() -> None:
    with pytest.raises(ValueError):
        loads('[[namespaces]]\nname = ""\n')


@attrs.frozen
class Tunnel(Resource):
    """A resource kind defined outside netns_kit."""

    name: str
    remote: str = "192.0.2.1"
    ttl: int = 64

    def plan(self, executor: Executor) -> list[Command]:
        return [change("ip", "tunnel", "add", self.name, "remote", self.remote, "ttl", str(self.ttl))]


def test_a_new_resource_kind_plugs_in_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(topofile.TABLES, "tunnels", Tunnel)
    loaded = loads('[[tunnels]]\nname = "gre1"\nttl = 8\n')
    assert loaded.topology.resources == [Tunnel("gre1", ttl=8)]
    with pytest.raises(TopologyFileError, match=r"tunnels\[0\]\.ttl: 'x' must be an integer"):
        loads('[[tunnels]]\nname = "t"\nttl = "x"\n')


def test_nat_rules_and_port_forwards_have_tables() -> None:
    text = (
        '[[namespaces]]\nname = "red"\n[[bridges]]\nname = "br0"\naddresses = "192.168.1.254/24"\n'
        '[[veths]]\nname = "veth-red"\nbridge = "br0"\npeer = "eth0"\npeer_netns = "red"\n'
        'peer_addresses = "192.168.1.1/24"\n'
        '[[nat_rules]]\nsource = "192.168.1.0/24"\nbridge = "br0"\n'
        '[[port_forwards]]\nport = 8080\nto = "192.168.1.1"\nto_port = 80\nprotocol = "udp"\nbridge = "br0"\n'
    )
    kinds = [type(r).__name__ for r in loads(text).topology.ordered()]
    assert kinds[-2:] == ["NatRule", "PortForward"]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('[[port_forwards]]\nport = 0\nto = "192.168.1.1"', "port_forwards[0].port: 0 must be an int from 1 to 65535"),
        ('[[port_forwards]]\nport = 80\nto = "192.168.1.1"\nprotocol = "sctp"', "port_forwards[0].protocol: 'sctp'"),
        ('[[port_forwards]]\nport = "80"\nto = "192.168.1.1"', "port_forwards[0].port: '80' must be an integer"),
        ('[[nat_rules]]\nsource = "192.168.1.0/33"\nbridge = "b"', "nat_rules[0].source: '192.168.1.0/33'"),
        ('[[nat_rules]]\nsource = "192.168.1.0/24"', "nat_rules[0].out_interface: None or NatRule.bridge"),
    ],
)
def test_nat_and_port_forward_errors_point_to_the_key(entry: str, expected: str) -> None:
    assert expected in error_of(entry + "\n")


def test_impairments_take_an_inline_table_and_errors_point_inside_it() -> None:
    text = PIPE + '[[impairments]]\ndev = "veth-red"\nnetns = "red"\nimpairment = { delay = "100ms", loss = "1%" }\n'
    [impairment] = [r for r in loads(text).topology.resources if isinstance(r, LinkImpairment)]
    assert str(impairment.impairment.delay) == "100ms"
    bad = PIPE + '[[impairments]]\ndev = "veth-red"\nnetns = "red"\nimpairment = { delay = 200 }\n'
    assert error_of(bad).startswith("net.toml: impairments[0].impairment.delay: 200 must be a time")


def test_partitions_and_netns_files_have_tables() -> None:
    text = PIPE + (
        '[[partitions]]\na = "red"\nb = "blue"\na_addresses = ["192.168.1.1"]\nb_addresses = ["192.168.1.2"]\n'
        '[[netns_files]]\nnetns = "red"\nname = "hosts"\ncontent = "192.168.1.2 blue\\n"\n'
        '[[links_down]]\ndev = "veth-blue"\nnetns = "blue"\n'
    )
    kinds = [type(r).__name__ for r in loads(text).topology.resources]
    assert kinds[-3:] == ["Partition", "NetnsFile", "LinkDown"]


def test_fields_are_the_attrs_init_fields_without_the_executor() -> None:
    assert list(topofile.fields(Namespace)) == ["adopt", "name"]
    assert "executor" not in topofile.fields(VethPair)
    assert "peer_netns" in topofile.fields(VethPair)


def test_a_binary_file_is_refused_as_not_text() -> None:
    with pytest.raises(TopologyFileError) as info:
        topofile.load("/bin/ls")
    assert str(info.value).startswith("/bin/ls: (file): is not a text file (not UTF-8: byte 0x")


def test_a_huge_file_is_refused_before_it_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tomlread, "MAX_BYTES", 100)
    path = tmp_path / "big.toml"
    path.write_text("# x\n" * 30)
    with pytest.raises(TopologyFileError, match=r"big.toml: \(file\): is larger than 100 bytes"):
        topofile.load(path)


def test_a_deeply_nested_file_is_a_clear_error() -> None:
    assert "is nested too deeply" in error_of("a = " + "[" * 100_000)


def test_load_records_the_resolved_path_and_whether_the_name_was_chosen(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    path = tmp_path / "dir" / "net.toml"
    path.write_text(PIPE)
    (tmp_path / "link.toml").symlink_to(path)
    unnamed = topofile.load(tmp_path / "link.toml")
    assert (unnamed.path, unnamed.named, unnamed.name) == (path.resolve(), False, "net")
    named = topofile.load(EXAMPLES / "seed001-pipe.toml")
    assert (named.named, named.name) == (True, "seed001-pipe")
    assert loads(PIPE).path is None


def test_head_reads_only_what_names_the_owner(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    path = tmp_path / "dir" / "net.toml"
    path.write_text(PIPE)
    (tmp_path / "link.toml").symlink_to(path)
    for file in (path, tmp_path / "link.toml", EXAMPLES / "seed001-pipe.toml"):
        loaded, head = topofile.load(file), topofile.head(file)
        assert (head.source, head.name, head.path, head.named) == (
            loaded.source,
            loaded.name,
            loaded.path,
            loaded.named,
        )
    # resources are not built: a file broken below its [topology] table still has a head
    path.write_text('[topology]\nname = "lab"\n[[veths]]\nname = "x"\nbogus = 1\n[[nope]]\n')
    assert (topofile.head(path).name, topofile.head(path).named) == ("lab", True)
    with pytest.raises(TopologyFileError):
        topofile.load(path)


#: texts whose [topology] table is not what the lines below its header say alone
_NOT_ALONE = {
    "the word elsewhere": '# the topology of a lab\n[topology]\nname = "a"\n',
    "a sub-table": '[topology]\nname = "a"\n[topology.more]\nx = 1\n',
    "a dotted key": 'topology.name = "b"\n',
    "an escape": '[topology]\nname = "a"\n["\\u0074opology2"]\nx = 1\n',
    "in a multi-line string": 'x = """\n[topology]\nname = "b"\n"""\n',
    "in a literal one": "x = '''\n[topology]\nname = \"b\"\n'''\n",
    "cut short": '[topology]\nname = "a"\nwait = [\n[1]]\n',
    "no header": '[[namespaces]]\nname = "red"\n',
    "CRLF": '[topology]\r\nname = "a"\r\n',
}


def test_the_topology_table_alone_is_read_only_when_it_is_certain() -> None:
    """``down`` reads the [topology] table alone (W(200): 0.2 ms, not 30 ms) only where
    that cannot differ from the whole file; every other text is parsed whole."""
    workload = "\n".join(f'[[namespaces]]\nname = "w{i}"\n' for i in range(50))
    for text in (
        f'[topology]\nname = "lab"\nwait = true\n\n{workload}',
        f'{workload}\n[topology]  # ours\nname = "lab"\n[[namespaces]]\nname = "x"\n',
        '[topology]\nname = "lab"\n',
    ):
        alone = tomlread.topology_alone(text)
        assert alone is not None
        assert alone == tomllib.loads(text)["topology"]
    for why, text in _NOT_ALONE.items():
        assert tomlread.topology_alone(text) is None, why


def test_head_says_what_the_whole_file_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "net.toml"

    def said() -> object:
        try:
            head = topofile.head(path)
        except TopologyFileError as error:
            return str(error)
        return (head.name, head.named)

    texts = [*_NOT_ALONE.values(), '[topology]\nname = "lab"\n[[namespaces]]\nname = "x"\n', "[topology]\nnmae = 1\n"]
    quick = []
    for text in texts:
        path.write_text(text)
        quick.append(said())
    monkeypatch.setattr(tomlread, "topology_alone", lambda text: None)
    whole = []
    for text in texts:
        path.write_text(text)
        whole.append(said())
    assert quick == whole
    assert ("lab", True) in quick


def test_head_refuses_what_load_refuses_about_the_file_and_its_topology_table(tmp_path: Path) -> None:
    path = tmp_path / "net.toml"
    for text, words in (
        ('[topology]\nname = "a b"\n', "topology.name: 'a b' must be 1-58 characters"),
        ("[topology]\nnmae = 1\n", "topology.nmae: 1 is not a known setting (did you mean 'name'?)"),
        ("[topology\n", "(syntax): is not valid TOML"),
    ):
        path.write_text(text)
        for read in (topofile.head, topofile.load):
            with pytest.raises(TopologyFileError, match=re.escape(words)):
                read(path)
    with pytest.raises(TopologyFileError, match="cannot be read"):
        topofile.head(tmp_path / "nope.toml")
    with pytest.raises(TopologyFileError, match="is not a text file"):
        topofile.head("/bin/ls")


def test_the_builtin_tables_come_first_and_one_registered_comes_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topofile, "TABLES", dict(topofile.TABLES))  # the same dict in every module
    monkeypatch.setattr(tables_module, "TABLES", topofile.TABLES)
    topofile.register("hosts", Namespace)
    tables = topofile.tables()
    assert tables is topofile.TABLES
    assert list(tables)[:3] == ["namespaces", "bridges", "veths"]
    assert list(tables)[-1] == "hosts" and tables["veths"] is VethPair
    assert isinstance(loads('[[hosts]]\nname = "h"\n').topology.resources[0], Namespace)
