"""ASGIApp: fastsio mounted under uvicorn, with python-socketio's client and an ASGI app beside it."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import socketio
import uvicorn

import fastsio


async def other_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"other app"})


async def _serve(app: Any, port: int) -> tuple[uvicorn.Server, "asyncio.Task[None]"]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started
    return server, task


async def _check_transport(port: int, transports: list[str]) -> None:
    client = socketio.AsyncClient()
    got: asyncio.Queue[Any] = asyncio.Queue()
    client.on("hello", lambda data: got.put_nowait(data))
    client.on("bin", lambda data: got.put_nowait(data))
    await client.connect(f"http://127.0.0.1:{port}", transports=transports, auth={"token": "t"})
    try:
        assert await asyncio.wait_for(got.get(), 10) == {"auth": {"token": "t"}}
        assert await client.call("echo", [1, "two", {"3": None}], timeout=10) == [1, "two", {"3": None}]
        await client.emit("bcast", b"\x00\x01\xff")
        assert await asyncio.wait_for(got.get(), 10) == b"\x00\x01\xff"
    finally:
        await client.disconnect()


async def test_asgi_polling_and_websocket(free_port: int) -> None:
    io = fastsio.Server()
    disconnects: asyncio.Queue[str] = asyncio.Queue()

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.join("all")
        socket.emit("hello", {"auth": socket.handshake.auth})
        socket.on("echo", lambda value: value)
        socket.on("bcast", lambda data: io.to("all").emit("bin", data))
        socket.on("disconnect", lambda reason: disconnects.put_nowait(reason))

    server, task = await _serve(fastsio.ASGIApp(io, other_app=other_app), free_port)
    try:
        await _check_transport(free_port, ["websocket"])
        await _check_transport(free_port, ["polling"])
        await _check_transport(free_port, ["polling", "websocket"])
        # python-socketio closes a WebSocket before its DISCONNECT packet leaves: "transport close"
        for _ in range(3):
            reason = await asyncio.wait_for(disconnects.get(), 10)
            assert reason in ("client namespace disconnect", "transport close")
        async with aiohttp.ClientSession() as s:
            r = await s.get(f"http://127.0.0.1:{free_port}/elsewhere")
            assert r.status == 200 and await r.text() == "other app"
            r = await s.get(f"http://127.0.0.1:{free_port}/socket.io/?EIO=4&transport=__proto__")
            assert r.status == 400 and await r.json() == {"code": 0, "message": "Transport unknown"}
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
