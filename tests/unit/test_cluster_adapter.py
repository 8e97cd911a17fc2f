"""ClusterAdapter protocol: real fastsio Servers in one loop joined by an in-process bus.

The bus copies every message through msgpack (as a real transport encodes
it) and delivers it on the next loop iteration, to every other adapter of
the namespace; responses go to the requester only.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

import msgpack
import pytest

import fastsio
from fastsio._impl import sio_codec as C
from fastsio.adapter import BroadcastOptions, InMemoryAdapter
from fastsio.adapters.cluster import ClusterAdapter, ClusterAdapterWithHeartbeat, MessageType
from fastsio.broadcast import RemoteSocket

from sio_fakes import FakeConn, connect, the_socket


class Bus:
    """Everything published reaches the other adapters of the namespace, in order."""

    def __init__(self) -> None:
        self.adapters: list[Any] = []
        self.log: list[dict[str, Any]] = []
        self.drop: Callable[[Any, dict[str, Any]], bool] = lambda target, message: False
        self.offsets = 0

    def _copy(self, message: dict[str, Any]) -> Any:
        return msgpack.unpackb(msgpack.packb(message, use_bin_type=True), raw=False)

    def publish(self, sender: Any, message: dict[str, Any]) -> None:
        self.log.append(message)
        wire = msgpack.packb(message, use_bin_type=True)
        self.offsets += 1
        offset = f"{self.offsets}-0"
        loop = asyncio.get_running_loop()
        for target in list(self.adapters):
            if target.nsp.name == message["nsp"] and not self.drop(target, message):
                # every subscriber gets its own copy, the sender too (it must drop it)
                loop.call_soon(target._on_message, msgpack.unpackb(wire, raw=False), offset)

    def respond(self, requester: str, response: dict[str, Any]) -> None:
        self.log.append(response)
        loop = asyncio.get_running_loop()
        for target in self.adapters:
            if target.uid == requester and not self.drop(target, response):
                loop.call_soon(target._on_response, self._copy(response))


class BusAdapter(ClusterAdapter):
    def __init__(self, nsp: Any, bus: Bus, **kw: Any) -> None:
        super().__init__(nsp, **kw)
        self.bus = bus
        bus.adapters.append(self)

    def _do_publish(self, message: dict[str, Any]) -> None:
        self.bus.publish(self, message)

    def _do_publish_response(self, requester_uid: str, response: dict[str, Any]) -> None:
        self.bus.respond(requester_uid, response)

    def server_count(self) -> Any:
        async def count() -> int:
            return sum(1 for a in self.bus.adapters if a.nsp.name == self.nsp.name)
        return count()

    def close(self) -> Any:
        super().close()
        if self in self.bus.adapters:
            self.bus.adapters.remove(self)


class OffsetAdapter(BusAdapter):
    _has_offsets = True

    def _do_publish(self, message: dict[str, Any]) -> Any:
        self.bus.publish(self, message)
        offset = f"{self.bus.offsets}-0"

        async def done() -> str:
            await asyncio.sleep(0)
            return offset
        return done()


class HeartbeatBusAdapter(ClusterAdapterWithHeartbeat):
    def __init__(self, nsp: Any, bus: Bus, **kw: Any) -> None:
        kw.setdefault("heartbeat_interval", 0.1)
        kw.setdefault("heartbeat_timeout", 1.0)
        super().__init__(nsp, **kw)
        self.bus = bus
        bus.adapters.append(self)

    def _do_publish(self, message: dict[str, Any]) -> None:
        self.bus.publish(self, message)

    def _do_publish_response(self, requester_uid: str, response: dict[str, Any]) -> None:
        self.bus.respond(requester_uid, response)

    def close(self) -> Any:
        super().close()
        if self in self.bus.adapters:
            self.bus.adapters.remove(self)


async def settle(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def wait_for(pred: Callable[[], bool], timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.005)


def servers(n: int, cls: Any = BusAdapter, **options: Any) -> tuple[Bus, list[fastsio.Server]]:
    bus = Bus()
    return bus, [fastsio.Server(adapter=lambda nsp: cls(nsp, bus), **options) for _ in range(n)]


def events(conn: FakeConn) -> list[Any]:
    return [p.data for p in conn.packets() if p.type in (C.EVENT, C.BINARY_EVENT)]


def client(io: fastsio.Server, *rooms: str, nsp: str = "/") -> tuple[FakeConn, Any]:
    io.of(nsp)
    conn = connect(io, nsp)
    sock = the_socket(io, conn, nsp)
    if rooms:
        sock.join(list(rooms))
    conn.sent.clear()
    return conn, sock


# -- broadcast ------------------------------------------------------------------


async def test_broadcast_reaches_every_server_with_rooms_and_except() -> None:
    bus, (a, b, c) = servers(3)
    a1, _ = client(a, "r1")
    b1, _ = client(b, "r1")
    b2, _ = client(b, "r2")
    c1, _ = client(c, "r1", "x")
    a.to("r1").except_("x").emit("news", 1, {"k": [None, 2.5]})
    await settle()
    assert events(a1) == [["news", 1, {"k": [None, 2.5]}]]
    assert events(b1) == [["news", 1, {"k": [None, 2.5]}]]
    assert events(b2) == [] and events(c1) == []
    msg = bus.log[-1]
    assert msg["type"] == MessageType.BROADCAST and msg["nsp"] == "/" and msg["uid"] == a.sockets.adapter.uid
    assert msg["data"] == {"packet": {"type": 2, "data": ["news", 1, {"k": [None, 2.5]}]},
                           "opts": {"rooms": ["r1"], "except": ["x"], "flags": {}}}
    # everybody, and several rooms
    b.emit("all")
    b.to(["r1", "r2"]).emit("two")
    await settle()
    assert events(a1) == [["all"], ["two"]] and events(c1) == [["all"], ["two"]]
    assert events(b2) == [["all"], ["two"]]


async def test_local_flag_never_publishes_and_flags_travel() -> None:
    bus, (a, b) = servers(2)
    b1, _ = client(b)
    a.local.emit("only-here")
    await settle()
    assert bus.log == [] and events(b1) == []
    seen: list[BroadcastOptions] = []
    real = InMemoryAdapter.broadcast

    def spy(self: Any, packet: Any, opts: BroadcastOptions) -> None:
        if self is b.sockets.adapter:
            seen.append(opts)
        real(self, packet, opts)

    InMemoryAdapter.broadcast = spy  # type: ignore[method-assign]
    try:
        a.volatile.compress(False).emit("v")
        await settle()
    finally:
        InMemoryAdapter.broadcast = real  # type: ignore[method-assign]
    assert bus.log[-1]["data"]["opts"]["flags"] == {"volatile": True, "compress": False}
    assert seen and seen[0].flags == {"volatile": True, "compress": False}
    assert events(b1) == [["v"]]


async def test_remote_broadcast_encodes_once_for_all_local_targets() -> None:
    _, (a, b) = servers(2)
    conns = [client(b)[0] for _ in range(4)]
    captured: list[Any] = []
    for conn in conns:
        conn.send_prepared = captured.append  # type: ignore[method-assign]
    calls = 0
    encode = b.sockets._encode

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return encode(*args)

    b.sockets._encode = counting
    a.emit("fan", b"\x00\x01")
    await settle()
    assert calls == 1
    assert len(captured) == 4 and all(m is captured[0] for m in captured)
    assert captured[0].parts[1] == b"\x00\x01"


async def test_binary_is_byte_identical_across_servers() -> None:
    _, (a, b) = servers(2)
    b1, _ = client(b)
    blob = bytes(range(256)) * 3
    a.emit("bin", blob, {"nested": [b"\xff\x00"]})
    await settle()
    (got,) = events(b1)
    assert got == ["bin", blob, {"nested": [b"\xff\x00"]}]


async def test_own_messages_and_other_namespaces_are_ignored() -> None:
    bus, (a, b) = servers(2)
    a1, _ = client(a)
    chat = client(b, nsp="/chat")[0]
    a.emit("once")
    await settle()
    # the bus delivered a's message back to a: it was dropped, not delivered twice
    assert events(a1) == [["once"]]
    b.sockets.adapter._on_message({"uid": "zz", "nsp": "/chat", "type": 3,
                                   "data": {"packet": {"type": 2, "data": ["x"]}, "opts": {}}})
    assert events(chat) == []


# -- broadcast with acks -------------------------------------------------------------


def answer_all(conn: FakeConn, value: Any) -> int:
    n = 0
    for p in conn.packets():
        if p.type == C.EVENT and p.id is not None:
            conn.recv(C.ACK, "/", [value], p.id)
            n += 1
    return n


async def test_broadcast_with_ack_gathers_every_server() -> None:
    bus, (a, b, c) = servers(3)
    a1, _ = client(a)
    b1, _ = client(b)
    b2, _ = client(b)
    client(c)  # a server whose client answers too
    c_conn = c.sockets.sockets[next(iter(c.sockets.sockets))].conn
    fut = a.timeout(2).emit_with_ack("q", 1)
    await settle()
    assert answer_all(a1, "a1") == 1 and answer_all(b1, "b1") == 1 and answer_all(b2, "b2") == 1
    assert answer_all(c_conn, "c1") == 1
    assert sorted(await asyncio.wait_for(fut, 5)) == ["a1", "b1", "b2", "c1"]
    types = [m["type"] for m in bus.log]
    assert types.count(MessageType.BROADCAST_CLIENT_COUNT) == 2 and types.count(MessageType.BROADCAST_ACK) == 3
    request = next(m for m in bus.log if m["type"] == MessageType.BROADCAST)
    assert request["data"]["opts"]["flags"] == {"timeout": 2000} and "requestId" in request["data"]


async def test_broadcast_with_ack_counts_a_server_with_no_client() -> None:
    _, (a, b) = servers(2)
    a1, _ = client(a)
    fut = a.timeout(2).emit_with_ack("q")
    await settle()
    answer_all(a1, "only")
    assert await asyncio.wait_for(fut, 5) == ["only"]


async def test_broadcast_with_ack_timeout_carries_partial_responses() -> None:
    _, (a, b) = servers(2)
    a1, _ = client(a)
    b1, _ = client(b)
    fut = a.timeout(0.3).emit_with_ack("q")
    await settle()
    answer_all(a1, "fast")
    b1.packets()  # b's client never answers
    bsock = next(iter(b.sockets.sockets.values()))
    assert bsock._acks  # b waits for its client's answer
    with pytest.raises(TimeoutError) as info:
        await asyncio.wait_for(fut, 10)
    assert info.value.responses == ["fast"]  # type: ignore[attr-defined]
    # the requester forgot the request; the remote server forgets its client's pending ack
    await wait_for(lambda: a.sockets.adapter._ack_requests == {}, 5)
    await wait_for(lambda: not bsock._acks, 10)


async def test_remote_socket_emit_with_ack() -> None:
    _, (a, b) = servers(2)
    b1, bsock = client(b)
    (remote,) = [s for s in await a.fetch_sockets() if isinstance(s, RemoteSocket)]
    fut = remote.timeout(2).emit_with_ack("hi")
    await settle()
    answer_all(b1, "yes")
    assert await asyncio.wait_for(fut, 5) == "yes"


# -- fetch_sockets, join/leave/disconnect ------------------------------------------


async def test_fetch_sockets_returns_remote_sockets_that_work() -> None:
    _, (a, b) = servers(2)
    a1, asock = client(a, "room")
    b1, bsock = client(b, "room", "other")
    bsock.data = {"user": "bob", "n": 1}
    found = await a.in_("room").fetch_sockets()
    assert asock in found
    (remote,) = [s for s in found if isinstance(s, RemoteSocket)]
    assert remote.id == bsock.id and remote.rooms == {bsock.id, "room", "other"}
    assert remote.data == {"user": "bob", "n": 1}
    assert remote.handshake.address == "10.0.0.1" and remote.handshake.query.get("foo") == "bar"
    remote.emit("direct", 7)
    remote.join("joined")
    remote.leave("other")
    await settle()
    assert events(b1) == [["direct", 7]] and events(a1) == []
    assert bsock.rooms == {bsock.id, "room", "joined"}
    remote.disconnect()
    await settle()
    assert not bsock.connected and asock.connected
    # local only: no request
    assert await a.local.fetch_sockets() == [asock]


async def test_sockets_join_leave_disconnect_cross_servers() -> None:
    bus, (a, b) = servers(2)
    _, asock = client(a, "r1")
    b1, bsock = client(b, "r1")
    _, bsock2 = client(b, "r2")
    a.in_("r1").sockets_join(["r3", "r4"])
    await settle()
    assert {"r3", "r4"} <= asock.rooms and {"r3", "r4"} <= bsock.rooms and "r3" not in bsock2.rooms
    a.in_("r3").sockets_leave("r1")
    await settle()
    assert "r1" not in asock.rooms and "r1" not in bsock.rooms
    assert [m["type"] for m in bus.log[-2:]] == [MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE]
    a.in_("r2").disconnect_sockets(True)
    await settle()
    assert not bsock2.connected and bsock.connected and asock.connected
    assert bus.log[-1]["data"] == {"opts": {"rooms": ["r2"], "except": [], "flags": {}}, "close": True}
    a.local.disconnect_sockets()
    await settle()
    assert not asock.connected and bsock.connected


async def test_fetch_sockets_timeout_names_the_operation() -> None:
    bus, (a, b, c) = servers(3)
    client(b)
    # c never answers
    bus.drop = lambda target, m: target is c.sockets.adapter and m["type"] == MessageType.FETCH_SOCKETS
    with pytest.raises(TimeoutError, match=r"fetch_sockets: timeout reached: only 1 responses received out of 2"):
        await a.timeout(0.2).fetch_sockets()
    assert a.sockets.adapter._requests == {}


# -- server_side_emit ----------------------------------------------------------------


async def test_server_side_emit_with_and_without_ack() -> None:
    _, (a, b, c) = servers(3)
    got: list[Any] = []
    b.on("ping", lambda *args: got.append(("b", args)))
    c.on("ping", lambda *args: got.append(("c", args)))
    a.on("ping", lambda *args: got.append(("a", args)))
    a.server_side_emit("ping", 1, b"\x02")
    await settle()
    assert sorted(got) == [("b", (1, b"\x02")), ("c", (1, b"\x02"))]

    def answer(name: str) -> Callable[..., None]:
        def handler(value: Any, callback: Callable[..., None]) -> None:
            callback(f"{name}:{value}", "ignored")
            callback("second call ignored")
        return handler

    b.on("ask", answer("b"))
    c.on("ask", answer("c"))
    assert sorted(await asyncio.wait_for(a.server_side_emit_with_ack("ask", 5), 5)) == ["b:5", "c:5"]


async def test_server_side_emit_timeout_carries_partial_answers() -> None:
    _, (a, b, c) = servers(3)
    a.sockets.adapter.requests_timeout = 0.2
    b.on("ask", lambda callback: callback("b"))
    c.on("ask", lambda callback: None)  # never answers
    with pytest.raises(TimeoutError, match="server_side_emit: timeout reached: only 1 responses received out of 2") \
            as info:
        await asyncio.wait_for(a.server_side_emit_with_ack("ask"), 5)
    assert info.value.responses == ["b"]  # type: ignore[attr-defined]


async def test_server_side_emit_alone_answers_at_once() -> None:
    _, (a,) = servers(1)
    assert await asyncio.wait_for(a.server_side_emit_with_ack("ask"), 5) == []


async def test_reserved_event_from_the_bus_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    _, (a, b) = servers(2)
    hits: list[Any] = []
    b.on("connection", lambda *args: hits.append(args))
    b.sockets.adapter._on_message({"uid": "other", "nsp": "/", "type": 9, "data": {"packet": ["connection", 1]}})
    assert hits == []


# -- hostile input ---------------------------------------------------------------------


@pytest.mark.parametrize("message", [
    None, 1, "text", [], {"uid": "o"}, {"uid": "o", "nsp": "/", "type": "3"},
    {"uid": "o", "nsp": "/", "type": 3}, {"uid": "o", "nsp": "/", "type": 3, "data": {"packet": "x"}},
    {"uid": "o", "nsp": "/", "type": 3, "data": {"packet": {"type": 2, "data": []}, "opts": {}}},
    {"uid": "o", "nsp": "/", "type": 3, "data": {"packet": {"type": 2, "data": [1]}, "opts": {}}},
    {"uid": "o", "nsp": "/", "type": 3, "data": {"packet": {"type": 2, "data": ["e"]}, "opts": {"rooms": "r"}}},
    {"uid": "o", "nsp": "/", "type": 3, "data": {"packet": {"type": 0, "data": ["e"]}, "opts": {}}},
    {"uid": "o", "nsp": "/", "type": 4, "data": {"opts": {}, "rooms": 5}},
    {"uid": "o", "nsp": "/", "type": 6, "data": {"opts": None}},
    {"uid": "o", "nsp": "/", "type": 7, "data": {"opts": {}}},
    {"uid": "o", "nsp": "/", "type": 9, "data": {"packet": {}}},
    {"uid": "o", "nsp": "/", "type": 11, "data": {"requestId": 3}},
    {"uid": "o", "nsp": "/", "type": 12, "data": "x"},
    {"uid": 5, "nsp": "/", "type": 3, "data": {}},
    {"uid": "o", "nsp": "/", "type": 99, "data": {}},
])
async def test_malformed_messages_are_logged_and_dropped(message: Any, caplog: pytest.LogCaptureFixture) -> None:
    _, (a,) = servers(1)
    a1, _ = client(a)
    with caplog.at_level(logging.DEBUG, logger="fastsio.adapters.cluster"):
        a.sockets.adapter._on_message(message)
        a.sockets.adapter._on_response(message)
    assert caplog.records, "nothing was logged"
    assert events(a1) == []
    assert a1.ready_state == "open"


async def test_bad_socket_entries_and_unknown_responses_are_ignored() -> None:
    bus, (a, b) = servers(2)
    client(b)
    adapter = a.sockets.adapter

    def tamper(target: Any, m: dict[str, Any]) -> bool:
        if m["type"] == MessageType.FETCH_SOCKETS_RESPONSE:
            m["data"]["sockets"] = [{"id": 1}, "junk", {"id": "ok", "handshake": {"issued": "x"}, "rooms": [1, "r"]}]
        return False

    bus.drop = tamper
    found = await a.fetch_sockets()
    (remote,) = [s for s in found if isinstance(s, RemoteSocket)]
    assert remote.id == "ok" and remote.rooms == {"1", "r"} and remote.handshake.issued == 0
    adapter._on_response({"uid": "x", "nsp": "/", "type": 8, "data": {"requestId": "unknown", "sockets": []}})
    adapter._on_response({"uid": "x", "nsp": "/", "type": 12, "data": {"requestId": "unknown", "packet": 1}})


# -- offsets (connection state recovery) -----------------------------------------------


async def test_offsets_are_appended_with_connection_state_recovery() -> None:
    bus, (a, b) = servers(2, cls=OffsetAdapter, connection_state_recovery={})
    a1, _ = client(a)
    b1, _ = client(b)
    a.emit("e", 1)
    await settle(10)
    assert events(a1) == [["e", 1, "1-0"]]
    assert events(b1) == [["e", 1, "1-0"]]
    # not for volatile packets
    a.volatile.emit("v")
    await settle(10)
    assert events(a1) == [["v"]] and events(b1) == [["v"]]


async def test_no_offsets_without_recovery() -> None:
    _, (a, b) = servers(2, cls=OffsetAdapter)
    a1, _ = client(a)
    a.emit("e")
    await settle()
    assert events(a1) == [["e"]]


# -- heartbeat flavour -------------------------------------------------------------------


async def test_heartbeat_counts_nodes_expires_them_and_adapter_close() -> None:
    # a timeout 20 intervals long: a loaded machine that stalls the loop for a
    # few intervals must not expire a live node
    bus, (a, b, c) = servers(3, cls=lambda nsp, bus: HeartbeatBusAdapter(nsp, bus, heartbeat_timeout=2.0))
    aa, ba, ca = (io.sockets.adapter for io in (a, b, c))
    await wait_for(lambda: aa.server_count() == 3 and ba.server_count() == 3 and ca.server_count() == 3)
    types = {m["type"] for m in bus.log}
    assert MessageType.INITIAL_HEARTBEAT in types
    # heartbeats keep an idle cluster together past the timeout
    await asyncio.sleep(2.3)
    assert aa.server_count() == 3 and MessageType.HEARTBEAT in {m["type"] for m in bus.log}
    # c closes: ADAPTER_CLOSE takes it out at once (a heartbeat of a or b may follow it)
    seen = len(bus.log)
    await c.close()
    await settle()
    assert MessageType.ADAPTER_CLOSE in {m["type"] for m in bus.log[seen:]}
    assert aa.server_count() == 2 and ba.server_count() == 2
    # b vanishes without a word (partition): expired after heartbeat_timeout
    bus.adapters.remove(ba)
    ba.close = lambda: None  # type: ignore[method-assign]
    for t in (ba._heartbeat_timer, ba._cleanup_timer):
        if t is not None:
            t.cancel()
    ba._closed = True
    await wait_for(lambda: aa.server_count() == 1, 10)


async def test_heartbeat_requests_wait_for_live_nodes_only() -> None:
    bus, (a, b, c) = servers(3, cls=HeartbeatBusAdapter)
    aa, ca = a.sockets.adapter, c.sockets.adapter
    await wait_for(lambda: aa.server_count() == 3)
    client(b)
    b.on("ask", lambda callback: callback("b"))
    c.on("ask", lambda callback: None)
    # c never answers fetches either
    bus.drop = lambda target, m: target is ca and m["type"] == MessageType.FETCH_SOCKETS
    task = asyncio.ensure_future(a.fetch_sockets())
    ask = asyncio.ensure_future(a.server_side_emit_with_ack("ask"))
    await settle(10)
    assert not task.done() and not ask.done()
    await c.close()  # ADAPTER_CLOSE: nobody waits for c any more
    found = await asyncio.wait_for(task, 10)
    assert len(found) == 1 and isinstance(found[0], RemoteSocket)
    assert await asyncio.wait_for(ask, 10) == ["b"]


async def test_heartbeat_timeout_message_names_missing_nodes() -> None:
    bus, (a, b) = servers(2, cls=HeartbeatBusAdapter)
    aa = a.sockets.adapter
    aa.requests_timeout = 0.2
    await wait_for(lambda: aa.server_count() == 2)
    b.on("ask", lambda callback: None)
    with pytest.raises(TimeoutError, match="server_side_emit: timeout reached: missing 1 responses"):
        await asyncio.wait_for(a.server_side_emit_with_ack("ask"), 5)


async def test_close_fails_requests_in_flight() -> None:
    bus, (a, b) = servers(2)
    bus.drop = lambda target, m: m["type"] == MessageType.FETCH_SOCKETS
    task = asyncio.ensure_future(a.fetch_sockets())
    await settle(10)
    a.sockets.adapter.close()
    with pytest.raises(fastsio.FastsioError, match="closed"):
        await asyncio.wait_for(task, 10)


def test_options_are_checked() -> None:
    io = fastsio.Server()
    with pytest.raises(ValueError):
        BusAdapter(io.sockets, Bus(), requests_timeout=0)
    with pytest.raises(ValueError):
        HeartbeatBusAdapter(io.sockets, Bus(), heartbeat_interval=-1)


def test_abstract_transport_hooks(caplog: pytest.LogCaptureFixture) -> None:
    io = fastsio.Server(adapter=ClusterAdapter)
    adapter = io.sockets.adapter
    assert isinstance(adapter, ClusterAdapter) and len(adapter.uid) == 16
    with pytest.raises(NotImplementedError):
        adapter.server_count()
    with pytest.raises(NotImplementedError):
        adapter._do_publish({})
    # a failing transport is logged, the local delivery still happens
    conn = connect(io)
    the_socket(io, conn).join("r")
    conn.sent.clear()
    with caplog.at_level(logging.ERROR):
        io.to("r").emit("e")
    assert [p.data for p in conn.packets()] == [["e"]]
    assert "could not publish" in caplog.text


# -- property: whatever arrives, the adapter never raises -----------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12)
_keys = st.sampled_from(["packet", "opts", "rooms", "except", "flags", "requestId", "close", "sockets",
                         "clientCount", "data", "type", "timeout", "id", "handshake"])
_data = st.recursive(_json, lambda c: st.dictionaries(_keys, c, max_size=4), max_leaves=15)
_messages = st.fixed_dictionaries({
    "uid": st.sampled_from(["other", "emitter", 3, None]),
    "nsp": st.sampled_from(["/", "/x", None]),
    "type": st.integers(-1, 15) | st.text(max_size=2) | st.none(),
}, optional={"data": _data})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=_messages)
async def test_any_message_is_applied_or_dropped_never_raised(message: Any) -> None:
    _, (a,) = servers(1)
    client(a, "r")
    adapter = a.sockets.adapter
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign]
    log = logging.getLogger("fastsio")
    log.addHandler(handler)
    try:
        adapter._on_message(message, None)
        adapter._on_response(message)
        await settle(2)
    finally:
        log.removeHandler(handler)
    # malformed input takes the ProtocolError path (a warning), never an unexpected error
    assert [r.getMessage() for r in errors] == []
