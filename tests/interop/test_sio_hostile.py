"""Hostile Socket.IO packets against a live fastsio.Server, over raw WebSocket.

Each test speaks Engine.IO v4 over WebSocket by hand (``/socket.io/?EIO=4&
transport=websocket``: read the ``0{...}`` open packet, send ``40``, answer
``2`` pings with ``3``), sends malformed or out-of-order Socket.IO packets, and
asserts the answer Node's socket.io 4.x server gives (``lib/client.ts``
``ondata``/``ondecoded``/``onerror``, socket.io-parser 4.2 ``Decoder``).

After every hostile case a second, well-behaved client connected to the same
server beforehand must still get an event and an ack: one client's bad input
never touches the others.

Frames are written as Engine.IO text, so ``"42[...]"`` is an Engine.IO message
(``4``) carrying the Socket.IO EVENT ``2[...]``. No timing is asserted: every
wait is an upper bound.
"""
from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Optional, Union

import orjson
import pytest

import fastsio
from fastsio.exceptions import ProtocolError

from raw import MASK, RawWebSocket, close_all, wait_for, ws_open
from fastsio._impl import ws_frames

HOST = "127.0.0.1"
SIO_PATH = "/socket.io/?EIO=4&transport=websocket"
WAIT = 10.0


# -- a raw Socket.IO client -------------------------------------------------------------------


class SioRaw:
    """A raw Engine.IO v4 WebSocket session speaking Socket.IO text by hand."""

    def __init__(self, ws: RawWebSocket, handshake: dict[str, Any]) -> None:
        self.ws = ws
        self.handshake = handshake
        self.sid: Optional[str] = None  # the Socket.IO id of the "/" socket, once connected

    @classmethod
    async def open(cls, port: int) -> "SioRaw":
        ws = await ws_open(port, SIO_PATH)
        ptype, data = await ws.recv_eio(WAIT)
        assert ptype == 0, (ptype, data)
        assert isinstance(data, str)
        return cls(ws, orjson.loads(data))

    @classmethod
    async def connected(cls, port: int) -> "SioRaw":
        """Open and join "/"; remembers the socket id of the CONNECT answer."""
        c = await cls.open(port)
        await c.send("40")
        msg = await c.recv()
        assert isinstance(msg, str) and msg.startswith("40{"), msg
        c.sid = orjson.loads(msg[2:])["sid"]
        return c

    async def send(self, text: str) -> None:
        """One text frame, as is (Engine.IO packet type included)."""
        await self.ws.send_text(text)

    async def send_binary(self, data: bytes) -> None:
        await self.ws.send_binary(data)

    async def send_many(self, frames: list[Union[str, bytes]]) -> None:
        """Every frame in one TCP write."""
        out = bytearray()
        for f in frames:
            opcode = 1 if isinstance(f, str) else 2
            out += ws_frames.build_frame(opcode, f, fin=True, rsv1=False, mask=MASK)
        await self.ws.send_raw(bytes(out))

    async def recv(self, timeout: float = WAIT) -> Union[str, bytes]:
        """The next Engine.IO message, as Engine.IO text ("4..."), pings answered on the way.

        Binary messages are returned as bytes.
        """
        ptype, data = await self.ws.recv_eio(timeout)
        if isinstance(data, bytes):
            return data
        return f"{ptype}{data}"

    async def recv_until(self, wanted: str, timeout: float = WAIT) -> list[Union[str, bytes]]:
        """Messages up to and including ``wanted``; fails if the connection ends first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen: list[Union[str, bytes]] = []
        while True:
            msg = await self.recv(max(0.01, deadline - loop.time()))
            seen.append(msg)
            if msg == wanted:
                return seen

    async def closed(self, timeout: float = WAIT) -> bool:
        """True if the server ends the connection (close frame or EOF) within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                opcode, _, _ = await self.ws.recv_frame(left)
            except EOFError:
                return True
            except asyncio.TimeoutError:
                return False
            if opcode == 8:
                return True

    async def close(self) -> None:
        await self.ws.close()


