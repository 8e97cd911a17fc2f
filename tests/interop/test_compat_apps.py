"""python-socketio-style apps (tests/compat_apps, only the import changed) driven through every event
they handle, by python-socketio's AsyncClient and by the npm socket.io-client, under uvicorn
(ASGIApp) and under fastsio's own server (sio.fastsio_server)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from compat_support import MODES, cancel_tasks_named, http_get, load_app, native_hosts_asgi, serve
from sio_helpers import WAIT, connect

pytestmark = pytest.mark.timeout(90)


class Inbox:
    """Every ``event`` a client receives, awaited in order."""

    def __init__(self, client: socketio.AsyncClient, event: str) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        client.on(event, self._put)

    async def _put(self, *args: Any) -> None:
        await self.queue.put(args[0] if len(args) == 1 else args)

    async def next(self) -> Any:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    async def nothing(self, seconds: float = 0.3) -> None:
        await asyncio.sleep(seconds)
        assert self.queue.empty(), self.queue.get_nowait()


def routes_served(mode: str, sio: Any) -> bool:
    return mode == "uvicorn" or native_hosts_asgi(sio.fastsio_server)


@pytest.mark.parametrize("mode", MODES)
async def test_chat_app_with_python_client(mode: str, free_port: int, clients: Any, wait_until: Any) -> None:
    chat = load_app("chat")
    chat.INTERVAL = 0.3
    try:
        async with serve(mode, chat.app, chat.sio, free_port):
            if routes_served(mode, chat.sio):
                status, ctype, body = await http_get(free_port, "/")
                assert status == 200 and ctype.startswith("text/html") and "chat page" in body
                assert (await http_get(free_port, "/nothing-here"))[0] == 404
            a, b = clients(), clients()
            inbox_a, inbox_b = Inbox(a, "my_response"), Inbox(b, "my_response")
            await connect(a, free_port)
            await connect(b, free_port, transports=["polling"])
            assert await inbox_a.next() == {"data": "Connected", "count": 0}
            assert await inbox_b.next() == {"data": "Connected", "count": 0}
            env = chat.sio.get_environ(a.get_sid())
            assert env["REMOTE_ADDR"] == "127.0.0.1" and env["PATH_INFO"] == "/socket.io/"
            assert "transport=websocket" in env["QUERY_STRING"] and env["HTTP_HOST"].startswith("127.0.0.1")
            if mode == "uvicorn":
                assert env["asgi.scope"]["type"] == "websocket" and env["asgi.scope"]["path"] == "/socket.io/"
                assert chat.sio.get_environ(b.get_sid())["asgi.scope"]["type"] == "http"
            else:
                assert "asgi.scope" not in env
            # the background task broadcasts to everybody
            tick = await inbox_a.next()
            assert tick["data"] == "Server generated event"
            chat.INTERVAL = 1000
            cancel_tasks_named("ticker")
            await asyncio.sleep(0.05)
            while not inbox_a.queue.empty():
                inbox_a.queue.get_nowait()
            while not inbox_b.queue.empty():
                inbox_b.queue.get_nowait()

            await a.emit("my_event", {"data": "only me"})
            assert await inbox_a.next() == {"data": "only me"}
            await a.emit("my_broadcast_event", {"data": "everybody"})
            assert await inbox_a.next() == {"data": "everybody"}
            assert await inbox_b.next() == {"data": "everybody"}

            await a.emit("join", {"room": "r1"})
            assert await inbox_a.next() == {"data": "Entered room: r1"}
            await b.emit("my_room_event", {"room": "r1", "data": "to r1"})
            assert await inbox_a.next() == {"data": "to r1"}
            await inbox_b.nothing()
            await a.emit("leave", {"room": "r1"})
            assert await inbox_a.next() == {"data": "Left room: r1"}
            await b.emit("my_room_event", {"room": "r1", "data": "nobody"})
            await inbox_a.nothing()

            await a.emit("join", {"room": "r2"})
            await b.emit("join", {"room": "r2"})
            assert await inbox_a.next() == {"data": "Entered room: r2"}
            assert await inbox_b.next() == {"data": "Entered room: r2"}
            await b.emit("close room", {"room": "r2"})
            assert await inbox_a.next() == {"data": "Room r2 is closing."}
            assert await inbox_b.next() == {"data": "Room r2 is closing."}
            await a.emit("my_room_event", {"room": "r2", "data": "closed"})
            await inbox_a.nothing()
            await inbox_b.nothing(0)
            assert chat.sio.rooms(a.get_sid()) == [a.get_sid()]

            sid_b = b.get_sid()
            gone = asyncio.get_running_loop().create_future()
            b.on("disconnect", lambda *r: gone.done() or gone.set_result(r))
            await b.emit("disconnect request")
            await asyncio.wait_for(gone, WAIT)
            await wait_until(lambda: sid_b in chat.disconnected, what="the disconnect handler")
            assert a.connected
    finally:
        cancel_tasks_named("ticker")


@pytest.mark.parametrize("mode", MODES)
async def test_fiddle_app_with_python_client(mode: str, free_port: int, clients: Any, wait_until: Any) -> None:
    fiddle = load_app("fiddle")
    async with serve(mode, fiddle.combined_asgi_app, fiddle.sio, free_port):
        if routes_served(mode, fiddle.sio):
            assert await http_get(free_port, "/hello") == (200, "application/json", '{"message":"Hello, World!"}')
            status, _, body = await http_get(free_port, "/")
            assert status == 200 and "fiddle page" in body
            status, ctype, body = await http_get(free_port, "/static/style.css")
            assert status == 200 and ctype.startswith("text/css") and "color" in body
        c = clients()
        hello = asyncio.get_running_loop().create_future()
        c.on("hello", lambda *args: hello.set_result(args))
        await connect(c, free_port, auth={"token": "abc"})
        assert await asyncio.wait_for(hello, WAIT) == (1, 2, {"hello": "you"})
        assert fiddle.connected == [(c.get_sid(), {"token": "abc"})]
        sid = c.get_sid()
        await c.disconnect()
        await wait_until(lambda: fiddle.disconnected == [sid], what="the disconnect handler")


@pytest.mark.parametrize("mode", MODES)
async def test_latency_app_with_python_client(mode: str, free_port: int, clients: Any) -> None:
    latency = load_app("latency")
    async with serve(mode, latency.app, latency.sio, free_port):
        if routes_served(mode, latency.sio):
            status, ctype, body = await http_get(free_port, "/")
            assert status == 200 and ctype.startswith("text/html") and "latency page" in body
            status, ctype, _ = await http_get(free_port, "/static/style.css")
            assert status == 200 and ctype.startswith("text/css")
            assert (await http_get(free_port, "/static/../chat.py"))[0] == 404
        c = clients()
        pongs = Inbox(c, "pong_from_server")
        await connect(c, free_port, transports=["polling", "websocket"])
        for _ in range(5):
            await c.emit("ping_from_client")
            assert await pongs.next() == ()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_apps_with_js_client(mode: str, transport: str, free_port: int, run_node: Any) -> None:
    chat = load_app("chat")
    chat.INTERVAL = 0.2
    try:
        async with serve(mode, chat.app, chat.sio, free_port):
            run = await run_node("compat_apps_client.mjs", "app=chat", f"port={free_port}", f"mode={transport}")
            run.check()
            assert run.one("chat")["ok"] is True, run.describe()
    finally:
        cancel_tasks_named("ticker")
    fiddle = load_app("fiddle")
    async with serve(mode, fiddle.combined_asgi_app, fiddle.sio, free_port):
        run = await run_node("compat_apps_client.mjs", "app=fiddle", f"port={free_port}", f"mode={transport}")
        run.check()
        assert run.one("hello")["args"] == [1, 2, {"hello": "you"}]
    assert fiddle.connected[0][1] == {"token": "js"}
    latency = load_app("latency")
    async with serve(mode, latency.app, latency.sio, free_port):
        run = await run_node("compat_apps_client.mjs", "app=latency", f"port={free_port}", f"mode={transport}")
        run.check()
        assert run.one("latency")["pongs"] == 5
