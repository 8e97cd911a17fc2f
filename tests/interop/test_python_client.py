"""python-socketio's AsyncClient against a live fastsio.Server.

Every test starts a real server on 127.0.0.1 (the ``sio_server`` fixture) and
talks to it with ``socketio.AsyncClient`` over polling and/or WebSocket.
Nothing here asserts on timing: waits are generous upper bounds.
"""
from __future__ import annotations

import asyncio
import re
from typing import Any, Callable

import aiohttp
import pytest
import socketio

import fastsio
from sio_helpers import WAIT, connect, future, got

TRANSPORTS = [["websocket"], ["polling"]]


# -- connection ---------------------------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_connect_with_auth_and_query(sio_server: Any, clients: Any, transports: list[str]) -> None:
    io, port = await sio_server()
    seen = future()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        seen.set_result(socket)

    c = clients()
    await c.connect(
        f"http://127.0.0.1:{port}?room=blue", auth={"token": "abc"}, transports=transports, wait_timeout=WAIT
    )
    socket = await got(seen)
    assert socket.handshake.auth == {"token": "abc"}
    assert socket.handshake.query["room"] == "blue"
    assert socket.handshake.address == "127.0.0.1"
    assert socket.handshake.secure is False
    assert isinstance(socket.handshake.issued, int) and socket.handshake.time
    assert socket.handshake.url.startswith("/socket.io/")
    assert socket.id == c.get_sid() and len(socket.id) == 20
    assert socket.rooms == {socket.id}
    assert socket.connected and not socket.disconnected and not socket.recovered
    assert socket.conn.transport.name in ("polling", "websocket")
    assert io.sockets.sockets[socket.id] is socket
    assert await io.all_sockets() == {socket.id}


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_emit_both_ways_with_binary(sio_server: Any, clients: Any, transports: list[str]) -> None:
    io, port = await sio_server()
    from_client = future()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.emit("welcome", {"n": 1, "list": [1, "two"]}, b"\x00\xffbin")

        @socket.on("up")
        def up(text: str, blob: bytes) -> None:
            from_client.set_result((text, blob))

    c = clients()
    welcome = future()

    @c.on("welcome")
    def on_welcome(data: Any, blob: bytes) -> None:
        welcome.set_result((data, blob))

    await connect(c, port, transports)
    assert await got(welcome) == ({"n": 1, "list": [1, "two"]}, b"\x00\xffbin")
    await c.emit("up", ("héllo", b"\x01\x02\x03"))
    assert await got(from_client) == ("héllo", b"\x01\x02\x03")


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_client_ack_answered_by_return_value(sio_server: Any, clients: Any, transports: list[str]) -> None:
    io, port = await sio_server()

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.on("add", lambda a, b: a + b)

        @socket.on("pair")
        async def pair(x: Any) -> Any:
            await asyncio.sleep(0)
            return x, b"bin"

        socket.on("nothing", lambda: None)

    c = clients()
    await connect(c, port, transports)
    assert await c.call("add", (2, 3), timeout=WAIT) == 5
    assert await c.call("pair", "x", timeout=WAIT) == ("x", b"bin")
    assert await c.call("nothing", timeout=WAIT) is None


