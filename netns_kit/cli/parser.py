"""The arguments of ``netns-kit``: one :mod:`argparse` parser, which ``--help`` and the
shell completion scripts (:mod:`netns_kit.cli.complete`) are both made from."""

from __future__ import annotations

import argparse

from netns_kit.cli.codes import EXIT_CODES

#: the version ``--version`` prints (the package root's ``__version__`` says the same)
VERSION = "0.1.0"

#: ``plan --format``: text formats printed by netns_kit, pictures drawn by Graphviz ``dot``
TEXT_FORMATS = ("sh", "mermaid", "dot")
PICTURE_FORMATS = ("svg", "png")
SHELLS = ("bash", "zsh", "fish")


def _parents() -> dict[str, argparse.ArgumentParser]:
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_mutually_exclusive_group()
    group.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS,
        help="work in the sandbox netns-kit keeps between commands (up starts it)",
    )
    group.add_argument(
        "--attach", metavar="PID", type=int, default=argparse.SUPPRESS, help="work in the sandbox held by process PID"
    )
    where.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="show each command as it runs"
    )
    output = argparse.ArgumentParser(add_help=False)
    group = output.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="machine-readable output (see docs/guides/json.rst)")
    group.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors: the exit code tells")
    project = argparse.ArgumentParser(add_help=False)
    project.add_argument(
        "-p", "--name", metavar="NAME", help="the project name: owner cli.NAME, whatever the file says"
    )
    return {"where": where, "output": output, "project": project}


def build_parser() -> argparse.ArgumentParser:
    parents = _parents()
    parser = argparse.ArgumentParser(
        prog="netns-kit",
        description="Real, throwaway Linux network topologies built with ip and iptables.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"netns_kit {VERSION}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each command as it runs")
    parser.add_argument("--sandbox", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--attach", metavar="PID", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(json=False, quiet=False, name=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, *with_: str) -> argparse.ArgumentParser:
        chosen = [parents["where"], *(parents[p] for p in with_)]
        return sub.add_parser(name, parents=chosen, help=help, description=help, epilog=EXIT_CODES)

    plan = add("plan", "print the shell script (or the picture) of a topology file", "project")
    plan.add_argument("file", metavar="FILE")
    plan.add_argument("--down", action="store_true", help="print the teardown script instead")
    plan.add_argument(
        "--format",
        choices=(*TEXT_FORMATS, *PICTURE_FORMATS),
        default="sh",
        help="sh (default), mermaid, dot; svg and png are drawn by Graphviz dot",
    )
    plan.add_argument("-o", "--output", metavar="PATH", help="write the picture there (default: standard output)")
    plan.add_argument("--json", action="store_true", help="the commands as data (see docs/guides/json.rst)")
    plan.add_argument(
        "--firewall",
        choices=("auto", "iptables", "nft"),
        help="the backend of the NAT rules and port forwards that name none (over the file's [topology] firewall; "
        "default: that, else $NETNS_KIT_FIREWALL, else iptables)",
    )

    up = add("up", "build a topology file (all or nothing); it stays up", "output", "project")
    up.add_argument("file", metavar="FILE")
    up.add_argument("--wait", action="store_true", help="wait until links are up and addresses usable")
    up.add_argument(
        "--firewall",
        choices=("auto", "iptables", "nft"),
        help="the backend of the NAT rules and port forwards that name none (over the file's [topology] firewall; "
        "default: that, else $NETNS_KIT_FIREWALL, else iptables)",
    )

    down = add("down", "remove what `up FILE` made, exactly", "output", "project")
    down.add_argument("file", metavar="FILE", nargs="?", help="the file `up` was given (or -p NAME, or --all)")
    down.add_argument("--all", action="store_true", help="every topology `up` made here (they are listed first)")
    down.add_argument("-y", "--yes", action="store_true", help="do not ask before `down --all`")

    add("status", "what netns_kit owns here, per owner", "output")
    add("ls", "the topologies up: owner, file, where, objects, since when, alive or leftover", "output")
    inspect = add("inspect", "the objects of one topology: as its file describes them and as read back", "output")
    inspect.add_argument("target", metavar="NAME", help="owner id (cli.NAME), project name, or the topology file")

    clean = add("cleanup", "remove what dead owners (or --owner) left behind", "output")
    clean.add_argument("--owner", metavar="ID", help="remove what this owner made (PID.START, cli.NAME, dry-run)")
    clean.add_argument("--dry-run", action="store_true", help="only say what would be removed")

    add("doctor", "check this machine (or the sandbox) and explain fixes", "output")
    add("demo", "build seed 001 in a sandbox, check it with traffic, tear it down")

    run = add("exec", "run a command in a namespace of a running topology (in its sandbox, if it has one)")
    run.add_argument("namespace", metavar="NAMESPACE")
    run.add_argument("argv", metavar="COMMAND", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    shell = add("shell", "open your shell ($SHELL) in a namespace; the prompt names it")
    shell.add_argument("namespace", metavar="NAMESPACE")

    complete = sub.add_parser("completion", help="print the completion script of a shell", epilog=EXIT_CODES)
    complete.add_argument("shell", choices=SHELLS)
    return parser
