"""The owner tags of many namespaces (``lo``'s alias), read in this process by a thread
that enters each one, and by one process where the sandbox acts: both say what
``ip -j link show lo`` says in each."""

from __future__ import annotations

import os

from netns_kit import Namespace, Topology, change, query
from netns_kit.executors import loopback
from netns_kit.executors.hook import Executor
from netns_kit.executors.sandbox import Sandbox


def test_read_here_and_read_by_a_process_say_what_ip_says(sb: Sandbox) -> None:
    names = ["lb-a", "lb-b", "lb-c"]
    with Topology([Namespace(name) for name in names], executor=sb):
        sb.run(change("ip", "link", "set", "dev", "lo", "alias", "", netns="lb-c"))  # no tag
        said = {n: sb.run(query("ip", "-j", "link", "show", "lo", netns=n)).json()[0].get("ifalias") for n in names}
        assert said["lb-a"] == said["lb-b"] and str(said["lb-a"]).startswith("netns_kit:")
        assert said["lb-c"] is None
        asked = [*names, "lb-none"]  # one that does not exist is left out
        by_process = Executor.loopback_aliases(sb, asked)
        assert by_process == said
        assert sb.loopback_aliases(asked) == said
        paths = {n: sb.netns_path(n) for n in names}
        if os.geteuid() == 0:
            assert loopback.read_here(paths) == said
        else:  # rootless: this process may not enter the sandbox's namespaces; the process reads
            assert loopback.read_here(paths) is None
    assert sb.loopback_aliases(names) == {}  # gone with the topology
