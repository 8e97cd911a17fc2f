"""Broadcasts through ASGIApp under a real uvicorn, to npm socket.io-client peers (issue 14, part C).

The bridge takes prepared messages, not frames: a broadcast's ASGI
``websocket.send`` events are built once per protocol version and every
recipient is handed the same objects. A recording middleware between
uvicorn and ASGIApp sees what uvicorn is given; the clients log what they
got, in order, interleaved with per-socket emits. A client that stops
reading is disconnected as a slow consumer while the others keep up.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
import uvicorn

import fastsio

from raw import wait_for
from test_slow_consumers import KB, _sio_slow_client

pytestmark = pytest.mark.timeout(120)

ROUNDS = 15


async def _serve(app: Any, port: int) -> tuple[uvicorn.Server, "asyncio.Task[None]"]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    await wait_for(lambda: server.started, 10, "uvicorn")
    return server, task


async def _stop(server: uvicorn.Server, task: "asyncio.Task[None]") -> None:
    server.should_exit = True
    await asyncio.wait_for(task, 15)


def _recording(app: Any, sent: list[tuple[int, dict[str, Any]]]) -> Any:
    """An ASGI middleware keeping every ``websocket.send`` event uvicorn is given (and so their ids stable)."""
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        key = id(scope)

        async def recording_send(event: dict[str, Any]) -> None:
            if event["type"] == "websocket.send":
                sent.append((key, event))
            await send(event)

        await app(scope, receive, recording_send)
    return wrapped


def _rooms(idx: int, n: int) -> list[str]:
    rooms = ["a" if idx % 2 == 0 else "b"]
    if idx == 1 or idx == n - 1:
        rooms.append("x")
    return rooms


def _expected(idx: int, n: int) -> list[list[Any]]:
    rooms = _rooms(idx, n)
    log: list[list[Any]] = []
    for i in range(ROUNDS):
        if "a" in rooms:
            log.append(["m", i, f"é ✓ text {i}"])
        log.append(["p", i, idx])
        log.append(["b", i, {"$bin": (bytes([i]) * 100).hex()}])
        if "x" not in rooms:
            log.append(["e", i])
        log.append(["v", i])
        if "b" in rooms:
            log.append(["m", i, {"to": "b"}])
    return log


@pytest.mark.parametrize("mode", ["websocket", "polling", "upgrade"])
async def test_broadcasts_arrive_once_in_order_and_are_derived_once(free_port: int, run_node: Any,
                                                                   mode: str) -> None:
    io = fastsio.Server(allow_eio3=True, ping_interval=60, ping_timeout=60)
    n4, n2 = 4, 2
    n = n4 + n2
    sockets: dict[int, Any] = {}

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        idx = int(socket.handshake.query["idx"])
        socket.join(_rooms(idx, n))
        sockets[idx] = socket
        socket.on("hello", lambda: "ok")

    sent: list[tuple[int, dict[str, Any]]] = []
    server, task = await _serve(_recording(fastsio.ASGIApp(io), sent), free_port)
    node = asyncio.ensure_future(run_node("asgi_fanout_clients.mjs", f"port={free_port}", f"n4={n4}", f"n2={n2}",
                                          f"mode={mode}", "timeout_ms=60000", timeout=70))
    try:
        await wait_for(lambda: len(sockets) == n or node.done(), 30, "every client to connect")
        assert len(sockets) == n, (await node).describe()
        if mode == "upgrade":
            await wait_for(lambda: all(s.conn.transport.name == "websocket" for s in sockets.values()), 20,
                           "every client to upgrade")
        for i in range(ROUNDS):
            io.to("a").emit("m", i, f"é ✓ text {i}")
            for idx, s in sockets.items():
                s.emit("p", i, idx)  # one socket's own packets, between the broadcasts
            io.emit("b", i, bytes([i]) * 100)
            io.except_("x").emit("e", i)
            io.volatile.emit("v", i)
            io.to("b").emit("m", i, {"to": "b"})
            if i % 3 == 2:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        io.emit("end")
        result = (await node).check()
        logs = {line["idx"]: line for line in result.events("log")}
        assert sorted(logs) == list(range(n)), result.describe()
        for idx, line in logs.items():
            assert line["version"] == (4 if idx < n4 else 2)
            log, expected = line["log"], _expected(idx, n)
            if mode == "polling":
                # volatile packets are dropped while no GET is waiting (as Node): those that
                # came, came once each and in order
                vs = [e[1] for e in log if e[0] == "v"]
                assert vs == sorted(set(vs)), vs
                log = [e for e in log if e[0] != "v"]
                expected = [e for e in expected if e[0] != "v"]
            assert log == expected, (idx, log[:12])
    finally:
        if not node.done():
            node.cancel()
        await _stop(server, task)
    if mode == "polling":
        assert not sent
        return
    # Every recipient of one broadcast was handed the same event object, one per protocol
    # version: derived once per broadcast, no parse per recipient.
    by_content: dict[Any, set[int]] = defaultdict(set)
    receivers: dict[Any, set[int]] = defaultdict(set)
    for conn, event in sent:
        content = event.get("text", event.get("bytes"))
        by_content[content].add(id(event))
        receivers[content].add(conn)
    broadcast = [c for c in by_content if isinstance(c, bytes)
                 or c.startswith(('42["m",', '42["e",', '42["v",', '451-["b",'))]
    # m (two rooms), b's text part, e, v; b's attachment: one content per protocol version
    assert len(broadcast) == 7 * ROUNDS
    for content in broadcast:
        assert len(receivers[content]) >= 2, content
        # a text event is the same content for v4 and v3 (one object each); an attachment
        # differs by version (v3 prefixes a type byte), so one object for all its recipients
        versions = 2 if isinstance(content, str) else 1
        assert len(by_content[content]) == versions, (content, len(by_content[content]), len(receivers[content]))
    # the frame parser of the bridge (the old per-recipient path) was never used
    bridges = [s.conn.transport.conn for s in sockets.values() if s.conn.transport.name == "websocket"]
    assert all(b is None or b._parser is None for b in bridges)


async def test_slow_consumer_is_disconnected_while_the_others_keep_up(free_port: int, run_node: Any) -> None:
    cap = 1024 * KB
    io = fastsio.Server(max_buffered_bytes=cap, drop_volatile_above=128 * KB, ping_interval=60, ping_timeout=60)
    disconnects: dict[str, tuple[str, Any]] = {}
    descriptions: dict[str, Any] = {}
    joined: list[str] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("join")
        def join() -> str:
            socket.join("room")
            joined.append(socket.id)
            return "ok"

        socket.conn.on("close", lambda reason, desc=None: descriptions.__setitem__(socket.id, desc))

        @socket.on("disconnect")
        def on_disconnect(reason: str, *rest: Any) -> None:
            disconnects[socket.id] = (reason, rest)

    server, task = await _serve(fastsio.ASGIApp(io), free_port)
    n_fast, n_slow = 3, 2
    node = asyncio.ensure_future(run_node("storm_client.mjs", f"port={free_port}", f"n={n_fast}",
                                          "timeout_ms=80000", timeout=90))
    slow = []
    try:
        slow = [await _sio_slow_client(free_port) for _ in range(n_slow)]
        await wait_for(lambda: len(joined) == n_fast + n_slow, 20, "every client to join")
        payload = "p" * 4 * KB
        sent = 0
        for seq in range(6000):
            io.to("room").emit("m", seq, payload)
            sent += 1
            if seq % 10 == 9:
                io.to("room").volatile.emit("v", payload)
                await asyncio.sleep(0.003)
                if len(disconnects) >= n_slow and seq >= 400:
                    break
        await asyncio.sleep(0.5)
        io.to("room").emit("end")
        result = (await node).check()
        got = result.events("got")
        assert len(got) == n_fast
        for line in got:
            assert line["count"] == sent and line["in_order"], (line, sent)
            assert line["id"] not in disconnects or disconnects[line["id"]][0] == "client namespace disconnect"
        fast_ids = {line["id"] for line in got}
        slow_sids = [sid for sid in joined if sid not in fast_ids]
        assert len(slow_sids) == n_slow
        for sid in slow_sids:
            assert disconnects[sid][0] == "transport error", disconnects
            assert "write buffer overflow" in str(descriptions[sid]), descriptions
            assert f"max_buffered_bytes={cap}" in str(descriptions[sid])
        stats = io.engine.stats
        assert stats.slow_consumer_disconnects == n_slow
        assert stats.volatile_dropped >= n_slow
    finally:
        for c in slow:
            c.close()
        if not node.done():
            node.cancel()
        await _stop(server, task)


async def test_deflate_under_asgi_is_the_asgi_servers(free_port: int) -> None:
    """uvicorn negotiates permessage-deflate itself and compresses every message, whatever fastsio says."""
    import zlib

    from raw import ws_open

    io = fastsio.Server(per_message_deflate=False)
    connected: list[Any] = []
    io.on("connection", lambda socket: connected.append(socket))
    server, task = await _serve(fastsio.ASGIApp(io), free_port)
    ws = None
    try:
        ws = await ws_open(free_port, "/socket.io/?EIO=4&transport=websocket",
                           extra={"Sec-WebSocket-Extensions": "permessage-deflate"})
        assert "permessage-deflate" in (ws.response.header("sec-websocket-extensions") or "")
        inflater = zlib.decompressobj(-15)  # uvicorn keeps its compression context (no no_context_takeover asked)

        async def recv_text() -> str:
            while True:
                opcode, payload, compressed = await ws.recv_frame(10)
                assert opcode == 1, (opcode, payload)
                assert compressed, payload  # every message: no threshold, fastsio's option does not apply
                assert isinstance(payload, bytes)
                text = inflater.decompress(payload + b"\x00\x00\xff\xff").decode()
                if text != "2":
                    return text
                await ws.send_text("3")

        assert (await recv_text()).startswith("0{")
        await ws.send_text("40")
        assert (await recv_text()).startswith("40{")
        await wait_for(lambda: bool(connected), 5, "the socket")
        io.emit("m", "small")
        io.compress(False).emit("m", "not compressed? ASGI has no way to say so")
        assert await recv_text() == '42["m","small"]'
        assert await recv_text() == '42["m","not compressed? ASGI has no way to say so"]'
    finally:
        if ws is not None:
            await ws.close()
        await _stop(server, task)
