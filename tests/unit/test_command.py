from __future__ import annotations

import pytest

from netns_kit import Command, Result, change, query


def test_ip_command_in_namespace_uses_dash_n() -> None:
    assert Command(("ip", "link", "show"), netns="red").full_argv == ("ip", "-n", "red", "link", "show")


def test_other_command_in_namespace_uses_netns_exec() -> None:
    command = Command(("sysctl", "-n", "net.ipv4.ip_forward"), netns="red")
    assert command.full_argv == ("ip", "netns", "exec", "red", "sysctl", "-n", "net.ipv4.ip_forward")


def test_line_quotes_for_the_shell_and_nothing_else() -> None:
    command = Command(("ip", "link", "set", "dev", "x", "alias", "a b;$(id)"))
    assert command.line == "ip link set dev x alias 'a b;$(id)'"
    assert command.argv[-1] == "a b;$(id)"


def test_a_single_string_is_not_an_argv() -> None:
    with pytest.raises(TypeError):
        Command("ip link show")  # type: ignore[arg-type]


def test_empty_argv_is_rejected() -> None:
    with pytest.raises(ValueError):
        Command(())


def test_in_netns_moves_the_undo_too() -> None:
    command = change(
        "ip", "link", "add", "name", "a", "type", "bridge", undo=Command(("ip", "link", "del", "dev", "a"))
    ).in_netns("red")
    assert command.netns == "red"
    assert command.undo[0].line == "ip -n red link del dev a"


def test_json_round_trip_keeps_everything() -> None:
    command = Command(
        ("ip", "netns", "add", "x"),
        netns=None,
        ok_codes={0, 2},
        undo=(Command(("ip", "netns", "del", "x"), missing_ok=True),),
    )
    assert Command.from_json(command.to_json()) == command


def test_query_is_not_mutating() -> None:
    assert not query("ip", "-j", "link").mutating
    assert change("ip", "netns", "add", "x").mutating


def test_result_ok_follows_the_accepted_codes() -> None:
    command = Command(("grep", "x"), ok_codes={0, 1})
    assert Result(command, 1).ok
    assert not Result(command, 2).ok
    assert Result(command, 0, '[{"a": 1}]').json() == [{"a": 1}]
    assert Result(command, 0, "").json() == []


def test_tc_in_a_namespace_uses_dash_n_like_ip() -> None:
    assert Command(("tc", "qdisc", "show"), netns="red").line == "tc -n red qdisc show"


def test_stdin_is_rendered_as_a_quoted_here_document_in_scripts_only() -> None:
    command = change("install", "-m", "0644", "/dev/stdin", "/etc/netns/red/hosts", stdin="10.0.0.1\tred $HOME\n")
    assert command.line == "install -m 0644 /dev/stdin /etc/netns/red/hosts"
    assert command.script == "install -m 0644 /dev/stdin /etc/netns/red/hosts <<'EOF'\n10.0.0.1\tred $HOME\nEOF"


def test_the_here_document_delimiter_never_appears_in_the_content() -> None:
    command = change("cat", stdin="EOF\nEOF_\n")
    assert command.script == "cat <<'EOF__'\nEOF\nEOF_\nEOF__"


def test_stdin_must_end_with_a_newline_to_render_exactly() -> None:
    with pytest.raises(ValueError, match="newline"):
        change("cat", stdin="no newline")
    assert change("cat", stdin="").script == "cat <<'EOF'\nEOF"


def test_stdin_survives_json_round_trip() -> None:
    command = change("cat", stdin="a\n", undo=Command(("rm", "-f", "x")))
    assert Command.from_json(command.to_json()) == command
    assert "stdin" not in change("cat").to_json()


def test_tolerant_is_the_same_command_with_missing_ok() -> None:
    import attrs

    undo = Command(("ip", "link", "del", "dev", "x"), netns="red")
    command = Command(("ip", "link", "add", "x"), netns="red", ok_codes=(0, 2), undo=(undo,), stdin="a\n")
    assert command.tolerant() == attrs.evolve(command, missing_ok=True)
    assert command.tolerant().missing_ok and not command.missing_ok
    already = command.tolerant()
    assert already.tolerant() is already
