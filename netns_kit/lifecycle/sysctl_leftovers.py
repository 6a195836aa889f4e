"""The claims of owners that are gone (or named): what ``netns_kit.cleanup()`` and
``netns-kit down`` restore from (see :mod:`netns_kit.lifecycle.sysctl`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import attrs

from netns_kit.executors.base import Executor
from netns_kit.lifecycle.sysctl_claims import Claims
from netns_kit.lifecycle.sysctl_files import owner_of, read_value
from netns_kit.lifecycle.sysctl_switch import read, write
from netns_kit.owner import Owner
from netns_kit.sysctl_keys import CLAIMS_DIR, HOST, valid_value
from netns_kit.validate import netns_name

#: what a sysctl key directory may be named (``/`` of a key is kept as ``,``)
_KEY = re.compile(r"[A-Za-z0-9_][!-.0-~]{0,254}", re.ASCII)


@attrs.frozen
class Leftover:
    """Claims of an owner in one place: ``run()`` drops them and restores the value
    found first when they were the last; it returns why it left the switch alone
    (None: done)."""

    what: str
    owner: Owner
    run: Callable[[], str | None]


def leftovers(executor: Executor, owner: Owner | None = None) -> list[Leftover]:
    """The claims ``owner`` left (every owner whose process is gone, when None): what
    ``netns_kit.cleanup()`` and ``netns-kit down`` restore from, also after a printed
    script (which writes no ledger, only the claim)."""
    directory = None if executor.dry_run else executor.ledger_dir
    if directory is None or not (directory / CLAIMS_DIR).is_dir():
        return []
    found: list[Leftover] = []
    for path in sorted((directory / CLAIMS_DIR).glob("*/*")):
        if not _sysctl_place(path):
            continue
        shared = Claims.at(path)
        owners: dict[str, Owner] = {}
        for claim in shared.files():
            name = owner_of(claim)
            try:
                who = Owner(name)
            except ValueError:
                continue
            gone = owner is None and who.pid is not None and not who.is_alive()
            if who == owner or gone:
                owners[name] = who
        for name, who in owners.items():
            where = f" in {shared.netns}" if shared.netns else ""
            found.append(
                Leftover(f"sysctl {shared.key}{where}: claim of {name}", who, _restorer(executor, shared, name))
            )
    return found


def _sysctl_place(path: Path) -> bool:
    """Whether ``path`` (``sysctl/PLACE/KEY``) may hold claims: a directory named as a key,
    in a place named as the host or a namespace (else it is not ours: left alone)."""
    place = path.parent.name
    if _KEY.fullmatch(path.name) is None or path.name.isdigit():
        return False
    if place != HOST:
        try:
            netns_name("the claims' place", place)
        except ValueError:
            return False
    return path.is_dir() and not path.is_symlink()


def _restorer(executor: Executor, shared: Claims, owner_id: str) -> Callable[[], str | None]:
    def run() -> str | None:
        with shared.locked():
            mine = [c for c in shared.files() if owner_of(c) == owner_id]
            values = set()
            for claim in mine:
                value, _ = read_value(claim)
                if value is not None and valid_value(shared.key, value):
                    values.add(value)  # a damaged one says nothing: the prior decides
            why: list[str] = []

            def restore(original: str) -> None:
                now = read(executor, shared.key, shared.netns)
                if now is None or now == original:
                    return  # the interface it belonged to is gone, or it is back already
                if values and now not in values:
                    claimed = "/".join(sorted(values))
                    why.append(
                        f"sysctl {shared.key} is {now}, not the {claimed} {owner_id} set: someone changed it since"
                    )
                    return
                write(executor, shared.key, original, shared.netns)

            original = shared.drop(mine, restore)
            if original is None:
                if shared.relied_on:
                    return f"sysctl {shared.key}: still relied on by running owners, who restore it when done"
                if shared.damage is None:
                    return None  # nothing was kept to restore
                now = read(executor, shared.key, shared.netns)
                left = f"left at {now}" if now is not None else "left as it is"
                return f"sysctl {shared.key}: {left}: {shared.damage}; set it by hand if {now} is not what you want"
            return why[0] if why else None

    return run
