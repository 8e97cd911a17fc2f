"""Namespace: middlewares, connection events, broadcast helpers, server-side emit."""
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


def test_attributes(io: fastsio.Server) -> None:
    chat = io.of("/chat")
    assert chat.name == "/chat" and chat.sockets == {} and chat.adapter.nsp is chat
    sock = the_socket(io, connect(io, "/chat"), "/chat")
    assert chat.sockets == {sock.id: sock} and sock.nsp is chat


def test_node_style_middleware_accepts_and_refuses(io: fastsio.Server) -> None:
    order: list[str] = []

    def first(socket: Any, next_: Any) -> None:
        order.append("first")
        socket.data["user"] = socket.handshake.auth.get("user")
        next_()

    def second(socket: Any, next_: Any) -> None:
        order.append("second")
        if socket.data["user"] is None:
            err = Exception("who are you")
            err.data = {"hint": "log in"}  # type: ignore[attr-defined]
            next_(err)
        else:
            next_()

    io.use(first).use(second)
    ok = connect(io, auth={"user": "ann"})
    assert ok.packets()[0].type == C.CONNECT
    bad = connect(io, auth={})
    (p,) = bad.packets()
    assert p.type == C.CONNECT_ERROR and p.data == {"message": "who are you", "data": {"hint": "log in"}}
    assert order == ["first", "second", "first", "second"]
    assert len(io.sockets.sockets) == 1 and not io.sockets._pre_connect
    assert bad.ready_state == "open"


async def test_async_middleware_raising(io: fastsio.Server) -> None:
    @io.use
    async def check(socket: Any) -> None:
        await asyncio.sleep(0)
        if socket.handshake.auth.get("token") != "good":
            raise fastsio.ConnectionRejected("denied")

    seen: list[Any] = []
    io.on("connection", seen.append)
    bad = connect(io, auth={"token": "bad"})
    good = connect(io, auth={"token": "good"})
    for _ in range(10):
        await asyncio.sleep(0)
    assert bad.packets()[0].data == {"message": "denied"}
    assert good.packets()[0].type == C.CONNECT and len(seen) == 1


def test_middleware_exception_refuses(io: fastsio.Server) -> None:
    def boom(socket: Any, next_: Any) -> None:
        raise RuntimeError("boom")

    io.use(boom)
    conn = connect(io)
    assert conn.packets()[0].data == {"message": "boom"}


async def test_client_gone_during_middleware(io: fastsio.Server) -> None:
    gate = asyncio.Event()

    @io.use
    async def slow(socket: Any) -> None:
        await gate.wait()

    conn = connect(io)
    await asyncio.sleep(0)
    conn.drop()
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert not io.sockets.sockets and not io.sockets._pre_connect


def test_middleware_can_join_rooms(io: fastsio.Server) -> None:
    def mw(socket: Any, next_: Any) -> None:
        socket.join("early")
        next_()

    io.use(mw)
    sock = the_socket(io, connect(io))
    assert "early" in sock.rooms


def test_connect_packet_goes_before_handlers_run(io: fastsio.Server) -> None:
    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.emit("hello")

    conn = connect(io)
    p1, p2 = conn.packets()
    assert p1.type == C.CONNECT and p2.data == ["hello"]


def test_namespace_emit_and_modifiers(io: fastsio.Server) -> None:
    chat = io.of("/chat")
    conn = connect(io, "/chat")
    sock = the_socket(io, conn, "/chat")
    conn.packets()
    chat.emit("a")
    chat.send("s")
    chat.to(sock.id).emit("b")
    chat.in_([sock.id]).emit("c")
    chat.except_(sock.id).emit("never")
    chat.volatile.emit("d")
    chat.local.emit("e")
    chat.compress(False).emit("f")
    assert [(p.nsp, p.data) for p in conn.packets()] == [
        ("/chat", ["a"]), ("/chat", ["message", "s"]), ("/chat", ["b"]), ("/chat", ["c"]),
        ("/chat", ["d"]), ("/chat", ["e"]), ("/chat", ["f"]),
    ]


def test_server_side_emit(io: fastsio.Server) -> None:
    got: list[Any] = []
    io.sockets.server_side_emit("x", 1)
    io.sockets.server_side_emit("x", 1, lambda err, res: got.append((err, res)))
    assert got == [(None, [])]
    with pytest.raises(ValueError):
        io.sockets.server_side_emit("connection")
    # events coming from other servers reach the namespace's listeners
    io.sockets.on("hello", lambda *a: got.append(a))
    io.sockets._on_server_side_emit(["hello", 1, 2])
    assert got[-1] == (1, 2)


async def test_server_side_emit_with_ack_error(io: fastsio.Server) -> None:
    class ClusterAdapter(fastsio.InMemoryAdapter):
        def server_side_emit(self, packet: list[Any]) -> None:
            packet[-1](fastsio.AckTimeout("timeout"), ["partial"])

    io.adapter(ClusterAdapter)
    with pytest.raises(TimeoutError) as info:
        await io.server_side_emit_with_ack("q")
    assert info.value.responses == ["partial"]  # type: ignore[attr-defined]


def test_cleanup_empty_child_namespaces() -> None:
    import re

    io = fastsio.Server(cleanup_empty_child_namespaces=True)
    parent = io.of(re.compile(r"^/tmp-"))
    conn = connect(io, "/tmp-1")
    child = io._nsps["/tmp-1"]
    assert child in parent.children
    the_socket(io, conn, "/tmp-1").disconnect()
    assert "/tmp-1" not in io._nsps and child not in parent.children


def test_children_kept_without_cleanup() -> None:
    import re

    io = fastsio.Server()
    io.of(re.compile(r"^/tmp-"))
    conn = connect(io, "/tmp-1")
    the_socket(io, conn, "/tmp-1").disconnect()
    assert "/tmp-1" in io._nsps


def test_parent_emit_and_to_reach_children() -> None:
    import re

    io = fastsio.Server()
    parent = io.of(re.compile(r"^/c\d$"))
    c1, c2 = connect(io, "/c1"), connect(io, "/c2")
    s1 = the_socket(io, c1, "/c1")
    s1.join("r")
    c1.packets(), c2.packets()
    parent.emit("all")
    parent.to("r").emit("room")
    assert [(p.nsp, p.data) for p in c1.packets()] == [("/c1", ["all"]), ("/c1", ["room"])]
    assert [(p.nsp, p.data) for p in c2.packets()] == [("/c2", ["all"])]
