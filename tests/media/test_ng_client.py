"""The ng client's wire behaviour against a loopback UDP peer that misbehaves on purpose: a lost answer is
retransmitted with the same cookie (rtpengine answers a repeat from its cache, never offering twice), garbage is
ignored, ``load limit`` and errors are told apart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import bencode
import pytest

from vpbx.telephony.media.rtpengine import MediaUnavailable, NgClient, RtpengineError, decode, encode, parse_address


class Peer(asyncio.DatagramProtocol):
    def __init__(self, answer: Callable[[int, str, dict[str, Any]], bytes | None]) -> None:
        self.answer = answer
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        cookie, _, body = data.partition(b" ")
        message = bencode.bdecode(body)
        self.got.append((cookie.decode(), message))
        reply = self.answer(len(self.got), cookie.decode(), message)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


@pytest.fixture
async def peer() -> AsyncIterator[Callable[..., Any]]:
    made: list[asyncio.DatagramTransport] = []

    async def make(answer: Callable[[int, str, dict[str, Any]], bytes | None]) -> tuple[Peer, NgClient]:
        p = Peer(answer)
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: p,
                                                                                 local_addr=("127.0.0.1", 0))
        made.append(transport)
        return p, NgClient("127.0.0.1", transport.get_extra_info("sockname")[1], timeout=0.2, retries=2)

    yield make
    for t in made:
        t.close()


async def test_a_lost_answer_is_retried_with_the_same_cookie(peer: Callable[..., Any]) -> None:
    def answer(n: int, cookie: str, message: dict[str, Any]) -> bytes | None:
        return None if n == 1 else encode(cookie, {"sdp": "v=0\r\n", "result": "ok"})

    p, client = await peer(answer)
    try:
        assert await client.offer("c1", "t1", "v=0\r\n", record=True) == "v=0\r\n"
        (c1, m1), (c2, m2) = p.got
        assert c1 == c2 and m1 == m2
        assert m1["command"] == "offer" and m1["call-id"] == "c1" and m1["record call"] == "yes"
    finally:
        await client.close()


async def test_garbage_is_ignored_and_errors_are_told_apart(peer: Callable[..., Any]) -> None:
    def answer(n: int, cookie: str, message: dict[str, Any]) -> bytes | None:
        if message["command"] == "query":
            return b"not an answer"
        if message["command"] == "delete":
            return encode(cookie, {"result": "error", "error-reason": "Unknown call-id"})
        return encode(cookie, {"result": "load limit"})

    p, client = await peer(answer)
    try:
        with pytest.raises(MediaUnavailable, match="did not answer 'query'"):
            await client.query("c1")
        assert len(p.got) == 3  # tried, then twice again
        with pytest.raises(RtpengineError, match="Unknown call-id") as refused:
            await client.delete("c1", "t1")
        assert refused.value.reason == "Unknown call-id"
        with pytest.raises(MediaUnavailable, match="load limit"):
            await client.ping()
    finally:
        await client.close()


def test_the_wire_format() -> None:
    wire = encode("abc_1", {"command": "offer", "flags": ["trust-address"], "skip": None, "on": True})
    assert wire == b"abc_1 d7:command5:offer5:flagsl13:trust-addresse2:oni1ee"
    # rtpengine's answers are not key-sorted: a strict decoder refuses them, ours does not.
    assert decode(b"abc_1 d3:sdp3:v=06:result2:oke") == ("abc_1", {"sdp": "v=0", "result": "ok"})
    for bad in (b"", b"nocookie", b"abc_1 garbage", b"abc_1 li1ee"):
        with pytest.raises(ValueError):
            decode(bad)
    assert parse_address("10.0.0.1:2223") == ("10.0.0.1", 2223)
    assert parse_address("[::1]:22222") == ("::1", 22222)
    assert parse_address("rtp.local", 2223) == ("rtp.local", 2223)
    for bad in (":1", "h:0", "h:x", "h:70000"):
        with pytest.raises(ValueError):
            parse_address(bad)
