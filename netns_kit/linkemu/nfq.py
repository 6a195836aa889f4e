"""nfnetlink_queue spoken with the standard library: the few messages a delayer needs.

The kernel hands each queued packet to the socket bound to its queue
(``NFQNL_MSG_PACKET``) and holds it until a verdict names its id
(``NFQNL_MSG_VERDICT``: accept or drop, optionally with a new payload).
Verdicts may come in any order. Layouts are from
``include/uapi/linux/netfilter/nfnetlink_queue.h``: netlink header in host
order, then ``nfgenmsg`` (family, version, queue number big-endian), then
attributes whose values are big-endian.

:func:`config`, :func:`verdict` and :func:`parse` are pure (bytes in, bytes
out, tested byte for byte); :class:`QueueSocket` does the I/O.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator

import attrs

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3

# NFQA_CFG_* (config attributes) and commands
CFG_CMD = 1
CFG_PARAMS = 2
CFG_QUEUE_MAXLEN = 3
CFG_MASK = 4
CFG_FLAGS = 5
CMD_BIND = 1
CMD_UNBIND = 2
COPY_PACKET = 2
F_FAIL_OPEN = 0x1

# NFQA_* (packet and verdict attributes)
PACKET_HDR = 1
VERDICT_HDR = 2
MARK = 3
IFINDEX_OUTDEV = 6
PAYLOAD = 10

NF_DROP = 0
NF_ACCEPT = 1

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, portid
_NFGENMSG = struct.Struct("!BBH")  # family, version, res_id (queue number)
_NLATTR = struct.Struct("=HH")  # len, type
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    """One netlink attribute: header, value, padding to 4 bytes."""
    length = _NLATTR.size + len(value)
    return _NLATTR.pack(length, kind) + value + b"\0" * (_align(length) - length)


def message(
    kind: int, queue: int, attrs_: bytes, *, seq: int = 0, flags: int = NLM_F_REQUEST, family: int = 0
) -> bytes:
    """A whole nfnetlink_queue message (``kind``: NFQNL_MSG_*) for ``queue``."""
    body = _NFGENMSG.pack(family, 0, queue) + attrs_
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0)
    return header + body


def bind(queue: int, *, seq: int = 1) -> bytes:
    """Bind this socket to ``queue`` (asks for an ack)."""
    return message(
        NFQNL_MSG_CONFIG,
        queue,
        attr(CFG_CMD, struct.pack("!BxH", CMD_BIND, 0)),
        seq=seq,
        flags=NLM_F_REQUEST | NLM_F_ACK,
    )


def unbind(queue: int, *, seq: int = 1) -> bytes:
    return message(
        NFQNL_MSG_CONFIG,
        queue,
        attr(CFG_CMD, struct.pack("!BxH", CMD_UNBIND, 0)),
        seq=seq,
        flags=NLM_F_REQUEST | NLM_F_ACK,
    )


def config(queue: int, *, maxlen: int, copy_range: int = 0xFFFF, fail_open: bool = False, seq: int = 1) -> bytes:
    """Copy whole packets (up to ``copy_range`` bytes), hold at most ``maxlen``, set or clear FAIL_OPEN."""
    flags = F_FAIL_OPEN if fail_open else 0
    body = (
        attr(CFG_PARAMS, struct.pack("!IB", copy_range, COPY_PACKET))
        + attr(CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))
        + attr(CFG_FLAGS, struct.pack("!I", flags))
        + attr(CFG_MASK, struct.pack("!I", F_FAIL_OPEN))
    )
    return message(NFQNL_MSG_CONFIG, queue, body, seq=seq, flags=NLM_F_REQUEST | NLM_F_ACK)


def verdict(queue: int, packet_id: int, accept: bool = True, payload: bytes | None = None) -> bytes:
    """Accept or drop packet ``packet_id``; with ``payload``, send that instead of its bytes."""
    body = attr(VERDICT_HDR, struct.pack("!II", NF_ACCEPT if accept else NF_DROP, packet_id))
    if payload is not None:
        body += attr(PAYLOAD, payload)
    return message(NFQNL_MSG_VERDICT, queue, body)


@attrs.frozen
class Packet:
    """One queued packet: its id (for the verdict), queue, IP version, mark and bytes."""

    id: int
    queue: int
    payload: bytes
    mark: int = 0
    outdev: int = 0

    @property
    def version(self) -> int:
        return self.payload[0] >> 4 if self.payload else 0


class NetlinkError(OSError):
    """The kernel refused a request (an ``NLMSG_ERROR`` with a non-zero code)."""


def _attributes(data: bytes, offset: int, end: int) -> Iterator[tuple[int, bytes]]:
    while offset + _NLATTR.size <= end:
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size:
            break
        yield kind & 0x3FFF, data[offset + _NLATTR.size : offset + length]
        offset += _align(length)


def parse(data: bytes) -> Iterator[Packet | tuple[int, int]]:
    """The messages in one datagram: a :class:`Packet` for each queued packet,
    ``(seq, error)`` for each ack or error (``error`` 0 is an ack, else an errno)."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _portid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        end = offset + length
        if kind == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
            yield seq, -code
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            _family, _version, queue = _NFGENMSG.unpack_from(data, offset + _NLMSGHDR.size)
            fields = dict(_attributes(data, offset + _NLMSGHDR.size + _NFGENMSG.size, end))
            header = fields.get(PACKET_HDR)
            if header is not None:
                (packet_id,) = struct.unpack_from("!I", header)
                mark = struct.unpack("!I", fields[MARK])[0] if MARK in fields else 0
                outdev = struct.unpack("!I", fields[IFINDEX_OUTDEV])[0] if IFINDEX_OUTDEV in fields else 0
                yield Packet(packet_id, queue, fields.get(PAYLOAD, b""), mark, outdev)
        offset += _align(length)


class QueueSocket:
    """A non-blocking netlink socket bound to one queue; :meth:`fileno` for ``select``."""

    def __init__(self, queue: int, *, maxlen: int = 1000, fail_open: bool = False, rcvbuf: int = 8 << 20) -> None:
        self.queue = queue
        #: packets that came in while waiting for an ack (handed out by the next :meth:`receive`)
        self.pending: list[Packet] = []
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.bind((0, 0))
            for size_option in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE needs CAP_NET_ADMIN; else capped
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, size_option, rcvbuf)
                    break
                except OSError:
                    continue
            self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
            self._request(bind(queue, seq=1), 1)
            self._request(config(queue, maxlen=maxlen, fail_open=fail_open, seq=2), 2)
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def _request(self, data: bytes, seq: int) -> None:
        self.sock.send(data)
        while True:
            for item in parse(self.sock.recv(262144)):
                if isinstance(item, Packet):
                    self.pending.append(item)
                elif item[0] == seq:
                    if item[1]:
                        raise NetlinkError(
                            item[1], f"nfnetlink_queue refused queue {self.queue}: {os.strerror(item[1])}"
                        )
                    return

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self, most: int = 64) -> list[Packet]:
        """The packets waiting now, in datagrams read until ``most`` are in (none when nothing is)."""
        out, self.pending = self.pending, []
        while len(out) < most:
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                return out
            except OSError as error:  # ENOBUFS despite NO_ENOBUFS: packets were lost, go on
                if error.errno == errno.ENOBUFS:
                    continue
                raise
            out += [p for p in parse(data) if isinstance(p, Packet)]
        return out

    def verdict(self, packet_id: int, accept: bool = True, payload: bytes | None = None) -> None:
        self.sock.send(verdict(self.queue, packet_id, accept, payload))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> QueueSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
