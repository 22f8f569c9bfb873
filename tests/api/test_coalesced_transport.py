"""The HTTP protocol's transport wrapper: the writes of one event-loop turn go out as one
send, in order; closing sends what is pending, aborting drops it. Run over a real socket
pair so that what arrives is what the peer reads."""

from __future__ import annotations

import asyncio
import socket

from codoc_fhir.api.http_protocol import CoalescedTransport


class Counting(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


async def pair() -> tuple[CoalescedTransport, asyncio.Transport, socket.socket, list[bytes]]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.create_connection(Counting, sock=ours)
    sent: list[bytes] = []
    real_write = transport.write

    def recording_write(data: bytes) -> None:
        sent.append(bytes(data))
        real_write(data)

    transport.write = recording_write  # type: ignore[method-assign]
    theirs.setblocking(False)
    return CoalescedTransport(transport, loop), transport, theirs, sent  # type: ignore[arg-type]


async def received(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        data += await loop.sock_recv(peer, size - len(data))
    return data


def test_the_writes_of_a_turn_are_one_send_in_order() -> None:
    async def scenario() -> None:
        coalesced, _, peer, sent = await pair()
        coalesced.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalesced.write(b"body")
        assert sent == []  # nothing before the turn ends
        await asyncio.sleep(0)
        assert sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        coalesced.writelines([b"a", b"b"])
        await asyncio.sleep(0)
        assert sent[1:] == [b"ab"]
        assert await received(peer, 25) == b"HTTP/1.1 200 OK\r\n\r\nbodyab"
        coalesced.close()
        peer.close()

    asyncio.run(scenario())


def test_close_sends_what_is_pending_and_abort_drops_it() -> None:
    async def scenario() -> None:
        coalesced, transport, peer, sent = await pair()
        coalesced.write(b"last words")
        coalesced.close()
        assert sent == [b"last words"] and transport.is_closing()
        assert await received(peer, 10) == b"last words"
        peer.close()

        coalesced, transport, peer, sent = await pair()
        coalesced.write(b"never sent")
        coalesced.abort()
        await asyncio.sleep(0)
        assert sent == [] and transport.is_closing()
        peer.close()

    asyncio.run(scenario())


def test_other_attributes_are_the_transport_s() -> None:
    async def scenario() -> None:
        coalesced, transport, peer, _ = await pair()
        assert coalesced.get_extra_info("socket") is transport.get_extra_info("socket")
        assert coalesced.is_closing() is False
        coalesced.close()
        peer.close()

    asyncio.run(scenario())
