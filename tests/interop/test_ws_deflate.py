"""Outgoing permessage-deflate: large messages leave compressed, one shared frame per broadcast."""
from __future__ import annotations

import asyncio
import zlib
from typing import Any

import aiohttp
import orjson

import fastsio

from raw import ws_open


async def test_large_broadcast_compressed_once_and_readable(free_port: int) -> None:
    io = fastsio.Server(per_message_deflate=True)
    joined = asyncio.Event()
    count = 0

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        nonlocal count
        socket.join("all")
        count += 1
        if count == 2:
            joined.set()

    await io.listen(free_port, host="127.0.0.1")
    big = "x" * 5000
    try:
        # one peer that really inflates (aiohttp), one raw peer that looks at the frame bits
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"ws://127.0.0.1:{free_port}/socket.io/?EIO=4&transport=websocket",
                                       compress=15)
            assert (await ws.receive()).data.startswith("0{")
            await ws.send_str("40")
            assert (await ws.receive()).data.startswith("40{")
            raw = await ws_open(free_port, "/socket.io/?EIO=4&transport=websocket",
                                extra={"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"})
            assert "server_no_context_takeover" in (raw.response.header("sec-websocket-extensions") or "")
            await raw.recv_frame()  # open packet
            await raw.send_text("40")
            await raw.recv_frame()  # 40{sid}
            await asyncio.wait_for(joined.wait(), 5)
            io.to("all").emit("big", big)
            io.to("all").emit("small", 1)
            got = (await ws.receive()).data
            assert orjson.loads(got[2:]) == ["big", big]
            assert (await ws.receive()).data == '42["small",1]'
            opcode, payload, compressed = await raw.recv_frame()
            assert opcode == 1 and compressed
            text = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff").decode()
            assert orjson.loads(text[2:]) == ["big", big]
            opcode, payload, compressed = await raw.recv_frame()
            assert (opcode, payload, compressed) == (1, '42["small",1]', False)
            await ws.close()
            await raw.close()
    finally:
        await io.close()


async def test_offer_limiting_server_window_is_declined(free_port: int) -> None:
    io = fastsio.Server(per_message_deflate=True)
    await io.listen(free_port, host="127.0.0.1")
    try:
        raw = await ws_open(free_port, "/socket.io/?EIO=4&transport=websocket",
                            extra={"Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=10"})
        assert raw.response.header("sec-websocket-extensions") is None
        await raw.close()
    finally:
        await io.close()


async def test_compress_false_sends_large_messages_uncompressed(free_port: int) -> None:
    io = fastsio.Server(per_message_deflate=True)
    ready = asyncio.Event()
    sockets: list[Any] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.join("all")
        sockets.append(socket)
        ready.set()

    await io.listen(free_port, host="127.0.0.1")
    big = "y" * 4000
    try:
        raw = await ws_open(free_port, "/socket.io/?EIO=4&transport=websocket",
                            extra={"Sec-WebSocket-Extensions": "permessage-deflate"})
        await raw.recv_frame()
        await raw.send_text("40")
        await raw.recv_frame()
        await asyncio.wait_for(ready.wait(), 5)
        sockets[0].compress(False).emit("plain", big)
        sockets[0].emit("squeezed", big)
        io.compress(False).emit("plain-broadcast", big)
        io.to("all").emit("squeezed-broadcast", big)
        seen = []
        for _ in range(4):
            opcode, payload, compressed = await raw.recv_frame()
            if compressed:
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff").decode()
            seen.append((orjson.loads(payload[2:])[0], compressed))
        assert seen == [("plain", False), ("squeezed", True), ("plain-broadcast", False),
                        ("squeezed-broadcast", True)]
        await raw.close()
    finally:
        await io.close()


async def test_threshold_option_compresses_smaller_messages(free_port: int) -> None:
    io = fastsio.Server(per_message_deflate={"threshold": 16})
    ready = asyncio.Event()
    sockets: list[Any] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.join("all")
        sockets.append(socket)
        ready.set()

    await io.listen(free_port, host="127.0.0.1")
    try:
        raw = await ws_open(free_port, "/socket.io/?EIO=4&transport=websocket",
                            extra={"Sec-WebSocket-Extensions": "permessage-deflate"})
        await raw.recv_frame()
        await raw.send_text("40")
        await raw.recv_frame()
        await asyncio.wait_for(ready.wait(), 5)
        sockets[0].emit("direct", "twenty bytes or so")
        io.to("all").emit("room", "twenty bytes or so")
        io.emit("t", 1)  # '42["t",1]' is under 16 bytes: sent as is
        got = []
        for _ in range(3):
            opcode, payload, compressed = await raw.recv_frame()
            if compressed:
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff").decode()
            got.append((payload, compressed))
        assert got == [('42["direct","twenty bytes or so"]', True), ('42["room","twenty bytes or so"]', True),
                       ('42["t",1]', False)]
        await raw.close()
    finally:
        await io.close()