class Witness:
    """A well-behaved client: ``check()`` asks for an event and an ack and gets both."""

    def __init__(self, client: SioRaw) -> None:
        self.client = client
        self.n = 0

    async def check(self) -> None:
        self.n += 1
        n = self.n
        await self.client.send(f'42{n}["ping",{n}]')
        got: set[str] = set()
        want = {f'42["pong",{n}]', f"43{n}[{n}]"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not want <= got:
            msg = await self.client.recv(max(0.01, deadline - loop.time()))
            if isinstance(msg, str):
                got.add(msg)


# -- the server under test ----------------------------------------------------------------------


@dataclass
class Live:
    io: Any
    port: int
    sockets: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, list[Any]] = field(default_factory=dict)
    ev_calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    connections: int = 0

    async def witness(self) -> Witness:
        w = Witness(await SioRaw.connected(self.port))
        await w.check()
        return w

    async def wait(self, predicate: Any, what: str, timeout: float = WAIT) -> None:
        await wait_for(predicate, timeout, what)


@pytest.fixture
async def live(free_port: int) -> AsyncIterator[Live]:
    io = fastsio.Server()
    lv = Live(io, free_port)

    def on_connection(socket: Any) -> None:
        sid = socket.id
        lv.connections += 1
        lv.sockets[sid] = socket
        socket.on("disconnect", lambda reason, *_: lv.reasons.setdefault(sid, []).append(reason))
        socket.on("error", lambda *args: lv.errors.setdefault(sid, []).append(args))

        def ev(*args: Any) -> str:
            lv.ev_calls.append((sid, args))
            return "ok"

        def ping(n: Any) -> Any:
            socket.emit("pong", n)
            return n

        socket.on("ev", ev)
        socket.on("ping", ping)

    io.on("connection", on_connection)
    io.of("/other").on("connection", on_connection)
    await io.listen(free_port, host=HOST)
    try:
        yield lv
    finally:
        await close_all()
        await asyncio.wait_for(io.close(), 10)


# -- decoding errors: "forced close" (as Node), the other client untouched ------------------------------------

PH0 = '{"_placeholder":true,"num":0}'

# (id, frames sent after "40"). Every one is a protocol violation socket.io-parser
# rejects (or fastsio rejects more strictly, see the notes), so the connection is
# closed and the socket's "disconnect" handler gets "forced close": Node's
# client.onerror calls conn.close() (tests/interop/test_node_handlers_js.py checks a real
# Node server).
PARSE_ERRORS: list[tuple[str, list[Union[str, bytes]]]] = [
    ("unknown-type-letters", ["4abc"]),
    ("unknown-type-7", ["47"]),
    ("event-object-payload", ["42{}"]),
    ("event-empty-array", ["42[]"]),
    ("bad-ack-id", ['42abc["ev"]']),
    ("ack-id-over-2^53-1", ['429007199254740993["ev"]']),
    ("too-many-attachments", ["4511-" + orjson.dumps(["ev"] + [{"_placeholder": True, "num": i} for i in range(11)]).decode()]
     + [b"x"] * 11),
    ("attachment-count-letter", [f'45x-["ev",{PH0}]', b"x"]),
    ("attachment-count-negative", [f'45-1-["ev",{PH0}]', b"x"]),
    ("placeholder-out-of-range", ['451-["ev",{"_placeholder":true,"num":1}]', b"x"]),
    ("placeholder-not-true", ['451-["ev",{"_placeholder":1,"num":0}]', b"x"]),
    ("placeholder-num-bool", ['451-["ev",{"_placeholder":true,"num":true}]', b"x"]),
    ("unused-attachment", [f'452-["ev",{PH0}]', b"x", b"y"]),
    ("text-while-pending", [f'451-["ev",{PH0}]', '42["ev"]']),
    ("binary-without-packet", [b"\x01\x02\x03"]),
    ("nested-100000", ['42["ev",' + "[" * 100_000 + "]" * 100_000 + "]"]),
    ("reserved-connect", ['42["connect"]']),
    ("reserved-disconnect", ['42["disconnect"]']),
    ("reserved-disconnecting", ['42["disconnecting"]']),
    ("reserved-connect_error", ['42["connect_error"]']),
    ("reserved-newListener", ['42["newListener","ev"]']),
    ("reserved-removeListener", ['42["removeListener","ev"]']),
    ("name-object", ["42[{}]"]),
    ("name-null", ["42[null]"]),
    ("name-array", ['42[["ev"]]']),
]


