"""Planning a topology at once: a sysctl set by one resource is seen by the next."""

from __future__ import annotations

from pathlib import Path

from netns_kit import Bridge, Command, Namespace, NatRule, PortForward, Recorder, Topology, VethPair
from netns_kit.executors import procfs


def _nat_and_forwards(n: int) -> Topology:
    resources = [Bridge("br0", addresses="10.1.0.254/24")]
    for i in range(n):
        resources += [
            Namespace(f"n{i}"),
            VethPair(f"h{i}", "eth0", peer_netns=f"n{i}", bridge="br0", peer_addresses=f"10.1.0.{i + 1}/24"),
        ]
    resources.append(NatRule("10.1.0.0/24", bridge="br0"))
    resources += [PortForward(8000 + i, f"10.1.0.{i + 1}", 80, bridge="br0") for i in range(n)]
    return Topology(resources)


def test_ip_forward_is_set_once_and_restored_once_for_many_resources() -> None:
    plan = _nat_and_forwards(3).plan()
    assert [line for line in plan.lines if "ip_forward" in line] == ["sysctl -q -w net.ipv4.ip_forward=1"]
    # restored once, to the value kept when it was claimed (netns_kit.executors.recorder)
    down = [line.strip() for line in plan.teardown_script().splitlines() if "-w net.ipv4.ip_forward=" in line]
    assert down == ['0|1) [ "$(sysctl -n net.ipv4.ip_forward)" != 1 ] || sysctl -q -w net.ipv4.ip_forward="$prior" ;;']


def test_ip_forward_already_on_is_not_touched() -> None:
    def on(command: Command) -> str | None:
        return "1\n" if command.argv == ("sysctl", "-n", "net.ipv4.ip_forward") else None

    recorder = Recorder(on)
    _nat_and_forwards(2).up(recorder)
    assert not [c for c in recorder.commands if c.argv[0] == "sysctl"]


def test_devices_are_read_from_proc_net_dev(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "dev").write_text(
        "Inter-|   Receive ...\n"
        " face |bytes    packets ...\n"
        "    lo:       0       0    0    0    0     0          0         0        0       0\n"
        "  wh12: 1234       5    0    0    0     0          0         0        0       0\n"
    )
    assert procfs.devices(tmp_path) == {"lo", "wh12"}
    assert procfs.devices(tmp_path / "gone") is None
