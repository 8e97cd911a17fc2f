"""fastsio.Server(parser=fastsio.parsers.msgpack) against npm socket.io-client
built with socket.io-msgpack-parser 3.x (tests/peers/sio_msgpack_client.mjs).

Binary travels inline in msgpack: every binary value must arrive byte-identical
as ``bytes`` on the server and as a Buffer on the Node client, on every
transport (polling carries the binary packets base64-encoded).
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

import fastsio
from fastsio.exceptions import ConnectionRejected

MODES = ["websocket", "polling", "upgrade"]
FINAL_TRANSPORT = {"websocket": "websocket", "polling": "polling", "upgrade": "websocket"}
VALUES: list[Any] = ["str", "é✓😀", 0, -7, 2**40, 3.5, True, None, [1, [2, [3]]], {"a": {"b": [1, 2]}}]


def b(data: bytes) -> dict[str, str]:
    return {"$bin": data.hex()}


async def run_driver(run_node: Any, scenario: str, port: int, mode: str) -> Any:
    run = await run_node("sio_msgpack_client.mjs", f"scenario={scenario}", f"port={port}", f"mode={mode}", timeout=45)
    assert run.events("fail") == [] and run.events("timeout") == [], run.describe()
    run.check()
    run.one("done")
    return run


@pytest.mark.parametrize("mode", MODES)
async def test_acks_and_binary_both_ways(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server(parser=fastsio.parsers.msgpack)
    seen: dict[str, Any] = {}

    @io.on("connection")
    async def on_connection(socket: Any) -> None:
        seen["auth"] = socket.handshake.auth

        @socket.on("echo")
        def echo(*args: Any) -> Any:
            return args

        @socket.on("bin")
        def binary(*args: Any) -> Any:
            seen["bin"] = args
            return args

        @socket.on("ask-back")
        async def ask_back() -> Any:
            answer = await socket.timeout(10).emit_with_ack("hello", "from-server", b"\x00\xff")
            seen["answer"] = answer
            return "asked"

        socket.emit("hello", "greeting", b"\x01\x02\x03")

    run = await run_driver(run_node, "basic", port, mode)
    assert seen["auth"] == {"token": "t1"}
    assert run.one("echo")["same"] is True
    raw, arraybuffer, nested = seen["bin"]
    assert raw == b"\x00\x01\x02\xff" and type(raw) is bytes
    assert arraybuffer == b"\x09\x08\x07" and type(arraybuffer) is bytes
    assert nested == {"nested": [b"xy"]}
    assert run.one("bin")["value"] == [b(b"\x00\x01\x02\xff"), b(b"\x09\x08\x07"), {"nested": [b(b"xy")]}]
    assert run.one("bin")["kinds"] == ["Buffer", "Buffer", "object"]
    assert run.one("hello")["value"] == ["greeting", b(b"\x01\x02\x03")]
    assert run.one("ask-back")["value"] == ["asked"]
    assert list(seen["answer"]) == ["from-client", b"\x07\x07"]
    assert run.one("transport")["name"] == FINAL_TRANSPORT[mode]


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_namespaces_refusal_and_broadcast(sio_server: Any, run_node: Any, mode: str) -> None:
    io, port = await sio_server(parser=fastsio.parsers.msgpack)

    async def guard(socket: Any) -> None:
        raise ConnectionRejected("no entry", {"code": 403, "raw": [1, 2]})

    io.of("/private").use(guard)
    chat = io.of("/chat")

    @chat.on("connection")
    def on_chat(socket: Any) -> None:
        @socket.on("join")
        def join(room: str) -> str:
            socket.join(room)
            return "ok"

        @socket.on("shout")
        def shout(room: str, payload: bytes) -> str:
            chat.to(room).emit("news", "shout", payload, {"from": socket.id})
            return "ok"

    run = await run_driver(run_node, "namespaces", port, mode)
    err = run.one("connect_error")
    assert err["message"] == "no entry" and err["data"] == {"code": 403, "raw": [1, 2]}
    got = run.one("broadcast")
    assert got["a"][0][:2] == ["shout", b(b"\x01\x02\x03")]
    assert got["b"][0][:2] == ["shout", b(b"\x01\x02\x03")]
    assert got["kinds"] == ["string", "Buffer", "object"]


async def test_broadcast_is_encoded_once(sio_server: Any, run_node: Any, monkeypatch: Any) -> None:
    """One msgpack encode per broadcast, whatever the number of targets."""
    io, port = await sio_server(parser=fastsio.parsers.msgpack)
    chat = io.of("/chat")

    @chat.on("connection")
    def on_chat(socket: Any) -> None:
        socket.on("join", lambda room: (socket.join(room), "ok")[1])

        @socket.on("shout")
        def shout(room: str, payload: bytes) -> str:
            calls.clear()
            chat.to(room).emit("news", "shout", payload, {"from": socket.id})
            counted.append(len(calls))
            return "ok"

    calls: list[Any] = []
    counted: list[int] = []
    real = chat._encode

    def counting(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(chat, "_encode", counting)
    await run_driver(run_node, "namespaces", port, "websocket")
    assert counted == [1]


async def test_a_text_frame_closes_the_session(sio_server: Any) -> None:
    """A JSON-parser client talking to a msgpack server is refused, not crashed."""
    import socketio

    io, port = await sio_server(parser=fastsio.parsers.msgpack)
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await asyncio.wait_for(client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=3), 10)
    await client.disconnect()
    for _ in range(100):
        if io.engine.clients_count == 0:
            break
        await asyncio.sleep(0.05)
    assert io.engine.clients_count == 0


async def test_packets_cross_a_mixed_redis_cluster(sio_server: Any, run_node: Any, redis_server: Any) -> None:
    """fastsio and Node, both on the msgpack parser, joined by the classic Redis adapter."""
    from fastsio.adapters.redis import RedisAdapter

    io, port = await sio_server(parser=fastsio.parsers.msgpack, adapter=RedisAdapter.from_url(redis_server.url))

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        @socket.on("shout")
        def shout(payload: bytes) -> str:
            io.emit("news", "from-fastsio", payload)
            return "ok"

    run = await run_node("msgpack_redis_node.mjs", f"redis={redis_server.url}", f"fastsio_port={port}", timeout=40)
    assert run.events("fail") == [], run.describe()
    run.check()
    for line in run.events("got"):
        assert line["messages"] == [["from-node", b(b"\x01\x02\x03\xfa")], ["from-fastsio", b(b"\x09\x00\x09")]], line
        assert line["kinds"] == [["string", "Buffer"], ["string", "Buffer"]]
    assert {line["where"] for line in run.events("got")} == {"onNode", "onFastsio"}
