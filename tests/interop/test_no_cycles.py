"""A closed connection is freed by reference counting alone, never left to the cyclic GC.

With ``gc.disable()`` (and no ``gc.collect()``), each test opens real connections,
closes them one way or another, and asserts that weak references to every
per-connection object (the Engine.IO session, the Socket.IO ``Socket`` and
``Client``, the ``HttpConnection``) are dead once the server has forgotten the
connection. A reference cycle anywhere among them keeps them all alive until a
collection runs: at tens of thousands of connections with churn that means
gen-2 collections scanning everything, pauses that delay broadcasts, and memory
held until then.

The handlers close over their socket, as applications do: a library that keeps
a disconnected socket's listeners would leak the socket into a cycle.

Peers: raw WebSocket and long-polling clients (tests/interop/raw.py) for the
exact close paths, and npm ``socket.io-client`` (tests/peers/gc_clients.mjs)
for the full client over every transport.
"""
from __future__ import annotations

import asyncio
import gc
import socket as pysocket
import struct
import sys
import types
import weakref
from collections import Counter
from typing import Any, AsyncIterator, Iterator

import orjson
import pytest
from raw import (HOST, RawConn, RawWebSocket, build_request, close_all, eio_ws_open, http_request, poll,
                 polling_handshake, post, upgrade_request, ws_open)

import fastsio
from fastsio._impl import eio_codec, ws_frames

pytestmark = pytest.mark.timeout(60)

PATH = "/engine.io/"   # the path raw.py's helpers use
SIO_WS = "EIO=4&transport=websocket"


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """The cyclic GC off for the test (what is not freed by reference counting stays)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


class Tracker:
    """Weak references to every per-connection object a server made."""

    def __init__(self, io: fastsio.Server) -> None:
        self.io = io
        self.refs: list[tuple[str, "weakref.ref[Any]"]] = []

    def _add(self, kind: str, obj: Any) -> None:
        if obj is None or any(r() is obj for _, r in self.refs):
            return
        self.refs.append((kind, weakref.ref(obj)))

    def watch(self, socket: Any) -> None:
        """Called from a connection handler: the socket and everything under it."""
        self._add("Socket", socket)
        self._add("Client", socket.client)
        conn = socket.conn
        self._add("EngineSocket", conn)
        self._add("HttpConnection", getattr(conn.request, "connection", None))
        self._add("HttpConnection", getattr(conn.transport, "conn", None))
        self.http_connections()

    def http_connections(self) -> None:
        for c in list(self.io.engine.http_server().connections):
            self._add("HttpConnection", c)

    def alive(self, kinds: tuple[str, ...] = ("Socket", "Client", "EngineSocket", "HttpConnection")) -> Counter[str]:
        return Counter(kind for kind, r in self.refs if kind in kinds and r() is not None)

    async def assert_freed(self, what: str, timeout: float = 3.0,
                           kinds: tuple[str, ...] = ("Socket", "Client", "EngineSocket", "HttpConnection")) -> None:
        """Every tracked object of ``kinds`` dies within ``timeout`` (no collection runs meanwhile)."""
        assert not gc.isenabled()
        assert self.refs, "nothing was tracked"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.alive(kinds) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        alive = self.alive(kinds)
        if alive:
            held = []
            for kind, r in self.refs:
                obj = r()
                if obj is not None and kind in kinds:
                    me = sys._getframe()
                    holders = [_describe(x) for x in gc.get_referrers(obj) if x is not me]
                    held.append(f"{obj!r} held by {holders[:8]}")
                    obj = me = None
            pytest.fail(f"{what}: still alive without the cyclic GC: {dict(alive)}\n" + "\n".join(held[:8]))


def _describe(obj: Any) -> str:
    if isinstance(obj, types.FrameType):
        return f"frame {obj.f_code.co_name} ({obj.f_code.co_filename.rsplit('/', 1)[-1]}:{obj.f_lineno})"
    if isinstance(obj, types.CellType):
        users = [f.__qualname__ for f in gc.get_referrers(obj) if isinstance(f, types.FunctionType)]
        return f"cell of {users}"
    if isinstance(obj, dict):
        return f"dict {list(obj)[:5]}"
    return type(obj).__name__


def _server(**options: Any) -> tuple[fastsio.Server, Tracker]:
    options.setdefault("path", PATH)
    io = fastsio.Server(**options)
    tracker = Tracker(io)

    def on_connection(socket: Any) -> None:
        tracker.watch(socket)
        socket.join(["lobby", "room-" + socket.id[:2]])
        socket.use(lambda packet, next_: next_())   # a per-event middleware

        @socket.on("hello")
        def hello(n: Any) -> Any:
            socket.emit("echo", n)
            return n

        @socket.on("bye")
        def bye() -> None:
            socket.disconnect(True)

        @socket.on("leave")
        def leave() -> None:
            socket.disconnect()

        socket.on("disconnect", lambda reason: socket.leave("lobby"))
        socket.conn.on("upgrade", lambda transport: socket.emit("upgraded", transport.name))

    io.on("connection", on_connection)
    io.of("/chat").on("connection", on_connection)
    return io, tracker


@pytest.fixture
async def served(free_port: int, no_cyclic_gc: None) -> AsyncIterator[Any]:
    """``io, tracker, port = await served(**options)``; the server is closed after the test."""
    made: list[fastsio.Server] = []

    async def start(**options: Any) -> tuple[fastsio.Server, Tracker, int]:
        io, tracker = _server(**options)
        await io.listen(free_port, host=HOST)
        made.append(io)
        return io, tracker, free_port

    yield start
    await close_all()
    for io in made:
        await asyncio.wait_for(io.close(), 10)


async def _forgotten(io: fastsio.Server, timeout: float = 5.0) -> None:
    """Wait until the server's tables hold no session and no HTTP connection."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    engine = io.engine
    while engine.clients or engine.http_server().connections:
        assert loop.time() < deadline, (f"sessions {[(s.transport.name, s.ready_state) for s in engine.clients.values()]}"
                                        f" / {len(engine.http_server().connections)} connections still open")
        await asyncio.sleep(0.02)


