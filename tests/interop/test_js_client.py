"""The official socket.io-client (Node) v4 and v2 against a live fastsio.Server.

Each test starts a server with the handlers of one scenario, runs the driver
(tests/peers/sio_client.mjs or sio_client_v2.cjs) and checks what the client
printed and what the server saw.
"""
from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import fastsio
from fastsio.exceptions import ConnectionRejected

MODES = ["websocket", "polling", "upgrade"]
FINAL_TRANSPORT = {"websocket": "websocket", "polling": "polling", "upgrade": "websocket"}

# The same list as VALUES in sio_client.mjs: every JSON type.
VALUES: list[Any] = [
    "str", 'é✓😀 \u0000 "quoted" \\', "", 0, 42, -7, 2**40, 3.5, -0.25, True, False, None,
    [], [1, "a", None, [True]], {}, {"a": {"b": [1, 2, {"c": "d"}]}, "key with space": 1},
]


def b(data: bytes) -> dict[str, str]:
    """Binary as the driver prints it."""
    return {"$bin": data.hex()}


def as_bytes(value: Any) -> bytes:
    assert isinstance(value, (bytes, bytearray, memoryview)), f"expected binary, got {type(value).__name__}"
    return bytes(value)


async def run_sio(run_node: Any, scenario: str, port: int, mode: str = "websocket", timeout: float = 45) -> Any:
    run = await run_node("sio_client.mjs", f"scenario={scenario}", f"port={port}", f"mode={mode}", timeout=timeout)
    assert run.events("fail") == [] and run.events("timeout") == [], run.describe()
    run.check()
    run.one("done")
    return run


# --------------------------------------------------------------------------- basic


