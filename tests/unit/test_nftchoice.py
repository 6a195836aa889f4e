"""Choosing the firewall backend: a pure decision over what the machine has, case by case."""

from __future__ import annotations

import attrs
import pytest

import netns_kit  # noqa: F401  (the package first: it orders the imports of its layers)
from netns_kit.firewall.nftchoice import Choice, Probe, choose
from netns_kit.firewall.nftread import Drop

ALL = frozenset({"inet", "inet-nat", "ip-nat", "masquerade", "fib", "numgen"})
FRESH = Probe(nft="v1.0.6", features=ALL, iptables="1.8.9", iptables_backend="nf_tables")
IPT_POLICY = Drop("iptables", "filter", "FORWARD", "policy DROP")
DOCKER_POLICY = Drop("nft", "ip docker-bridges", "filter-FORWARD", "policy drop")
DOCKER_RULE = Drop("nft", "ip docker-bridges", "filter-FORWARD", "rule handle 3 drops (DROP DIRECT ACCESS)")
# iptables-nft's FORWARD seen through nft (when iptables-save could not be read)
IPT_NFT_POLICY = Drop("nft", "ip filter", "FORWARD", "policy drop")


def _pick(probe: Probe, requested: str = "auto", **kwargs: object) -> tuple[str | None, bool]:
    choice = choose(probe, requested, **kwargs)  # type: ignore[arg-type]
    return choice.backend, choice.split


@pytest.mark.parametrize(
    ("probe", "requested", "expected"),
    [
        # a fresh machine with both: native nft
        (FRESH, "auto", ("nft", False)),
        (FRESH, "iptables", ("iptables", False)),
        (FRESH, "nft", ("nft", False)),
        # iptables already holds the machine's rules and nobody uses native nft: stay with iptables
        (attrs.evolve(FRESH, iptables_rules=True), "auto", ("iptables", False)),
        # ... but with native nft tables of others there too: nft
        (attrs.evolve(FRESH, iptables_rules=True, native_tables=("inet firewalld",)), "auto", ("nft", False)),
        # RHEL 10 minimal: no iptables at all
        (Probe(nft="v1.1.0", features=ALL), "auto", ("nft", False)),
        (Probe(nft="v1.1.0", features=ALL), "iptables", (None, False)),
        # no nft binary (Debian 12 default): iptables
        (Probe(iptables="1.8.9", iptables_backend="nf_tables"), "auto", ("iptables", True)),
        (Probe(iptables="1.8.9", iptables_backend="nf_tables"), "nft", (None, True)),
        # a kernel without inet NAT (Firecracker-like but with ip NAT): nft in ip/ip6 tables
        (Probe(nft="v1.0.6", features=ALL - {"inet", "inet-nat"}), "auto", ("nft", True)),
        # a kernel without NAT in nf_tables at all: nft cannot, iptables can
        (attrs.evolve(FRESH, features=frozenset({"inet"})), "auto", ("iptables", True)),
        # nothing at all
        (Probe(), "auto", (None, True)),
        # iptables FORWARD policy DROP: our -I accepts go first in that chain; an nft accept cannot
        (attrs.evolve(FRESH, drops=(IPT_POLICY,)), "auto", ("iptables", False)),
        (attrs.evolve(FRESH, drops=(IPT_NFT_POLICY,)), "auto", ("iptables", False)),
        (attrs.evolve(FRESH, drops=(IPT_POLICY,)), "nft", (None, False)),
        # ... and with no iptables binary to use: refused
        (Probe(nft="v1.0.6", features=ALL, drops=(IPT_NFT_POLICY,)), "auto", (None, False)),
        # Docker 29's table with policy drop at forward: neither backend's accept overrides it
        (attrs.evolve(FRESH, drops=(DOCKER_POLICY, DOCKER_RULE, IPT_POLICY)), "auto", (None, False)),
        (attrs.evolve(FRESH, drops=(DOCKER_POLICY,)), "iptables", (None, False)),
        # a drop RULE in another table (scoped to docker0): a warning, not a refusal
        (attrs.evolve(FRESH, drops=(DOCKER_RULE,)), "auto", ("nft", False)),
    ],
)
def test_choose(probe: Probe, requested: str, expected: tuple[str | None, bool]) -> None:
    assert _pick(probe, requested) == expected


def test_drops_at_forward_do_not_matter_to_resources_that_do_not_forward() -> None:
    probe = attrs.evolve(FRESH, drops=(DOCKER_POLICY, IPT_POLICY))
    assert _pick(probe, needs=("nat",)) == ("nft", False)


def test_needed_kernel_features_decide() -> None:
    # the userspace emulator's queue: this kernel has no nft queue, so iptables' NFQUEUE
    assert _pick(FRESH, needs=("nat", "forward", "queue")) == ("iptables", False)
    reason = choose(FRESH, "nft", needs=("queue",)).reason
    assert reason == "nft cannot work here: missing nft queue support in the kernel"


def test_docker_refusal_names_the_table_and_chain_and_what_to_do() -> None:
    probe = attrs.evolve(FRESH, drops=(DOCKER_POLICY, DOCKER_RULE))
    assert choose(probe).message() == (
        "firewall backend: none (no backend can work here: nft table ip docker-bridges chain filter-FORWARD: "
        "policy drop. An accept in netns_kit's rules cannot override a drop in another table. Run inside a sandbox "
        "(netns_kit.Sandbox(), `netns-kit --sandbox`), or make that table's owner accept this traffic (Docker 29: "
        "dockerd --bridge-accept-fwmark, with the mark set on it), or add an accept for the subnet to that chain "
        "yourself)\n"
        "warning: may drop netns_kit's forwarded traffic: nft table ip docker-bridges chain filter-FORWARD: "
        "rule handle 3 drops (DROP DIRECT ACCESS)"
    )


def test_auto_says_why_it_took_iptables_under_a_forward_policy_drop() -> None:
    choice = choose(attrs.evolve(FRESH, drops=(IPT_POLICY,)))
    assert choice == Choice(
        "iptables",
        "nft cannot: iptables table filter chain FORWARD: policy DROP, "
        "which an accept in another table cannot override",
    )


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="must be one of auto, iptables, nft"):
        choose(FRESH, "pf")


def test_no_iptables_and_iptables_nft_forward_policy_drop_is_refused_naming_the_chain() -> None:
    choice = choose(Probe(nft="v1.0.6", features=ALL, drops=(IPT_NFT_POLICY,)))
    assert choice.backend is None
    assert choice.reason.startswith(
        "no backend can work here: missing the iptables binary; nft table ip filter chain FORWARD: policy drop. "
    )


def test_with_an_accept_mark_nft_gets_past_a_docker_policy_drop_and_says_on_what_it_relies() -> None:
    probe = attrs.evolve(FRESH, drops=(DOCKER_POLICY, DOCKER_RULE))
    choice = choose(probe, accept_mark="0x1/0x1")
    assert (choice.backend, choice.reason) == ("nft", "its forward accepts set mark 0x1/0x1")
    assert choice.warnings[-1] == "relies on ip docker-bridges chain filter-FORWARD accepting packets marked 0x1/0x1"
    # iptables cannot set the mark before Docker's chain: still refused
    assert choose(probe, "iptables", accept_mark="0x1/0x1").backend is None
    # nor can nft get past iptables' FORWARD policy DROP with it
    assert choose(attrs.evolve(probe, drops=(DOCKER_POLICY, IPT_POLICY)), accept_mark="0x1").backend is None
