"""Slow consumers: bounded, explained, configurable (issue 11, section 2).

Clients that stop reading are real sockets with a tiny receive buffer that the
test never reads from; fast clients are npm ``socket.io-client`` processes
that read everything. Caps are small so the tests are quick:
``drop_volatile_above`` past which volatile packets are dropped for a client,
``max_buffered_bytes`` past which it is disconnected with "transport error"
(and close code 1008 when the socket can still take a frame).
"""
from __future__ import annotations

import asyncio
import socket
from typing import Any, Union

import orjson
import pytest

from fastsio._impl import eio_codec, ws_frames

from raw import HOST, PATH, EngineFixture, build_request, upgrade_request, wait_for

pytestmark = pytest.mark.timeout(90)

KB = 1024
MB = 1024 * 1024


class SlowClient:
    """A WebSocket client (Engine.IO or Socket.IO) that stops reading once it is set up."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)
        self.parser = ws_frames.FrameParser(1 << 30, max_fragments=1 << 30, client_side=True, allow_rsv1=True)
        self.buf = b""
        self.frames: list[tuple[int, Union[str, bytes], bool]] = []

    async def open(self, port: int, target: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.sock_connect(self.sock, (HOST, port))
        await loop.sock_sendall(self.sock, upgrade_request(target))
        while b"\r\n\r\n" not in self.buf:
            self.buf += await asyncio.wait_for(loop.sock_recv(self.sock, 65536), 5)
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buf = b""
        self.frames.extend(self.parser.feed(rest))

    async def recv_text(self, timeout: float = 5.0) -> str:
        loop = asyncio.get_running_loop()
        while True:
            while self.frames:
                opcode, payload, _ = self.frames.pop(0)
                if opcode == 1:
                    assert isinstance(payload, str)
                    if payload == "2":  # ping: answer, keep going
                        await loop.sock_sendall(self.sock, ws_frames.build_frame(1, "3", mask=b"abcd"))
                        continue
                    return payload
                if opcode == 8:
                    raise EOFError(ws_frames.parse_close(payload))
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
            if not data:
                raise EOFError("closed")
            self.frames.extend(self.parser.feed(data))

    async def send_text(self, text: str) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, ws_frames.build_frame(1, text, mask=b"abcd"))

    async def drain_to_close(self, timeout: float = 20.0) -> int:
        """Read again, everything, until the close frame: its code (-1 if the connection just ended)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for opcode, payload, _ in self.frames:
                if opcode == 8:
                    return int(ws_frames.parse_close(payload)[0])
            self.frames.clear()
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 20), max(0.01, deadline - loop.time()))
            except (ConnectionError, OSError):
                return -1
            if not data:
                return -1
            self.frames.extend(self.parser.feed(data))

    def close(self) -> None:
        self.sock.close()


async def test_websocket_slow_consumer_gets_1008_and_transport_error() -> None:
    fx = await EngineFixture.start(max_buffered_bytes=1 * MB, drop_volatile_above=256 * KB, drain_timeout=10)
    slow = SlowClient()
    try:
        await slow.open(fx.port, f"{PATH}?EIO=4&transport=websocket")
        await wait_for(lambda: len(fx.sockets) == 1, 5, "the session")
        sock = fx.sockets[0]
        reasons: list[tuple[str, Any]] = []
        sock.on("close", lambda reason, desc=None: reasons.append((reason, desc)))
        http = fx.engine.http_server()
        conn = next(iter(http.connections))
        chunk = b"x" * 32 * KB
        worst = 0
        for _ in range(2000):
            if sock.ready_state != "open":
                break
            sock.send(chunk)
            await asyncio.sleep(0)
            worst = max(worst, conn._wbuf.buffered, conn.transport.get_write_buffer_size())
        assert reasons, "the slow consumer was never disconnected"
        reason, desc = reasons[0]
        assert reason == "transport error"
        assert "write buffer overflow" in str(desc) and "max_buffered_bytes=1048576" in str(desc)
        # what the server held for it stayed under the cap (plus one message)
        assert worst <= 1 * MB + len(chunk) + 64, worst
        assert fx.engine.stats.slow_consumer_disconnects == 1
        # the client reads again: everything that was accepted, then a close frame 1008
        assert await slow.drain_to_close() == 1008
        await wait_for(lambda: not http.connections, 5, "the connection to go")
    finally:
        slow.close()
        await fx.stop()


async def test_polling_slow_consumer_says_why() -> None:
    fx = await EngineFixture.start(max_buffered_bytes=256 * KB)
    try:
        from raw import polling_handshake

        sid, _, _ = await polling_handshake(fx.port)
        sock = fx.engine.clients[sid]
        reasons: list[tuple[str, Any]] = []
        sock.on("close", lambda reason, desc=None: reasons.append((reason, desc)))
        for _ in range(20):
            sock.send("y" * 32 * KB)
        assert reasons and reasons[0][0] == "transport error"
        assert "write buffer overflow" in str(reasons[0][1])
        assert fx.engine.stats.slow_consumer_disconnects == 1
    finally:
        await fx.stop()


async def test_volatile_dropped_past_drop_volatile_above() -> None:
    fx = await EngineFixture.start(max_buffered_bytes=64 * MB, drop_volatile_above=128 * KB, drain_timeout=1)
    slow = SlowClient()
    try:
        await slow.open(fx.port, f"{PATH}?EIO=4&transport=websocket")
        await wait_for(lambda: len(fx.sockets) == 1, 5, "the session")
        sock = fx.sockets[0]
        http = fx.engine.http_server()
        conn = next(iter(http.connections))
        for _ in range(200):
            sock.send(b"z" * 32 * KB)
            await asyncio.sleep(0)
        await wait_for(lambda: conn._wbuf.buffered > 128 * KB, 5, "output to pile up")
        assert not sock.writable
        assert sock.ready_state == "open"
    finally:
        slow.close()
        await fx.stop()


