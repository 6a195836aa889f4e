"""Host hygiene with the real executor: ShExecutor (no sandbox prefix) in a child process
whose network and mount namespaces are throwaway ones of its own (``unshare --net --mount``
as root, ``unshare --user --map-root-user --net --mount`` rootless, a private tmpfs on
/run), so the machine's own network is never touched. With a FORWARD policy of DROP,
rules of others in filter, nat and raw, and ip_forward off or on beforehand, the
soak topology with NAT and a port forward with both opt-ins (localhost, hairpin) goes up
and down: ip_forward, route_localnet, the FORWARD policy and every untagged rule are the
same afterwards, and the whole normalized state too.

    pytest tests/stress/test_host_hygiene.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from netns_kit.ops import state

ROOT = Path(__file__).parents[2]
MODES = {
    "root": ["unshare", "--net", "--mount", "--propagation", "private"],
    "rootless": ["unshare", "--user", "--map-root-user", "--net", "--mount", "--propagation", "private"],
}
# as root both; as an ordinary user the rootless one only (root's needs CAP_SYS_ADMIN)
AVAILABLE = list(MODES) if os.geteuid() == 0 else ["rootless"]


@pytest.mark.parametrize("forward", ["0", "1"])
@pytest.mark.parametrize("mode", AVAILABLE)
def test_up_and_down_on_a_real_host_leave_its_settings_and_rules_as_they_were(
    mode: str, forward: str, sizes: dict[str, int], figures: Callable[[str], None]
) -> None:
    cycles = max(1, sizes["cycles"])
    script = f'mount -t tmpfs nk-run /run && exec "$0" -m tests.stress.hygiene_child {forward} {cycles}'
    child = subprocess.run(
        [*MODES[mode], "sh", "-c", script, sys.executable],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-5000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    before, after = result["before"], result["after"]
    # 127.0.0.1:8080 on the host (localhost opt-in) and the outside through the port forward
    assert len(result["answers"]) == 2 * cycles
    assert all(a and a.startswith("red ") for a in result["answers"]), result["answers"]
    assert result["during"] == [["1", "1"]] * cycles  # while up: forwarding and route_localnet on
    assert before["forward_policy"] == [[":FORWARD", "DROP"]]
    assert before["sysctl"]["net.ipv4.ip_forward"] == forward
    assert len(before["untagged_rules"]["iptables-save"]) == 5
    for item in ("sysctl", "forward_policy", "untagged_rules"):
        assert after[item] == before[item], item
    assert state.diff(before["state"], after["state"]) == []
    figures(
        f"{mode}, ip_forward={forward}: {cycles} up/down cycles with the real executor; ip_forward, "
        f"route_localnet, FORWARD policy DROP and {sum(map(len, before['untagged_rules'].values()))} untagged "
        "rules identical after; normalized state identical"
    )
