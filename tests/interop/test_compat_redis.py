"""fastsio.compat.AsyncRedisManager and python-socketio's own AsyncRedisManager in one cluster, on a
real redis-server: emits, rooms, callbacks and disconnects cross both ways."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio as pysio

import fastsio.compat as socketio
from compat_support import serve
from sio_helpers import WAIT, connect

pytestmark = pytest.mark.timeout(60)


def other_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def subscribers(url: str, channel: str) -> int:
    r = aioredis.Redis.from_url(url)
    try:
        counts = await r.pubsub_numsub(channel)
        return int(counts[0][1]) if counts else 0
    finally:
        await r.aclose()


async def test_python_socketio_and_fastsio_share_a_redis_channel(redis_server: Any, free_port: int, clients: Any,
                                                              wait_until: Any) -> None:
    url = redis_server.url
    theirs = pysio.AsyncServer(async_mode="asgi", client_manager=pysio.AsyncRedisManager(url))
    ours = socketio.AsyncServer(client_manager=socketio.AsyncRedisManager(url))
    their_port, our_port = free_port, other_port()
    seen: list[Any] = []

    @theirs.on("ask")
    async def their_ask(sid: str, q: str) -> str:
        return "theirs:" + q

    @ours.on("ask")
    async def our_ask(sid: str, q: str) -> str:
        return "ours:" + q

    async with serve("uvicorn", pysio.ASGIApp(theirs), theirs, their_port):
        await ours.fastsio_server.listen(our_port, host="127.0.0.1")
        a, b = clients(), clients()  # a on python-socketio, b on fastsio
        got_a: asyncio.Queue[Any] = asyncio.Queue()
        got_b: asyncio.Queue[Any] = asyncio.Queue()
        for c, q in ((a, got_a), (b, got_b)):
            c.on("news", lambda *args, q=q: q.put_nowait(("news", args)))
            c.on("room", lambda *args, q=q: q.put_nowait(("room", args)))
            c.on("ask", lambda x, name=("a" if q is got_a else "b"): f"{name} says {x}")
        await connect(a, their_port)
        await connect(b, our_port)
        sid_a, sid_b = a.get_sid(), b.get_sid()
        for _ in range(200):
            if await subscribers(url, "socketio") >= 2:
                break
            await asyncio.sleep(0.02)
        assert await subscribers(url, "socketio") >= 2

        async def next_of(q: asyncio.Queue[Any]) -> Any:
            return await asyncio.wait_for(q.get(), WAIT)

        # python-socketio -> fastsio (and its own client), one argument
        await theirs.emit("news", {"from": "theirs"})
        assert await next_of(got_a) == ("news", ({"from": "theirs"},))
        assert await next_of(got_b) == ("news", ({"from": "theirs"},))
        # fastsio -> python-socketio, several arguments with binary
        await ours.emit("news", (1, b"\x00\x01", {"k": [b"z"]}))
        assert await next_of(got_b) == ("news", (1, b"\x00\x01", {"k": [b"z"]}))
        assert await next_of(got_a) == ("news", (1, b"\x00\x01", {"k": [b"z"]}))
        # skip_sid crosses too
        await ours.emit("news", "not a", skip_sid=sid_a)
        assert await next_of(got_b) == ("news", ("not a",))

        # fastsio puts a client of python-socketio in a room, then both emit to it
        await ours.enter_room(sid_a, "r")
        await theirs.enter_room(sid_b, "r")
        await asyncio.sleep(0.2)
        await ours.emit("room", "to r", room="r")
        assert await next_of(got_a) == ("room", ("to r",))
        assert await next_of(got_b) == ("room", ("to r",))
        await ours.leave_room(sid_a, "r")
        await asyncio.sleep(0.2)
        await theirs.emit("room", "to r again", room="r")
        assert await next_of(got_b) == ("room", ("to r again",))
        await ours.close_room("r")
        await asyncio.sleep(0.2)
        await theirs.emit("room", "closed", room="r")
        await asyncio.sleep(0.3)
        assert got_a.empty() and got_b.empty()

        # answers cross back to the server that asked
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await ours.emit("ask", "q1", to=sid_a, callback=lambda *r: answer.set_result(r))
        assert await asyncio.wait_for(answer, WAIT) == ("a says q1",)
        assert await theirs.call("ask", "q2", to=sid_b, timeout=WAIT) == "b says q2"

        # an external write-only manager reaches both
        ext = socketio.AsyncRedisManager(url, write_only=True)
        await ext.emit("news", "external", namespace="/")
        assert await next_of(got_a) == ("news", ("external",))
        assert await next_of(got_b) == ("news", ("external",))
        await ext.close()

        # fastsio disconnects a client of python-socketio
        gone: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        a.on("disconnect", lambda *r: gone.done() or gone.set_result(r))
        await ours.disconnect(sid_a)
        await asyncio.wait_for(gone, WAIT)
        seen.append("a gone")
        await ours.shutdown()
    assert seen == ["a gone"]


async def test_hostile_channel_messages_are_ignored(redis_server: Any, free_port: int, clients: Any) -> None:
    url = redis_server.url
    ours = socketio.AsyncServer(client_manager=socketio.AsyncRedisManager(url))
    await ours.fastsio_server.listen(free_port, host="127.0.0.1")
    c = clients()
    got: asyncio.Queue[Any] = asyncio.Queue()
    c.on("news", lambda *a: got.put_nowait(a))
    await connect(c, free_port)
    for _ in range(200):
        if await subscribers(url, "socketio") >= 1:
            break
        await asyncio.sleep(0.02)
    r = aioredis.Redis.from_url(url)
    for junk in (b"not json", b"[1,2]", b'{"method": 5}', b'{"method": "emit", "data": "x", "host_id": "h"}',
                 b'{"method": "emit", "event": "news", "data": [{"_placeholder": true, "num": 9}], "binary": true}',
                 b'{"method": "callback", "id": "x"}', b'{"method": "disconnect", "sid": 3}',
                 b'{"method": "emit", "event": "news", "data": [' + b"[" * 100 + b"]" * 100 + b'], "binary": true}'):
        await r.publish("socketio", junk)
    await r.publish("socketio", b'{"method": "emit", "event": "news", "data": ["fine"], "host_id": "other"}')
    await r.aclose()
    assert await asyncio.wait_for(got.get(), WAIT) == ("fine",)
    assert c.connected
    await ours.shutdown()
