"""Nothing emitted before a close is lost, on every close path and transport.

The server emits COUNT events to a socket, then closes it one way or
another; the npm client (socket.io-client 4, and 2 for Engine.IO v3) must
receive every event in order, then the close, with the reason Node's
socket.io gives it (checked against a Node 4.8 server when this was written):

| path | client reason |
|---|---|
| ``socket.disconnect()``, ``disconnect(True)``, ``io.in_(room).disconnect_sockets(True)`` | ``io server disconnect`` |
| ``await io.close()``, SIGTERM through ``io.run()`` | ``transport close`` (Node: the same on WebSocket; on polling Node loses the events and says ``transport error``) |
| namespace middleware refusal | ``connect_error`` with the message and data; the other namespace of the connection keeps every event |

On polling the events leave in one response and the close packet in the next
one, as Node's engine.io does: socket.io-client handles the packets of one
payload a microtask after the payload's close packet, so both in one response
lost them all. In ``upgrade`` mode the server closes while the client is
upgrading (after the probe), so the close rides on the new WebSocket.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from typing import Any

import pytest
import uvicorn

import fastsio
from fastsio.exceptions import ConnectionRejected

import raw
from conftest import NodeRun, RunNode

COUNT = 50
DRIVER = "sio_close.cjs"

IO_SERVER_DISCONNECT = "io server disconnect"


def _on_ready(socket: Any, mode: str, act: Any) -> None:
    """Run ``act()`` now, or, in upgrade mode, once the client is upgrading (probe answered)."""
    if mode == "upgrade":
        socket.conn.once("upgrading", lambda *_: act())
    else:
        act()


def _install(io: Any, path: str, mode: str, server_reasons: list[str]) -> None:
    def emit_all(socket: Any) -> None:
        for i in range(COUNT):
            socket.emit("m", i)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.on("disconnect", lambda reason: server_reasons.append(reason))

        def act() -> None:
            if path == "disconnect":
                emit_all(socket)
                socket.disconnect()
            elif path == "disconnect_close":
                emit_all(socket)
                socket.disconnect(True)
            elif path == "room":
                socket.join("r")
                for i in range(COUNT):
                    io.to("r").emit("m", i)
                io.in_("r").disconnect_sockets(True)
            elif path == "middleware":
                emit_all(socket)
            elif path == "close":
                emit_all(socket)
                asyncio.ensure_future(io.close())

        _on_ready(socket, mode, act)

    def refuse(socket: Any, next_: Any) -> None:
        next_(ConnectionRejected("not allowed", {"why": "test"}))

    io.of("/guarded").use(refuse)


CLIENT_REASON = {
    "disconnect": IO_SERVER_DISCONNECT,
    "disconnect_close": IO_SERVER_DISCONNECT,
    "room": IO_SERVER_DISCONNECT,
    "close": "transport close",
    "sigterm": "transport close",
}
SERVER_REASON = {
    "disconnect": "server namespace disconnect",
    "disconnect_close": "server namespace disconnect",
    "room": "server namespace disconnect",
    "close": "server shutting down",
}


def _driver_args(port: int, path: str, mode: str, client: str) -> list[str]:
    args = [f"port={port}", f"mode={mode}", f"client={client}"]
    if path == "middleware":
        args += ["nsps=/,/guarded", f"leave_after={COUNT}"]
    return args


def _check(run: NodeRun, path: str, mode: str, client: str) -> None:
    run.check()
    results = {r["nsp"]: r for r in run.events("result")}
    main = results["/"]
    assert main["m"] == list(range(COUNT)), run.describe()
    if path == "middleware":
        guarded = results["/guarded"]
        assert guarded["m"] == [], run.describe()
        err = guarded["connect_error"]
        if client == "v2":
            # socket.io v2 gets the error payload itself as the "error" event
            assert err["message"] in ("not allowed", "[object Object]") or "not allowed" in str(err), run.describe()
        else:
            assert err == {"message": "not allowed", "data": {"why": "test"}}, run.describe()
        return
    assert main["reason"] == CLIENT_REASON[path], run.describe()
    if mode == "upgrade":
        assert main["transport"] == "websocket", run.describe()


PATHS = ["disconnect", "disconnect_close", "room", "middleware", "close"]
CASES = (
    [(p, m, "v4") for p in PATHS for m in ("polling", "websocket", "upgrade")]
    + [(p, m, "v2") for p in ("disconnect", "disconnect_close", "room", "close") for m in ("polling", "websocket")]
)


@pytest.mark.parametrize("path,mode,client", CASES, ids=[f"{p}-{m}-{c}" for p, m, c in CASES])
async def test_emitted_before_close_reaches_the_client(free_port: int, run_node: RunNode, path: str, mode: str,
                                                       client: str) -> None:
    io = fastsio.Server(allow_eio3=client == "v2")
    server_reasons: list[str] = []
    _install(io, path, mode, server_reasons)
    await io.listen(free_port, host="127.0.0.1")
    try:
        run = await run_node(DRIVER, *_driver_args(free_port, path, mode, client), timeout=20)
        _check(run, path, mode, client)
        if path in SERVER_REASON:
            for _ in range(100):
                if server_reasons:
                    break
                await asyncio.sleep(0.02)
            assert server_reasons == [SERVER_REASON[path]]
        if path == "close":
            assert io.engine.clients == {}
    finally:
        await asyncio.wait_for(io.close(), 10)


# -- ASGI under uvicorn ------------------------------------------------------------


async def _serve_uvicorn(app: Any, port: int, lifespan: str = "on") -> tuple[uvicorn.Server, "asyncio.Task[None]"]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started
    return server, task


ASGI_CASES = [(p, m) for p in ("disconnect_close", "room", "middleware") for m in ("polling", "websocket", "upgrade")]


@pytest.mark.stdlib_loop
@pytest.mark.parametrize("path,mode", ASGI_CASES, ids=[f"{p}-{m}" for p, m in ASGI_CASES])
async def test_emitted_before_close_reaches_the_client_asgi(free_port: int, run_node: RunNode, path: str,
                                                            mode: str) -> None:
    io = fastsio.Server()
    server_reasons: list[str] = []
    _install(io, path, mode, server_reasons)
    server, task = await _serve_uvicorn(fastsio.ASGIApp(io), free_port)
    try:
        run = await run_node(DRIVER, *_driver_args(free_port, path, mode, "v4"), timeout=20)
        _check(run, path, mode, "v4")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.mark.stdlib_loop
@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_asgi_lifespan_shutdown_closes_the_server(free_port: int, run_node: RunNode, mode: str) -> None:
    """The ASGI lifespan shutdown runs ``io.close()``: the events queued before it reach the
    client, then the close; the server's handlers see "server shutting down".

    The lifespan is driven by hand: uvicorn sends its shutdown only after it
    has closed its own connections (WebSockets with 1012), so under uvicorn
    the sockets still open then are the ones this reaches.
    """
    io = fastsio.Server()
    app = fastsio.ASGIApp(io)
    reasons: list[str] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.on("disconnect", lambda reason: reasons.append(reason))
        for i in range(COUNT):
            socket.emit("m", i)
        inbox.put_nowait({"type": "lifespan.shutdown"})

    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, inbox.get, outbox.put))
    inbox.put_nowait({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(outbox.get(), 5))["type"] == "lifespan.startup.complete"
    server, task = await _serve_uvicorn(app, free_port, lifespan="off")
    try:
        run = await run_node(DRIVER, f"port={free_port}", f"mode={mode}", timeout=20)
        _check(run, "close", mode, "v4")
        assert (await asyncio.wait_for(outbox.get(), 10))["type"] == "lifespan.shutdown.complete"
        await asyncio.wait_for(lifespan, 5)
        assert reasons == ["server shutting down"]
        assert io.engine.clients == {}
    finally:
        lifespan.cancel()
        server.should_exit = True
        await asyncio.wait_for(task, 15)


# -- SIGTERM through io.run() --------------------------------------------------------------

SIGTERM_SCRIPT = textwrap.dedent('''
    import os, signal, sys
    import fastsio
    io = fastsio.Server(int(sys.argv[1]))

    @io.on("connection")
    def on_connection(socket):
        socket.on("disconnect", lambda reason: print("disconnect", reason, flush=True))
        for i in range(int(sys.argv[2])):
            socket.emit("m", i)
        os.kill(os.getpid(), signal.SIGTERM)

    print("ready", flush=True)
    io.run(host="127.0.0.1")
    print("stopped", flush=True)
''')


@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_sigterm_delivers_what_was_emitted(free_port: int, run_node: RunNode, mode: str) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SIGTERM_SCRIPT, str(free_port), str(COUNT),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=dict(os.environ))
    assert proc.stdout is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 20)).strip() == b"ready"
        run = await run_node(DRIVER, f"port={free_port}", f"mode={mode}", timeout=20)
        _check(run, "sigterm", mode, "v4")
        out = await asyncio.wait_for(proc.stdout.read(), 20)
        assert b"disconnect server shutting down" in out
        assert b"stopped" in out
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()


# -- graceful close is bounded ---------------------------------------------------------------


async def test_close_returns_within_timeout_when_clients_never_read(eio_server: Any) -> None:
    """Engine.close(timeout): new sessions refused at once, stuck clients cut at the deadline."""


    engine, port = await eio_server()
    closes: list[str] = []

    def on_connection(sock: Any) -> None:
        sock.on("close", lambda reason, *_: closes.append(reason))
        if sock.transport.name == "websocket":
            for _ in range(8):
                sock.send(b"x" * 1_000_000)   # 8 MB the client never reads
        else:
            sock.send("queued")               # waits for a GET that never comes

    engine.on("connection", on_connection)
    stuck_ws, _ = await raw.eio_ws_open(port)
    sid, _, _ = await raw.polling_handshake(port)
    await raw.wait_for(lambda: len(engine.clients) == 2, what="two sessions")
    loop = asyncio.get_running_loop()
    started = loop.time()
    closing = asyncio.ensure_future(engine.close(timeout=1.0))
    await asyncio.sleep(0.1)
    refused = await raw.http_request(port, "GET", "/engine.io/?EIO=4&transport=polling")
    assert refused.status == 400 and refused.json() == {"code": 3, "message": "Server shutting down"}
    await asyncio.wait_for(closing, 5)
    elapsed = loop.time() - started
    # the polling session counts as gone 1 s after its last poll, which came
    # just before ``started``: the close may end slightly under 1 s after it
    assert 0.7 <= elapsed < 3.0, elapsed
    assert engine.clients == {}
    assert sorted(closes) == ["forced close", "forced close"]
    assert engine.http_server().connections == set()
    assert await stuck_ws.closed_within(2)
    await raw.close_all()
