"""The holder process of a :class:`~netns_kit.executors.sandbox.Sandbox`: its script, its
argv, and how to know one (:func:`verify_holder`).

A holder is started with a random token and writes "TOKEN PID STARTTIME" to
``/run/.netns_kit/holder`` on its private ``/run``: only a process of this user
that proves this way to be a holder is ever attached to, never any other
process's namespaces.
"""

from __future__ import annotations

import os
from pathlib import Path

from netns_kit.errors import SandboxError
from netns_kit.owner import start_time

#: ``Sandbox(iptables=...)``: which ``iptables`` the commands inside run (None: the machine's)
IPTABLES_BACKENDS = (None, "nft", "legacy")

#: the environment variable that hands a holder its random token
TOKEN_ENV = "NETNS_KIT_HOLDER"
#: where a holder writes "TOKEN PID STARTTIME", on its private /run (mode 0600)
MARKER = "/run/.netns_kit/holder"

_HOLDER = r"""
set -e
mount -t tmpfs -o mode=0755 netns_kit_run /run
mkdir -p /run/netns /run/netns_kit /run/.netns_kit/etc-upper /run/.netns_kit/etc-work
etc=noetc
ov=lowerdir=/etc,upperdir=/run/.netns_kit/etc-upper,workdir=/run/.netns_kit/etc-work
if mount -t overlay -o "$ov" netns_kit_etc /etc 2>/dev/null; then
    mkdir -p /etc/netns && etc=etc
fi
if [ "$2" != machine ]; then
    # iptables, iptables-save ... of the sandbox are the "$2" ones: the alternatives
    # they point through are replaced in this mount namespace only
    [ -L /etc/alternatives/iptables ] || {
        echo "cannot pick the iptables backend: /etc/alternatives/iptables is not a symlink" >&2; exit 1; }
    alt=/run/.netns_kit/alternatives
    mkdir -p "$alt"
    cp -RP /etc/alternatives/. "$alt"/
    for tool in iptables ip6tables; do
        for part in "" -save -restore; do
            target=$(PATH="$PATH:/usr/sbin:/sbin" command -v "$tool-$2$part") || {
                echo "cannot pick the iptables backend: $tool-$2$part is not installed" >&2; exit 1; }
            ln -sfn "$target" "$alt/$tool$part"
        done
    done
    mount --bind "$alt" /etc/alternatives
fi
ip link set dev lo up
# who this holder is (Sandbox.attach checks it): its token, pid and start time
identity() { read -r stat < /proc/$$/stat; set -- $stat; echo "$NETNS_KIT_HOLDER $$ ${22}"; }
( umask 077; identity > /run/.netns_kit/holder )
set +e
stop_all() {
    me=$(readlink /proc/$$/ns/net)
    # every name as it is (a space, a glob, a newline, a leading dot), never split
    for path in /run/netns/* /run/netns/.[!.]* /run/netns/..?*; do
        [ -e "$path" ] || continue
        ip netns pids "${path##*/}" 2>/dev/null | xargs -r kill -9 2>/dev/null
    done
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$$" ] && continue
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$me" ] && kill -9 "$pid" 2>/dev/null
    done
}
trap 'stop_all; exit 0' TERM INT HUP
echo "ready $etc"
if [ "$1" = detached ]; then
    # kept only when the starter says so (once it has recorded this holder): a starter
    # that dies first closes this stdin, and the holder stops
    read -r keep || keep=
    [ "$keep" = keep ] || { stop_all; exit 0; }
    exec </dev/null >/dev/null 2>&1
    # wait without a child: a read that never ends (this shell holds the fifo's other
    # end), so that a SIGKILL of the holder leaves no process keeping the namespaces
    if mkfifo /run/.netns_kit/wait && exec 3<>/run/.netns_kit/wait; then
        while :; do read -r _ <&3; done
    fi
    while :; do sleep 3600 & wait $!; done
fi
read -r _
stop_all
"""


def holder_argv(*, rootless: bool, detached: bool, iptables: str | None) -> list[str]:
    """The argv that starts a holder (``unshare ... sh -c SCRIPT``)."""
    user = ["--user", "--map-root-user"] if rootless else []
    return [
        "unshare",
        *user,
        "--net",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        _HOLDER,
        "netns_kit-sandbox",
        "detached" if detached else "attached",
        iptables or "machine",
    ]


def verify_holder(pid: int, *, token: str | None = None) -> str:
    """Check that process ``pid`` is a netns_kit sandbox holder of this user; its token.

    A holder is started with a random token in its environment (``NETNS_KIT_HOLDER``)
    and writes "TOKEN PID STARTTIME" to ``/run/.netns_kit/holder`` on its private
    ``/run``, mode 0600. All must agree with the process as it is now: the same
    user, the same start time (not another process that reused the pid), the same
    token in both places (and ``token``, when given). Anything else raises
    :class:`SandboxError` saying what ``pid`` is.
    """
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        raise SandboxError(f"{pid!r} is not a process id") from None
    started = start_time(pid) if pid > 0 else None
    if started is None:
        raise SandboxError(f"no process with pid {pid}: {_WHERE_HOLDERS}")
    name = _command_name(pid)

    def refuse(why: str) -> SandboxError:
        return SandboxError(f"process {pid} ({name}) is not a netns_kit sandbox holder: {why}; {_WHERE_HOLDERS}")

    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        raise SandboxError(f"no process with pid {pid}: {_WHERE_HOLDERS}") from None
    if uid != os.geteuid():
        raise refuse(f"it runs as uid {uid}, not as you (uid {os.geteuid()})")
    try:
        with open(f"/proc/{pid}/root{MARKER}", encoding="ascii") as file:
            marker = file.read(200).split()
    except (OSError, UnicodeDecodeError):
        raise refuse(f"it has no {MARKER}") from None
    if len(marker) != 3 or marker[1:] != [str(pid), started]:
        raise refuse(f"its {MARKER} names another process")
    try:
        with open(f"/proc/{pid}/environ", "rb") as raw:
            environ = raw.read().split(b"\0")
    except OSError as error:
        raise refuse(f"its environment cannot be read ({error.strerror})") from None
    if f"{TOKEN_ENV}={marker[0]}".encode() not in environ:
        raise refuse(f"its {MARKER} does not match the token it was started with")
    if token is not None and token != marker[0]:
        raise refuse("it is another holder than the one recorded (its token differs)")
    return marker[0]


_WHERE_HOLDERS = (
    "a holder is the process `netns-kit up --sandbox` (see `netns-kit status --sandbox`) "
    "or Sandbox().start() (its .pid) started"
)


def _command_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return "?"


def own_user_namespace(pid: int) -> bool:
    """True when process ``pid`` is in another user namespace than this one (rootless)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    except OSError:
        return os.geteuid() != 0


def userns_problem() -> str | None:
    """Why this kernel refuses unprivileged user namespaces, or None if it does not seem to."""
    checks = (
        (
            "/proc/sys/kernel/unprivileged_userns_clone",
            "0",
            "kernel.unprivileged_userns_clone is 0 (Debian's switch): sysctl -w kernel.unprivileged_userns_clone=1",
        ),
        (
            "/proc/sys/user/max_user_namespaces",
            "0",
            "user.max_user_namespaces is 0: sysctl -w user.max_user_namespaces=15000",
        ),
        (
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1",
            "Ubuntu's AppArmor restricts unprivileged user namespaces "
            "(kernel.apparmor_restrict_unprivileged_userns=1): run "
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give the "
            "test runner an AppArmor profile that allows 'userns'",
        ),
    )
    for path, bad, why in checks:
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value == bad:
            return why
    return None
