"""BroadcastOperator immutability, targets, acks; RemoteSocket."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

import fastsio
from fastsio._impl import sio_codec as C
from fastsio.broadcast import BroadcastOperator, RemoteSocket

from sio_fakes import connect, the_socket


def test_operator_is_immutable() -> None:
    io = fastsio.Server()
    base = io.to("a")
    derived = base.to(["b", "c"]).except_("d").timeout(3).compress(False).volatile.local
    assert base.rooms == {"a"} and base.except_rooms == frozenset() and base.flags == {}
    assert derived.rooms == {"a", "b", "c"} and derived.except_rooms == {"d"}
    assert derived.flags == {"timeout": 3, "compress": False, "volatile": True, "local": True}
    assert base.in_("z") is not base


def test_reserved_and_ack_without_timeout() -> None:
    io = fastsio.Server()
    with pytest.raises(ValueError):
        io.to("a").emit("disconnecting")
    with pytest.raises(ValueError):
        io.to("a").emit("ev", lambda err, res: None)


async def test_broadcast_ack_collects_responses() -> None:
    io = fastsio.Server()
    conns = [connect(io) for _ in range(3)]
    for c in conns:
        c.packets()
    fut = io.timeout(5).emit_with_ack("q", 1)
    for i, c in enumerate(conns):
        (p,) = c.packets()
        assert p.data == ["q", 1]
        c.recv(C.ACK, "/", [i * 10, "ignored extra"], p.id)
    assert sorted(await fut) == [0, 10, 20]


async def test_broadcast_ack_timeout_cleans_up() -> None:
    io = fastsio.Server()
    c1, c2 = connect(io), connect(io)
    c1.packets(), c2.packets()
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    io.timeout(0.01).emit("q", lambda err, res: got.set_result((err, res)))
    (p1,) = c1.packets()
    c1.recv(C.ACK, "/", ["a"], p1.id)
    err, res = await got
    assert isinstance(err, fastsio.AckTimeout) and res == ["a"]
    assert not any(s._acks for s in io.sockets.sockets.values())
    (p2,) = c2.packets()
    c2.recv(C.ACK, "/", ["late"], p2.id)  # ignored


async def test_send_write_all_sockets() -> None:
    io = fastsio.Server()
    conn = connect(io)
    s = the_socket(io, conn)
    s.join("r")
    conn.packets()
    op = io.to("r")
    assert op.send("a") is True
    op.write("b")
    assert [p.data for p in conn.packets()] == [["message", "a"], ["message", "b"]]
    assert await op.all_sockets() == {s.id}
    assert await io.to("nobody").all_sockets() == set()


async def test_remote_socket() -> None:
    io = fastsio.Server()
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    remote = RemoteSocket(
        io.sockets.adapter,
        {"id": sock.id, "handshake": sock.handshake.to_dict(), "rooms": [sock.id], "data": {"k": 1}},
    )
    assert remote.id == sock.id and remote.rooms == {sock.id} and remote.data == {"k": 1}
    assert remote.handshake.address == "10.0.0.1"
    remote.emit("hi")
    assert [p.data for p in conn.packets()] == [["hi"]]
    remote.join("x")
    assert "x" in sock.rooms
    remote.leave("x")
    assert "x" not in sock.rooms
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    remote.timeout(5).emit("q", lambda err, res: got.set_result((err, res)))
    (p,) = conn.packets()
    conn.recv(C.ACK, "/", ["single"], p.id)
    assert await got == (None, "single")
    remote.disconnect()
    assert not sock.connected


async def test_fetch_sockets_wraps_remote_details() -> None:
    io = fastsio.Server()

    class Cluster(fastsio.InMemoryAdapter):
        async def fetch_sockets(self, opts: Any) -> list[Any]:
            return [{"id": "remote1", "handshake": {}, "rooms": ["remote1"], "data": {}}]

    io.adapter(Cluster)
    (r,) = await io.fetch_sockets()
    assert isinstance(r, RemoteSocket) and r.id == "remote1"
