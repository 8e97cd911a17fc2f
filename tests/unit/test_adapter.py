"""InMemoryAdapter rooms and events, broadcast fan-out, SessionAwareAdapter recovery."""
from __future__ import annotations

from typing import Any

import pytest

import fastsio
from fastsio._impl import sio_codec as C
from fastsio.adapter import BroadcastOptions, SessionAwareAdapter

from sio_fakes import FakeConn, connect, the_socket


def test_rooms_and_events() -> None:
    io = fastsio.Server()
    a = io.sockets.adapter
    events: list[Any] = []
    for name in ("create-room", "delete-room", "join-room", "leave-room"):
        a.on(name, lambda *args, n=name: events.append((n, *args)))
    a.add_all("s1", ["r1", "r2"])
    a.add_all("s2", ["r1"])
    a.add_all("s2", ["r1"])  # already there: no event
    assert a.rooms == {"r1": {"s1", "s2"}, "r2": {"s1"}}
    assert a.sids == {"s1": {"r1", "r2"}, "s2": {"r1"}}
    a.del_("s1", "r2")
    a.del_("s1", "unknown")
    a.del_all("s2")
    a.del_all("nobody")
    assert a.rooms == {"r1": {"s1"}} and a.socket_rooms("s1") == {"r1"} and a.socket_rooms("s2") is None
    assert events == [
        ("create-room", "r1"), ("join-room", "r1", "s1"), ("create-room", "r2"), ("join-room", "r2", "s1"),
        ("join-room", "r1", "s2"), ("leave-room", "r2", "s1"), ("delete-room", "r2"), ("leave-room", "r1", "s2"),
    ]
    assert a.server_count() == 1 and a.init() is None and a.close() is None


def test_sockets_and_fetch() -> None:
    io = fastsio.Server()
    s1, s2 = the_socket(io, c1 := connect(io)), the_socket(io, connect(io))
    s1.join("r")
    a = io.sockets.adapter
    assert a.sockets() == {s1.id, s2.id}
    assert a.sockets(["r"]) == {s1.id}
    assert a.fetch_sockets(BroadcastOptions(["r"])) == [s1]
    assert a.fetch_sockets(BroadcastOptions((), ["r"])) == [s2]
    assert c1.ready_state == "open"


def test_broadcast_encodes_once_and_shares_message() -> None:
    io = fastsio.Server()
    conns = [connect(io) for _ in range(3)]
    for c in conns:
        c.sent.clear()
    captured: list[Any] = []
    for c in conns:
        c.send_prepared = captured.append  # type: ignore[method-assign]
    io.emit("x", b"\x00")
    assert len(captured) == 3 and captured[0] is captured[1] is captured[2]
    assert len(captured[0].parts) == 2  # text + one attachment


def test_volatile_skips_unwritable() -> None:
    io = fastsio.Server()
    c1, c2 = connect(io), connect(io)
    c1.packets(), c2.packets()
    c2.writable = False
    io.volatile.emit("v")
    assert [p.data for p in c1.packets()] == [["v"]] and c2.packets() == []


def test_broadcast_with_ack_counts_clients() -> None:
    io = fastsio.Server()
    c1, c2 = connect(io), connect(io)
    c1.packets(), c2.packets()
    counts: list[int] = []
    answers: list[Any] = []
    io.sockets.adapter.broadcast_with_ack(
        C.Packet(C.EVENT, "/", ["q"]), BroadcastOptions(), counts.append, lambda *a: answers.append(a)
    )
    (p1,), (p2,) = c1.packets(), c2.packets()
    assert counts == [2] and p1.id == p2.id is not None
    c1.recv(C.ACK, "/", ["one"], p1.id)
    c2.recv(C.ACK, "/", ["two"], p2.id)
    assert answers == [("one",), ("two",)]


def test_cluster_operations() -> None:
    io = fastsio.Server()
    s1, s2 = the_socket(io, connect(io)), the_socket(io, connect(io))
    a = io.sockets.adapter
    a.add_sockets(BroadcastOptions(), ["all"])
    assert a.rooms["all"] == {s1.id, s2.id}
    a.del_sockets(BroadcastOptions([s1.id]), ["all"])
    assert a.rooms["all"] == {s2.id}
    a.disconnect_sockets(BroadcastOptions(["all"]), False)
    assert s1.connected and not s2.connected
    assert a.persist_session({}) is None and a.restore_session("p", "o") is None


