"""Server: options, getters/setters, namespaces, Client routing, protocol v3, delegation."""
from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import fastsio
from fastsio._impl import sio_codec as C

from sio_fakes import FakeConn, connect, the_socket


def test_defaults_and_setters() -> None:
    io = fastsio.Server()
    assert io.path() == "/socket.io"
    assert io.serve_client() is True
    assert io.adapter() is fastsio.InMemoryAdapter
    assert io.connect_timeout() == 45
    assert io.path("/custom/") is io and io.path() == "/custom"
    assert io.serve_client(False) is io and io.serve_client() is False
    assert io.sockets is io.of("/") and io.sockets.name == "/"


def test_engine_gets_engine_options() -> None:
    io = fastsio.Server(ping_interval=5, cors={"origin": "*"}, path="/x/")
    engine = io.engine
    assert isinstance(engine, fastsio.Engine)
    assert engine.ping_interval == 5 and engine.cors == {"origin": "*"}
    assert engine.path.startswith("/x")
    with pytest.raises(TypeError):
        _ = fastsio.Server(not_an_option=1).engine


def test_adapter_setter_reinits_namespaces() -> None:
    io = fastsio.Server()

    class MyAdapter(fastsio.InMemoryAdapter):
        pass

    chat = io.of("/chat")
    io.adapter(MyAdapter)
    assert isinstance(io.sockets.adapter, MyAdapter) and isinstance(chat.adapter, MyAdapter)


def test_recovery_option_defaults_to_session_aware_adapter() -> None:
    io = fastsio.Server(connection_state_recovery={})
    assert io._recovery == {"max_disconnection_duration": 120, "skip_middlewares": True}
    assert isinstance(io.sockets.adapter, fastsio.SessionAwareAdapter)


def test_on_connection_decorator_and_connect_alias() -> None:
    io = fastsio.Server()
    seen: list[str] = []

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        seen.append("connection")

    io.on("connect", lambda s: seen.append("connect"))
    assert io.listeners("connection") == [on_connection]
    connect(io)
    assert seen == ["connect", "connection"]
    io.off("connection", on_connection)
    io.remove_all_listeners("connect")
    assert io.event_names() == []


def test_of_normalises_name_and_emits_new_namespace() -> None:
    io = fastsio.Server()
    created: list[str] = []
    io.on("new_namespace", lambda nsp: created.append(nsp.name))
    chat = io.of("chat", lambda s: None)
    assert chat.name == "/chat" and io.of("/chat") is chat
    assert created == ["/chat"]
    assert chat.listener_count("connect") == 1


def test_unknown_namespace_gets_connect_error_and_connection_stays() -> None:
    io = fastsio.Server()
    conn = connect(io, "/nope")
    (p,) = conn.packets()
    assert p.type == C.CONNECT_ERROR and p.nsp == "/nope" and p.data == {"message": "Invalid namespace"}
    assert conn.ready_state == "open"
    conn.recv(C.CONNECT, "/")
    (p,) = conn.packets()
    assert p.type == C.CONNECT


def test_packet_for_unjoined_namespace_closes_like_node() -> None:
    io = fastsio.Server()
    io.of("/other")
    conn = connect(io)
    sock = the_socket(io, conn)
    reasons: list[str] = []
    sock.on("disconnect", reasons.append)
    conn.recv(C.EVENT, "/other", ["x"])
    assert conn.ready_state == "closed" and reasons == ["forced server close"]


def test_parse_error_closes_with_reason() -> None:
    io = fastsio.Server()
    conn = connect(io)
    sock = the_socket(io, conn)
    events: list[Any] = []
    sock.on("error", lambda e: events.append(("error", type(e).__name__)))
    sock.on("disconnect", lambda r: events.append(("disconnect", r)))
    conn.recv_raw("2[not json")
    assert events == [("error", "ProtocolError"), ("disconnect", "forced close")]
    assert conn.ready_state == "closed"


async def test_connect_timeout() -> None:
    io = fastsio.Server(connect_timeout=0.01)
    idle = FakeConn()
    io.onconnection(idle)
    joined = connect(io)
    for _ in range(100):
        if idle.ready_state == "closed":
            break
        await asyncio.sleep(0.01)
    assert idle.ready_state == "closed" and joined.ready_state == "open"


def test_protocol_v3_client() -> None:
    io = fastsio.Server()
    io.of("/chat")
    seen: list[Any] = []
    io.on("connection", lambda s: seen.append(s))
    conn = FakeConn(protocol=3)
    io.onconnection(conn)
    # connected to "/" at once, CONNECT without payload, id = engine id
    (p,) = conn.packets()
    assert p.type == C.CONNECT and p.nsp == "/" and p.data is None
    assert seen[0].id == conn.id
    conn.recv(C.CONNECT, "/chat?token=abc")
    (p,) = conn.packets()
    assert p.type == C.CONNECT and p.nsp == "/chat"
    sock = the_socket(io, conn, "/chat")
    assert sock.id == "/chat#" + conn.id and sock.handshake.auth == {"token": "abc"}
    conn.recv(C.CONNECT, "/missing")
    (p,) = conn.packets()
    assert p.type == C.CONNECT_ERROR and p.data == {"message": "Invalid namespace"}