@pytest.mark.parametrize("frames", [f for _, f in PARSE_ERRORS], ids=[i for i, _ in PARSE_ERRORS])
async def test_decoding_error_is_forced_close(live: Live, frames: list[Union[str, bytes]]) -> None:
    witness = await live.witness()
    bad = await SioRaw.connected(live.port)
    sid = bad.sid
    assert sid is not None
    for f in frames:
        if isinstance(f, str):
            await bad.send(f)
        else:
            await bad.send_binary(f)
    assert await bad.closed(), f"connection still open after {frames!r}"
    await live.wait(lambda: sid in live.reasons, "the bad socket's disconnect")
    assert live.reasons[sid] == ["forced close"]
    # Node emits "error" on every socket of the client before closing it.
    errs = live.errors.get(sid, [])
    assert len(errs) == 1 and isinstance(errs[0][0], ProtocolError), errs
    assert [c for c in live.ev_calls if c[0] == sid] == []
    await witness.check()


async def test_decoding_error_closes_every_namespace_of_the_client(live: Live) -> None:
    witness = await live.witness()
    bad = await SioRaw.connected(live.port)
    await bad.send("40/other,")
    msg = await bad.recv()
    assert isinstance(msg, str) and msg.startswith("40/other,{"), msg
    other_sid = orjson.loads(msg[len("40/other,"):])["sid"]
    await bad.send("42{}")
    assert await bad.closed()
    await live.wait(lambda: bad.sid in live.reasons and other_sid in live.reasons, "both disconnects")
    assert live.reasons[bad.sid] == ["forced close"]
    assert live.reasons[other_sid] == ["forced close"]
    await witness.check()


# -- "error" as an event name -----------------------------------------------------------------------


async def test_error_event_from_client_reaches_error_listener(live: Live) -> None:
    # "error" is not in socket.io-parser's RESERVED_EVENTS: Node dispatches it to
    # socket.on("error") like any event (socket.ts dispatch -> emitUntyped).
    witness = await live.witness()
    c = await SioRaw.connected(live.port)
    await c.send('42["error","boom",1]')
    await live.wait(lambda: c.sid in live.errors, "the error listener")
    assert live.errors[c.sid] == [("boom", 1)]
    # Still connected: an ack round trip works.
    await Witness(c).check()
    assert c.sid not in live.reasons
    await witness.check()


async def test_error_event_without_listener_does_not_crash(free_port: int) -> None:
    # Node's EventEmitter throws on an "error" with no listener; fastsio must not.
    io = fastsio.Server()
    pings: list[Any] = []

    def on_connection(socket: Any) -> None:
        def ping(n: Any) -> Any:
            pings.append(n)
            socket.emit("pong", n)
            return n

        socket.on("ping", ping)

    io.on("connection", on_connection)
    await io.listen(free_port, host=HOST)
    try:
        witness = Witness(await SioRaw.connected(free_port))
        await witness.check()
        c = await SioRaw.connected(free_port)
        await c.send('42["error","boom"]')
        await c.send('427["error"]')
        await Witness(c).check()
        await witness.check()
    finally:
        await close_all()
        await asyncio.wait_for(io.close(), 10)


# -- edge values that are valid ---------------------------------------------------------------------


async def test_largest_ack_id_is_answered(live: Live) -> None:
    c = await SioRaw.connected(live.port)
    await c.send('429007199254740991["ev","x"]')
    await c.recv_until('439007199254740991["ok"]')
    assert live.ev_calls == [(c.sid, ("x",))]


async def test_ack_id_with_leading_zeros(live: Live) -> None:
    # socket.io-parser reads the id with Number("0012") == 12.
    c = await SioRaw.connected(live.port)
    await c.send('420012["ev"]')
    await c.recv_until('4312["ok"]')
    await c.send('420["ev"]')
    await c.recv_until('430["ok"]')