# -- raw Socket.IO clients -----------------------------------------------------------------------------

async def _sio_ws(port: int, nsps: tuple[str, ...] = ("/", "/chat")) -> RawWebSocket:
    """A WebSocket Socket.IO client joined to ``nsps``, after one event each way."""
    ws, _ = await eio_ws_open(port, SIO_WS, PATH)
    for nsp in nsps:
        prefix = "" if nsp == "/" else nsp + ","
        await ws.send_text("40" + prefix)
        ptype, data = await ws.recv_eio()
        assert ptype == 4 and str(data).startswith("0" + prefix), data
        await ws.send_text(f'42{prefix}["hello",1]')
        ptype, data = await ws.recv_eio()
        assert ptype == 4 and data == f'2{prefix}["echo",1]', data
    return ws


async def _until_closed(ws: RawWebSocket, timeout: float = 5.0) -> None:
    """Read (answering pings) until the server ends the WebSocket."""
    try:
        while True:
            await ws.recv_eio(timeout)
    except (EOFError, asyncio.TimeoutError):
        pass


async def _reset(ws: RawWebSocket) -> None:
    """Close with a TCP reset (SO_LINGER 0): the server sees a transport error."""
    sock = ws.conn.writer.get_extra_info("socket")
    sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.conn.writer.transport.abort()


async def _sio_polling(port: int) -> str:
    """A long-polling Socket.IO client joined to "/" (one event each way): its sid."""
    sid, _, _ = await polling_handshake(port, "EIO=4&transport=polling", PATH)
    assert (await post(port, sid, "40")).status == 200
    packets = await poll(port, sid)
    assert packets[0][0] == 4 and str(packets[0][1]).startswith("0"), packets
    assert (await post(port, sid, '42["hello",1]')).status == 200
    packets = await poll(port, sid)
    assert packets == [(4, '2["echo",1]')], packets
    return sid