def test_protocol_v3_middleware_error_is_plain() -> None:
    io = fastsio.Server()
    chat = io.of("/chat")

    def refuse(socket: Any, next_: Any) -> None:
        next_(fastsio.ConnectionRejected("nope"))

    chat.use(refuse)
    conn = FakeConn(protocol=3)
    io.onconnection(conn)
    conn.packets()
    conn.recv(C.CONNECT, "/chat")
    (p,) = conn.packets()
    assert p.type == C.CONNECT_ERROR and p.data == "nope"


def test_delegation_to_main_namespace() -> None:
    io = fastsio.Server()
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    io.emit("a", 1)
    io.send("m")
    io.write("w")
    io.to(sock.id).emit("b")
    io.in_(sock.id).emit("c")
    io.except_(sock.id).emit("never")
    io.compress(True).emit("d")
    io.volatile.emit("e")
    io.local.emit("f")
    assert [p.data for p in conn.packets()] == [["a", 1], ["message", "m"], ["message", "w"], ["b"], ["c"], ["d"], ["e"], ["f"]]
    io.sockets_join("j")
    assert "j" in sock.rooms
    io.sockets_leave("j")
    assert "j" not in sock.rooms
    io.disconnect_sockets()
    assert not sock.connected


async def test_delegation_async() -> None:
    io = fastsio.Server()
    sock = the_socket(io, connect(io))
    assert await io.all_sockets() == {sock.id}
    assert await io.fetch_sockets() == [sock]
    assert await io.to("nobody").timeout(1).emit_with_ack("x") == []
    assert await io.server_side_emit_with_ack("x") == []


async def test_close_disconnects_everybody() -> None:
    io = fastsio.Server()
    io.of("/chat")
    conn = connect(io)
    conn.recv(C.CONNECT, "/chat")
    reasons: list[str] = []
    the_socket(io, conn).on("disconnect", reasons.append)
    the_socket(io, conn, "/chat").on("disconnect", reasons.append)
    await io.close()
    assert reasons == ["server shutting down", "server shutting down"]


async def test_server_with_port_listens_when_loop_runs(free_tcp_port: int) -> None:
    io = fastsio.Server(free_tcp_port)
    for _ in range(200):
        if io._engine is not None and io.engine.sockets:
            break
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", free_tcp_port)
    writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 10)
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()
    await io.close()


@pytest.fixture
def free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dynamic_namespace_regex_and_function() -> None:
    io = fastsio.Server()
    created: list[str] = []
    io.on("new_namespace", lambda n: created.append(n.name))
    parent = io.of(re.compile(r"^/dyn-\d+$"))
    joined: list[str] = []
    parent.on("connection", lambda s: joined.append(s.nsp.name))
    parent.use(lambda s, next_: next_())
    conn = connect(io, "/dyn-1")
    (p,) = conn.packets()
    assert p.type == C.CONNECT and joined == ["/dyn-1"] and created == ["/dyn-1"]
    child = io.of("/dyn-1")
    assert child in parent.children and len(child._fns) == 1
    # of() with a matching name attaches to the parent too
    assert io.of("/dyn-2") in parent.children

    io.of(lambda name, auth: auth.get("ok") is True)
    conn2 = connect(io, "/fn", {"ok": True})
    assert conn2.packets()[0].type == C.CONNECT
    conn3 = connect(io, "/fn2", {"ok": False})
    assert conn3.packets()[0].type == C.CONNECT_ERROR


async def test_dynamic_namespace_async_matcher() -> None:
    io = fastsio.Server()

    async def check(name: str, auth: Any) -> bool:
        await asyncio.sleep(0)
        return name == "/yes"

    io.of(check)
    conn = connect(io, "/yes")
    for _ in range(10):
        await asyncio.sleep(0)
    assert conn.packets()[0].type == C.CONNECT


async def test_parent_namespace_fetch_sockets_unsupported() -> None:
    io = fastsio.Server()
    parent = io.of(re.compile("^/p"))
    with pytest.raises(NotImplementedError):
        await parent.fetch_sockets()


def test_serve_static_only_known_files(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "socket.io.js").write_bytes(b"// client")
    monkeypatch.setattr("fastsio.server._STATIC_DIR", str(tmp_path))
    io = fastsio.Server()
    req = type("R", (), {"path": "/socket.io/other.js", "headers": {}})()
    assert io._serve_static(req) is None
    req.path = "/elsewhere/socket.io.js"
    assert io._serve_static(req) is None
    req.path = "/socket.io/socket.io.min.js"  # not shipped here
    assert io._serve_static(req) is None
    req.path = "/socket.io/socket.io.js"
    status, headers, body = io._serve_static(req)
    assert status == 200 and body == b"// client"
    etag = dict(headers)["etag"]
    assert dict(headers)["content-type"].startswith("application/javascript")
    req.headers = {"if-none-match": etag}
    assert io._serve_static(req)[0] == 304
    io.serve_client(False)
    assert io._serve_static(req) is None
