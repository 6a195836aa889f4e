"""The error table, fed with messages recorded from iproute2 6.1, iptables 1.8.9, util-linux 2.38."""

from __future__ import annotations

import builtins
import pickle

import pytest

import netns_kit
from netns_kit import errors
from netns_kit.errors import (
    AlreadyExistsError,
    BinaryNotFoundError,
    CommandError,
    NotFoundError,
    PermissionDeniedError,
    binary_not_found,
    classify,
    not_started,
)

REAL_MESSAGES = [
    (2, "RTNETLINK answers: File exists", AlreadyExistsError),
    (1, 'Cannot create namespace file "/run/netns/a": File exists', AlreadyExistsError),
    (2, "Error: ipv4: Address already assigned.", AlreadyExistsError),
    (1, "iptables: Chain already exists.", AlreadyExistsError),
    (1, 'Cannot find device "nope"', NotFoundError),
    (255, 'Cannot open network namespace "zz": No such file or directory', NotFoundError),
    (1, 'Cannot remove namespace file "/run/netns/zz": No such file or directory', NotFoundError),
    (2, "RTNETLINK answers: No such process", NotFoundError),
    (2, "Error: ipv4: Address not found.", NotFoundError),
    (2, "Error: FIB table does not exist.", NotFoundError),
    (255, 'Error: argument "nobr" is wrong: Device does not exist', NotFoundError),
    (255, 'Error: argument "x" is wrong: Invalid "netns" value', NotFoundError),
    (1, "iptables: Bad rule (does a matching rule exist in that chain?).", NotFoundError),
    (1, "iptables: No chain/target/match by that name.", NotFoundError),
    (2, "iptables v1.8.9 (nf_tables): Chain 'NOPE' does not exist", NotFoundError),
    (1, "sysctl: cannot stat /proc/sys/net/ipv4/nope: No such file or directory", NotFoundError),
    (2, "RTNETLINK answers: Operation not permitted", PermissionDeniedError),
    (1, "mount --make-shared /run/netns failed: Operation not permitted", PermissionDeniedError),
    (
        4,
        "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
        PermissionDeniedError,
    ),
    (1, 'sysctl: permission denied on key "net.ipv4.ip_forward"', PermissionDeniedError),
    (1, "nsenter: cannot open /proc/1/ns/net: Permission denied", PermissionDeniedError),
    (1, 'exec of "nonexistent-binary" failed: No such file or directory', BinaryNotFoundError),
    # a wrapper that found the program nowhere (exit 127): nothing ran, the binary is missing
    (127, "nsenter: failed to execute iptables-restore: No such file or directory", BinaryNotFoundError),
    (127, "unshare: failed to execute tc: No such file or directory", BinaryNotFoundError),
    (127, "env: \u2018sysctl\u2019: No such file or directory", BinaryNotFoundError),
    (127, "env: 'sysctl': No such file or directory", BinaryNotFoundError),
    # ... but a program it ran failing to find a file is that program's failure
    (1, "nsenter: cannot open /proc/99999/ns/net: No such file or directory", NotFoundError),
    (2, "Error: Unknown device type.", CommandError),
    (2, "Error: mtu less than device minimum.", CommandError),
]


@pytest.mark.parametrize(("code", "stderr", "expected"), REAL_MESSAGES)
def test_real_messages_map_to_the_right_error(code: int, stderr: str, expected: type) -> None:
    error = classify(("ip", "x"), code, "", stderr + "\n")
    assert type(error) is expected
    assert error.returncode == code
    assert error.stderr.strip() == stderr
    if expected is not CommandError:
        assert error.hint


def test_gateway_not_on_link_gets_a_hint() -> None:
    error = classify(("ip", "route", "add", "default", "via", "10.9.9.9"), 2, "", "Error: Nexthop has invalid gateway.")
    assert type(error) is CommandError
    assert "gateway" in error.hint


