"""Nothing stays behind: after clients of every kind come and go, the server's tables are empty."""
from __future__ import annotations

import asyncio
import gc
from typing import Any

import aiohttp
import pytest
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


async def test_acks_tasks_pre_connect_and_sessions_do_not_stay(free_port: int) -> None:
    """Ack tables, sockets waiting in a middleware, background tasks and stored recovery sessions
    are all gone once the clients have left (and the recovery window has passed)."""
    from fastsio import _tasks

    io = fastsio.Server(connection_state_recovery={"max_disconnection_duration": 0.5})
    slow = io.of("/slow")
    gate = asyncio.Event()   # never set: the middleware would wait forever

    async def stuck_middleware(socket: Any) -> None:
        await gate.wait()

    slow.use(stuck_middleware)
    sockets: list[Any] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        sockets.append(socket)

        @socket.on("work")
        async def work(n: int) -> int:
            await asyncio.sleep(0.01)
            return n

    await io.listen(free_port, host="127.0.0.1")
    baseline = len(_tasks.ALL)
    try:
        clients = [socketio.AsyncClient(reconnection=False) for _ in range(4)]
        async def slow_answer() -> str:
            await asyncio.sleep(0.3)
            return "late"

        for i, c in enumerate(clients):
            c.on("q", lambda: "a")
            c.on("slow", slow_answer)
            await c.connect(f"http://127.0.0.1:{free_port}", transports=["websocket"] if i % 2 else ["polling"],
                            namespaces=["/"], wait_timeout=10)
            assert await c.call("work", i, timeout=10) == i
        # acks: answered, timed out by wait_for, broadcast with and without volatile
        for s in sockets:
            assert await asyncio.wait_for(s.emit_with_ack("q"), 5) == "a"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(s.emit_with_ack("slow"), 0.01)
        assert await asyncio.wait_for(io.timeout(5).emit_with_ack("q"), 5) == ["a"] * 4
        assert await asyncio.wait_for(io.timeout(5).volatile.emit_with_ack("q"), 5) == ["a"] * 4
        await asyncio.sleep(0.4)   # the late answers arrive and find no entry
        assert all(not s._acks for s in sockets)
        # a client that leaves while its socket waits in a namespace middleware
        stuck = socketio.AsyncClient(reconnection=False)
        connect_task = asyncio.ensure_future(
            stuck.connect(f"http://127.0.0.1:{free_port}", transports=["websocket"], namespaces=["/slow"],
                          wait_timeout=0.5))
        for _ in range(200):
            if slow._pre_connect:
                break
            await asyncio.sleep(0.01)
        assert slow._pre_connect
        try:
            await connect_task
        except socketio.exceptions.ConnectionError:
            pass
        await stuck.disconnect()
        for c in clients:
            await c.disconnect()
        engine = io.engine
        adapter = io.sockets.adapter
        for _ in range(300):
            if not engine.clients and not slow._pre_connect and len(_tasks.ALL) <= baseline and not io._tasks:
                break
            await asyncio.sleep(0.02)
        assert engine.clients == {}
        assert slow._pre_connect == {} and io.sockets._pre_connect == {}
        assert len(_tasks.ALL) <= baseline, [t for t in _tasks.ALL]
        assert not io._tasks
        # python-socketio's disconnect() sends DISCONNECT: no session kept; a dropped transport would keep one
        # for max_disconnection_duration, then the next use of the adapter prunes it
        await asyncio.sleep(0.6)
        io.emit("tick")
        assert adapter._sessions == {}
        assert len(adapter._packets) <= 1
    finally:
        await io.close()