# -- connection state recovery ---------------------------------------------------


def recovery_server(**opts: Any) -> fastsio.Server:
    return fastsio.Server(connection_state_recovery=opts or {"max_disconnection_duration": 60})


def test_offsets_are_appended_and_session_restored() -> None:
    io = recovery_server()
    conn = connect(io)
    (p,) = conn.packets()
    sock = the_socket(io, conn)
    pid = p.data["pid"]
    assert p.data["sid"] == sock.id and isinstance(pid, str)
    sock.join("room")
    sock.data["x"] = 1
    io.to("room").emit("ev", 1)
    sock.emit("direct", 2)  # goes through the adapter too: it gets an offset
    p1, p2 = conn.packets()
    assert p1.data[:2] == ["ev", 1] and isinstance(p1.data[2], str)
    assert p2.data[:2] == ["direct", 2] and p2.data[2] != p1.data[2]
    offset = p1.data[2]
    conn.drop("transport close")

    io.to("room").emit("missed", 3)
    io.to("other").emit("not-for-us")
    io.volatile.emit("volatile-not-kept")
    conn2 = connect(io, auth={"pid": pid, "offset": offset})
    packets = conn2.packets()
    assert packets[0].type == C.CONNECT and packets[0].data == {"sid": sock.id, "pid": pid}
    assert [q.data[0] for q in packets[1:]] == ["direct", "missed"]
    new = the_socket(io, conn2)
    assert new.recovered and new.id == sock.id and new.data == {"x": 1} and "room" in new.rooms


def test_recovery_skips_middlewares_by_default() -> None:
    io = recovery_server()
    calls: list[str] = []

    def mw(socket: Any, next_: Any) -> None:
        calls.append("mw")
        next_()

    io.use(mw)
    conn = connect(io)
    pid = conn.packets()[0].data["pid"]
    io.emit("e")
    offset = conn.packets()[0].data[-1]
    conn.drop("ping timeout")
    connect(io, auth={"pid": pid, "offset": offset})
    assert calls == ["mw"]


def test_no_session_for_non_recoverable_reason() -> None:
    io = recovery_server()
    conn = connect(io)
    pid = conn.packets()[0].data["pid"]
    io.emit("e")
    offset = conn.packets()[0].data[-1]
    the_socket(io, conn).disconnect()  # server namespace disconnect: not recoverable
    conn2 = connect(io, auth={"pid": pid, "offset": offset})
    conn2.packets()
    assert not the_socket(io, conn2).recovered


def test_unknown_offset_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_mod

    io = recovery_server(max_disconnection_duration=10)
    adapter = io.sockets.adapter
    assert isinstance(adapter, SessionAwareAdapter)
    conn = connect(io)
    pid = conn.packets()[0].data["pid"]
    io.emit("e")
    offset = conn.packets()[0].data[-1]
    conn.drop()
    assert adapter.restore_session(pid, "bogus") is None
    assert adapter.restore_session(pid, offset[:-1] + "zz") is None
    now = time_mod.monotonic()
    monkeypatch.setattr("fastsio.adapter.time.monotonic", lambda: now + 11)
    assert adapter.restore_session(pid, offset) is None
    assert not adapter._sessions and not adapter._packets


def test_off_means_no_offset() -> None:
    io = fastsio.Server()
    conn = connect(io)
    assert "pid" not in conn.packets()[0].data
    io.emit("e", 1)
    assert conn.packets()[0].data == ["e", 1]


def test_refused_reconnect_keeps_the_session() -> None:
    # Regression: restore_session dropped the session before the middlewares
    # ran, so a refused reconnect (skip_middlewares=False) lost it for good.
    io = recovery_server(max_disconnection_duration=60, skip_middlewares=False)

    def mw(socket: Any, next_: Any) -> None:
        if socket.handshake.auth.get("token") == "bad":
            next_(fastsio.ConnectionRejected("nope"))
        else:
            next_()

    io.use(mw)
    conn = connect(io)
    pid = conn.packets()[0].data["pid"]
    sock = the_socket(io, conn)
    sock.join("r")
    io.emit("e", 1)
    offset = conn.packets()[0].data[-1]
    conn.drop("transport close")
    io.to("r").emit("missed", 2)
    refused = connect(io, auth={"pid": pid, "offset": offset, "token": "bad"})
    (err,) = refused.packets()
    assert err.type == C.CONNECT_ERROR and err.data["message"] == "nope"
    again = connect(io, auth={"pid": pid, "offset": offset, "token": "good"})
    packets = again.packets()
    assert packets[0].type == C.CONNECT and packets[0].data["sid"] == sock.id
    assert [p.data[:2] for p in packets[1:]] == [["missed", 2]]
    new = the_socket(io, again)
    assert new.recovered and "r" in new.rooms
    # restored once: the same pid cannot be restored a second time
    third = connect(io, auth={"pid": pid, "offset": offset, "token": "good"})
    assert not the_socket(io, third).recovered