def test_message_shows_argv_code_stderr_and_hint() -> None:
    error = classify(("ip", "link", "add", "name", "a b"), 2, "", "RTNETLINK answers: File exists\n")
    text = str(error)
    assert text.splitlines()[0] == "command failed with exit code 2: ip link add name 'a b'"
    assert "stderr: RTNETLINK answers: File exists" in text
    assert "hint: the name is already taken" in text


def test_missing_binary_names_the_package() -> None:
    error = binary_not_found(("iptables", "-L"))
    assert isinstance(error, BinaryNotFoundError)
    assert "apt-get install iptables" in error.hint


@pytest.mark.parametrize(
    ("stderr", "binary", "package"),
    [
        ("nsenter: failed to execute iptables-restore: No such file or directory", "iptables-restore", "iptables"),
        ("unshare: failed to execute tc: No such file or directory", "tc", "iproute2"),
        ("env: \u2018sysctl\u2019: No such file or directory", "sysctl", "procps"),
        ('exec of "ping" failed: No such file or directory', "ping", "iputils-ping"),
    ],
)
def test_a_program_a_wrapper_could_not_start_is_named_with_its_package(stderr: str, binary: str, package: str) -> None:
    argv = ("nsenter", "--target=7", "--net", "--", binary, "-w")
    error = classify(argv, 127 if "exec of" not in stderr else 1, "", stderr + "\n")
    assert isinstance(error, BinaryNotFoundError)
    assert error.binary == binary
    assert error.hint.startswith(f"'{binary}' is not installed (looked on PATH, then in /usr/sbin, /sbin")
    assert error.hint.endswith(f"apt-get install {package} (Debian/Ubuntu; or your distribution's package)")
    assert not_started(argv, error.returncode, "", stderr + "\n") is not None


def test_not_started_only_for_the_program_the_wrapper_itself_was_to_run() -> None:
    message = "nsenter: failed to execute iptables: No such file or directory\n"
    # a line of a script could not start its program: lines before it ran
    assert not_started(("nsenter", "--target=7", "--", "sh", "-s"), 127, "", message) is None
    assert not_started(("nsenter", "--target=7", "--", "iptables", "-S"), 1, "", message) is None  # not 127
    assert not_started(("nsenter", "--target=7", "--", "iptables", "-S"), 0, "", "") is None
    assert not_started(("ip", "link"), 1, "", 'Cannot find device "x"\n') is None
    found = not_started(("nsenter", "--target=7", "--", "/usr/sbin/iptables", "-S"), 127, "", message)
    assert found is not None and found.argv[-2:] == ("/usr/sbin/iptables", "-S")


def test_missing_binary_with_no_message_names_the_package() -> None:
    error = classify(("iptables-save",), 127, "", "")
    assert isinstance(error, BinaryNotFoundError)
    assert "apt-get install iptables" in error.hint


def test_errors_survive_pickling_for_xdist_and_multiprocessing() -> None:
    error = classify(("ip", "x"), 2, "out", "RTNETLINK answers: File exists")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AlreadyExistsError
    assert (copy.argv, copy.returncode, copy.stdout, copy.stderr) == (error.argv, 2, "out", error.stderr)
    missing = classify(("nsenter", "--", "tc"), 127, "", "nsenter: failed to execute tc: No such file or directory")
    copy = pickle.loads(pickle.dumps(missing))
    assert type(copy) is BinaryNotFoundError
    assert (copy.binary, copy.hint) == ("tc", missing.hint)


def test_the_timeout_error_does_not_shadow_the_builtin_and_is_one() -> None:
    assert "TimeoutError" not in vars(errors)  # the module's own name is NetnsKitTimeoutError
    assert netns_kit.TimeoutError is errors.NetnsKitTimeoutError is errors.TimeoutError
    error = netns_kit.TimeoutError("gave up after 1 s waiting for x")
    assert isinstance(error, builtins.TimeoutError)
    assert isinstance(error, netns_kit.NetnsKitError)
    assert str(error) == "gave up after 1 s waiting for x"
    with pytest.raises(builtins.TimeoutError, match="waiting for x"):
        raise error
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is errors.NetnsKitTimeoutError and again.args == error.args