@pytest.mark.parametrize("mode", MODES)
async def test_emit_and_ack_every_json_type(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server()
    seen: dict[str, Any] = {}
    tasks: list[asyncio.Future[Any]] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        seen["transport"] = socket.conn.transport.name

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            seen["echo"] = list(args)
            return args  # a tuple answers with several arguments

        @socket.on("noargs")
        def noargs() -> None:
            seen["noargs"] = True  # None answers with no argument

        @socket.on("sum")
        async def total(*numbers: float) -> float:
            await asyncio.sleep(0)
            return sum(numbers)

        @socket.on("fire")
        def fire(*args: Any) -> None:
            seen["fire"] = list(args)
            socket.emit("fire_seen", *args)

        def on_hello_ack(*ack: Any) -> None:
            seen["hello_ack"] = list(ack)
            socket.emit("server_got_ack", *ack)

        socket.emit("hello", *VALUES, on_hello_ack)

        async def ask() -> None:
            seen["ask"] = await socket.timeout(10).emit_with_ack("ask", 21)
            socket.emit("ask_result", seen["ask"])

        tasks.append(asyncio.ensure_future(ask()))

    run = await run_sio(run_node, "basic", port, mode)
    assert run.one("connect")["recovered"] is False
    assert run.one("echo_ack")["args"] == VALUES
    assert run.one("noargs_ack")["args"] == []
    assert run.one("sum")["value"] == 6.5
    assert run.one("hello")["args"] == VALUES
    assert run.one("server_got_ack")["args"] == ["from-client", 1, {"x": [True, None]}]
    assert run.one("ask_result")["value"] == 42
    assert run.one("fire_seen")["args"] == [{"x": 1}, [2]]
    assert run.one("transport")["name"] == FINAL_TRANSPORT[mode]
    assert seen["echo"] == VALUES
    assert seen["noargs"] is True
    assert seen["fire"] == [{"x": 1}, [2]]
    assert seen["hello_ack"] == ["from-client", 1, {"x": [True, None]}]
    assert seen["ask"] == 42
    assert seen["transport"] == ("websocket" if mode == "websocket" else "polling")
    await asyncio.gather(*tasks)


# -------------------------------------------------------------------------- binary


@pytest.mark.parametrize("mode", MODES)
async def test_binary_both_ways(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server()
    seen: dict[str, Any] = {}
    big = bytes(i % 251 for i in range(70000))

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("bin")
        def on_bin(first: Any, nested: Any, plain: Any) -> Any:
            seen["args"] = (first, nested, plain)
            return first, nested, plain

        @socket.on("send_sbin")
        def send_sbin() -> None:
            socket.emit("sbin", b"\x00\xffabc", {"k": [b"1", {"d": b""}], "n": 5}, "tail", bytearray(b"ba"))

    run = await run_sio(run_node, "binary", port, mode, timeout=60)

    first, nested, plain = seen["args"]
    assert as_bytes(first) == bytes([0, 1, 2, 255])
    assert as_bytes(nested["a"]) == b"xyz"
    assert nested["list"][0] == 1
    assert as_bytes(nested["list"][1]) == big
    assert as_bytes(nested["list"][2]["deep"]) == b""
    assert nested["s"] == "text" and plain == "plain"

    bin_ack = run.one("bin_ack")
    assert bin_ack["kinds"] == ["Buffer", "object", "string"]
    assert bin_ack["nested_kind"] == "Buffer"
    assert bin_ack["args"] == [
        b(bytes([0, 1, 2, 255])),
        {"a": b(b"xyz"), "list": [1, b(big), {"deep": b(b"")}], "s": "text"},
        "plain",
    ]
    sbin = run.one("sbin")
    assert sbin["kinds"] == ["Buffer", "object", "string", "Buffer"]
    assert sbin["args"] == [b(b"\x00\xffabc"), {"k": [b(b"1"), {"d": b(b"")}], "n": 5}, "tail", b(b"ba")]
    assert run.one("transport")["name"] == FINAL_TRANSPORT[mode]


# --------------------------------------------------------------------------- rooms

ROOMS = {"c0": ["a"], "c1": ["a", "b"], "c2": ["b"], "c3": ["c"]}


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_rooms_broadcast_and_except(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server()
    by_name: dict[str, Any] = {}
    result: dict[str, Any] = {}

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        name = socket.handshake.auth["name"]
        by_name[name] = socket
        socket.join(socket.handshake.auth["rooms"])
        socket.data["name"] = name

        @socket.on("go")
        async def go() -> Any:
            c0 = socket
            io.to("a").emit("m", 1)                          # c0 c1
            io.to(["a", "b"]).emit("m", 2)                   # c0 c1 c2 (c1 once)
            io.to(["a", "b"]).except_("b").emit("m", 3)      # c0
            c0.to("a").emit("m", 4)                          # c1 (not the sender)
            c0.broadcast.emit("m", 5)                        # c1 c2 c3
            io.except_("a").emit("m", 6)                     # c2 c3
            io.in_("c").emit("m", 7)                         # c3
            io.to(by_name["c2"].id).emit("m", 8)             # c2 (its own room)
            io.emit("m", 9)                                  # all
            c0.except_("b").emit("m", 10)                    # c3
            io.to("a").to("c").emit("m", 11)                 # c0 c1 c3
            io.in_("c").sockets_join("a")
            io.to("a").except_(c0.id).emit("m", 12)          # c1 c3
            io.in_("c").sockets_leave("a")
            io.to("a").emit("m", 13)                         # c0 c1
            by_name["c1"].leave("a")
            io.to("a").emit("m", 14)                         # c0
            result["all"] = sorted(await io.all_sockets())
            result["fetched"] = sorted(
                (s.data["name"], sorted(r for r in s.rooms if r != s.id)) for s in await io.in_("b").fetch_sockets()
            )
            result["acks"] = sorted(await io.to("b").timeout(5).emit_with_ack("q"))
            io.emit("fin")
            return "went"

    run = await run_sio(run_node, "rooms", port, mode)
    ids = run.one("connected")["ids"]
    assert run.one("go_ack")["args"] == ["went"]
    got = {line["name"]: line["m"] for line in run.events("received")}
    assert got == {
        "c0": [1, 2, 3, 9, 11, 13, 14],
        "c1": [1, 2, 4, 5, 9, 11, 12, 13],
        "c2": [2, 5, 6, 8, 9],
        "c3": [5, 6, 7, 9, 10, 11, 12],
    }
    assert result["all"] == sorted(ids.values())
    assert result["fetched"] == [("c1", ["b"]), ("c2", ["b"])]
    assert result["acks"] == ["c1", "c2"]


# ---------------------------------------------------------------------- namespaces


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_namespaces(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server()
    new_namespaces: list[str] = []
    io.on("new_namespace", lambda nsp: new_namespaces.append(nsp.name))
    admin = io.of("/admin")
    dynamic = io.of(re.compile(r"^/dyn-\d+$"))

    def whoami_handlers(socket: Any) -> None:
        socket.on("whoami", lambda: socket.nsp.name)

    @io.on("connection")
    def on_root(socket: Any) -> None:
        whoami_handlers(socket)

        @socket.on("ping_all")
        def ping_all() -> str:
            admin.emit("admin_bcast", 1)
            io.emit("root_bcast", 2)
            dynamic.emit("dyn_bcast", 3)  # the parent reaches every child namespace
            return "pinged"

    @admin.on("connection")
    def on_admin(socket: Any) -> None:
        whoami_handlers(socket)
        admin.emit("admin_only", socket.nsp.name)

    dynamic.on("connection", whoami_handlers)

    run = await run_sio(run_node, "namespaces", port, mode)
    err = run.one("connect_error")
    assert err["message"] == "Invalid namespace"
    whoami = {line["nsp"]: line["args"] for line in run.events("whoami")}
    assert whoami == {"/": ["/"], "/admin": ["/admin"], "/dyn-42": ["/dyn-42"]}
    assert run.one("ping_all_ack")["args"] == ["pinged"]
    got = {line["nsp"]: line["events"] for line in run.events("got")}
    assert got == {
        "/": [["root_bcast", 2]],
        "/admin": [["admin_only", "/admin"], ["admin_bcast", 1]],
        "/dyn-42": [["dyn_bcast", 3]],
        "/nope": [],
    }
    assert run.one("engine")["one_connection"] is True
    assert "/dyn-42" in new_namespaces
    assert "/nope" not in new_namespaces


# ---------------------------------------------------------------------- middleware


class Refused(Exception):
    """A plain exception with a ``data`` attribute, as a Node user would throw."""

    def __init__(self, message: str, data: Any) -> None:
        super().__init__(message)
        self.data = data


async def test_middleware_refusal_with_data(sio_server: Any, run_node: Any) -> None:
    io, port = await sio_server()
    used: list[str] = []

    def node_style(socket: Any, next: Any) -> None:
        used.append("main")
        if socket.handshake.auth.get("token") == "good":
            socket.data["user"] = "alice"
            next()
        else:
            next(Refused("not authorized", {"code": 401, "why": "bad token"}))

    io.use(node_style)

    async def async_style(socket: Any) -> None:
        used.append("async")
        await asyncio.sleep(0)
        if socket.handshake.auth.get("token") != "good":
            raise ConnectionRejected("async says no", {"retry": False, "n": [1, 2]})

    io.of("/async").use(async_style)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.on("me", lambda: (socket.data["user"], socket.handshake.auth))

    io.of("/async").on("connection", lambda socket: None)

    run = await run_sio(run_node, "middleware", port)
    errors = {line["who"]: line for line in run.events("connect_error")}
    assert errors["bad"]["message"] == "not authorized"
    assert errors["bad"]["data"] == {"code": 401, "why": "bad token"}
    assert errors["async_bad"]["message"] == "async says no"
    assert errors["async_bad"]["data"] == {"retry": False, "n": [1, 2]}
    assert run.one("me")["args"] == ["alice", {"token": "good"}]
    assert {line["who"] for line in run.events("connect")} == {"good", "async_good"}
    assert used.count("main") == 2 and used.count("async") == 2


# ---------------------------------------------------------------------- disconnect


async def test_disconnect_reasons(sio_server: Any, run_node: Any, wait_until: Any) -> None:
    io, port = await sio_server()
    server_reasons: dict[str, str] = {}

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        name = socket.handshake.auth["name"]
        socket.on("disconnect", lambda reason, *rest: server_reasons.setdefault(name, reason))
        socket.on("kick_me", lambda: socket.disconnect())
        socket.on("close_me", lambda: socket.disconnect(True))
        socket.on("drop_me", lambda: socket.conn.close())

    run = await run_sio(run_node, "disconnect", port)
    client = run.one("reasons")["reasons"]
    assert client["kick"] == "io server disconnect"
    assert client["leave"] == "io client disconnect"
    assert client["close"] == "io server disconnect"
    assert client["conn_close"] == "transport close"
    assert client["engine_close"] == "forced close"
    await wait_until(lambda: len(server_reasons) == 5, what="every server-side disconnect")
    assert server_reasons == {
        "kick": "server namespace disconnect",
        "leave": "client namespace disconnect",
        "close": "server namespace disconnect",
        "conn_close": "forced close",
        "engine_close": "transport close",
    }


# ------------------------------------------------------------ state recovery


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_connection_state_recovery(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server(
        connection_state_recovery={"max_disconnection_duration": 60, "skip_middlewares": True}
    )
    log: list[tuple[str, Any]] = []
    middleware_calls: list[str] = []

    def middleware(socket: Any, next: Any) -> None:
        middleware_calls.append(socket.id)
        next()

    io.use(middleware)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        log.append(("connection", socket.recovered))
        if not socket.recovered:
            socket.join("room-r")
            socket.data["n"] = 7
            socket.emit("welcome", 1)

        def on_disconnect(reason: str, *rest: Any) -> None:
            log.append(("disconnect", reason))
            # Sent while the client is away: recovery must deliver them.
            io.to("room-r").emit("missed", 1)
            io.emit("missed", 2)
            io.to(socket.id).emit("missed", 3)

        socket.on("disconnect", on_disconnect)
        socket.on("drop_me", lambda: socket.conn.close())
        socket.on(
            "check",
            lambda: {
                "recovered": socket.recovered,
                "rooms": sorted(r for r in socket.rooms if r != socket.id),
                "data": socket.data,
            },
        )

    run = await run_sio(run_node, "recovery", port, mode)
    assert run.one("connect")["recovered"] is False
    reconnect = run.one("reconnect")
    assert reconnect["recovered"] is True, run.describe()
    assert reconnect["same_id"] is True
    # With recovery on, each event ends with its offset (a string), which the
    # client keeps as the handler's last argument.
    events = run.one("events")["events"]
    assert all(len(e) == 3 and isinstance(e[2], str) for e in events), events
    assert [e[:2] for e in events] == [["welcome", 1], ["missed", 1], ["missed", 2], ["missed", 3]]
    assert len({e[2] for e in events}) == 4
    assert run.one("check")["args"] == [{"recovered": True, "rooms": ["room-r"], "data": {"n": 7}}]
    assert log[:3] == [("connection", False), ("disconnect", "forced close"), ("connection", True)]
    assert len(middleware_calls) == 1  # skip_middlewares on recovery


# ------------------------------------------------- socket.io-client v2 (EIO3)


async def run_v2(run_node: Any, scenario: str, port: int, mode: str) -> Any:
    run = await run_node("sio_client_v2.cjs", f"scenario={scenario}", f"port={port}", f"mode={mode}", timeout=45)
    assert run.events("fail") == [] and run.events("timeout") == [], run.describe()
    run.check()
    run.one("done")
    return run


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_v2_client_emit_and_ack(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server(allow_eio3=True)
    seen: dict[str, Any] = {}
    v2_values = [v for v in VALUES if v != 'é✓😀 \u0000 "quoted" \\'] + ['é✓😀 "quoted" \\']

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        seen["id"] = socket.id

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            seen["echo"] = list(args)
            return args

        socket.on("noargs", lambda: None)

        def on_ack(*ack: Any) -> None:
            seen["hello_ack"] = list(ack)
            socket.emit("server_got_ack", *ack)

        socket.emit("hello", *v2_values, on_ack)

    run = await run_v2(run_node, "basic", port, mode)
    sent = [
        "str", 'é✓😀 "quoted" \\', "", 0, 42, -7, 2**40, 3.5, -0.25, True, False, None,
        [], [1, "a", None, [True]], {}, {"a": {"b": [1, 2, {"c": "d"}]}, "key with space": 1},
    ]
    assert run.one("echo_ack")["args"] == sent
    assert seen["echo"] == sent
    assert run.one("noargs_ack")["args"] == []
    assert run.one("hello")["args"] == v2_values
    assert seen["hello_ack"] == ["from-v2", 2, {"y": [False]}]
    assert run.one("server_got_ack")["args"] == ["from-v2", 2, {"y": [False]}]
    # EIO3 clients keep the Engine.IO id as the main namespace's socket id.
    assert run.one("connect")["id"] == seen["id"]


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_v2_client_namespaces(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server(allow_eio3=True)
    admin = io.of("/admin")
    guarded = io.of("/guarded")
    queries: list[Any] = []

    def whoami(socket: Any) -> None:
        socket.on("whoami", lambda: socket.nsp.name)

    @io.on("connection")
    def on_root(socket: Any) -> None:
        whoami(socket)

        @socket.on("bcast_all")
        def bcast_all() -> str:
            io.emit("bcast", "root")
            admin.emit("bcast", "admin")
            return "ok"

    @admin.on("connection")
    def on_admin(socket: Any) -> None:
        # Like Node: a v2 client's namespace query becomes the handshake auth.
        queries.append(socket.handshake.auth.get("token"))
        whoami(socket)

    def guard(socket: Any, next: Any) -> None:
        next(Refused("no entry", {"code": 403}))

    guarded.use(guard)

    run = await run_v2(run_node, "namespaces", port, mode)
    ids = run.one("ids")
    assert ids["root"] == ids["engine"]
    assert ids["admin"] == f"/admin#{ids['engine']}"
    whoami_lines = {line["nsp"]: line["args"] for line in run.events("whoami")}
    assert whoami_lines == {"/": ["/"], "/admin": ["/admin"]}
    assert run.one("bcast_ack")["args"] == ["ok"]
    assert run.one("got")["events"] == {"/": ["root"], "/admin": ["admin"]}
    assert queries == ["good"]
    errors = {line["nsp"]: line["data"] for line in run.events("error")}
    # What Node's server sends to v2 clients: an object for an unknown
    # namespace, the error's data (or else its message) for a refusal.
    assert errors["/nope"] == {"message": "Invalid namespace"}
    assert errors["/guarded"] == {"code": 403}


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_v2_client_binary(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server(allow_eio3=True)
    seen: dict[str, Any] = {}
    big = bytes(i % 251 for i in range(70000))

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("bin")
        def on_bin(first: Any, nested: Any, plain: Any) -> Any:
            seen["args"] = (first, nested, plain)
            return first, nested, plain

        socket.on("send_sbin", lambda: socket.emit("sbin", b"\x00\xffabc", {"k": [b"1"]}, "tail"))

    run = await run_v2(run_node, "binary", port, mode)
    first, nested, plain = seen["args"]
    assert as_bytes(first) == bytes([0, 1, 2, 255])
    assert as_bytes(nested["a"]) == b"xyz" and as_bytes(nested["list"][1]) == big
    assert plain == "plain"
    bin_ack = run.one("bin_ack")
    assert bin_ack["kinds"] == ["Buffer", "object", "string"]
    assert bin_ack["args"] == [b(bytes([0, 1, 2, 255])), {"a": b(b"xyz"), "list": [1, b(big)]}, "plain"]
    sbin = run.one("sbin")
    assert sbin["kinds"] == ["Buffer", "object", "string"]
    assert sbin["args"] == [b(b"\x00\xffabc"), {"k": [b(b"1")]}, "tail"]