def test_reconnect_of_a_client_that_left_during_middlewares_keeps_the_session() -> None:
    io = recovery_server(max_disconnection_duration=60, skip_middlewares=False)
    pending: list[Any] = []
    io.use(lambda socket, next_: pending.append(next_))
    conn = connect(io)
    pending.pop()()
    pid = conn.packets()[0].data["pid"]
    io.emit("e", 1)
    offset = conn.packets()[0].data[-1]
    conn.drop("transport close")
    gone = connect(io, auth={"pid": pid, "offset": offset})
    gone.drop("transport close")
    pending.pop()()  # the middleware accepts after the client left
    again = connect(io, auth={"pid": pid, "offset": offset})
    pending.pop()()
    assert the_socket(io, again).recovered


def test_given_back_session_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_mod

    io = recovery_server(max_disconnection_duration=10, skip_middlewares=False)
    io.use(lambda socket, next_: next_(fastsio.ConnectionRejected("no")))
    adapter = io.sockets.adapter
    assert isinstance(adapter, SessionAwareAdapter)
    adapter.persist_session({"sid": "s", "pid": "p", "rooms": ["s"], "data": {}})
    io.emit("e")
    offset = adapter._packets[0][1][-1]
    connect(io, auth={"pid": "p", "offset": offset})
    assert "p" in adapter._sessions
    now = time_mod.monotonic()
    monkeypatch.setattr("fastsio.adapter.time.monotonic", lambda: now + 11)
    assert adapter.restore_session("p", offset) is None
    assert not adapter._sessions


def test_expiry_cost_does_not_grow_with_stored_sessions() -> None:
    # Regression: every emit walked every stored session to prune the expired
    # ones, so after a mass disconnect one emit cost O(stored sessions).
    import time as time_mod

    def cost(stored: int) -> float:
        io = recovery_server(max_disconnection_duration=600)
        adapter = io.sockets.adapter
        for i in range(stored):
            adapter.persist_session({"sid": f"s{i}", "pid": f"p{i}", "rooms": [f"s{i}"], "data": {}})
        conn = connect(io)
        sock = the_socket(io, conn)
        best = float("inf")
        for _ in range(3):
            t0 = time_mod.perf_counter()
            for _ in range(300):
                sock.emit("e", 1)
            best = min(best, time_mod.perf_counter() - t0)
            conn.sent.clear()
        return best

    empty = cost(0)
    full = cost(30_000)
    # the old code walked 30,000 sessions per emit (hundreds of times slower)
    assert full < empty * 5 + 0.02, (empty, full)


def test_sessions_expire_in_arrival_order(monkeypatch: pytest.MonkeyPatch) -> None:
    t = [1000.0]
    monkeypatch.setattr("fastsio.adapter.time.monotonic", lambda: t[0])
    io = recovery_server(max_disconnection_duration=10)
    adapter = io.sockets.adapter
    assert isinstance(adapter, SessionAwareAdapter)
    adapter.persist_session({"sid": "a", "pid": "pa", "rooms": [], "data": {}})
    t[0] += 5
    adapter.persist_session({"sid": "b", "pid": "pb", "rooms": [], "data": {}})
    adapter.persist_session({"sid": "a", "pid": "pa", "rooms": [], "data": {"again": 1}})  # persisted again
    t[0] += 6  # the first "pa" entry expired, the second did not
    io.emit("x")
    assert set(adapter._sessions) == {"pa", "pb"} and adapter._sessions["pa"]["data"] == {"again": 1}
    t[0] += 5
    io.emit("x")
    assert not adapter._sessions and not adapter._session_order
