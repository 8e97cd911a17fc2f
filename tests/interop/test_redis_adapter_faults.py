"""RedisAdapter when Redis misbehaves: unreachable, restarted, stalled, or carrying foreign messages.

Real redis-server (the ``redis_server`` fixture stops and restarts it) and
python-socketio clients on two fastsio servers.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any, Callable

import msgpack
import pytest
import redis.asyncio as aioredis

import fastsio
from fastsio.adapters import redis as redis_mod
from fastsio.adapters.redis import RedisAdapter, create_adapter
from fastsio.exceptions import AckTimeout

from conftest import _another_port

LOGGER = "fastsio.adapters.redis"


async def _server(url: str, key: str = "socket.io", **options: Any) -> tuple[fastsio.Server, int]:
    io = fastsio.Server(adapter=RedisAdapter.from_url(url, key=key, **options))
    port = _another_port()
    await io.listen(port, host="127.0.0.1")
    return io, port


async def _client(make: Callable[..., Any], port: int) -> tuple[Any, list[Any]]:
    c = make()
    got: list[Any] = []
    c.on("*", lambda ev, *args: got.append((ev, *args)))
    await c.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
    return c, got


async def _until(predicate: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _bus(io: fastsio.Server) -> Any:
    return io.sockets.adapter._bus  # type: ignore[attr-defined]


async def test_unreachable_redis_at_start_is_a_clear_error() -> None:
    url = f"redis://127.0.0.1:{_another_port()}/0"
    io = fastsio.Server(adapter=RedisAdapter.from_url(url))
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match=r"redis adapter: cannot reach Redis at 127\.0\.0\.1:\d+"):
        await io.listen(_another_port(), host="127.0.0.1")
    assert time.monotonic() - t0 < 10
    await asyncio.wait_for(io.close(), 5)


async def test_restart_while_serving(redis_server: Any, clients: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    tasks_before = set(asyncio.all_tasks())
    a, port_a = await _server(redis_server.url, requests_timeout=5)
    b, port_b = await _server(redis_server.url)
    ca, got_a = await _client(clients, port_a)
    cb, got_b = await _client(clients, port_b)
    a.emit("before", 1)
    await _until(lambda: got_a and got_b, what="the first broadcast")

    # A third subscriber that never answers keeps a fetch in flight.
    silent = aioredis.Redis.from_url(redis_server.url)
    ps = silent.pubsub()
    await ps.subscribe("socket.io-request#/#")
    assert await a.sockets.adapter.server_count() == 3
    fetch = asyncio.ensure_future(a.fetch_sockets())
    await asyncio.sleep(0.2)
    assert not fetch.done()

    redis_server.stop()
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match="lost the connection to Redis.*fetchSockets"):
        await asyncio.wait_for(fetch, 4)
    assert time.monotonic() - t0 < 4
    await _until(lambda: "lost the connection to Redis" in caplog.text, what="the 'lost' log line")

    # Local delivery goes on while the bus is away; the cluster part is dropped.
    got_a.clear()
    got_b.clear()
    a.emit("during", 2)
    await _until(lambda: got_a == [("during", 2)], what="local delivery during the outage")
    with pytest.raises(ConnectionError):
        await a.sockets.adapter.server_count()

    redis_server.start()
    await _until(lambda: _bus(a).up and _bus(b).up, timeout=15, what="both servers re-subscribed")
    assert "is back" in caplog.text
    got_a.clear()
    got_b.clear()
    for _ in range(50):
        a.emit("after", 3)
        await asyncio.sleep(0.1)
        if got_b:
            break
    assert got_b and got_b[0] == ("after", 3)
    assert await a.sockets.adapter.server_count() == 2

    await ps.aclose()
    await silent.aclose()
    await ca.disconnect()
    await cb.disconnect()
    await a.close()
    await b.close()
    await asyncio.sleep(0.05)
    leaked = [t for t in asyncio.all_tasks() - tasks_before if not t.done() and t is not asyncio.current_task()]
    assert not [t for t in leaked if "redis" in repr(t.get_coro())], leaked


async def test_stalled_redis_is_noticed_by_the_health_check(redis_server: Any, caplog: Any,
                                                            monkeypatch: Any) -> None:
    monkeypatch.setattr(redis_mod, "_HEALTH_INTERVAL", 0.2)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    a, _ = await _server(redis_server.url)
    try:
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            await _until(lambda: not _bus(a).up, timeout=5, what="the stall to be noticed")
            assert "no answer from Redis" in caplog.text
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        await _until(lambda: _bus(a).up, timeout=10, what="the bus to come back")
    finally:
        await asyncio.wait_for(a.close(), 10)


async def test_malformed_and_foreign_messages_are_logged_and_dropped(redis_server: Any, clients: Any,
                                                                      caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    a, port_a = await _server(redis_server.url)
    b, _ = await _server(redis_server.url)
    ca, got = await _client(clients, port_a)
    raw = aioredis.Redis.from_url(redis_server.url)
    junk = [
        ("socket.io#/#", b'{"app":"other","x":1}'),
        ("socket.io#/#", b"\x93\xa6abc"),
        ("socket.io#/#", msgpack.packb([1, 2, 3])),
        ("socket.io#/#", msgpack.packb(["zzzzzz", {"type": 2, "data": "nolist", "nsp": "/"}, {}])),
        ("socket.io#/#", msgpack.packb(["zzzzzz", {"type": 2, "data": ["e"], "nsp": "/"}, {"rooms": "r"}])),
        ("socket.io#/#", msgpack.packb(["zzzzzz", {"type": 2, "data": ["e", {1: 2}], "nsp": "/"}, {}])),
        ("socket.io#/#", b""),
        ("socket.io-request#/#", b"{not json"),
        ("socket.io-request#/#", b'{"type":7,"requestId":"q"}'),
        ("socket.io-request#/#", b'{"type":7,"requestId":[1],"opts":{},"packet":{"data":["e"]}}'),
        ("socket.io-request#/#", b'{"type":6,"data":["connection",1]}'),
        ("socket.io-request#/#", b'{"type":5,"requestId":"x","opts":5}'),
        ("socket.io-request#/#", b'{"type":2,"opts":{"rooms":[[]]},"rooms":["x"]}'),
        ("socket.io-request#/#", b'[1,2]'),
        ("socket.io-request#/#", b"\xc1"),
        ("socket.io-response#/#", b'{"requestId":5}'),
        ("socket.io-response#/#", b"\xff\xff"),
    ]
    try:
        for channel, data in junk:
            await raw.publish(channel, data)
        await raw.publish("socket.io-request#/#", b'{"type":6,"data":["hello"]}')  # fine, unanswered
        await asyncio.sleep(0.3)
        b.emit("still-works", 1)
        await _until(lambda: ("still-works", 1) in got, what="a broadcast after the junk")
        assert got == [("still-works", 1)]
        assert "dropped a malformed message" in caplog.text
        assert "error while handling" not in caplog.text
        assert _bus(a).up and _bus(b).up
    finally:
        await raw.aclose()
        await ca.disconnect()
        await a.close()
        await b.close()


async def test_room_broadcasts_without_local_members_are_dropped_before_decoding(redis_server: Any,
                                                                                 caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    a, _ = await _server(redis_server.url)
    raw = aioredis.Redis.from_url(redis_server.url)
    decoded: list[bytes] = []
    real = redis_mod._wire.decode

    def counting(data: bytes) -> Any:
        decoded.append(data)
        return real(data)

    try:
        redis_mod._wire.decode = counting  # type: ignore[assignment]
        await raw.publish("socket.io#/#nobody-here#", b"garbage that is never decoded")
        await raw.publish("socket.io#/#", msgpack.packb([a.sockets.adapter.uid, {"type": 2, "data": ["own"]}, {}]))
        await raw.publish("socket.io#/admin#", msgpack.packb(["other1", {"type": 2, "data": ["x"], "nsp": "/admin"},
                                                             {}]))
        await asyncio.sleep(0.3)
        assert decoded == []
        assert "malformed" not in caplog.text
        await raw.publish("socket.io#/#", b"garbage on the namespace channel")
        await _until(lambda: "dropped a malformed message" in caplog.text, what="the decode of the junk")
    finally:
        redis_mod._wire.decode = real  # type: ignore[assignment]
        await raw.aclose()
        await a.close()


async def test_one_subscriber_connection_and_one_subscribe_per_namespace(redis_server: Any) -> None:
    io = fastsio.Server(adapter=RedisAdapter.from_url(redis_server.url))
    for name in ("/admin", "/chat"):
        io.of(name)
    await io.listen(_another_port(), host="127.0.0.1")
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        for name in ("/", "/admin", "/chat"):
            assert (await raw.pubsub_numsub(f"socket.io-request#{name}#"))[0][1] == 1
        subscribers = [c for c in await raw.client_list() if int(c.get("sub", 0)) or int(c.get("psub", 0))]
        assert len(subscribers) == 1, subscribers
        assert int(subscribers[0]["psub"]) == 3 and int(subscribers[0]["sub"]) == 9
        await io.close()
        for _ in range(100):  # Redis notices closed connections a moment later
            left = await raw.client_list()
            if len(left) == 1:
                break
            await asyncio.sleep(0.02)
        assert len(left) == 1, left  # only this one: the adapter closed what it opened
    finally:
        await raw.aclose()


async def test_requests_without_answer_time_out_naming_the_operation(redis_server: Any) -> None:
    a, _ = await _server(redis_server.url, requests_timeout=0.3)
    silent = aioredis.Redis.from_url(redis_server.url)
    ps = silent.pubsub()
    await ps.subscribe("socket.io-request#/#")
    try:
        with pytest.raises(TimeoutError, match="fetchSockets"):
            await a.fetch_sockets()
        with pytest.raises(TimeoutError, match="allRooms"):
            await a.sockets.adapter.all_rooms()
        with pytest.raises(AckTimeout, match="only 0 responses received out of 1") as info:
            await a.server_side_emit_with_ack("ping", 1)
        assert info.value.responses == []  # type: ignore[attr-defined]
        assert not a.sockets.adapter._requests  # type: ignore[attr-defined]
    finally:
        await ps.aclose()
        await silent.aclose()
        await a.close()


async def test_user_clients_are_left_open(redis_server: Any) -> None:
    pub = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    sub = aioredis.Redis.from_url(redis_server.url)
    io = fastsio.Server(adapter=create_adapter(pub, sub, key="mine"))
    await io.listen(_another_port(), host="127.0.0.1")
    assert await io.sockets.adapter.server_count() == 1
    await io.close()
    assert await pub.ping() and await sub.ping()  # still usable: not ours to close
    await pub.aclose()
    await sub.aclose()


def test_options_are_checked_at_construction() -> None:
    with pytest.raises(ValueError):
        RedisAdapter.from_url("redis://127.0.0.1:1/0", requests_timeout=0)
    with pytest.raises(ValueError):
        RedisAdapter.from_url("redis://127.0.0.1:1/0", key="")
    with pytest.raises(TypeError):
        RedisAdapter.from_url("redis://127.0.0.1:1/0", request_timeout=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        create_adapter(object())
    with pytest.raises(TypeError):
        create_adapter(aioredis.Redis(), bogus=1)  # type: ignore[call-arg]


def test_server_made_before_any_loop_subscribes_on_the_serving_loop(redis_server: Any) -> None:
    """The ordinary pattern: ``io = Server(adapter=...)`` at module level, then serve on a new loop."""
    io = fastsio.Server(adapter=RedisAdapter.from_url(redis_server.url))

    async def main() -> int:
        await io.listen(_another_port(), host="127.0.0.1")
        try:
            count: int = await io.sockets.adapter.server_count()
            return count
        finally:
            await io.close()

    assert asyncio.run(main()) == 1


def test_sharded_adapter_is_reexported() -> None:
    from fastsio.adapters import redis_sharded

    assert redis_mod.RedisShardedAdapter is redis_sharded.RedisShardedAdapter
    assert redis_mod.create_sharded_adapter is redis_sharded.create_sharded_adapter
