"""Hostile names: names the kernel and iproute2 accept but a shell would misread
(command substitution, ``;``, ``|``, ``&``, redirections, quotes, globs, comments, a
newline) go through printed scripts quoted, so that ``/bin/sh`` running the script in a
sandbox creates exactly those objects and nothing else: no canary file appears.

netns_kit's own resources refuse such names (see test_bad_input.py); this is the layer
below, the one every command goes through: ``Command.line``/``Command.script`` and the
recorder's scripts, fed commands built by hand.

    pytest tests/stress/test_hostile_names.py
"""

from __future__ import annotations

from collections.abc import Callable

from netns_kit import Command, NetnsFile, Recorder, change, query
from netns_kit.executors.sandbox import Sandbox

#: interface names (<= 15 bytes, no '/', ':' or whitespace: what the kernel takes)
IFNAMES = [
    "$(touch${IFS}c)",
    "`touch${IFS}c`",
    ";touch${IFS}c",
    "a|touch${IFS}c",
    "a&&touch${IFS}c",
    ">c",
    "<c",
    "#c",
    "'q\"",
    "*",
    "-rf",
    "$IFS",
    "a\\b",
    "!c",
]
#: namespace names (file names: anything but '/', '.' and '..'; even a newline)
NETNS = ["$(touch c)", "x;touch c", "a b", "x\ntouch c", "'\"`"]
CONTENT = "$(touch c)\n`touch c`\nEOF\n'\"\\\n${HOME}\n"
WORKDIR = "/run/nk-hostile"  # the script runs here: a canary 'c' would appear here


def script_commands() -> Recorder:
    recorder = Recorder()
    for name in NETNS:
        recorder.run(change("ip", "netns", "add", name))
    for name in IFNAMES:
        recorder.run(change("ip", "link", "add", "name", name, "type", "bridge"))
        recorder.run(change("ip", "link", "set", "dev", name, "alias", name, "up"))
    # a veth pair between two hostile namespaces, hostile names at both ends
    recorder.run(
        change(
            "ip", "link", "add", "name", IFNAMES[0], "type", "veth", "peer", "name", IFNAMES[1], "netns", NETNS[1]
        ).in_netns(NETNS[0])
    )
    recorder.run(change("ip", "addr", "add", "10.0.0.1/24", "dev", IFNAMES[0], netns=NETNS[0]))
    # a file whose content is all shell syntax (a here-document in the script)
    for command in NetnsFile("plain", "hosts", CONTENT).plan(recorder):
        recorder.run(command)
    return recorder


def run(sandbox: Sandbox, script: str) -> None:
    result = sandbox.run(Command(("sh", "-c", f"mkdir -p {WORKDIR} && cd {WORKDIR} && exec /bin/sh -s")), input=script)
    assert result.ok, result


def test_scripts_quote_hostile_names_so_sh_creates_exactly_them(
    netns_fresh_sandbox: Sandbox, figures: Callable[[str], None]
) -> None:
    box = netns_fresh_sandbox
    recorder = script_commands()
    run(box, recorder.script())
    assert sorted(box.root_path(WORKDIR).iterdir()) == [], "the script ran something it should have quoted"
    netns = sorted(e["name"] for e in box.run(query("ip", "-j", "netns", "list")).json())
    assert netns == sorted(NETNS)
    links = box.run(query("ip", "-j", "link", "show")).json()
    assert sorted(link["ifname"] for link in links) == sorted([*IFNAMES, "lo"])
    assert all(link.get("ifalias", link["ifname"]) == link["ifname"] for link in links)
    inside = box.run(query("ip", "-j", "addr", "show", "dev", IFNAMES[0], netns=NETNS[0])).json()
    assert [a["local"] for a in inside[0]["addr_info"] if a["family"] == "inet"] == ["10.0.0.1"]
    peer = box.run(query("ip", "-j", "link", "show", netns=NETNS[1])).json()
    assert IFNAMES[1] in [link["ifname"] for link in peer]
    written = box.root_path("/etc/netns/plain/hosts")
    assert written.read_text() == CONTENT
    # and the teardown script removes exactly them again
    undo = recorder.undo_commands()  # the file's
    undo += [change("ip", "link", "del", "dev", name) for name in IFNAMES]
    undo += [change("ip", "netns", "del", name) for name in NETNS]
    run(box, _recorded(undo).script(title="tear down"))
    assert sorted(box.root_path(WORKDIR).iterdir()) == []
    assert box.run(query("ip", "-j", "netns", "list")).json() == []
    assert [link["ifname"] for link in box.run(query("ip", "-j", "link", "show")).json()] == ["lo"]
    figures(
        f"{len(IFNAMES)} hostile interface names, {len(NETNS)} hostile namespace names and a hostile file: "
        "created exactly by /bin/sh from the printed script, 0 canary files"
    )


def test_the_canary_works_a_script_joined_without_quoting_sets_it_off() -> None:
    """The control: the same commands joined with plain spaces make the canary appear."""
    recorder = script_commands()
    naive = "\n".join(" ".join(c.full_argv) for c in recorder.commands[: len(NETNS) + 2 * len(IFNAMES)])
    with Sandbox() as box:
        box.run(Command(("sh", "-c", f"mkdir -p {WORKDIR} && cd {WORKDIR} && /bin/sh -s || true")), input=naive + "\n")
        assert "c" in [p.name for p in box.root_path(WORKDIR).iterdir()]


def _recorded(commands: list[Command]) -> Recorder:
    recorder = Recorder()
    recorder.commands.extend(commands)
    return recorder


def test_the_sandbox_stops_processes_in_namespaces_with_hostile_names() -> None:
    """The holder's own shell code reads /run/netns: a name with a space or a glob must
    not be split or expanded when it stops what runs inside at close."""
    with Sandbox() as box:
        for name in NETNS:
            box.run(change("ip", "netns", "add", name))
        sleepers = [box.popen(Command(("sleep", "600"), netns=name)) for name in NETNS]
        holder = box._holder
        assert holder is not None
    for sleeper in sleepers:
        sleeper.wait(10)
    assert not any(s.is_alive() for s in sleepers)
