"""Node-style handlers in the native API: ack callbacks, (reason, description), next({...}).

Contract tests on fake connections (the npm client runs the same cases in
tests/interop/test_node_handlers_js.py).
"""
from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable

import pytest

import fastsio
from fastsio._arity import VARIADIC, required_positional
from fastsio._impl import sio_codec as C

from sio_fakes import connect, the_socket


@pytest.fixture
def io() -> fastsio.Server:
    return fastsio.Server()


def acks(conn: Any) -> list[tuple[int, list[Any]]]:
    return [(p.id, p.data) for p in conn.packets() if p.type in (C.ACK, C.BINARY_ACK)]


def test_required_positional() -> None:
    def two(a: Any, b: Any) -> None: ...
    def with_default(a: Any, b: Any = None) -> None: ...
    def var(*a: Any) -> None: ...
    def kwonly(a: Any, *, b: Any = None) -> None: ...

    class C:
        def m(self, a: Any, cb: Any) -> None: ...
        def __call__(self, a: Any) -> None: ...

    @functools.wraps(two)
    def wrapper(*a: Any, **k: Any) -> None: ...

    assert required_positional(two) == 2 and required_positional(with_default) == 1
    assert required_positional(var) == VARIADIC and required_positional(kwonly) == 1
    assert required_positional(C().m) == 2 and required_positional(C()) == 1
    assert required_positional(wrapper) == 2 and required_positional(lambda: None) == 0
    assert required_positional(functools.partial(two, 1)) == 1
    assert required_positional(print) == VARIADIC


def test_handler_with_one_more_parameter_gets_the_ack_callback(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    sock.on("x", lambda data, callback: callback("ok", data))
    sock.on("none", lambda callback: callback())
    conn.recv(C.EVENT, "/", ["x", {"a": 1}], 3)
    conn.recv(C.EVENT, "/", ["none"], 4)
    assert acks(conn) == [(3, ["ok", {"a": 1}]), (4, [])]


def test_callback_answers_once_and_the_return_value_is_ignored(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()

    def handler(data: Any, callback: Callable[..., None]) -> str:
        callback(1)
        callback(2)
        return "ignored"

    sock.on("x", handler)
    conn.recv(C.EVENT, "/", ["x", 0], 5)
    assert acks(conn) == [(5, [1])]


def test_callback_never_called_leaves_the_ack_unanswered(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    got: list[Any] = []
    sock.on("x", lambda data, callback: got.append(data))
    conn.recv(C.EVENT, "/", ["x", 1], 6)
    assert got == [1] and conn.packets() == []


def test_callback_without_ack_requested_is_a_no_op(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    called: list[Any] = []

    def handler(data: Any, callback: Callable[..., None]) -> None:
        called.append(data)
        callback("nobody asked")

    sock.on("x", handler)
    conn.recv(C.EVENT, "/", ["x", 1])
    assert called == [1] and conn.packets() == []


async def test_async_handler_calls_the_callback_later(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    kept: list[Callable[..., None]] = []

    @sock.on("later")
    async def later(a: int, b: int, callback: Callable[..., None]) -> str:
        await asyncio.sleep(0.01)
        callback(a + b)
        return "ignored"

    sock.on("keep", lambda callback: kept.append(callback))
    conn.recv(C.EVENT, "/", ["later", 2, 3], 1)
    conn.recv(C.EVENT, "/", ["keep"], 2)
    assert conn.packets() == []
    await asyncio.sleep(0.1)
    assert acks(conn) == [(1, [5])]
    kept[0]({"late": True})
    assert acks(conn) == [(2, [{"late": True}])]


def test_sync_handler_returning_none_acks_only_when_asked(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    calls: list[Any] = []
    sock.on("x", lambda data: calls.append(data))
    conn.recv(C.EVENT, "/", ["x", 1])
    assert conn.packets() == []
    conn.recv(C.EVENT, "/", ["x", 2], 9)
    assert acks(conn) == [(9, [])]
    assert calls == [1, 2]


def test_first_listener_answers_a_callback_listener_claims_it(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    sock.on("x", lambda data, callback: None)  # claims the ack, never answers
    sock.on("x", lambda data: "second")
    conn.recv(C.EVENT, "/", ["x", 1], 2)
    assert conn.packets() == []


def test_callback_after_disconnect_sends_nothing(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    kept: list[Callable[..., None]] = []
    sock.on("x", lambda callback: kept.append(callback))
    conn.recv(C.EVENT, "/", ["x"], 2)
    sock.disconnect()
    conn.packets()
    kept[0]("late")
    assert conn.packets() == []


def test_disconnect_handlers_may_take_reason_and_description(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    seen: list[Any] = []
    sock.on("disconnecting", lambda reason, description: seen.append(("ing", reason, description, set(sock.rooms))))
    sock.on("disconnect", lambda reason, description: seen.append(("ed", reason, description)))
    sock.on("disconnect", lambda reason: seen.append(("one", reason)))
    sock.on("disconnect", lambda reason, s=sock: seen.append(("closure", reason, s is sock)))
    conn.emit("close", "transport error", "write buffer overflow")
    assert seen == [("ing", "transport error", "write buffer overflow", {sock.id}),
                    ("ed", "transport error", "write buffer overflow"), ("one", "transport error"),
                    ("closure", "transport error", True)]


def test_defaulted_parameters_do_not_take_the_callback(io: fastsio.Server) -> None:
    conn = connect(io)
    sock = the_socket(io, conn)
    conn.packets()
    sock.on("x", lambda data, s=sock: s is sock)
    conn.recv(C.EVENT, "/", ["x", 1], 4)
    assert acks(conn) == [(4, [True])]


def test_middleware_refusal_with_a_js_style_object(io: fastsio.Server) -> None:
    io.use(lambda socket, next_: next_({"message": "not allowed", "data": {"code": 403}}))
    conn = connect(io)
    (p,) = conn.packets()
    assert p.type == C.CONNECT_ERROR and p.data == {"message": "not allowed", "data": {"code": 403}}
    assert io.sockets.sockets == {}


def test_server_side_emit_reserved_names_are_nodes(io: fastsio.Server) -> None:
    for name in ("connect", "connection", "new_namespace"):
        with pytest.raises(ValueError):
            io.server_side_emit(name)
    # Node's namespace set: socket-level names are allowed between servers
    for name in ("disconnect", "disconnecting", "connect_error", "newListener", "removeListener"):
        assert io.server_side_emit(name) is True


async def test_all_sockets_leaves_out_sockets_still_in_middlewares(io: fastsio.Server) -> None:
    gate = asyncio.Event()

    async def slow(socket: Any) -> None:
        socket.join("lobby")
        await gate.wait()

    io.use(slow)
    conn = connect(io)
    await asyncio.sleep(0.01)
    pending = list(io.sockets._pre_connect)
    assert len(pending) == 1 and "lobby" in io.sockets.adapter.rooms
    assert await io.all_sockets() == set()
    assert await io.in_("lobby").all_sockets() == set()
    gate.set()
    await asyncio.sleep(0.01)
    sock = the_socket(io, conn)
    assert await io.all_sockets() == {sock.id}
    assert await io.in_("lobby").all_sockets() == {sock.id}
