"""The owner-flag holder's conversation with ``nft -i``, against a stand-in that answers as nft
1.0.6 does (silence on success; on stderr the error, the line, a caret line, a blank line).
The real ``nft -i`` and the kernel's deletion are in tests/integration/test_nft*.py.
"""

from __future__ import annotations

import sys

import pytest

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit.command import Command
from netns_kit.errors import CommandError
from netns_kit.executors.base import Executor
from netns_kit.executors.recorder import Recorder
from netns_kit.firewall import nft
from netns_kit.firewall.nftowner import OwnerHolder
from netns_kit.owner import Owner

#: reads lines like nft -i; logs each to argv[1]; answers "bogus" and unparsable lines with an error
FAKE_NFT = r"""
import sys
log = open(sys.argv[1], "a")
for line in sys.stdin:
    line = line.rstrip("\n")
    log.write(line + "\n"); log.flush()
    if line.startswith("netns-kit-sync-"):
        caret = " " * len(line) + "^"
        sys.stderr.write("Error: syntax error, unexpected newline, expecting string\n" + line + "\n" + caret + "\n\n")
    elif "bogus" in line:
        sys.stderr.write("Error: syntax error, unexpected string\n" + line + "\n" + "    ^^^^^\n")
    sys.stderr.flush()
"""


class FakeNft(Executor):
    def __init__(self, log: str) -> None:
        super().__init__(Owner("42.7"))
        self.log = log

    def argv_for(self, command: Command) -> tuple[str, ...]:
        assert command.argv == ("env", "HOME=/dev/null", "nft", "-i")
        return (sys.executable, "-c", FAKE_NFT, self.log)


def test_each_transaction_is_one_line_and_an_error_is_the_transactions_own(tmp_path) -> None:
    log = tmp_path / "lines"
    table = nft.Table.of(Owner("42.7"), owned=True)
    with OwnerHolder(FakeNft(str(log)), table, timeout=10) as holder:
        holder.apply(nft.Transaction(("add chain inet netns_kit_42.7 a", "add chain inet netns_kit_42.7 b")))
        with pytest.raises(CommandError) as caught:
            holder.apply(nft.Transaction(("add chain inet netns_kit_42.7 c", "bogus")))
        holder.apply(nft.Transaction(("delete chain inet netns_kit_42.7 a",)))  # after an error: in step still
        process = holder._process
    assert process is not None and process.returncode == 0  # closed: its stdin ended, it exited
    assert caught.value.stderr == (
        "Error: syntax error, unexpected string\nadd chain inet netns_kit_42.7 c ; bogus\n    ^^^^^"
    )
    assert caught.value.hint.endswith("the transaction was: add chain inet netns_kit_42.7 c ; bogus")
    assert log.read_text().splitlines() == [
        "add table inet netns_kit_42.7 { flags owner ; }",
        "netns-kit-sync-1",
        "add chain inet netns_kit_42.7 a ; add chain inet netns_kit_42.7 b",
        "netns-kit-sync-2",
        "add chain inet netns_kit_42.7 c ; bogus",
        "netns-kit-sync-3",
        "delete chain inet netns_kit_42.7 a",
        "netns-kit-sync-4",
    ]


def test_a_holder_that_died_is_an_error_not_a_hang(tmp_path) -> None:
    holder = OwnerHolder(FakeNft(str(tmp_path / "lines")), nft.Table.of(Owner("42.7"), owned=True), timeout=10)
    holder.start()
    process = holder._process
    assert process is not None
    process.kill()
    process.wait()
    with pytest.raises(CommandError, match="nft -i"):
        holder.apply(nft.Transaction(("add chain inet netns_kit_42.7 a",)))
    holder.close()


def test_refused_for_a_dry_run_and_for_a_table_without_the_flag() -> None:
    with pytest.raises(ValueError, match="dry-run"):
        OwnerHolder(Recorder(), nft.Table.of(Owner("42.7"), owned=True))
    with pytest.raises(ValueError, match="owned=True"):
        OwnerHolder(FakeNft("/dev/null"), nft.Table.of(Owner("42.7")))
