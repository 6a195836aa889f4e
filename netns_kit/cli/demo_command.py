"""``netns-kit demo``: the seed-001 story, built for real in a sandbox (:mod:`netns_kit.demo`)."""

from __future__ import annotations

import argparse
from typing import TextIO

from netns_kit import demo


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    return demo.run(out)
