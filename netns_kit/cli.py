"""The ``netns-kit`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import NetnsKitError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netns-kit",
        description="Real, throwaway Linux network topologies built with ip and iptables.",
    )
    parser.add_argument("--version", action="version", version=f"netns_kit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each command as it runs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("demo", help="build seed 001 in a sandbox, check it with traffic, tear it down")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(format="%(message)s", level=logging.DEBUG)
    try:
        if args.command == "demo":
            from . import demo

            return demo.run(sys.stdout)
    except NetnsKitError as error:
        print(f"netns-kit: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
