"""One ack registry per socket: entries leave when their future is done or cancelled, broadcast
acks are entered only for the sockets the packet reached, a disconnected socket fails at once;
background tasks are tracked (failures logged, cancelled by io.close())."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import socketio
from sio_helpers import connect, future, got

import raw
from fastsio import _tasks
from fastsio.exceptions import AckTimeout


async def test_wait_for_timeouts_leave_no_ack_entry(sio_server: Any, clients: Any) -> None:
    """``asyncio.wait_for(socket.emit_with_ack(...), t)`` timing out removes the entry (was: 100 left)."""
    io, port = await sio_server()
    sockets: "asyncio.Future[Any]" = future()
    io.on("connection", lambda s: sockets.set_result(s) if not sockets.done() else None)
    c = clients()

    @c.on("q")
    async def slow(n: int) -> int:
        await asyncio.sleep(0.5)   # answers after the server stopped waiting
        return n

    await connect(c, port)
    socket = await got(sockets)
    for i in range(100):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(socket.emit_with_ack("q", i), 0.005)
    assert not socket._acks
    # the late answers find nothing and change nothing; a fresh ack still works
    await asyncio.sleep(0.7)
    assert not socket._acks
    assert await asyncio.wait_for(socket.emit_with_ack("q", 7), 5) == 7
    assert not socket._acks


async def test_volatile_broadcast_ack_entered_only_where_delivered(sio_server: Any, clients: Any) -> None:
    """A polling session with no GET pending is skipped by a volatile broadcast: no ack entry for it."""
    io, port = await sio_server()
    sockets: list[Any] = []
    io.on("connection", sockets.append)
    answering = [clients() for _ in range(2)]
    for c in answering:
        c.on("v", lambda: "yes")
        await connect(c, port)
    # a raw polling client that joins "/" and then stops polling
    sid, _, _ = await raw.polling_handshake(port, path="/socket.io/")
    posted = await raw.http_request(port, "POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}",
                                    {"Content-Type": "text/plain;charset=UTF-8"}, b"40")
    assert posted.status == 200
    await raw.wait_for(lambda: len(sockets) == 3, what="three sockets")
    silent = sockets[-1]
    assert silent.conn.transport.name == "polling" and not silent.conn.writable
    answers = await asyncio.wait_for(io.timeout(5).volatile.emit_with_ack("v"), 5)
    assert answers == ["yes", "yes"]
    assert not silent._acks
    assert all(not s._acks for s in sockets)


async def test_emit_with_ack_on_disconnected_socket_fails_at_once(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    sockets: "asyncio.Future[Any]" = future()
    io.on("connection", lambda s: sockets.set_result(s))
    c = clients()
    await connect(c, port)
    socket = await got(sockets)
    socket.disconnect()
    with pytest.raises(AckTimeout, match="disconnected"):
        await asyncio.wait_for(socket.emit_with_ack("q"), 1)   # never resolved before
    errors: "asyncio.Future[Any]" = future()
    socket.timeout(30).emit("q", lambda err, *a: errors.set_result(err))
    assert isinstance(await asyncio.wait_for(errors, 1), AckTimeout)
    assert not socket._acks


async def test_async_broadcast_ack_callback_failure_is_logged(sio_server: Any, clients: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    io, port = await sio_server()
    c = clients()
    c.on("b", lambda: "ok")
    connected: "asyncio.Future[Any]" = future()
    io.on("connection", lambda s: connected.set_result(s))
    await connect(c, port)
    await got(connected)
    called: "asyncio.Future[Any]" = future()

    async def callback(err: Any, responses: Any) -> None:
        called.set_result(responses)
        raise RuntimeError("boom in ack callback")

    with caplog.at_level(logging.ERROR):
        io.timeout(5).emit("b", callback)
        assert await got(called) == ["ok"]
        await asyncio.sleep(0.05)
    assert any("boom in ack callback" in repr(r.exc_info) for r in caplog.records if r.exc_info), caplog.text
    assert not io._tasks


async def test_close_cancels_running_handler_tasks(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    started: "asyncio.Future[Any]" = future()
    cancelled = asyncio.Event()

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("long")
        async def long() -> None:
            started.set_result(True)
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    c = clients()
    await connect(c, port)
    await c.emit("long")
    await got(started)
    assert len(io._tasks) == 1
    before = len(_tasks.ALL)
    await asyncio.wait_for(io.close(timeout=1), 5)
    assert cancelled.is_set()
    assert not io._tasks
    assert len(_tasks.ALL) < before


async def test_python_client_timeout_ack_after_disconnect(sio_server: Any) -> None:
    """An ack still pending when the client leaves fails with AckTimeout at once, entry gone."""
    io, port = await sio_server()
    sockets: "asyncio.Future[Any]" = future()
    io.on("connection", lambda s: sockets.set_result(s))
    c = socketio.AsyncClient(reconnection=False)

    @c.on("never")
    async def never() -> None:
        await asyncio.sleep(30)

    await connect(c, port)
    socket = await got(sockets)
    pending = socket.emit_with_ack("never")
    await asyncio.sleep(0.05)
    assert len(socket._acks) == 1
    await c.disconnect()
    with pytest.raises(AckTimeout):
        await asyncio.wait_for(pending, 5)
    assert not socket._acks
