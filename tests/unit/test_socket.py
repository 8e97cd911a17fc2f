"""Socket: ids, handshake, emit/acks, packet middlewares, catch-all listeners, disconnection."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

import fastsio
from fastsio._impl import sio_codec as C

from sio_fakes import FakeConn, connect, the_socket


@pytest.fixture
def io() -> fastsio.Server:
    return fastsio.Server()


def test_connect_packet_and_handshake(io: fastsio.Server) -> None:
    conn = connect(io, auth={"token": "t"})
    (p,) = conn.packets()
    sock = the_socket(io, conn)
    assert p.type == C.CONNECT and p.data == {"sid": sock.id}
    assert len(sock.id) == 20 and sock.id != conn.id
    hs = sock.handshake
    assert hs.auth == {"token": "t"} and hs.query == {"EIO": "4", "transport": "websocket", "foo": "bar"}
    assert hs.address == "10.0.0.1" and hs.xdomain is True and hs.secure is False
    assert hs.url.startswith("/socket.io/") and isinstance(hs.issued, int) and "GMT" in hs.time
    assert hs.to_dict()["auth"] == {"token": "t"}
    assert sock.rooms == {sock.id} and sock.connected and not sock.recovered
    assert sock.request is conn.request and sock.conn is conn and sock.client.conn is conn


def test_socket_has_slots(io: fastsio.Server) -> None:
    sock = the_socket(io, connect(io))
    with pytest.raises(AttributeError):
        sock.whatever = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        sock.handshake.whatever = 1  # type: ignore[attr-defined]


def test_emit_plain_and_binary(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    sock.emit("hello", 1, {"a": [b"\x01"]})
    sock.send("m")
    p1, p2 = conn.packets()
    assert p1.type in (C.EVENT, C.BINARY_EVENT) and p1.data == ["hello", 1, {"a": [b"\x01"]}] and p1.id is None
    assert p2.data == ["message", "m"]


@pytest.mark.parametrize("name", sorted(fastsio.socket.RESERVED_EVENTS))
def test_reserved_names_raise(io: fastsio.Server, name: str) -> None:
    sock = the_socket(io, connect(io))
    with pytest.raises(ValueError):
        sock.emit(name)


def test_incoming_event_and_return_value_ack(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    sock.on("sum", lambda a, b: a + b)
    sock.on("multi", lambda: (1, b"x"))
    sock.on("none", lambda: None)
    calls: list[Any] = []
    sock.on("noack", lambda *a: calls.append(a))
    conn.recv(C.EVENT, "/", ["sum", 2, 3], 7)
    conn.recv(C.EVENT, "/", ["multi"], 8)
    conn.recv(C.EVENT, "/", ["none"], 9)
    conn.recv(C.EVENT, "/", ["noack", "x"])
    acks = conn.packets()
    assert [(p.type in (C.ACK, C.BINARY_ACK), p.id, p.data) for p in acks] == [
        (True, 7, [5]),
        (True, 8, [1, b"x"]),
        (True, 9, []),
    ]
    assert calls == [("x",)]


async def test_coroutine_handler_answers_ack(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()

    @sock.on("slow")
    async def slow(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    conn.recv(C.EVENT, "/", ["slow", 4], 1)
    assert conn.packets() == []
    for _ in range(5):
        await asyncio.sleep(0)
    (ack,) = conn.packets()
    assert ack.type == C.ACK and ack.id == 1 and ack.data == [8]


async def test_server_ack_callback_styles(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    got: list[Any] = []
    sock.emit("q", 1, lambda *args: got.append(("plain", args)))
    sock.timeout(5).emit("q", 2, lambda *args: got.append(("timed", args)))
    p1, p2 = conn.packets()
    assert p1.id is not None and p2.id is not None and p1.id != p2.id
    conn.recv(C.ACK, "/", ["a", 1], p1.id)
    conn.recv(C.ACK, "/", ["b"], p2.id)
    conn.recv(C.ACK, "/", ["dup"], p2.id)  # unknown id: ignored
    assert got == [("plain", ("a", 1)), ("timed", (None, "b"))]


async def test_emit_with_ack_result_and_timeout(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    fut = sock.emit_with_ack("q")
    (p,) = conn.packets()
    conn.recv(C.ACK, "/", ["answer"], p.id)
    assert await fut == "answer"
    fut = sock.emit_with_ack("q")
    (p,) = conn.packets()
    conn.recv(C.ACK, "/", [1, 2], p.id)
    assert await fut == (1, 2)
    with pytest.raises(TimeoutError):
        await sock.timeout(0.01).emit_with_ack("q")
    cb: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    sock.timeout(0.01).emit("q", lambda err, *a: cb.set_result(err))
    assert isinstance(await cb, fastsio.AckTimeout)
    assert not sock._acks


async def test_pending_acks_fail_on_disconnect(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    untimed = sock.emit_with_ack("q")
    timed = sock.timeout(100).emit_with_ack("q")
    conn.drop()
    with pytest.raises(fastsio.AckTimeout):
        await untimed
    with pytest.raises(fastsio.AckTimeout):
        await timed


def test_flags_are_consumed_by_one_emit(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    conn.writable = False
    sock.volatile.emit("dropped")
    sock.emit("kept")
    assert [p.data for p in conn.packets()] == [["kept"]]
    assert sock.compress(False) is sock


def test_join_leave_rooms(io: fastsio.Server) -> None:
    sock = the_socket(io, connect(io))
    sock.join("a")
    sock.join(["b", "c"])
    sock.leave("b")
    assert sock.rooms == {sock.id, "a", "c"}
    assert io.sockets.adapter.rooms["a"] == {sock.id}


def test_broadcast_excludes_sender(io: fastsio.Server) -> None:
    c1, c2, c3 = connect(io), connect(io), connect(io)
    s1, s2, s3 = (the_socket(io, c) for c in (c1, c2, c3))
    for c in (c1, c2, c3):
        c.packets()
    s2.join("r")
    s1.join("r")
    s1.broadcast.emit("b")
    s1.to("r").emit("t")
    s1.except_(s3.id).emit("e")
    s1.local.emit("l")
    assert c1.packets() == []
    assert [p.data for p in c2.packets()] == [["b"], ["t"], ["e"], ["l"]]
    assert [p.data for p in c3.packets()] == [["b"], ["l"]]


def test_packet_middleware(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    seen: list[Any] = []
    errors: list[Any] = []

    def mw(packet: list[Any], next_: Any) -> None:
        if packet[0] == "bad":
            next_(ValueError("bad"))
        else:
            packet[1] = packet[1].upper()
            next_()

    sock.use(mw)
    sock.on("error", errors.append)
    sock.on("msg", seen.append)
    sock.on("bad", seen.append)
    conn.recv(C.EVENT, "/", ["msg", "hi"])
    conn.recv(C.EVENT, "/", ["bad", "x"])
    assert seen == ["HI"]
    assert [str(e) for e in errors] == ["bad"]


async def test_async_packet_middleware_refuses_by_raising(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    errors: list[Any] = []
    seen: list[Any] = []

    @sock.use
    async def mw(packet: list[Any]) -> None:
        if packet[0] == "bad":
            raise PermissionError("no")

    sock.on("error", errors.append)
    sock.on("ok", seen.append)
    conn.recv(C.EVENT, "/", ["bad", 1])
    conn.recv(C.EVENT, "/", ["ok", 2])
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen == [2] and isinstance(errors[0], PermissionError)


def test_catch_all_listeners(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    inc: list[Any] = []
    out: list[Any] = []
    first = lambda *a: inc.append(("first", a))  # noqa: E731
    sock.on_any(lambda *a: inc.append(("any", a)))
    sock.prepend_any(first)
    assert sock.listeners_any()[0] is first
    conn.recv(C.EVENT, "/", ["ev", 1])
    assert inc == [("first", ("ev", 1)), ("any", ("ev", 1))]
    sock.off_any(first)
    assert len(sock.listeners_any()) == 1
    sock.off_any()
    assert sock.listeners_any() == []

    lst = lambda *a: out.append(a)  # noqa: E731
    sock.on_any_outgoing(lst)
    sock.prepend_any_outgoing(lambda *a: out.append(("pre",) + a))
    sock.emit("direct", 1)
    io.emit("bcast", 2)
    assert out == [("pre", "direct", 1), ("direct", 1), ("pre", "bcast", 2), ("bcast", 2)]
    assert len(sock.listeners_any_outgoing()) == 2
    sock.off_any_outgoing(lst)
    sock.off_any_outgoing()
    assert sock.listeners_any_outgoing() == [] and not io.sockets._outgoing_sids


def test_emitter_methods(io: fastsio.Server) -> None:
    sock = the_socket(io, connect(io))
    fn = lambda: None  # noqa: E731
    sock.on("a", fn)
    sock.once("b", fn)
    assert "a" in sock.event_names() and sock.listeners("a") == [fn]
    sock.off("a", fn)
    sock.remove_listener("b", fn)
    assert sock.listeners("a") == [] and sock.listeners("b") == []
    sock.on("c", fn)
    sock.remove_all_listeners()
    assert sock.event_names() == []


def test_disconnect_from_server(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    sock.join("room")
    events: list[Any] = []
    sock.on("disconnecting", lambda r: events.append(("disconnecting", r, set(sock.rooms))))
    sock.on("disconnect", lambda r: events.append(("disconnect", r, set(sock.rooms))))
    sock.disconnect()
    (p,) = conn.packets()
    assert p.type == C.DISCONNECT
    assert events == [
        ("disconnecting", "server namespace disconnect", {sock.id, "room"}),
        ("disconnect", "server namespace disconnect", set()),
    ]
    assert sock.disconnected and not io.sockets.sockets and "room" not in io.sockets.adapter.rooms
    assert conn.ready_state == "open"  # only the namespace
    sock.join("again")  # no-op once disconnected
    assert "again" not in io.sockets.adapter.rooms
    sock.disconnect()  # idempotent


def test_disconnect_close_closes_every_namespace(io: fastsio.Server) -> None:
    io.of("/other")
    conn = connect(io)
    conn.recv(C.CONNECT, "/other")
    s1, s2 = the_socket(io, conn), the_socket(io, conn, "/other")
    reasons: list[str] = []
    s1.on("disconnect", reasons.append)
    s2.on("disconnect", reasons.append)
    s1.disconnect(True)
    assert reasons == ["server namespace disconnect", "server namespace disconnect"]
    assert conn.ready_state == "closed"


@pytest.mark.parametrize("reason", ["transport close", "ping timeout", "transport error"])
def test_transport_reasons(io: fastsio.Server, reason: str) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    reasons: list[str] = []
    sock.on("disconnect", reasons.append)
    conn.drop(reason)
    assert reasons == [reason]


def test_client_namespace_disconnect(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    reasons: list[str] = []
    sock.on("disconnect", reasons.append)
    conn.recv(C.DISCONNECT, "/")
    assert reasons == ["client namespace disconnect"]
    assert conn.ready_state == "open"


def test_events_after_disconnect_are_ignored(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    seen: list[Any] = []
    sock.on("x", seen.append)
    sock._onclose("transport close")
    sock._dispatch(["x", 1], None)
    assert seen == []


def test_client_cannot_fire_reserved_events(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    seen: list[Any] = []
    sock.on("disconnect", lambda *a: seen.append(("disconnect", a)))
    sock.on("error", lambda *a: seen.append(("error", a)))
    # the codec already refuses these; the socket checks again for other parsers
    sock._onevent(["disconnect", "fake"], None)
    sock._onevent([1, 2], None)
    sock._onevent(["error", "from client"], None)  # not reserved on the client side, as Node
    assert seen == [("error", ("from client",))] and sock.connected
