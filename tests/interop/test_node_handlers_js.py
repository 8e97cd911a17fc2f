"""Node-style handlers on a live fastsio server, driven by the npm socket.io-client.

The handlers are written the way a Node app ported line by line writes them:
``socket.on("x", (data, callback) => callback("ok"))`` becomes
``def x(data, callback): callback("ok")``. The decode-error reason is
compared with a real Node socket.io 4.8 server.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

MODES = ["websocket", "polling"]


@pytest.mark.parametrize("mode", MODES)
async def test_node_style_handlers_with_the_js_client(sio_server: Any, run_node: Any, wait_until: Any,
                                                      mode: str) -> None:
    io, port = await sio_server()
    reasons: list[tuple[Any, ...]] = []
    counted: list[Any] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.on("callback", lambda data, other, callback: callback("ok", data, other))

        @socket.on("deferred")
        async def deferred(ms: int, callback: Callable[..., None]) -> None:
            await asyncio.sleep(ms / 1000)
            callback("late", ms)

        socket.on("unanswered", lambda n, callback: None)
        socket.on("returns_none", lambda n: None)

        def no_ack(x: Any, callback: Callable[..., None]) -> None:
            counted.append(x)
            callback("nobody listens")

        socket.on("callback_no_ack", no_ack)
        socket.on("count", lambda callback: callback(len(counted)))
        socket.on("disconnect", lambda reason, description: reasons.append((reason, description)))

    io.of("/guarded").use(lambda socket, next_: next_({"message": "no entry", "data": {"code": 7}}))
    run = await run_node("node_style_client.mjs", f"port={port}", f"mode={mode}")
    run.check()
    got = {e["event"]: e for e in run.lines}
    assert got["callback"]["res"] == ["ok", {"n": 1}, "two"]
    assert got["deferred"]["res"] == ["late", 20]
    assert got["unanswered"] == {"event": "unanswered", "error": "operation has timed out"}
    assert got["empty"]["res"] == []
    assert got["after_no_ack"]["res"] == [1]
    assert got["refused"] == {"event": "refused", "message": "no entry", "data": {"code": 7}}
    await wait_until(lambda: reasons, what="the disconnect handler")
    assert reasons == [("client namespace disconnect", None)]


@pytest.mark.parametrize("mode", MODES)
async def test_decode_error_reason_is_nodes(sio_server: Any, run_node: Any, wait_until: Any, mode: str) -> None:
    # What a real Node socket.io server reports (same driver, its own server).
    node = await run_node("node_parse_error.mjs", f"mode={mode}")
    node.check()
    ref = {e["event"]: e for e in node.lines}
    assert ref["server_disconnect"]["reason"] == "forced close"
    io, port = await sio_server()
    reasons: list[str] = []
    errors: list[str] = []

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.on("error", lambda err: errors.append(type(err).__name__))
        socket.on("disconnect", reasons.append)

    run = await run_node("node_parse_error.mjs", f"mode={mode}", f"target={port}")
    run.check()
    ours = {e["event"]: e for e in run.lines}
    await wait_until(lambda: reasons, what="the disconnect handler")
    assert reasons == [ref["server_disconnect"]["reason"]]
    assert errors == ["ProtocolError"]
    assert ours["client_disconnect"]["reason"] == ref["client_disconnect"]["reason"]
