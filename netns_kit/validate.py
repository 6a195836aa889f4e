"""attrs validators and converters: bad input raises before any command exists.

Each one raises :class:`~netns_kit.errors.ValidationError` naming the field
(``Class.attribute``), the value and the rule.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

import attrs

from netns_kit.errors import ValidationError

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAME_CHARS = re.compile(r"^[A-Za-z0-9_.-]+$")
RESERVED_IFNAMES = frozenset({"all", "default", "lo", ".", ".."})
IFNAMSIZ = 15
NETNS_NAME_MAX = 64
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def field_name(instance: Any, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def check_name(field: str, value: Any, *, limit: int, kind: str, reserved: Iterable[str]) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, value, f"must be a string ({kind} name)")
    encoded = value.encode("utf-8", errors="replace")
    if not value:
        raise ValidationError(field, value, f"must not be empty ({kind} name)")
    if len(encoded) > limit:
        raise ValidationError(field, value, f"is {len(encoded)} bytes; {kind} names must be at most {limit} bytes")
    if not _NAME_CHARS.match(value):
        raise ValidationError(field, value, f"has characters outside [A-Za-z0-9_.-], which {kind} names must keep to")
    if value.startswith("-"):
        raise ValidationError(field, value, f"starts with '-'; {kind} names must not (it reads as an option)")
    if value in reserved:
        raise ValidationError(field, value, f"is reserved; {kind} names must not be one of {sorted(reserved)}")
    return value


def ifname(field: str, value: Any) -> str:
    """An interface name the kernel accepts and no shell or ip(8) misreads."""
    return check_name(field, value, limit=IFNAMSIZ, kind="interface", reserved=RESERVED_IFNAMES)


def netns_name(field: str, value: Any) -> str:
    """A namespace name: a file name under /run/netns."""
    return check_name(field, value, limit=NETNS_NAME_MAX, kind="namespace", reserved={".", ".."})


def valid_ifname(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    ifname(field_name(instance, attribute), value)


def valid_optional_ifname(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        ifname(field_name(instance, attribute), value)


def valid_optional_netns(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        netns_name(field_name(instance, attribute), value)


def valid_netns(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    netns_name(field_name(instance, attribute), value)


def to_name(value: Any) -> Any:
    """Accept a resource (anything with ``.name``) where a name is expected."""
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else value


def to_interfaces(value: Any) -> tuple[Any, ...]:
    """One address or several, as strings or ipaddress values; checked later."""
    if value is None:
        return ()
    if isinstance(value, str | ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        value = (value,)
    out: list[Any] = []
    for item in value:
        try:
            out.append(ipaddress.ip_interface(item) if isinstance(item, str) and "/" in item else item)
        except ValueError:
            out.append(item)
    return tuple(out)


def valid_interfaces(instance: Any, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    field = field_name(instance, attribute)
    for item in value:
        if not isinstance(item, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
            raise ValidationError(
                field, str(item), "must be an address with a prefix length, like 192.168.1.1/24 or fd00::1/64"
            )
        in_subnet(field, item)


def in_subnet(field: str, item: IPInterface) -> None:
    """An address must be one of its subnet's host addresses: not the subnet itself
    (``10.0.0.0/24``) nor, in IPv4, its broadcast address (``10.0.0.255/24``)."""
    net = item.network
    if net.prefixlen >= net.max_prefixlen - 1:
        return  # /31, /32, /127, /128: every address is a host
    if item.ip == net.network_address:
        raise ValidationError(field, str(item), f"is the address of the subnet {net} itself, not a host in it")
    if item.version == 4 and item.ip == net.broadcast_address:
        raise ValidationError(field, str(item), f"is the broadcast address of {net}, not a host in it")


def distinct_addresses(field: str, addresses: Iterable[IPInterface], *, other: Iterable[IPInterface] = ()) -> None:
    """Each address once on an interface (``ip addr add`` of one already there fails
    half-way), and none of ``other``, the addresses of the far end of a veth (two
    ends holding one address cannot reach each other: each takes it for its own)."""
    elsewhere = {a.ip: a for a in other}
    seen: dict[Any, IPInterface] = {}
    for address in addresses:
        if address.ip in elsewhere:
            rule = f"is also on the other end ({elsewhere[address.ip]}); a link's two ends need different addresses"
            raise ValidationError(field, str(address), rule)
        if address.ip in seen:
            rule = f"is given twice (also as {seen[address.ip]}); an interface holds each address once"
            raise ValidationError(field, str(address), rule)
        seen[address.ip] = address


def parse_address(field: str, value: Any) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(field, value, "must be an IPv4 or IPv6 address without a prefix") from None


def parse_network(field: str, value: Any) -> IPNetwork:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValidationError(field, value, f"must be a network in CIDR form ({exc})") from None


def to_network(value: Any) -> Any:
    try:
        return ipaddress.ip_network(value, strict=True) if isinstance(value, str) else value
    except ValueError:
        return value


def valid_network(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    parse_network(field_name(instance, attribute), value)


def to_address(value: Any) -> Any:
    try:
        return ipaddress.ip_address(value) if isinstance(value, str) else value
    except ValueError:
        return value


def valid_optional_address(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        parse_address(field_name(instance, attribute), value)


def valid_mtu(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 68 <= value <= 65535:
        raise ValidationError(field_name(instance, attribute), value, "must be an int from 68 to 65535")


def valid_mac(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _MAC.match(value):
        raise ValidationError(field_name(instance, attribute), value, "must be a MAC address like 02:00:00:00:00:01")
    if int(value[:2], 16) & 1:
        rule = "is a multicast MAC; the first octet must be even"
        raise ValidationError(field_name(instance, attribute), value, rule)


#: IPv6 address generation modes ``ip link set ... addrgenmode`` takes without more set-up
ADDRGENMODES = ("eui64", "none", "random")


def valid_addrgenmode(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value not in ADDRGENMODES:
        rule = f"must be one of {', '.join(ADDRGENMODES)} (stable_secret needs a secret set first)"
        raise ValidationError(field_name(instance, attribute), value, rule)


def port(field: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValidationError(field, value, "must be an int from 1 to 65535")
    return value


def valid_port(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    port(field_name(instance, attribute), value)


def valid_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValidationError(field_name(instance, attribute), value, "must be True or False")