async def test_numeric_event_name_reaches_its_listener(live: Live) -> None:
    # socket.io-parser accepts a number as the event name, and Node's
    # EventEmitter keys listeners by property name, so socket.on("7") gets
    # '42[7,"x"]' (and its ack).
    got: list[Any] = []
    anys: list[Any] = []

    def on_connection(socket: Any) -> None:
        socket.on("7", lambda *a: got.append(a) or "seven")
        socket.on_any(lambda *a: anys.append(a))

    live.io.on("connection", on_connection)
    c = await SioRaw.connected(live.port)
    await c.send('425[7,"x"]')
    try:
        seen = await c.recv_until('435["seven"]', timeout=3)
    except asyncio.TimeoutError:
        seen = None
    assert got == [("x",)], "socket.on('7') was not called for 42[7,\"x\"]"
    assert anys == [(7, "x")]
    assert seen is not None, "no ack 435[\"seven\"]"
    # The connection stays usable.
    await Witness(c).check()


# -- namespaces and out-of-order packets ------------------------------------------------------------


async def test_unknown_namespace_gets_connect_error_and_connection_stays(live: Live) -> None:
    witness = await live.witness()
    c = await SioRaw.open(live.port)
    await c.send("40/nope,")
    assert await c.recv() == '44/nope,{"message":"Invalid namespace"}'
    # Node's client.connect() only answers CONNECT_ERROR: the connection stays.
    await c.send("40")
    msg = await c.recv()
    assert isinstance(msg, str) and msg.startswith('40{"sid":'), msg
    c.sid = orjson.loads(msg[2:])["sid"]
    await Witness(c).check()
    await witness.check()


async def test_event_before_connect_closes_connection(live: Live) -> None:
    # client.ts ondecoded: no socket for "/" and not a CONNECT -> this.close().
    witness = await live.witness()
    before = live.connections
    c = await SioRaw.open(live.port)
    await c.send('42["ev",1]')
    assert await c.closed()
    assert live.connections == before
    assert live.ev_calls == []
    await witness.check()


async def test_ack_before_connect_closes_connection(live: Live) -> None:
    witness = await live.witness()
    c = await SioRaw.open(live.port)
    await c.send("431[]")
    assert await c.closed()
    await witness.check()


async def test_ack_for_unknown_id_is_ignored(live: Live) -> None:
    # socket.ts onack: no callback for the id -> debug("bad ack") and nothing else.
    witness = await live.witness()
    c = await SioRaw.connected(live.port)
    await c.send("43999[]")
    await c.send('43999["x",{"y":1}]')
    await c.send("430[]")
    await Witness(c).check()
    assert c.sid not in live.reasons
    await witness.check()


async def test_event_for_namespace_not_joined_closes_connection(live: Live) -> None:
    # client.ts ondecoded: no socket for "/other" and not a CONNECT -> close();
    # the "/" socket goes with it, reason "forced server close".
    witness = await live.witness()
    c = await SioRaw.connected(live.port)
    await c.send('42/other,["ev",1]')
    assert await c.closed()
    await live.wait(lambda: c.sid in live.reasons, "the / socket's disconnect")
    assert live.reasons[c.sid] == ["forced server close"]
    assert live.ev_calls == []
    await witness.check()


async def test_second_connect_to_joined_namespace_closes_connection(live: Live) -> None:
    # client.ts ondecoded: a socket exists and the packet is a CONNECT -> close().
    witness = await live.witness()
    c = await SioRaw.connected(live.port)
    await c.send("40")
    assert await c.closed()
    await live.wait(lambda: c.sid in live.reasons, "the / socket's disconnect")
    assert live.reasons[c.sid] == ["forced server close"]
    await witness.check()


async def test_connect_error_from_client_closes_connection(live: Live) -> None:
    witness = await live.witness()
    c = await SioRaw.connected(live.port)
    await c.send('44{"message":"x"}')
    assert await c.closed()
    await witness.check()


