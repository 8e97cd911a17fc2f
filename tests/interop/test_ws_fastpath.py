"""The broadcast fast path for every kind of WebSocket client, with real npm clients (issue 14 A).

v4 clients with permessage-deflate (threshold 0: every message compressed),
socket.io-client v2 (Engine.IO v3) on WebSocket and across the polling ->
WebSocket upgrade, and a deflate session whose fast path is turned off
(a ``packet_create`` listener) and on again mid-stream. Each client checks
it got every broadcast once, in order, with the right payload
(tests/peers/ws_fastpath_client.mjs); the server side checks the sessions'
fast path (``EngineSocket._direct``) and counts the broadcasts that went the
per-recipient Python way (``EngineSocket.send_prepared``).
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

import pytest

from fastsio._impl import fanout
from fastsio.engineio.socket import EngineSocket
from fastsio.http import HttpConnection

CLIENTS = 3
COUNT = 90


def payload(seq: int) -> Any:
    if seq % 5 == 3:
        return bytes([seq % 256]) * 10000
    if seq % 5 == 4:
        return "abc" * 1000
    return f"m{seq}"


class SlowPath:
    """Counts the broadcasts handed to sessions one by one (the Python path)."""

    def __init__(self, monkeypatch: Any) -> None:
        self.calls = 0
        real = EngineSocket.send_prepared

        def counting(sock: EngineSocket, message: Any) -> None:
            self.calls += 1
            real(sock, message)

        monkeypatch.setattr(EngineSocket, "send_prepared", counting)


async def _serve(io: Any, count: int, clients: int, *, before: Optional[Callable[[int], Any]] = None,
                 pace: int = 3) -> list[Any]:
    """Wait for every client's "go", then broadcast ``msg`` 0..count-1 and ``end``; the engine sessions."""
    ready: list[Any] = []
    all_ready = asyncio.Event()

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("go")
        def go(index: int, transport: str) -> None:
            ready.append(socket._conn)
            if len(ready) == clients:
                all_ready.set()

    await asyncio.wait_for(all_ready.wait(), 15)

    async def stream() -> None:
        for seq in range(count):
            if before is not None:
                r = before(seq)
                if asyncio.iscoroutine(r):
                    await r
            if seq % 5 == 4:
                io.compress(False).emit("msg", seq, payload(seq))
            else:
                io.emit("msg", seq, payload(seq))
            if seq % pace == 0:
                # a few broadcasts per loop iteration: bursts and singles both
                await asyncio.sleep(0.002)
        io.emit("end", count)

    await stream()
    return ready


async def test_deflate_threshold_0_every_kind_from_the_fast_path(sio_server: Any, run_node: Any,
                                                                monkeypatch: Any) -> None:
    slow = SlowPath(monkeypatch)
    io, port = await sio_server(per_message_deflate={"threshold": 0})
    node = asyncio.ensure_future(run_node("ws_fastpath_client.mjs", f"port={port}", "deflate=1",
                                          f"clients={CLIENTS}", timeout=30))
    sessions: list[Any] = []

    def check(seq: int) -> None:
        if seq == 0:
            sessions.extend(s for s in io.engine.clients.values())
            for s in sessions:
                assert s.transport.deflate and s._direct.target is not None
                assert s._direct.kind == fanout.KIND_DEFLATE and s._direct.threshold == 0

    flushes = []
    real_flush = HttpConnection._flush
    monkeypatch.setattr(HttpConnection, "_flush", lambda conn: flushes.append(conn) or real_flush(conn))
    await _serve(io, COUNT, CLIENTS, before=check)
    # the flush queue wrote every open connection's output itself, not through HttpConnection._flush
    assert flushes == []
    run = (await node).check()
    assert len(run.events("client")) == CLIENTS
    assert all(c["count"] == COUNT and c["deflate"] for c in run.events("client")), run.describe()
    assert len(sessions) == CLIENTS
    assert slow.calls == 0


async def test_deflate_session_fast_path_off_and_on_keeps_order(sio_server: Any, run_node: Any,
                                                                monkeypatch: Any) -> None:
    slow = SlowPath(monkeypatch)
    io, port = await sio_server(per_message_deflate={"threshold": 0})
    node = asyncio.ensure_future(run_node("ws_fastpath_client.mjs", f"port={port}", "deflate=1",
                                          f"clients={CLIENTS}", timeout=30))
    seen: list[Any] = []

    def watcher(packet: Any) -> None:
        seen.append(packet)

    def toggle(seq: int) -> None:
        sessions = list(io.engine.clients.values())
        if seq == COUNT // 3:
            for s in sessions:
                s.on("packet_create", watcher)
                assert s._direct.target is None
        elif seq == 2 * COUNT // 3:
            for s in sessions:
                s.off("packet_create", watcher)
                assert s._direct.target is not None and s._direct.kind == fanout.KIND_DEFLATE

    await _serve(io, COUNT, CLIENTS, before=toggle)
    run = (await node).check()
    assert [c["count"] for c in run.events("client")] == [COUNT] * CLIENTS, run.describe()
    watched = 2 * COUNT // 3 - COUNT // 3
    # only the broadcasts while watched went one by one; the listener saw each of their packets
    assert slow.calls == watched * CLIENTS
    assert len([p for p in seen if p["type"] == 4]) >= watched * CLIENTS


@pytest.mark.parametrize("mode,deflate", [("websocket", False), ("upgrade", True)])
async def test_v2_clients_get_broadcasts_from_the_fast_path(sio_server: Any, run_node: Any, monkeypatch: Any,
                                                            mode: str, deflate: bool) -> None:
    slow = SlowPath(monkeypatch)
    options: dict[str, Any] = {"allow_eio3": True}
    if deflate:
        options["per_message_deflate"] = {"threshold": 0}
    io, port = await sio_server(**options)
    node = asyncio.ensure_future(run_node("ws_fastpath_client.mjs", f"port={port}", "client=v2", f"mode={mode}",
                                          f"clients={CLIENTS}", timeout=30))
    on_ws_at: dict[int, int] = {}
    kind = fanout.KIND_EIO3 | (fanout.KIND_DEFLATE if deflate else 0)

    async def pace(seq: int) -> None:
        if mode == "upgrade" and seq == COUNT // 2:
            # the second half after the upgrade (it is under way during the first half)
            for _ in range(500):
                if all(s.transport.name == "websocket" for s in io.engine.clients.values()):
                    break
                await asyncio.sleep(0.01)
        if seq == COUNT // 2:
            on_ws_at[seq] = slow.calls
            for s in io.engine.clients.values():
                assert s.protocol == 3 and s.transport.name == "websocket"
                assert s._direct.target is not None and s._direct.kind == kind

    await _serve(io, COUNT, CLIENTS, before=pace, pace=1 if mode == "upgrade" else 3)
    run = (await node).check()
    clients = run.events("client")
    assert [c["count"] for c in clients] == [COUNT] * CLIENTS, run.describe()
    assert all(c["transport"] == "websocket" for c in clients)
    if mode == "upgrade":
        assert all(c["upgraded"] for c in clients)
        assert on_ws_at[COUNT // 2] > 0  # the polling half went one by one
    # once on the WebSocket, nothing goes the per-recipient way
    assert slow.calls == on_ws_at[COUNT // 2]