async def _poll_until_close(port: int, sid: str, timeout: float = 5.0) -> None:
    """Poll until the close packet (or the session is gone)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        resp = await http_request(port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}", timeout=timeout)
        if resp.status != 200:
            return
        if any(p[0] == 1 for p in eio_codec.decode_payload(resp.body)):
            return
    raise AssertionError("no close packet")


# -- the tests ---------------------------------------------------------------------------------------------

async def test_websocket_close_paths(served: Any) -> None:
    """Client close frame, TCP close, TCP reset, engine close packet, namespace DISCONNECT,
    server disconnect, parse error, protocol error, ping timeout: nothing stays."""
    io, tracker, port = await served(ping_interval=0.3, ping_timeout=0.3)

    async def close_frame() -> None:
        ws = await _sio_ws(port)
        await ws.send_frame(8, ws_frames.build_close(1000, "")[2:], mask=b"abcd")
        await _until_closed(ws)
        await ws.close()

    async def tcp_close() -> None:
        ws = await _sio_ws(port)
        await ws.close()

    async def tcp_reset() -> None:
        await _reset(await _sio_ws(port))

    async def engine_close() -> None:
        ws = await _sio_ws(port)
        await ws.send_text("1")
        await _until_closed(ws)
        await ws.close()

    async def sio_disconnect() -> None:
        ws = await _sio_ws(port)
        await ws.send_text("41/chat,")
        await ws.send_text("41")
        await _until_closed(ws, 0.3)   # the engine stays open: the client ends it
        await ws.close()

    async def server_disconnect() -> None:
        ws = await _sio_ws(port)
        await ws.send_text('42["bye"]')
        await _until_closed(ws)
        await ws.close()

    async def namespace_leave_then_close() -> None:
        ws = await _sio_ws(port)
        await ws.send_text('42/chat,["leave"]')
        await asyncio.sleep(0.1)
        await ws.close()

    async def parse_error() -> None:
        ws = await _sio_ws(port)
        await ws.send_text("9")   # no such Engine.IO packet type
        await _until_closed(ws)
        await ws.close()

    async def protocol_error() -> None:
        ws = await _sio_ws(port)
        await ws.send_frame(1, "4", mask=None)   # an unmasked client frame
        await _until_closed(ws)
        await ws.close()

    async def ping_timeout() -> None:
        ws = await _sio_ws(port)
        await ws.conn.closed_within(3.0)   # never answers a ping: the server ends the session
        await ws.close()

    await asyncio.gather(close_frame(), tcp_close(), tcp_reset(), engine_close(), sio_disconnect(),
                         server_disconnect(), namespace_leave_then_close(), parse_error(), protocol_error(),
                         ping_timeout())
    await _forgotten(io)
    assert len([k for k, _ in tracker.refs if k == "Socket"]) == 20
    await tracker.assert_freed("WebSocket close paths")


async def test_polling_close_paths(served: Any) -> None:
    """Client close packet, server disconnect, ping timeout, an overlapping GET (transport error),
    a bad POST (parse error), a dropped pending GET: nothing stays."""
    io, tracker, port = await served(ping_interval=0.3, ping_timeout=0.3)

    async def client_close() -> None:
        sid = await _sio_polling(port)
        await post(port, sid, "1")

    async def server_disconnect() -> None:
        sid = await _sio_polling(port)
        await post(port, sid, '42["bye"]')
        await _poll_until_close(port, sid)

    async def ping_timeout() -> None:
        await _sio_polling(port)   # then stops polling

    async def overlap() -> None:
        sid = await _sio_polling(port)
        first = asyncio.ensure_future(poll(port, sid))
        await asyncio.sleep(0.05)
        resp = await http_request(port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
        assert resp.status == 400
        await first

    async def parse_error() -> None:
        sid = await _sio_polling(port)
        await post(port, sid, "x")

    async def dropped_get() -> None:
        sid = await _sio_polling(port)
        conn = await RawConn.connect(port)
        await conn.send(build_request("GET", f"{PATH}?EIO=4&transport=polling&sid={sid}"))
        await asyncio.sleep(0.05)
        await conn.close()

    await asyncio.gather(client_close(), server_disconnect(), ping_timeout(), overlap(), parse_error(),
                         dropped_get())
    await _forgotten(io)
    await tracker.assert_freed("long-polling close paths")


async def test_upgrade_then_close(served: Any) -> None:
    """polling -> websocket upgrade, then a close on the WebSocket; and an upgrade that times out."""
    io, tracker, port = await served(ping_interval=0.5, ping_timeout=0.5, upgrade_timeout=0.3)

    async def upgrade(finish: bool) -> None:
        sid = await _sio_polling(port)
        ws = await ws_open(port, f"{PATH}?EIO=4&transport=websocket&sid={sid}")
        await ws.send_text("2probe")
        assert await ws.recv_eio() == (3, "probe")
        if not finish:
            await _until_closed(ws)   # no upgrade packet: the probe is closed after upgrade_timeout
            await ws.close()
            await post(port, sid, "1")
            return
        await ws.send_text("5")
        assert await ws.recv_eio() == (4, '2["upgraded","websocket"]')
        await ws.send_text('42["hello",2]')
        assert await ws.recv_eio() == (4, '2["echo",2]')
        await ws.send_text('42["bye"]')
        await _until_closed(ws)
        await ws.close()

    await asyncio.gather(upgrade(True), upgrade(True), upgrade(False))
    await _forgotten(io)
    await tracker.assert_freed("upgrade")


async def test_slow_consumer_cut(served: Any) -> None:
    """A WebSocket client that stops reading is cut (max_buffered_bytes): nothing stays."""
    io, tracker, port = await served(max_buffered_bytes=64 * 1024, ping_interval=5, ping_timeout=5,
                                     drain_timeout=0.5)
    sock = pysocket.socket(pysocket.AF_INET, pysocket.SOCK_STREAM)
    sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, (HOST, port))
        await loop.sock_sendall(sock, upgrade_request(f"{PATH}?{SIO_WS}"))
        await asyncio.sleep(0.05)
        await loop.sock_sendall(sock, ws_frames.build_frame(1, "40", mask=b"abcd"))
        await asyncio.sleep(0.1)
        assert len(io.sockets.sockets) == 1
        chunk = "x" * 65536
        for _ in range(200):
            if not io.engine.clients:
                break
            io.emit("big", chunk)
            await asyncio.sleep(0.005)
        assert not io.engine.clients, "the slow consumer was not cut"
        assert io.engine.http_server().slow_consumer_disconnects == 1
    finally:
        sock.close()
    await _forgotten(io)
    await tracker.assert_freed("slow consumer")


async def test_io_close(served: Any) -> None:
    """``io.close()`` with WebSocket and polling clients still connected: nothing stays."""
    io, tracker, port = await served()
    wss = [await _sio_ws(port) for _ in range(3)]
    await _sio_polling(port)
    sid = await _sio_polling(port)
    pending = asyncio.ensure_future(poll(port, sid))   # a GET waiting when the server closes
    await asyncio.sleep(0.05)
    tracker.http_connections()
    await asyncio.wait_for(io.close(), 10)
    await asyncio.gather(*[_until_closed(ws) for ws in wss])
    try:
        await pending
    except Exception:
        pass
    del pending
    for ws in wss:
        await ws.close()
    await _forgotten(io)
    await tracker.assert_freed("io.close()")


async def test_recovery_session_keeps_no_connection(served: Any) -> None:
    """With connection state recovery, a dropped connection's session is stored (on purpose,
    until it expires), but the objects of the dead connection are freed at once; so are those
    of the connection that recovers it."""
    io, tracker, port = await served(connection_state_recovery={"max_disconnection_duration": 5},
                                     ping_interval=5, ping_timeout=5)
    ws, _ = await eio_ws_open(port, SIO_WS, PATH)
    await ws.send_text("40")
    ptype, data = await ws.recv_eio()
    assert ptype == 4 and str(data).startswith("0")
    hello = orjson.loads(str(data)[1:])
    io.emit("news", 1)   # an offset for the client to recover from
    ptype, data = await ws.recv_eio()
    assert ptype == 4
    offset = orjson.loads(str(data)[1:])[-1]
    await ws.close()     # "transport close": recoverable
    await _forgotten(io)
    assert io.sockets.adapter._sessions, "the session was not stored"
    await tracker.assert_freed("dropped connection, session stored")
    io.emit("news", 2)   # missed while away
    ws, _ = await eio_ws_open(port, SIO_WS, PATH)
    await ws.send_text("40" + orjson.dumps({"pid": hello["pid"], "offset": offset}).decode())
    ptype, data = await ws.recv_eio()
    assert ptype == 4 and orjson.loads(str(data)[1:])["sid"] == hello["sid"], data
    ptype, data = await ws.recv_eio()
    assert ptype == 4 and orjson.loads(str(data)[1:])[:2] == ["news", 2], data
    assert io.sockets.sockets[hello["sid"]].recovered
    await ws.send_text('42["bye"]')
    await _until_closed(ws)
    await ws.close()
    await _forgotten(io)
    await tracker.assert_freed("recovered connection")


async def test_instrumented_sockets_are_freed(served: Any) -> None:
    """With the admin UI on, socket.data is a watched dict whose callback used to hold the
    socket; with recovery that dict stays in the stored session, and kept the socket with it."""
    io, tracker, port = await served(connection_state_recovery={"max_disconnection_duration": 5},
                                     ping_interval=5, ping_timeout=5)
    io.instrument(auth=False)
    io.on("connection", lambda socket: socket.data.__setitem__("user", "u1"))   # a watched change
    for close in ("tcp", "bye"):
        ws, _ = await eio_ws_open(port, SIO_WS, PATH)
        await ws.send_text("40")
        ptype, data = await ws.recv_eio()
        assert ptype == 4 and str(data).startswith("0"), data
        if close == "bye":
            await ws.send_text('42["bye"]')
            await _until_closed(ws)
        await ws.close()
        await _forgotten(io)
        await tracker.assert_freed(f"instrumented socket, {close} close")
    assert io.sockets.adapter._sessions, "the recoverable session was not stored"


@pytest.mark.parametrize("recovery", [False, True], ids=["plain", "recovery"])
async def test_npm_client_every_transport_and_close(served: Any, run_node: Any, recovery: bool) -> None:
    """npm socket.io-client over websocket, polling and polling -> websocket, two namespaces,
    closed by the client, by the server and by a dropped engine: nothing stays."""
    options: dict[str, Any] = {"ping_interval": 2, "ping_timeout": 2}
    if recovery:
        options["connection_state_recovery"] = {"max_disconnection_duration": 5}
    io, tracker, port = await served(**options)
    run = await run_node("gc_clients.mjs", f"port={port}", f"path={PATH}", "n=2", timeout=30)
    run.check()
    assert len(run.events("closed")) == 2 * 3 * 3, run.describe()
    await _forgotten(io)
    assert len([k for k, _ in tracker.refs if k == "Socket"]) == 2 * 3 * 3 * 2
    await tracker.assert_freed("socket.io-client")


async def test_acks_middlewares_and_connect_timeout(served: Any) -> None:
    """Acks pending (with and without a timeout) at the disconnect, a namespace middleware that
    refuses, one the client leaves while it waits, a client that joins no namespace in time,
    and a v2 (EIO3) client: nothing stays."""
    io, tracker, port = await served(connect_timeout=0.3, allow_eio3=True, ping_interval=5, ping_timeout=5)
    asked: list[Any] = []

    def ask(socket: Any) -> None:
        async def ask_timed() -> None:
            try:
                await socket.timeout(5).emit_with_ack("q")
            except Exception as exc:
                asked.append(type(exc).__name__)

        async def ask_untimed() -> None:
            try:
                await socket.emit_with_ack("q")
            except Exception as exc:
                asked.append(type(exc).__name__)

        socket.emit("q", lambda *a: None)   # a plain callback ack
        asyncio.ensure_future(ask_timed())
        asyncio.ensure_future(ask_untimed())

    io.of("/acks").on("connection", lambda socket: (tracker.watch(socket), ask(socket)))

    def refuse(socket: Any, next_: Any) -> None:
        tracker._add("Socket", socket)
        next_(Exception("not allowed"))

    io.of("/private").use(refuse)
    gate = asyncio.Event()   # never set

    async def stuck(socket: Any) -> None:
        tracker._add("Socket", socket)
        await gate.wait()

    io.of("/stuck").use(stuck)
    io.engine.on("connection", lambda conn: tracker._add("EngineSocket", conn))

    async def acks() -> None:
        ws, _ = await eio_ws_open(port, SIO_WS, PATH)
        await ws.send_text("40/acks,")
        ptype, data = await ws.recv_eio()
        assert ptype == 4 and str(data).startswith("0/acks,"), data
        await asyncio.sleep(0.1)   # the three acks are asked for and never answered
        await ws.close()

    async def refused() -> None:
        ws, _ = await eio_ws_open(port, SIO_WS, PATH)
        await ws.send_text("40/private,")
        ptype, data = await ws.recv_eio()
        assert ptype == 4 and str(data).startswith("4/private,"), data
        await ws.close()

    async def left_waiting() -> None:
        ws, _ = await eio_ws_open(port, SIO_WS, PATH)
        await ws.send_text("40/stuck,")
        await asyncio.sleep(0.1)
        await ws.close()

    async def joins_nothing() -> None:
        ws, _ = await eio_ws_open(port, SIO_WS, PATH)
        await _until_closed(ws)   # closed by connect_timeout
        await ws.close()

    async def eio3() -> None:
        ws, _ = await eio_ws_open(port, "EIO=3&transport=websocket", PATH)
        ptype, data = await ws.recv_eio()
        assert ptype == 4 and data == "0", data   # connected to "/" without asking
        await ws.send_text('42["hello",3]')
        assert await ws.recv_eio() == (4, '2["echo",3]')
        await ws.close()

    await asyncio.gather(acks(), refused(), left_waiting(), joins_nothing(), eio3())
    await _forgotten(io)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while len(asked) < 2 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert asked == ["AckTimeout", "AckTimeout"], asked
    await tracker.assert_freed("acks, middlewares, connect timeout, EIO3")


async def _asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A small ASGI app: answers "ok" + the request body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok" + body})


async def test_hosted_asgi_app_requests(free_port: int, no_cyclic_gc: None) -> None:
    """Requests to an ASGI app hosted on the Socket.IO port (answered, and dropped halfway
    through the body): their connections are freed once closed."""
    io, tracker = _server()
    await io.listen(free_port, host=HOST, app=_asgi_app)
    try:
        conns = [await RawConn.connect(free_port) for _ in range(3)]
        for c in conns[:2]:
            for _ in range(2):   # keep-alive: two requests each
                await c.send(build_request("POST", "/x", None, b"abc"))
                resp = await c.read_response()
                assert resp.status == 200 and resp.body == b"okabc", resp
        await conns[2].send(build_request("POST", "/x", {"Content-Length": "100"}, b"ab"))
        await asyncio.sleep(0.1)
        tracker.http_connections()
        assert len(tracker.refs) == 3
        for c in conns:
            await c.close()
        del c
        await _forgotten(io)
        await tracker.assert_freed("hosted ASGI app")
    finally:
        await close_all()
        await asyncio.wait_for(io.close(), 10)
