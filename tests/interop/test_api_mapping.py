"""End-to-end tests for the rows of docs/api-mapping.md that had no test.

Each test starts a real fastsio server on 127.0.0.1 and talks to it with
python-socketio's ``socketio.AsyncClient``. The table in docs/api-mapping.md
names the test that covers each Node Server API item; the tests here fill the
gaps the older suites left. Nothing asserts on timing: waits are generous
upper bounds.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import aiohttp
import pytest
import socketio

import fastsio
from fastsio.adapter import BroadcastOptions, InMemoryAdapter
from fastsio.http import HttpServer, Request
from sio_helpers import WAIT, connect, future, got



def collect(c: socketio.AsyncClient, event: str, namespace: str = "/") -> list[tuple[Any, ...]]:
    """Every ``event`` the client receives, as argument tuples."""
    out: list[tuple[Any, ...]] = []
    c.on(event, lambda *args: out.append(args), namespace=namespace)
    return out


# -- Server: constructor forms, serving --------------------------------------------


async def test_server_port_constructor_listens(free_port: int, clients: Any) -> None:
    """``Server(port)`` (Node's ``new Server(3000)``) listens once a loop runs it."""
    io = fastsio.Server(free_port)
    try:
        c = clients()
        for _ in range(500):
            try:
                await connect(c, free_port)
                break
            except socketio.exceptions.ConnectionError:
                await asyncio.sleep(0.02)
        assert c.connected
        assert len(io.sockets.sockets) == 1
    finally:
        await asyncio.wait_for(io.close(), WAIT)


async def test_attach_port_is_listen(free_port: int, clients: Any) -> None:
    io = fastsio.Server()
    try:
        assert await io.attach(free_port, host="127.0.0.1") is io
        c = clients()
        await connect(c, free_port)
        assert len(io.sockets.sockets) == 1
    finally:
        await asyncio.wait_for(io.close(), WAIT)


async def test_bind_engine(free_port: int, clients: Any) -> None:
    engine = fastsio.Engine(path="/socket.io/")
    io = fastsio.Server()
    assert io.bind(engine) is io
    assert io.engine is engine
    io.on("connection", lambda s: s.on("add", lambda a, b: a + b))
    try:
        await engine.listen(free_port, host="127.0.0.1")
        c = clients()
        await connect(c, free_port, ["polling", "websocket"])
        assert await c.call("add", (1, 2), timeout=WAIT) == 3
        assert engine.clients_count == 1
    finally:
        await asyncio.wait_for(io.close(), WAIT)


async def test_onconnection_from_own_engine(free_port: int, clients: Any) -> None:
    """Node's ``engine.on("connection", socket => io.onconnection(socket))``."""
    engine = fastsio.Engine(path="/socket.io/")
    io = fastsio.Server()
    engine.on("connection", io.onconnection)
    io.on("connection", lambda s: s.on("echo", lambda x: x))
    try:
        await engine.listen(free_port, host="127.0.0.1")
        c = clients()
        await connect(c, free_port)
        assert await c.call("echo", "hi", timeout=WAIT) == "hi"
    finally:
        await asyncio.wait_for(engine.close(), WAIT)
        await asyncio.wait_for(io.close(), WAIT)


async def test_path_option_and_setter(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server(path="/custom/")
    assert io.path() == "/custom"
    c = clients()
    await connect(c, port, socketio_path="/custom")
    assert len(io.sockets.sockets) == 1
    wrong = clients()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(wrong, port)

    # the setter, before the engine exists
    io2 = fastsio.Server()
    assert io2.path("/other/") is io2
    assert io2.path() == "/other"
    assert io2.engine.path == "/other/"


async def test_add_trailing_slash_option(sio_server: Any) -> None:
    io, port = await sio_server()
    io2, port2 = await sio_server(add_trailing_slash=False)
    async with aiohttp.ClientSession() as http:
        url = "http://127.0.0.1:{}/socket.io?EIO=4&transport=polling"
        async with http.get(url.format(port)) as resp:
            assert resp.status == 404
        async with http.get(url.format(port2)) as resp:
            assert resp.status == 200
            assert (await resp.text()).startswith("0{")


async def test_parser_option(sio_server: Any, clients: Any) -> None:
    from fastsio._impl import sio_codec

    encoded: list[tuple[Any, ...]] = []

    class RecordingParser:
        Decoder = sio_codec.Decoder

        @staticmethod
        def encode(type_: int, nsp: str, data: Any = None, id_: Any = None) -> Any:
            encoded.append((type_, nsp, data))
            return sio_codec.encode(type_, nsp, data, id_)

    io, port = await sio_server(parser=RecordingParser)
    io.on("connection", lambda s: s.emit("hello", 1))
    c = clients()
    hello = future()
    c.on("hello", lambda n: hello.set_result(n))
    await connect(c, port)
    assert await got(hello) == 1
    assert (sio_codec.EVENT, "/", ["hello", 1]) in encoded


# -- Server: events, adapter, disconnect_sockets(close) --------------------------------


async def test_connect_event_is_connection_synonym(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    seen: list[str] = []
    io.on("connect", lambda s: seen.append("io:connect"))
    io.on("connection", lambda s: seen.append("io:connection"))
    chat = io.of("/chat")
    chat.on("connect", lambda s: seen.append("chat:connect"))
    chat.on("connection", lambda s: seen.append("chat:connection"))
    c = clients()
    await connect(c, port, namespaces=["/", "/chat"])
    assert sorted(seen) == ["chat:connect", "chat:connection", "io:connect", "io:connection"]


class RecordingAdapter(InMemoryAdapter):
    """Keeps every BroadcastOptions it is asked to broadcast with."""

    seen: list[BroadcastOptions] = []

    def broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        RecordingAdapter.seen.append(opts)
        super().broadcast(packet, opts)


async def test_adapter_setter_and_broadcast_options(sio_server: Any, clients: Any, wait_until: Any) -> None:
    assert fastsio.Server(adapter=RecordingAdapter).adapter() is RecordingAdapter
    RecordingAdapter.seen = []
    io, port = await sio_server()
    assert io.adapter(RecordingAdapter) is io
    assert io.adapter() is RecordingAdapter
    assert isinstance(io.sockets.adapter, RecordingAdapter)
    io.on("connection", lambda s: s.join("r"))
    c = clients()
    news = collect(c, "news")
    await connect(c, port)
    await wait_until(lambda: len(io.sockets.sockets) == 1, what="socket")
    io.to("r").except_("x").local.emit("news", 1)
    await wait_until(lambda: news == [(1,)], what="news")
    opts = RecordingAdapter.seen[-1]
    assert isinstance(opts, BroadcastOptions)
    assert opts.rooms == {"r"} and opts.except_ == {"x"} and opts.flags.get("local") is True
    assert io.sockets.adapter.rooms["r"] == set(io.sockets.sockets)


async def test_disconnect_sockets_close_ends_connection(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    reasons: list[tuple[str, str]] = []
    for nsp in (io.sockets, io.of("/chat")):
        nsp.on("connection", lambda s: s.on("disconnect", lambda r, s=s: reasons.append((s.nsp.name, r))))
    c = clients()
    await connect(c, port, namespaces=["/", "/chat"])
    await wait_until(lambda: io.engine.clients_count == 1 and len(io.of("/chat").sockets) == 1, what="sockets")
    io.disconnect_sockets(True)
    await wait_until(lambda: io.engine.clients_count == 0, what="connection closed")
    await wait_until(lambda: len(reasons) == 2, what="both namespaces disconnected")
    assert sorted(reasons) == [("/", "server namespace disconnect"), ("/chat", "server namespace disconnect")]


# -- Namespace ------------------------------------------------------------------------


async def test_namespace_attributes_rooms_and_broadcast(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    chat = io.of("/chat")
    assert chat.name == "/chat" and chat.sockets == {} and isinstance(chat.adapter, InMemoryAdapter)
    assert io.of("chat") is chat
    by_name: dict[str, fastsio.Socket] = {}

    @chat.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        by_name[socket.handshake.auth["name"]] = socket
        socket.join(socket.handshake.auth["rooms"])

    inbox: dict[str, list[tuple[Any, ...]]] = {}
    for name, rooms in (("a", ["r1"]), ("b", ["r1", "r2"]), ("c", ["r2"])):
        c = clients()
        inbox[name] = collect(c, "m", "/chat")
        await connect(c, port, namespaces=["/chat"], auth={"name": name, "rooms": rooms})
    await wait_until(lambda: len(chat.sockets) == 3, what="3 sockets")
    assert set(chat.sockets) == {s.id for s in by_name.values()}
    assert await chat.all_sockets() == set(chat.sockets)
    assert await chat.in_("r2").all_sockets() == {by_name["b"].id, by_name["c"].id}

    chat.to("r1").emit("m", "to r1")
    chat.in_("r2").except_("r1").emit("m", "r2 not r1")
    chat.except_("r2").emit("m", "not r2")
    chat.emit("m", "all")
    chat.send("sent")  # a "message" event: not collected
    await wait_until(lambda: len(inbox["b"]) == 2 and len(inbox["a"]) == 3 and len(inbox["c"]) == 2, what="messages")
    await asyncio.sleep(0.05)
    assert inbox["a"] == [("to r1",), ("not r2",), ("all",)]
    assert inbox["b"] == [("to r1",), ("all",)]
    assert inbox["c"] == [("r2 not r1",), ("all",)]
    # the main namespace saw none of it
    assert io.sockets.sockets == {}


async def test_namespace_acks_fetch_join_leave_disconnect(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    chat = io.of("/chat")
    reasons: list[str] = []
    chat.on("connection", lambda s: s.on("disconnect", reasons.append))
    cs = []
    for i in range(2):
        c = clients()
        c.on("ping", lambda n, i=i: n + i, namespace="/chat")
        await connect(c, port, namespaces=["/chat"], auth={"i": i})
        cs.append(c)
    await wait_until(lambda: len(chat.sockets) == 2, what="2 sockets")

    # Namespace.emit_with_ack (Python addition) and the timeout() modifier
    assert sorted(await chat.timeout(WAIT).emit_with_ack("ping", 10)) == [10, 11]
    cb = future()
    chat.timeout(WAIT).emit("ping", 1, lambda err, res: cb.set_result((err, sorted(res))))
    assert await got(cb) == (None, [1, 2])

    sockets = await chat.fetch_sockets()
    assert sorted(s.handshake.auth["i"] for s in sockets) == [0, 1]
    chat.sockets_join("club")
    assert len(await chat.in_("club").fetch_sockets()) == 2
    first = next(s for s in sockets if s.handshake.auth["i"] == 0)
    chat.in_(first.id).sockets_leave("club")
    assert [s.handshake.auth["i"] for s in await chat.in_("club").fetch_sockets()] == [1]

    chat.in_("club").disconnect_sockets()
    await wait_until(lambda: reasons == ["server namespace disconnect"], what="one disconnect")
    assert [s.handshake.auth["i"] for s in await chat.fetch_sockets()] == [0]
    chat.disconnect_sockets()
    await wait_until(lambda: len(reasons) == 2, what="second disconnect")
    assert chat.sockets == {}


async def test_namespace_emit_with_ack_without_timeout_refused(sio_server: Any) -> None:
    io, port = await sio_server()
    with pytest.raises(ValueError):
        io.of("/chat").emit_with_ack("ping")


async def test_namespace_use_and_server_side_emit(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    chat = io.of("/chat")
    order: list[str] = []

    def first(socket: fastsio.Socket, next_: Callable[..., None]) -> None:
        order.append("first")
        next_()

    @chat.use
    async def second(socket: fastsio.Socket) -> None:
        order.append("second")
        if socket.handshake.auth.get("ok") is not True:
            raise fastsio.ConnectionRejected("chat only", {"why": "auth"})

    assert chat.use(first) is chat
    ok = clients()
    await connect(ok, port, namespaces=["/chat"], auth={"ok": True})
    assert order == ["second", "first"]
    assert len(chat.sockets) == 1
    # middlewares of /chat do not run for /
    root = clients()
    await connect(root, port)
    assert order == ["second", "first"]

    bad = clients()
    err = future()
    bad.on("connect_error", lambda data: err.set_result(data), namespace="/chat")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(bad, port, namespaces=["/chat"])
    assert await got(err) == {"message": "chat only", "data": {"why": "auth"}}

    assert await chat.server_side_emit_with_ack("hello", 1) == []
    cb = future()
    assert chat.server_side_emit("hello", lambda err, res: cb.set_result((err, res))) is True
    assert await got(cb) == (None, [])
    with pytest.raises(ValueError):
        chat.server_side_emit("connection")


async def test_of_with_two_argument_function(sio_server: Any, clients: Any) -> None:
    """Python addition: ``of(fn)`` where ``fn(name, auth)`` returns (or awaits) a bool."""
    io, port = await sio_server()
    seen: list[str] = []
    io.of(lambda name, auth: name.startswith("/sync-") and auth.get("ok") is True,
          lambda s: seen.append(s.nsp.name))

    async def allow(name: str, auth: dict[str, Any]) -> bool:
        await asyncio.sleep(0)
        return name.startswith("/async-")

    io.of(allow).on("connection", lambda s: seen.append(s.nsp.name))
    # of(name, fn): the string form with a connection listener
    io.of("/plain", lambda s: seen.append(s.nsp.name))

    c = clients()
    await connect(c, port, namespaces=["/sync-1", "/async-1", "/plain"], auth={"ok": True})
    assert sorted(seen) == ["/async-1", "/plain", "/sync-1"]

    bad = clients()
    err = future()
    bad.on("connect_error", lambda data: err.set_result(data), namespace="/sync-2")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(bad, port, namespaces=["/sync-2"], auth={"ok": False})
    assert await got(err) == {"message": "Invalid namespace"}


async def test_volatile_and_local_flags_deliver_to_ready_clients(sio_server: Any, clients: Any, wait_until: Any) -> None:
    """``volatile`` may drop a packet for a client that cannot take it now; a
    connected WebSocket client with nothing pending can, so it gets them all."""
    io, port = await sio_server()
    chat = io.of("/chat")
    sockets: list[fastsio.Socket] = []
    chat.on("connection", sockets.append)
    c = clients()
    got_v = collect(c, "v", "/chat")
    await connect(c, port, namespaces=["/chat"])
    await wait_until(lambda: len(sockets) == 1, what="socket")
    chat.volatile.emit("v", "nsp volatile")
    chat.local.emit("v", "nsp local")
    sockets[0].volatile.emit("v", "socket volatile")
    await wait_until(lambda: len(got_v) == 3, what="volatile packets")
    assert got_v == [("nsp volatile",), ("nsp local",), ("socket volatile",)]

    root = clients()
    got_r = collect(root, "v")
    await connect(root, port)
    io.volatile.emit("v", "io volatile")
    io.local.emit("v", "io local")
    await wait_until(lambda: len(got_r) == 2, what="root packets")
    assert got_r == [("io volatile",), ("io local",)]


# -- Socket -----------------------------------------------------------------------------


async def test_socket_client_request_and_handshake_dict(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    seen = future()
    io.on("connection", lambda s: seen.set_result(s))
    c = clients()
    await c.connect(f"http://127.0.0.1:{port}?q=1", transports=["websocket"], auth={"k": "v"},
                    headers={"X-Test": "yes"}, wait_timeout=WAIT)
    socket: fastsio.Socket = await got(seen)
    assert isinstance(socket.client, fastsio.Client)
    assert socket.client.conn is socket.conn
    assert socket.client.request is socket.request is socket.conn.request
    assert socket.request.headers is socket.handshake.headers
    assert socket.request.headers["x-test"] == "yes"
    assert socket.nsp is io.sockets
    d = socket.handshake.to_dict()
    assert set(d) == {"headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"}
    assert d["auth"] == {"k": "v"} and d["query"]["q"] == "1" and d["time"] == socket.handshake.time
    assert json.loads(json.dumps(d)) == d


async def test_socket_conn_events(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    events: dict[str, list[Any]] = {"upgrade": [], "packet": [], "packet_create": [], "drain": [], "close": []}
    conns: list[Any] = []
    sockets: list[fastsio.Socket] = []

    @io.engine.on("connection")
    def on_engine_connection(conn: Any) -> None:
        # registered on the Engine.IO socket before its first packet; it is
        # the object socket.conn returns (checked below)
        conns.append(conn)
        names = [conn.transport.name]
        conn.once("upgrade", lambda t: events["upgrade"].append((names[0], conn.transport.name)))
        conn.on("packet", lambda p: events["packet"].append(p))
        conn.on("packet_create", lambda p: events["packet_create"].append(p))
        conn.on("drain", lambda: events["drain"].append(True))
        conn.on("close", lambda reason, desc=None: events["close"].append(reason))

    io.on("connection", lambda s: (sockets.append(s), s.on("echo", lambda x: x)))
    c = clients()
    await connect(c, port, ["polling", "websocket"])
    await wait_until(lambda: len(sockets) == 1, what="socket")
    assert sockets[0].conn is conns[0]
    await wait_until(lambda: bool(events["upgrade"]), what="upgrade")
    assert events["upgrade"] == [("polling", "websocket")]
    assert sockets[0].conn.transport.name == "websocket"
    assert await c.call("echo", "x", timeout=WAIT) == "x"
    assert any(p["type"] == 4 and p["data"].startswith("2") for p in events["packet"])  # the EVENT message
    assert any(p["type"] == 4 and p["data"].startswith("3") for p in events["packet_create"])  # the ACK
    assert events["drain"]
    await c.disconnect()
    await wait_until(lambda: bool(events["close"]), what="close")
    assert events["close"][0] in ("transport close", "forced close")


async def test_socket_emitter_methods(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    calls: list[str] = []
    sockets: list[fastsio.Socket] = []

    def on_a(x: Any) -> None:
        calls.append("a:" + x)

    def on_b(x: Any) -> None:
        calls.append("b:" + x)

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        sockets.append(socket)
        socket.on("a", on_a)
        socket.once("once", lambda x: calls.append("once:" + x))
        socket.on("b", on_b)
        socket.add_listener("b", lambda x: calls.append("b2:" + x))

    c = clients()
    await connect(c, port)
    await wait_until(lambda: len(sockets) == 1, what="socket")
    s = sockets[0]
    assert set(s.event_names()) == {"a", "once", "b"}
    assert s.listeners("a") == [on_a] and s.listener_count("b") == 2
    await c.emit("once", "1")
    await c.emit("once", "2")
    await c.emit("a", "1")
    await wait_until(lambda: "a:1" in calls, what="a")
    assert calls == ["once:1", "a:1"]
    assert "once" not in s.event_names()

    assert s.remove_listener("a", on_a) is s
    s.off("b", on_b)
    await c.emit("a", "2")
    await c.emit("b", "2")
    await wait_until(lambda: "b2:2" in calls, what="b2")
    assert "a:2" not in calls and "b:2" not in calls
    s.remove_all_listeners("b")
    assert s.event_names() == []
    s.on("x", on_a)
    s.remove_all_listeners()
    assert s.event_names() == []


async def test_socket_send_compress_rooms(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    by_name: dict[str, fastsio.Socket] = {}

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        by_name[socket.handshake.auth["name"]] = socket
        socket.join(["r1", "r2"])

    inbox: dict[str, list[tuple[Any, ...]]] = {}
    messages: dict[str, list[tuple[Any, ...]]] = {}
    for name in ("a", "b", "c"):
        c = clients()
        inbox[name] = collect(c, "m")
        messages[name] = collect(c, "message")
        await connect(c, port, auth={"name": name})
    await wait_until(lambda: len(by_name) == 3, what="3 sockets")
    a, b, c_ = by_name["a"], by_name["b"], by_name["c"]
    assert a.rooms == {a.id, "r1", "r2"}
    c_.leave("r1")
    assert c_.rooms == {c_.id, "r2"}

    assert a.send("hello", 1) is a
    a.compress(False).emit("m", "uncompressed")
    a.in_("r1").emit("m", "a in r1")          # b (not a: the sender is left out, not c: left r1)
    a.except_("r1").emit("m", "a except r1")  # c
    a.broadcast.except_(b.id).emit("m", "a bcast except b")  # c
    await wait_until(lambda: len(inbox["a"]) == 1 and len(inbox["b"]) == 1 and len(inbox["c"]) == 2, what="emits")
    await asyncio.sleep(0.05)
    assert messages["a"] == [("hello", 1)] and messages["b"] == []
    assert inbox["a"] == [("uncompressed",)]
    assert inbox["b"] == [("a in r1",)]
    assert inbox["c"] == [("a except r1",), ("a bcast except b",)]


async def test_socket_catch_all_family(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    c = clients()
    await connect(c, port)
    await wait_until(lambda: len(sockets) == 1, what="socket")
    s = sockets[0]
    log: list[tuple[Any, ...]] = []

    def first(*args: Any) -> None:
        log.append(("first", *args))

    def second(*args: Any) -> None:
        log.append(("second", *args))

    assert s.on_any(second) is s
    assert s.prepend_any(first) is s
    assert s.listeners_any() == [first, second]
    await c.emit("ev", 1)
    await wait_until(lambda: len(log) == 2, what="incoming catch-all")
    assert log == [("first", "ev", 1), ("second", "ev", 1)]
    s.off_any(first)
    assert s.listeners_any() == [second]
    s.off_any()
    assert s.listeners_any() == []
    await c.emit("ev", 2)

    log.clear()
    s.on_any_outgoing(second)
    s.prepend_any_outgoing(first)
    assert s.listeners_any_outgoing() == [first, second]
    s.emit("out", 3)
    io.emit("bcast", 4)
    assert log[:2] == [("first", "out", 3), ("second", "out", 3)]
    await wait_until(lambda: len(log) == 4, what="outgoing broadcast catch-all")
    assert log[2:] == [("first", "bcast", 4), ("second", "bcast", 4)]
    s.off_any_outgoing(first)
    assert s.listeners_any_outgoing() == [second]
    s.off_any_outgoing()
    assert s.listeners_any_outgoing() == []
    s.emit("out", 5)
    await asyncio.sleep(0.05)
    assert len(log) == 4


# -- Engine -----------------------------------------------------------------------------


async def test_server_engine_generate_id(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    counter = iter(range(100))
    io.engine.generate_id = lambda req: f"custom-{next(counter)}"
    seen = future()
    io.on("connection", lambda s: seen.set_result(s))
    c = clients()
    await connect(c, port, ["polling"])
    socket = await got(seen)
    assert socket.conn.id == "custom-0" and socket.client.id == "custom-0"
    assert socket.id != "custom-0"  # the Socket.IO id is not the Engine.IO id
    assert c.eio.sid == "custom-0"


async def test_engine_handle_upgrade_from_own_http_server(free_port: int, clients: Any) -> None:
    """Node's ``httpServer.on("upgrade", ...) -> io.engine.handleUpgrade(req, socket, head)``:
    a user HTTP handler routes engine requests (WebSocket upgrades included)."""
    io = fastsio.Server()
    io.on("connection", lambda s: s.on("echo", lambda x: x))
    routed: list[str] = []

    def handler(req: Request) -> None:
        if req.path.startswith("/socket.io/"):
            routed.append("upgrade" if req.upgrade else req.method)
            if req.upgrade:
                io.engine.handle_upgrade(req)
            else:
                io.engine.handle_request(req)
        else:
            assert req.connection is not None
            req.connection.respond(200, [("Content-Type", "text/plain")], b"mine")

    http = HttpServer(handler)
    await http.listen(free_port, "127.0.0.1")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{free_port}/other") as resp:
                assert await resp.text() == "mine"
        c = clients()
        await connect(c, free_port, ["websocket"])
        assert await c.call("echo", "up", timeout=WAIT) == "up"
        assert routed[0] == "upgrade"
    finally:
        await asyncio.wait_for(io.close(), WAIT)
        await asyncio.wait_for(http.close(), WAIT)


async def test_socket_local_flag(sio_server: Any, clients: Any, wait_until: Any) -> None:
    """``socket.local``: like ``socket.broadcast`` (the sender is left out), this server only."""
    io, port = await sio_server()
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    inbox = []
    for _ in range(2):
        c = clients()
        inbox.append(collect(c, "m"))
        await connect(c, port)
    await wait_until(lambda: len(sockets) == 2, what="2 sockets")
    sender = sockets[0]
    op = sender.local
    assert op.flags.get("local") is True and op.except_rooms == {sender.id}
    op.emit("m", "local")
    await wait_until(lambda: any(inbox), what="local emit")
    await asyncio.sleep(0.05)
    assert sorted(map(len, inbox)) == [0, 1]
    assert [("local",)] in inbox


async def test_once_listener_is_listed_unwrapped(sio_server: Any, clients: Any, wait_until: Any) -> None:
    """Node's ``emitter.listeners(ev)`` returns the functions given to ``once``
    (``rawListeners`` returns the wrappers)."""
    io, port = await sio_server()
    sockets: list[fastsio.Socket] = []
    io.on("connection", sockets.append)
    c = clients()
    await connect(c, port)
    await wait_until(lambda: len(sockets) == 1, what="socket")

    def handler(x: Any) -> None:
        pass

    sockets[0].once("e", handler)
    assert sockets[0].listeners("e") == [handler]