async def _sio_slow_client(port: int) -> SlowClient:
    c = SlowClient()
    await c.open(port, "/socket.io/?EIO=4&transport=websocket")
    opened = await c.recv_text()
    assert opened.startswith("0"), opened
    await c.send_text("40")
    connected = await c.recv_text()
    assert connected.startswith("40"), connected
    await c.send_text('421["join"]')
    ack = await c.recv_text()
    assert ack.startswith("431"), ack
    return c


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_broadcast_storm_bounds_memory_and_drops_only_slow_clients(sio_server: Any, run_node: Any,
                                                                        mode: str) -> None:
    cap = 512 * KB
    io, port = await sio_server(max_buffered_bytes=cap, drop_volatile_above=128 * KB, drain_timeout=1,
                                ping_interval=60, ping_timeout=60)
    disconnects: dict[str, str] = {}
    joined: list[str] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("join")
        def join() -> str:
            socket.join("room")
            joined.append(socket.id)
            return "ok"

        @socket.on("disconnect")
        def on_disconnect(reason: str, *rest: Any) -> None:
            disconnects[socket.id] = reason

    n_fast, n_slow = 3, 3
    node = asyncio.ensure_future(run_node("storm_client.mjs", f"port={port}", f"n={n_fast}", f"mode={mode}",
                                          "timeout_ms=60000", timeout=70))
    slow = [await _sio_slow_client(port) for _ in range(n_slow)]
    try:
        await wait_for(lambda: len(joined) == n_fast + n_slow, 20, "every client to join")
        http = io.engine.http_server()
        payload = "p" * 4 * KB
        # polling clients fetch one payload per round trip: paced so that a fast one keeps up
        total, pause = (1500, 0.002) if mode == "websocket" else (800, 0.03)
        worst = 0
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for seq in range(total):
            io.to("room").emit("m", seq, payload)
            if seq % 10 == 9:
                io.to("room").volatile.emit("v", payload)
                await asyncio.sleep(pause)
                for c in http.connections:
                    worst = max(worst, c._wbuf.buffered, c.transport.get_write_buffer_size() if c.transport else 0)
        storm = loop.time() - t0
        await asyncio.sleep(0.5)
        io.to("room").emit("end")
        result = await node
        result.check()
        got = result.events("got")
        assert len(got) == n_fast
        for line in got:
            # every fast client got every non-volatile broadcast, in order, and was not dropped
            assert line["count"] == total and line["in_order"], line
            assert disconnects.get(line["id"]) in (None, "client namespace disconnect"), (line, disconnects)
        fast_ids = {line["id"] for line in got}
        slow_sids = [sid for sid in joined if sid not in fast_ids]
        assert len(slow_sids) == n_slow
        for sid in slow_sids:
            assert disconnects.get(sid) == "transport error", disconnects
        # server memory for each connection stayed bounded by the cap (plus one message)
        assert worst <= cap + 8 * KB, worst
        stats = io.engine.stats
        assert stats.slow_consumer_disconnects == n_slow
        assert stats.volatile_dropped >= n_slow
        print(f"storm {mode}: {total} x {len(payload)} B to {n_fast + n_slow} clients in {storm:.2f}s, "
              f"worst pending {worst} B, stats {stats}")
    finally:
        for c in slow:
            c.close()
        if not node.done():
            node.cancel()


async def test_asgi_bridge_is_bounded_and_disconnects_slow_consumers(free_port: int) -> None:
    import uvicorn

    import fastsio

    io = fastsio.Server(max_buffered_bytes=512 * KB, drop_volatile_above=128 * KB, ping_interval=60, ping_timeout=60)
    sockets: list[Any] = []
    reasons: list[tuple[str, Any]] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        sockets.append(socket)
        # the engine's close event carries the description too
        socket.conn.on("close", lambda reason, desc=None: reasons.append((reason, desc)))

    config = uvicorn.Config(fastsio.ASGIApp(io), host=HOST, port=free_port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    slow = SlowClient()
    try:
        await wait_for(lambda: server.started, 10, "uvicorn")
        await slow.open(free_port, "/socket.io/?EIO=4&transport=websocket")
        assert (await slow.recv_text()).startswith("0")
        await slow.send_text("40")
        assert (await slow.recv_text()).startswith("40")
        await wait_for(lambda: len(sockets) == 1, 5, "the socket")
        sock = sockets[0]
        bridge = sock.conn.transport.conn
        payload = "q" * 4 * KB
        worst = 0
        saw_unwritable = False
        for i in range(20000):
            if reasons:
                break
            sock.volatile.emit("v", payload)
            sock.emit("m", i, payload)
            worst = max(worst, bridge.queued)
            saw_unwritable = saw_unwritable or not sock.conn.writable
            if i % 10 == 9:
                await asyncio.sleep(0.001)
        assert reasons and reasons[0][0] == "transport error", reasons
        assert "write buffer overflow" in str(reasons[0][1])
        # the bridge's queue stayed under the cap; volatile packets were dropped on the way
        assert worst <= 512 * KB + 8 * KB, worst
        assert saw_unwritable
        stats = io.engine.stats
        assert stats.slow_consumer_disconnects == 1 and stats.volatile_dropped > 0
    finally:
        slow.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