async def test_events_after_disconnect_are_not_dispatched(live: Live) -> None:
    witness = await live.witness()
    # "41" then an event in the same TCP write: the event never reaches a handler
    # (Node: the socket is gone or no longer connected when it is dispatched).
    c = await SioRaw.connected(live.port)
    await c.send_many(["41", '42["ev",1]', '421["ev",2]'])
    await live.wait(lambda: c.sid in live.reasons, "the socket's disconnect")
    assert live.reasons[c.sid] == ["client namespace disconnect"]
    # No answer to either event (no ack for id 1); the connection may be closed.
    got: list[Any] = []
    while True:
        try:
            got.append(await c.recv(0.5))
        except (EOFError, asyncio.TimeoutError):
            break
    assert not [m for m in got if isinstance(m, str) and m.startswith("43")], got
    assert live.ev_calls == []
    await witness.check()


async def test_event_after_disconnect_in_a_later_write_closes_connection(live: Live) -> None:
    # After "41" the client has no socket for "/" any more, so a later event is
    # an event for a namespace not joined: Node's ondecoded closes the connection.
    witness = await live.witness()
    c = await SioRaw.connected(live.port)
    await c.send("41")
    await live.wait(lambda: c.sid in live.reasons, "the socket's disconnect")
    assert live.reasons[c.sid] == ["client namespace disconnect"]
    await c.send('421["ev",1]')
    assert await c.closed()
    assert live.ev_calls == []
    assert live.reasons[c.sid] == ["client namespace disconnect"]
    await witness.check()


async def test_disconnect_one_namespace_keeps_the_other(live: Live) -> None:
    witness = await live.witness()
    c = await SioRaw.connected(live.port)
    await c.send("40/other,")
    msg = await c.recv()
    assert isinstance(msg, str) and msg.startswith("40/other,{"), msg
    other_sid = orjson.loads(msg[len("40/other,"):])["sid"]
    await c.send("41/other,")
    await live.wait(lambda: other_sid in live.reasons, "the /other disconnect")
    assert live.reasons[other_sid] == ["client namespace disconnect"]
    await Witness(c).check()
    assert c.sid not in live.reasons
    await witness.check()


# -- a flood of events to a coroutine handler -------------------------------------------------------


async def test_flood_of_events_to_coroutine_handler(free_port: int) -> None:
    io = fastsio.Server()
    gate = asyncio.Event()
    calls: list[int] = []
    done: list[int] = []

    def on_connection(socket: Any) -> None:
        async def ev(x: Any) -> None:
            calls.append(x)
            await gate.wait()
            done.append(x)

        def ping(n: Any) -> Any:
            socket.emit("pong", n)
            return n

        socket.on("ev", ev)
        socket.on("ping", ping)

    io.on("connection", on_connection)
    await io.listen(free_port, host=HOST)
    try:
        witness = Witness(await SioRaw.connected(free_port))
        await witness.check()
        gc.collect()
        baseline = len(asyncio.all_tasks())
        n = 5000
        c = await SioRaw.connected(free_port)
        await c.send_many(['42["ev",1]'] * n)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(calls) < n:
            assert loop.time() < deadline, f"only {len(calls)} of {n} handlers ran"
            await asyncio.sleep(0.02)
        # One task per handler call, nothing more (a couple of spare for the
        # server's own connection bookkeeping).
        extra = len(asyncio.all_tasks()) - baseline
        assert extra <= n + 10, f"{extra} tasks for {n} handler calls"
        # The other client and the flooder are served while 5,000 handlers wait.
        await witness.check()
        await Witness(c).check()
        gate.set()
        deadline = loop.time() + 60
        while len(done) < n:
            assert loop.time() < deadline, f"only {len(done)} of {n} handlers finished"
            await asyncio.sleep(0.02)
        assert len(calls) == n
        # The finished tasks are released.
        for _ in range(100):
            if len(asyncio.all_tasks()) <= baseline + 10:
                break
            await asyncio.sleep(0.02)
        assert len(asyncio.all_tasks()) <= baseline + 10
        # Nothing is kept for them either.
        from fastsio import socket as socket_module
        assert len(socket_module._background) <= 10
        await witness.check()
    finally:
        gate.set()
        await close_all()
        await asyncio.wait_for(io.close(), 10)