async def test_server_ack_both_styles_and_timeout(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    result: dict[str, Any] = {}
    done = future()

    @io.on("connection")
    async def on_connection(socket: fastsio.Socket) -> None:
        result["plain"] = await socket.emit_with_ack("double", 21)
        result["timed"] = await socket.timeout(WAIT).emit_with_ack("double", 2)
        cb = future()
        socket.timeout(WAIT).emit("double", 5, lambda err, value: cb.set_result((err, value)))
        result["callback"] = await cb
        cb2 = future()
        socket.emit("double", 6, lambda value: cb2.set_result(value))
        result["callback_plain"] = await cb2
        try:
            await socket.timeout(0.05).emit_with_ack("slow")
        except TimeoutError as exc:
            result["timeout"] = exc
        done.set_result(None)

    c = clients()

    @c.on("double")
    def double(x: int) -> int:
        return x * 2

    @c.on("slow")
    async def slow() -> str:
        await asyncio.sleep(1)
        return "late"

    await connect(c, port)
    await got(done)
    assert result["plain"] == 42
    assert result["timed"] == 4
    assert result["callback"] == (None, 10)
    assert result["callback_plain"] == 12
    assert isinstance(result["timeout"], fastsio.AckTimeout)


# -- rooms and broadcast --------------------------------------------------------


async def test_rooms_broadcast_and_except(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    by_name: dict[str, fastsio.Socket] = {}

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        name = socket.handshake.auth["name"]
        by_name[name] = socket
        socket.join(socket.handshake.auth["rooms"])

        @socket.on("shout")
        def shout(msg: str) -> None:
            socket.broadcast.emit("heard", name, msg)

        @socket.on("tell")
        def tell(room: str, msg: str) -> None:
            socket.to(room).emit("heard", name, msg)

    received: dict[str, list[tuple[str, ...]]] = {"a": [], "b": [], "c": []}
    cs = {}
    for name, rooms in (("a", ["r1"]), ("b", ["r1", "r2"]), ("c", ["r2"])):
        c = clients()
        c.on("news", lambda *args, n=name: received[n].append(("news", *args)))
        c.on("heard", lambda *args, n=name: received[n].append(("heard", *args)))
        await connect(c, port, auth={"name": name, "rooms": rooms})
        cs[name] = c
    await wait_until(lambda: len(io.sockets.sockets) == 3, what="3 sockets")

    io.to("r1").emit("news", "r1")
    io.to(["r1", "r2"]).except_("r2").emit("news", "r1-not-r2")
    io.in_("r2").emit("news", "r2")
    io.except_("r1").emit("news", "not-r1")
    io.emit("news", "all")
    await cs["a"].emit("shout", "hi")
    await cs["c"].emit("tell", ("r1", "psst"))
    await wait_until(lambda: len(received["b"]) >= 5 and len(received["a"]) >= 4, what="broadcasts")
    await asyncio.sleep(0.1)
    assert received["a"] == [("news", "r1"), ("news", "r1-not-r2"), ("news", "all"), ("heard", "c", "psst")]
    assert received["b"] == [
        ("news", "r1"),
        ("news", "r2"),
        ("news", "all"),
        ("heard", "a", "hi"),
        ("heard", "c", "psst"),
    ]
    assert received["c"] == [("news", "r2"), ("news", "not-r1"), ("news", "all"), ("heard", "a", "hi")]
    assert await io.in_("r2").all_sockets() == {by_name["b"].id, by_name["c"].id}


async def test_broadcast_with_acks(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    for i in range(3):
        c = clients()
        c.on("ping", lambda n, i=i: n + i)
        await connect(c, port)
    await wait_until(lambda: len(io.sockets.sockets) == 3, what="3 sockets")
    answers = await io.timeout(WAIT).emit_with_ack("ping", 10)
    assert sorted(answers) == [10, 11, 12]
    cb = future()
    io.timeout(WAIT).emit("ping", 0, lambda err, res: cb.set_result((err, sorted(res))))
    assert await got(cb) == (None, [0, 1, 2])
    # nobody in the room: answered at once with an empty list
    assert await io.to("nobody").timeout(WAIT).emit_with_ack("ping", 1) == []

    slow = clients()

    @slow.on("ping")
    async def never(n: int) -> int:
        await asyncio.sleep(2)
        return n

    await connect(slow, port)
    await wait_until(lambda: len(io.sockets.sockets) == 4, what="4 sockets")
    with pytest.raises(TimeoutError) as info:
        await io.timeout(0.2).emit_with_ack("ping", 100)
    assert sorted(info.value.responses) == [100, 101, 102]  # type: ignore[attr-defined]


async def test_fetch_sockets_join_leave_disconnect(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    reasons: list[str] = []

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.data["name"] = socket.handshake.auth["name"]
        socket.on("disconnect", reasons.append)

    got_msgs: dict[str, list[Any]] = {"x": [], "y": []}
    cs = {}
    for name in ("x", "y"):
        c = clients()
        c.on("msg", lambda m, n=name: got_msgs[n].append(m))
        await connect(c, port, auth={"name": name})
        cs[name] = c
    await wait_until(lambda: len(io.sockets.sockets) == 2, what="2 sockets")

    sockets = await io.fetch_sockets()
    assert sorted(s.data["name"] for s in sockets) == ["x", "y"]
    assert all(s.handshake.auth["name"] == s.data["name"] for s in sockets)

    io.sockets_join("club")
    assert len(await io.in_("club").fetch_sockets()) == 2
    x = next(s for s in sockets if s.data["name"] == "x")
    io.in_(x.id).sockets_leave("club")
    remaining = await io.in_("club").fetch_sockets()
    assert [s.data["name"] for s in remaining] == ["y"]
    io.to("club").emit("msg", "club only")
    for s in remaining:
        s.emit("msg", "direct")
    await wait_until(lambda: len(got_msgs["y"]) == 2, what="club messages")
    assert got_msgs == {"x": [], "y": ["club only", "direct"]}

    client_reason = future()
    cs["y"].on("disconnect", lambda reason: client_reason.set_result(reason))
    io.in_("club").disconnect_sockets()
    await wait_until(lambda: reasons == ["server namespace disconnect"], what="server-side disconnect")
    assert await got(client_reason) == socketio.AsyncClient.reason.SERVER_DISCONNECT
    assert [s.data["name"] for s in await io.fetch_sockets()] == ["x"]


# -- namespaces -----------------------------------------------------------------


async def test_namespaces_static_dynamic_and_invalid(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    seen: list[str] = []
    new_namespaces: list[str] = []
    io.on("new_namespace", lambda nsp: new_namespaces.append(nsp.name))
    chat = io.of("/chat")
    chat.on("connection", lambda s: seen.append("chat:" + s.nsp.name))
    dyn = io.of(re.compile(r"^/dyn-\d+$"))
    dyn.on("connection", lambda s: seen.append("dyn:" + s.nsp.name))

    def allow(name: str, auth: dict[str, Any], next_: Callable[..., None]) -> None:
        next_(None, name.startswith("/fn-"))

    io.of(allow, lambda s: seen.append("fn:" + s.nsp.name))

    c = clients()
    echoes: list[Any] = []
    c.on("echo", lambda *a: echoes.append(a), namespace="/dyn-1")
    await connect(c, port, namespaces=["/chat", "/dyn-1", "/fn-a"])
    assert sorted(seen) == ["chat:/chat", "dyn:/dyn-1", "fn:/fn-a"]
    assert "/dyn-1" in new_namespaces and "/fn-a" in new_namespaces
    # emitting on the parent reaches every child
    dyn.emit("echo", "to all children")
    await asyncio.sleep(0)

    bad = clients()
    err = future()
    bad.on("connect_error", lambda data: err.set_result(data), namespace="/nope")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(bad, port, namespaces=["/nope"])
    assert await got(err) == {"message": "Invalid namespace"}

    for _ in range(100):
        if echoes:
            break
        await asyncio.sleep(0.02)
    assert echoes == [("to all children",)]


class RawPolling:
    """A bare Engine.IO v4 long-polling session, for protocol-level cases."""

    def __init__(self, http: aiohttp.ClientSession, port: int) -> None:
        self.http = http
        self.base = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
        self.url = self.base

    async def open(self) -> str:
        import json

        async with self.http.get(self.base) as resp:
            sid: str = json.loads((await resp.text())[1:])["sid"]
        self.url = self.base + "&sid=" + sid
        return sid

    async def post(self, *packets: str) -> int:
        async with self.http.post(self.url, data="\x1e".join(packets)) as resp:
            return resp.status

    async def get(self) -> list[str]:
        async with self.http.get(self.url) as resp:
            return (await resp.text()).split("\x1e")


async def test_unknown_namespace_keeps_connection(sio_server: Any) -> None:
    io, port = await sio_server()
    async with aiohttp.ClientSession() as http:
        raw = RawPolling(http, port)
        await raw.open()
        await raw.post("40/missing,")
        assert await raw.get() == ['44/missing,{"message":"Invalid namespace"}']
        await raw.post("40")
        (connect,) = await raw.get()
        assert connect.startswith("40{")
        assert len(io.sockets.sockets) == 1


async def test_cleanup_empty_child_namespaces(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server(cleanup_empty_child_namespaces=True)
    io.of(re.compile(r"^/tmp-"))
    c = clients()
    await connect(c, port, namespaces=["/tmp-1"])
    assert "/tmp-1" in io._nsps
    await c.disconnect()
    await wait_until(lambda: "/tmp-1" not in io._nsps, what="child namespace removed")


# -- middlewares ------------------------------------------------------------------


@pytest.mark.parametrize("style", ["next", "raise"])
async def test_middleware_refusal_with_data(sio_server: Any, clients: Any, style: str) -> None:
    io, port = await sio_server()

    if style == "next":
        def mw(socket: fastsio.Socket, next_: Callable[..., None]) -> None:
            if socket.handshake.auth.get("token") == "ok":
                next_()
            else:
                err = Exception("not authorized")
                err.data = {"code": 401}  # type: ignore[attr-defined]
                next_(err)
        io.use(mw)
    else:
        @io.use
        async def amw(socket: fastsio.Socket) -> None:
            await asyncio.sleep(0)
            if socket.handshake.auth.get("token") != "ok":
                raise fastsio.ConnectionRejected("not authorized", {"code": 401})
            socket.data["ok"] = True

    bad = clients()
    err = future()
    bad.on("connect_error", lambda data: err.set_result(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(bad, port, auth={"token": "no"})
    assert await got(err) == {"message": "not authorized", "data": {"code": 401}}
    assert not io.sockets.sockets

    good = clients()
    await connect(good, port, auth={"token": "ok"})
    assert len(io.sockets.sockets) == 1


async def test_socket_packet_middleware_and_catch_all(sio_server: Any, clients: Any) -> None:
    io, port = await sio_server()
    errors = future()
    seen_any: list[Any] = []
    seen_out: list[Any] = []

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        def mw(packet: list[Any], next_: Callable[..., None]) -> None:
            if packet[0] == "forbidden":
                next_(ValueError("nope"))
            else:
                packet.append("extra")
                next_()

        socket.use(mw)
        socket.on_any(lambda *args: seen_any.append(args))
        socket.on_any_outgoing(lambda *args: seen_out.append(args))
        socket.on("error", lambda err: errors.set_result(err))
        socket.on("echo", lambda a, extra: (a, extra))

    c = clients()
    await connect(c, port)
    await c.emit("forbidden")
    assert isinstance(await got(errors), ValueError)
    assert await c.call("echo", "a", timeout=WAIT) == ("a", "extra")
    io.emit("broadcast", 1)
    await asyncio.sleep(0.05)
    assert ("forbidden",) in seen_any and ("echo", "a") in seen_any
    assert ("broadcast", 1) in seen_out


# -- disconnection ------------------------------------------------------------------


async def test_disconnect_reasons(sio_server: Any, clients: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    reasons: dict[str, list[str]] = {}
    rooms_while_disconnecting: dict[str, set[str]] = {}
    sockets: dict[str, fastsio.Socket] = {}

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        name = socket.handshake.auth["name"]
        sockets[name] = socket
        socket.join("room")
        socket.on("disconnecting", lambda r: rooms_while_disconnecting.__setitem__(name, socket.rooms))
        socket.on("disconnect", lambda r: reasons.setdefault(name, []).append(r))
        socket.on("bye", lambda: socket.disconnect())
        socket.on("close-all", lambda: socket.disconnect(True))

    async def client(name: str, transports: list[str] | None = None) -> tuple[socketio.AsyncClient, "asyncio.Future[Any]"]:
        c = clients()
        fut = future()
        c.on("disconnect", lambda reason: fut.set_result(reason) if not fut.done() else None)
        await connect(c, port, transports, auth={"name": name})
        return c, fut

    # python-socketio closes a WebSocket before its DISCONNECT packet is
    # written; over polling the packet goes out first.
    c1, f1 = await client("client-side", ["polling"])
    await c1.disconnect()
    await wait_until(lambda: "client-side" in reasons, what="client namespace disconnect")
    assert reasons["client-side"] == ["client namespace disconnect"]
    assert "room" in rooms_while_disconnecting["client-side"]

    c2, f2 = await client("server-side")
    await c2.emit("bye")
    assert await got(f2) == socketio.AsyncClient.reason.SERVER_DISCONNECT
    assert reasons["server-side"] == ["server namespace disconnect"]

    c3, f3 = await client("close")
    await c3.emit("close-all")
    await got(f3)
    assert reasons["close"] == ["server namespace disconnect"]

    c4, f4 = await client("transport")
    await c4.eio.disconnect(abort=True)
    await wait_until(lambda: "transport" in reasons, what="transport close")
    assert reasons["transport"] == ["transport close"]

    c5, f5 = await client("shutdown")
    await io.close()
    assert reasons["shutdown"] == ["server shutting down"]
    await got(f5)


async def test_connect_timeout_closes_idle_connection(sio_server: Any) -> None:
    io, port = await sio_server(connect_timeout=0.2)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling") as resp:
            assert resp.status == 200
            body = await resp.text()
        assert body.startswith("0{")
        sid = body[body.index('"sid":"') + 7:].split('"', 1)[0]
        for _ in range(300):
            if io.engine.clients[sid].ready_state != "open":
                break
            await asyncio.sleep(0.02)
        # as Node: the closed polling session hands its close packet to the next GET
        async with http.get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling&sid={sid}") as resp:
            assert resp.status == 200
            assert (await resp.text()).split("\x1e")[-1] == "1"
        assert io.engine.clients_count == 0


async def test_parse_error_closes_connection(sio_server: Any) -> None:
    import json

    io, port = await sio_server()
    reasons: list[str] = []
    io.on("connection", lambda s: s.on("disconnect", reasons.append))
    base = f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(base) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        url = base + "&sid=" + sid
        async with http.post(url, data="40") as resp:
            assert resp.status == 200
        async with http.get(url) as resp:
            assert (await resp.text()).startswith("40{")
        assert len(io.sockets.sockets) == 1
        async with http.post(url, data="42[not json") as resp:
            pass
        # As Node, the engine closes on the next poll (it gets the close packet)
        async with http.get(url) as resp:
            assert (await resp.text()) == "1"
        for _ in range(300):
            if reasons:
                break
            await asyncio.sleep(0.02)
    assert reasons == ["forced close"]


# -- connection state recovery -------------------------------------------------------


async def test_connection_state_recovery(sio_server: Any, clients: Any, wait_until: Any) -> None:
    """python-socketio does not send pid/offset itself: the test passes them as auth."""
    io, port = await sio_server(connection_state_recovery={"max_disconnection_duration": 60})
    sockets: list[fastsio.Socket] = []

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        sockets.append(socket)
        if not socket.recovered:
            socket.join("news")
            socket.data["n"] = 1

    first = clients()
    got1: list[tuple[Any, ...]] = []
    first.on("news", lambda *args: got1.append(args))
    await connect(first, port)
    io.to("news").emit("news", "one")
    await wait_until(lambda: len(got1) == 1, what="first message")
    text, offset = got1[0]
    assert text == "one" and isinstance(offset, str)
    old = sockets[0]
    pid = old._pid
    assert pid

    await first.eio.disconnect(abort=True)
    await wait_until(lambda: not old.connected, what="disconnect")
    io.to("news").emit("news", "two")
    io.emit("news", "three")
    io.to("elsewhere").emit("news", "not for us")

    second = clients()
    got2: list[tuple[Any, ...]] = []
    second.on("news", lambda *args: got2.append(args))
    await connect(second, port, auth={"pid": pid, "offset": offset})
    await wait_until(lambda: len(got2) == 2, what="missed packets")
    new = sockets[1]
    assert new.recovered
    assert new.id == old.id
    assert "news" in new.rooms
    assert new.data == {"n": 1}
    assert [a[0] for a in got2] == ["two", "three"]

    # an unknown session gets a fresh socket
    third = clients()
    await connect(third, port, auth={"pid": "nope", "offset": offset})
    await wait_until(lambda: len(sockets) == 3, what="third socket")
    assert not sockets[2].recovered and sockets[2].id != old.id


# -- server API ------------------------------------------------------------------------


async def test_server_side_emit_and_getters(sio_server: Any) -> None:
    io, port = await sio_server()
    assert io.path() == "/socket.io"
    assert io.serve_client() is True
    assert io.adapter() is fastsio.InMemoryAdapter
    assert io.engine.clients_count == 0
    assert await io.server_side_emit_with_ack("hello", 1) == []
    cb = future()
    io.server_side_emit("hello", lambda err, res: cb.set_result((err, res)))
    assert await cb == (None, [])
    with pytest.raises(ValueError):
        io.emit("connect")
