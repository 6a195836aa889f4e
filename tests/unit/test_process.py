"""Supervised processes: what can be checked without starting one."""

from __future__ import annotations

import pytest

from netns_kit import Command, Namespace, NetnsKitError, Recorder, ValidationError, use
from netns_kit.process import with_env


def test_env_and_cwd_go_into_the_argv_so_every_executor_keeps_them() -> None:
    command = with_env(Command(("server", "--port", "80"), netns="red"), {"MODE": "a b", "X": ""}, "/srv")
    assert command.line == "ip netns exec red env -C /srv 'MODE=a b' X= server --port 80"
    assert with_env(Command(("true",))) == Command(("true",))


@pytest.mark.parametrize(
    ("env", "cwd", "field"),
    [({"": "x"}, None, "env"), ({"A=B": "x"}, None, "env"), ({"A": "x\0"}, None, "env['A']"), (None, "", "cwd")],
)
def test_bad_env_or_cwd_is_refused_before_anything_starts(
    env: dict[str, str] | None, cwd: str | None, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        with_env(Command(("true",)), env, cwd)
    assert info.value.field == field


def test_a_dry_run_refuses_to_start_a_server_even_with_a_port_to_wait_for() -> None:
    with use(Recorder()), pytest.raises(NetnsKitError, match="a dry-run starts no process"):
        Namespace("red").popen(["server"], port=80, env={"A": "1"})
