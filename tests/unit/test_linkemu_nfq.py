"""nfnetlink_queue messages, byte for byte (layouts of linux/netfilter/nfnetlink_queue.h)."""

from __future__ import annotations

import struct

import pytest

from netns_kit.linkemu import nfq


def hexa(data: bytes) -> str:
    return data.hex(" ")


def test_bind_message_is_a_config_command_with_ack() -> None:
    assert hexa(nfq.bind(7, seq=1)) == hexa(
        bytes.fromhex(
            "1c000000"  # length 28
            "0203"  # type: NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_CONFIG (host order)
            "0500"  # NLM_F_REQUEST | NLM_F_ACK
            "01000000"  # seq
            "00000000"  # port id: the kernel's
            "00"
            "00"
            "0007"  # nfgenmsg: AF_UNSPEC, version 0, queue 7 big-endian
            "0800"
            "0100"  # attribute NFQA_CFG_CMD, 8 bytes
            "01"
            "00"
            "0000"  # NFQNL_CFG_CMD_BIND, pad, pf 0
        )
    )


def test_config_copies_whole_packets_sets_maxlen_and_clears_fail_open() -> None:
    data = nfq.config(7, maxlen=1000, seq=2)
    assert hexa(data[16:]) == hexa(
        bytes.fromhex(
            "00000007"
            "0900"
            "0200"
            "0000ffff"
            "02"
            "000000"  # NFQA_CFG_PARAMS: range 65535, COPY_PACKET, padding
            "0800"
            "0300"
            "000003e8"  # NFQA_CFG_QUEUE_MAXLEN 1000
            "0800"
            "0500"
            "00000000"  # NFQA_CFG_FLAGS: none
            "0800"
            "0400"
            "00000001"  # NFQA_CFG_MASK: FAIL_OPEN (so it is cleared)
        )
    )
    assert struct.unpack_from("=IHHI", data) == (len(data), 0x0302, 5, 2)
    assert nfq.config(7, maxlen=1000, fail_open=True)[-16:-8] == bytes.fromhex("0800050000000001")


def test_verdict_accepts_or_drops_by_id() -> None:
    assert hexa(nfq.verdict(7, 0x01020304, accept=True)) == hexa(
        bytes.fromhex(
            "20000000"
            "0103"
            "0100"
            "00000000"
            "00000000"  # NFQNL_MSG_VERDICT, request, no ack
            "00000007"
            "0c00"
            "0200"
            "00000001"
            "01020304"  # NFQA_VERDICT_HDR: NF_ACCEPT, id
        )
    )
    assert nfq.verdict(7, 9, accept=False)[-8:] == bytes.fromhex("0000000000000009")  # NF_DROP


def test_verdict_with_a_new_payload_pads_it() -> None:
    data = nfq.verdict(1, 5, payload=b"abcde")
    assert data[-12:] == bytes.fromhex("09000a00") + b"abcde" + b"\0\0\0"  # NFQA_PAYLOAD, 9 bytes, padded
    assert struct.unpack_from("=I", data)[0] == len(data) == 16 + 4 + 12 + 12


def packet_message(queue: int, packet_id: int, payload: bytes, mark: int | None = None) -> bytes:
    attributes = nfq.attr(nfq.PACKET_HDR, struct.pack("!IHB", packet_id, 0x0800, 4) + b"\0")
    if mark is not None:
        attributes += nfq.attr(nfq.MARK, struct.pack("!I", mark))
    attributes += nfq.attr(nfq.IFINDEX_OUTDEV, struct.pack("!I", 3))
    attributes += nfq.attr(nfq.PAYLOAD, payload)
    return nfq.message(nfq.NFQNL_MSG_PACKET, queue, attributes, flags=0, family=2)


def test_parse_reads_packets_with_id_mark_device_and_bytes() -> None:
    data = packet_message(7, 41, b"\x45abc") + packet_message(7, 42, b"\x60xyz!", mark=0x6E6B6475)
    assert list(nfq.parse(data)) == [
        nfq.Packet(41, 7, b"\x45abc", 0, 3),
        nfq.Packet(42, 7, b"\x60xyz!", 0x6E6B6475, 3),
    ]
    assert [p.version for p in nfq.parse(data)] == [4, 6]  # type: ignore[union-attr]


def test_parse_reads_acks_and_errors_by_sequence_number() -> None:
    def error(seq: int, code: int) -> bytes:
        return struct.pack("=IHHII", 36, nfq.NLMSG_ERROR, 0, seq, 0) + struct.pack("=i", code) + bytes(16)

    assert list(nfq.parse(error(1, 0) + error(2, -16))) == [(1, 0), (2, 16)]  # 16: EBUSY


def test_parse_stops_at_a_truncated_or_malformed_message() -> None:
    good = packet_message(1, 1, b"\x45")
    assert len(list(nfq.parse(good + good[:10]))) == 1
    assert list(nfq.parse(struct.pack("=IHHII", 4, 0, 0, 0, 0))) == []


class FakeSocket:
    def __init__(self, datagrams: list[bytes]) -> None:
        self.datagrams = datagrams
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def recv(self, size: int) -> bytes:
        if not self.datagrams:
            raise BlockingIOError
        return self.datagrams.pop(0)


def queue_socket(datagrams: list[bytes]) -> nfq.QueueSocket:
    queue = nfq.QueueSocket.__new__(nfq.QueueSocket)
    queue.queue, queue.pending, queue.sock = 7, [], FakeSocket(datagrams)  # type: ignore[assignment]
    return queue


def ack(seq: int, code: int = 0) -> bytes:
    return struct.pack("=IHHII", 36, nfq.NLMSG_ERROR, 0, seq, 0) + struct.pack("=i", code) + bytes(16)


def test_a_packet_arriving_before_the_ack_is_kept_for_the_next_receive() -> None:
    queue = queue_socket([packet_message(7, 1, b"\x45a") + ack(3)])
    queue._request(b"request", 3)
    assert [p.id for p in queue.receive()] == [1]
    assert queue.receive() == []


def test_a_refused_request_raises_with_the_errno() -> None:
    queue = queue_socket([ack(3, -16)])
    with pytest.raises(nfq.NetlinkError, match="queue 7") as info:
        queue._request(b"request", 3)
    assert info.value.errno == 16


def test_receive_stops_reading_once_it_has_enough() -> None:
    queue = queue_socket([packet_message(7, n, b"\x45") for n in range(5)])
    assert [p.id for p in queue.receive(most=2)] == [0, 1]
    assert [p.id for p in queue.receive()] == [2, 3, 4]
    queue.verdict(2)
    assert queue.sock.sent == [nfq.verdict(7, 2)]  # type: ignore[attr-defined]
