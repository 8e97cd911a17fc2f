"""Nothing stays behind: after clients of every kind come and go, the server's tables are empty."""
from __future__ import annotations

import asyncio
import gc
from typing import Any

import aiohttp
import socketio

import fastsio


async def _raw_ws_client(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
        await ws.receive()
        await ws.send_str("40")
        await ws.receive()
        await ws.send_str('42["hello",1]')
        await ws.close()


async def test_server_tables_empty_after_clients_leave(free_port: int) -> None:
    io = fastsio.Server(ping_interval=0.5, ping_timeout=0.5)
    chat = io.of("/chat")
    seen = 0

    def on_connection(socket: Any) -> None:
        nonlocal seen
        seen += 1
        socket.join(["lobby", f"user-{seen % 3}"])
        socket.on("hello", lambda n: n)

    io.on("connection", on_connection)
    chat.on("connection", on_connection)
    await io.listen(free_port, host="127.0.0.1")
    try:
        # python-socketio over both transports, two namespaces, and raw WebSocket clients
        for transports in (["websocket"], ["polling"], ["polling", "websocket"]):
            clients = [socketio.AsyncClient(reconnection=False) for _ in range(5)]
            for c in clients:
                await c.connect(f"http://127.0.0.1:{free_port}", transports=transports, namespaces=["/", "/chat"])
            io.to("lobby").emit("news", "x")
            await asyncio.sleep(0.1)
            for c in clients:
                await c.disconnect()
        await asyncio.gather(*[_raw_ws_client(free_port) for _ in range(20)])
        # a polling session that just vanishes is reaped by the ping timeout
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{free_port}/socket.io/?EIO=4&transport=polling") as r:
                assert r.status == 200
        engine = io.engine
        for _ in range(200):
            if (not engine.clients and not io.sockets.sockets and not chat.sockets
                    and not io.sockets.adapter.rooms and not chat.adapter.rooms):
                break
            await asyncio.sleep(0.05)
        assert seen == 50
        assert engine.clients == {}
        assert io.sockets.sockets == {} and chat.sockets == {}
        assert io.sockets.adapter.rooms == {} and io.sockets.adapter.sids == {}
        assert chat.adapter.rooms == {} and chat.adapter.sids == {}
        assert io.sockets._directs == {} and chat._directs == {}
        assert engine._deadlines().buckets == {}
        assert not [c for c in engine.http_server().connections if c.state == 4]  # no WebSocket left open
        gc.collect()
    finally:
        await io.close()
