"""An ASGI app hosted on fastsio's own server, beside Socket.IO, on one port (fastsio/asgi_host.py).

A real FastAPI app (tests/interop/cli_apps/fastapi_app.py) with npm
socket.io-client clients, aiohttp (HTTP and WebSocket) and raw sockets for
what a client library would hide (scope contents, pipelining, clients that
stall or stop reading). Small raw ASGI apps pin down the protocol details.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

import aiohttp
import pytest
import socketio

import fastsio
from fastsio.asgi_host import AsgiHost, ClientDisconnected, LifespanError

sys.path.insert(0, str(Path(__file__).resolve().parent / "cli_apps"))
import fastapi_app  # noqa: E402

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@pytest.fixture
async def hosted(free_port: int) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``io = await hosted(app, **host_options)``: a fastsio.Server on free_port hosting ``app``."""
    servers: list[fastsio.Server] = []

    async def start(app: Any, io: Optional[fastsio.Server] = None, **options: Any) -> fastsio.Server:
        io = io or fastsio.Server()
        servers.append(io)
        if options:
            host = AsgiHost(app, io.engine, **options)
            await host.startup()
            host.install(io.engine.http_server())
            io._asgi_host = host
            await io.listen(free_port, host="127.0.0.1")
        else:
            await io.listen(free_port, host="127.0.0.1", app=app)
        return io

    yield start
    for io in servers:
        await asyncio.wait_for(io.close(), 15)


async def raw_request(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` on a new connection; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


# -- the FastAPI app beside Socket.IO --------------------------------------------------------


@pytest.mark.parametrize("mode", ["websocket", "polling", "upgrade"])
async def test_fastapi_and_socketio_clients_on_one_port(hosted: Any, free_port: int, run_node: Any,
                                                        mode: str) -> None:
    io, api, events = fastapi_app.create()
    await hosted(api, io)
    assert events == ["startup"]
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://127.0.0.1:{free_port}/ws", protocols=["chat"])
        assert ws.protocol == "chat"
        run = (await run_node("one_port.mjs", f"port={free_port}", f"mode={mode}", "clients=3")).check()
        await ws.send_str("still here")
        assert (await ws.receive(timeout=5)).data == "echo:still here"
        await ws.close()
    assert run.one("echo")["answers"] == [[0, "x"], [1, "x"], [2, "x"]]
    assert run.one("hello") == {"event": "hello", "status": 200, "body": {"hello": "world", "state": "started"}}
    assert run.one("emit")["body"] == {"sent": "from http", "clients": 3}
    assert run.one("news")["got"] == ["from http"] * 3
    assert run.one("missing")["status"] == 404
    await io.close()
    assert events == ["startup", "shutdown"]


async def test_asgiapp_wrapper_is_served_natively(hosted: Any, free_port: int, run_node: Any) -> None:
    """``io.listen(app=fastsio.ASGIApp(io, other_asgi_app=api))``: the wrapper routes the other paths."""
    io, api, events = fastapi_app.create()
    both = fastsio.ASGIApp(io, other_asgi_app=api)
    assert both.other_app is api and both.other_asgi_app is api
    await hosted(both, io)
    assert events == ["startup"]
    (await run_node("one_port.mjs", f"port={free_port}", "mode=websocket", "clients=2")).check()
    await io.close()
    assert events == ["startup", "shutdown"]


async def test_socketio_traffic_never_reaches_the_asgi_app(hosted: Any, free_port: int) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # no lifespan support: served without it
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    io = fastsio.Server()
    io.on("connection", lambda s: s.on("echo", lambda *a: list(a)))
    await hosted(app, io)
    for transport in ("polling", "websocket"):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(f"http://127.0.0.1:{free_port}", transports=[transport], wait_timeout=10)
        assert await client.call("echo", transport, timeout=10) == [transport]
        await client.disconnect()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{free_port}/socket.io/?EIO=4&transport=polling") as r:
            assert r.status == 200 and (await r.text()).startswith("0{")
        async with http.get(f"http://127.0.0.1:{free_port}/socket.io/socket.io.min.js") as r:
            assert r.status == 200
        async with http.get(f"http://127.0.0.1:{free_port}/socket.iox") as r:
            assert await r.text() == "ok"
    assert seen == ["/socket.iox"]


async def test_metrics_path_stays_native(free_port: int) -> None:
    _, api, _ = fastapi_app.create()
    io = fastsio.Server(metrics=True)
    await io.listen(free_port, host="127.0.0.1", app=api)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{free_port}/metrics") as r:
                assert r.status == 200 and "socket_io_connected" in await r.text()
            async with http.get(f"http://127.0.0.1:{free_port}/hello") as r:
                assert r.status == 200
    finally:
        await io.close()


# -- scope ---------------------------------------------------------------------------------------


async def test_scope_contents(hosted: Any, free_port: int) -> None:
    io, api, _ = fastapi_app.create()
    await hosted(api, io)
    reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
    local = writer.get_extra_info("sockname")
    writer.write(b"GET /scope/a%20b/%C3%A9?x=1&y=%2F HTTP/1.1\r\nHost: example\r\nX-Mixed-Case: Value \xe9\r\n"
                 b"Connection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    scope = json.loads(body)
    assert scope == {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": "/scope/a b/é", "raw_path": "/scope/a%20b/%C3%A9",
        "query_string": "x=1&y=%2F", "root_path": "",
        "headers": [["host", "example"], ["x-mixed-case", "Value \xe9"], ["connection", "close"]],
        "bytes_headers": True, "client": ["127.0.0.1", local[1]], "server": ["127.0.0.1", free_port],
    }
    answer = await raw_request(free_port, b"GET /scope/x HTTP/1.0\r\n\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["http_version"] == "1.0"
    assert b"connection: close" in answer.lower()


async def test_websocket_scope_and_subprotocols(hosted: Any, free_port: int) -> None:
    got: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        got.update({k: scope[k] for k in ("type", "scheme", "path", "query_string", "subprotocols", "http_version")})
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": "b", "headers": [(b"x-extra", b"1")]})
        msg = await receive()
        await send({"type": "websocket.send", "bytes": msg["bytes"][::-1]})
        got["last"] = await receive()

    await hosted(app)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://127.0.0.1:{free_port}/w s?q=1", protocols=["a", "b"])
        assert ws.protocol == "b"
        big = bytes(range(256)) * 4096  # 1 MiB
        await ws.send_bytes(big)
        assert (await ws.receive(timeout=10)).data == big[::-1]
        await ws.close()
    for _ in range(100):
        if "last" in got:
            break
        await asyncio.sleep(0.02)
    assert got == {"type": "websocket", "scheme": "ws", "path": "/w s", "query_string": b"q=1",
                   "subprotocols": ["a", "b"], "http_version": "1.1",
                   "last": {"type": "websocket.disconnect", "code": 1000}}


async def test_websocket_close_codes_and_refusal(hosted: Any, free_port: int) -> None:
    io, api, _ = fastapi_app.create()
    await hosted(api, io)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://127.0.0.1:{free_port}/ws")
        await ws.send_str("close")
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001 and msg.extra == "asked"
        # no such WebSocket route: FastAPI closes before accepting -> 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(f"http://127.0.0.1:{free_port}/nope")
        assert err.value.status == 403
    # a broken handshake on an app path gets 400 from the RFC 6455 checks
    answer = await raw_request(free_port, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                          b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                          b"Sec-WebSocket-Key: short\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


# -- bodies ---------------------------------------------------------------------------------------


async def test_streaming_request_body(hosted: Any, free_port: int) -> None:
    io, api, _ = fastapi_app.create()
    await hosted(api, io)
    piece = bytes(range(256)) * 256  # 64 KiB

    async def gen() -> AsyncIterator[bytes]:
        for _ in range(48):  # 3 MiB, chunked
            yield piece
            await asyncio.sleep(0)

    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{free_port}/upload", data=gen()) as r:
            result = await r.json()
        assert result["size"] == 48 * len(piece)
        assert result["sha256"] == hashlib.sha256(piece * 48).hexdigest()
        assert result["chunks"] > 1  # the app got the body in pieces, as it arrived
        async with http.post(f"http://127.0.0.1:{free_port}/upload", data=b"x" * 10) as r:
            assert (await r.json())["size"] == 10


async def test_request_body_back_pressure(hosted: Any, free_port: int) -> None:
    """An app that does not read: the server stops reading, the client's writes stall; then all arrives."""
    go = asyncio.Event()
    result: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await go.wait()
        digest, size = hashlib.sha256(), 0
        while True:
            msg = await receive()
            digest.update(msg.get("body", b""))
            size += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        result.update(size=size, sha=digest.hexdigest())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    io = await hosted(app, body_buffer=64 * 1024)
    total = 32 * 1024 * 1024
    piece = b"z" * (1024 * 1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
    writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
    sent = 0
    stalled = False
    while sent < total:
        writer.write(piece)
        sent += len(piece)
        try:
            await asyncio.wait_for(writer.drain(), 0.5)
        except asyncio.TimeoutError:
            stalled = True
            break
    assert stalled, "the server kept reading a body nobody consumed"
    conn = next(iter(io.engine.http_server().connections))
    assert conn._current is not None and conn._current.buffered < 2 * 1024 * 1024
    go.set()
    while sent < total:
        writer.write(piece)
        sent += len(piece)
        await asyncio.wait_for(writer.drain(), 10)
    answer = await asyncio.wait_for(reader.readuntil(b"done"), 20)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert result == {"size": total, "sha": hashlib.sha256(piece * 32).hexdigest()}


async def test_streaming_response_keep_alive_and_framing(hosted: Any, free_port: int) -> None:
    io, api, _ = fastapi_app.create()
    await hosted(api, io)
    reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
    # pipelined: a streamed response (chunked), a native Socket.IO request, a fixed-length one
    writer.write(b"GET /stream?n=3&size=4 HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    first, rest = data.split(b"0\r\n\r\n", 1)
    assert b"transfer-encoding: chunked" in first.lower()
    assert first.endswith(b"4\r\nAAAA\r\n4\r\nBBBB\r\n4\r\nCCCC\r\n")
    second, _, third = rest.partition(b"HTTP/1.1 200 OK", )[2].partition(b"HTTP/1.1 200 OK")
    assert b'0{"sid"' in second
    assert b"content-length: 35" in third.lower() and third.endswith(b'{"hello":"world","state":"started"}')
    # HEAD (a GET-only route: 405): the headers announce a body that is not sent
    answer = await raw_request(free_port, b"HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405") and b"content-length: 31\r\n" in answer
    assert answer.endswith(b"\r\n\r\n")


async def test_response_back_pressure(hosted: Any, free_port: int) -> None:
    """A client that does not read holds the app's send(), not the server's memory."""
    sent = [0]
    piece = b"r" * (256 * 1024)
    count = 256  # 64 MiB

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(piece) * count).encode())]})
        for i in range(count):
            await send({"type": "http.response.body", "body": piece, "more_body": i < count - 1})
            sent[0] += 1

    io = await hosted(app)
    reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
    writer.transport.set_write_buffer_limits(0)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(1.0)
    stalled_at = sent[0]
    assert stalled_at < count, "the app was never made to wait"
    conn = next(iter(io.engine.http_server().connections))
    assert conn.transport.get_write_buffer_size() < 4 * 1024 * 1024
    await asyncio.sleep(0.3)
    assert sent[0] == stalled_at  # still waiting: nothing read
    got = 0
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert b"content-length: %d" % (len(piece) * count) in head.lower()
    while got < len(piece) * count:
        chunk = await asyncio.wait_for(reader.read(1 << 20), 10)
        assert chunk
        got += len(chunk)
    writer.close()
    assert got == len(piece) * count and sent[0] == count


# -- deadlines and hostile clients ----------------------------------------------------------------------


async def test_client_that_stops_reading_is_dropped(hosted: Any, free_port: int) -> None:
    outcome: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"s" * 65536, "more_body": True})
        except ClientDisconnected:
            outcome.append("disconnected")
            raise

    await hosted(app, send_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
    writer.write(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(200):
        if outcome:
            break
        await asyncio.sleep(0.05)
    writer.close()
    assert outcome == ["disconnected"]


async def test_stalled_request_body_times_out(hosted: Any, free_port: int) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while True:
            msg = await receive()
            seen.append(msg)
            if msg["type"] == "http.disconnect" or not msg.get("more_body"):
                return

    await hosted(app, body_timeout=0.3)
    answer = await raw_request(free_port, b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
                               timeout=10)
    assert answer.startswith(b"HTTP/1.1 408")
    assert seen[0] == {"type": "http.request", "body": b"0123456789", "more_body": True}
    assert seen[-1] == {"type": "http.disconnect"}


async def test_app_ignoring_a_gone_client_is_cancelled(hosted: Any, free_port: int) -> None:
    state: list[str] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        state.append("running")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    await hosted(app, cancel_grace=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
    writer.write(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(100):
        if state:
            break
        await asyncio.sleep(0.02)
    writer.close()
    for _ in range(200):
        if "cancelled" in state:
            break
        await asyncio.sleep(0.02)
    assert state == ["running", "cancelled"]


async def test_app_errors_give_500_or_a_truncated_answer(hosted: Any, free_port: int) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/raise":
            raise RuntimeError("boom")
        if path == "/nothing":
            return
        if path == "/inject":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nSet-Cookie: evil")]})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("midway")

    await hosted(app)
    for path in (b"/raise", b"/nothing", b"/inject"):
        answer = await raw_request(free_port, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
        assert answer.startswith(b"HTTP/1.1 500"), (path, answer)
        assert b"evil" not in answer
    answer = await raw_request(free_port, b"GET /midway HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"partial")  # then closed: 93 bytes short


async def test_expect_100_continue(hosted: Any, free_port: int) -> None:
    io, api, _ = fastapi_app.create()
    await hosted(api, io)
    reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
    writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"hello")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    writer.close()


# -- lifespan ------------------------------------------------------------------------------------------


async def test_lifespan_startup_before_listening_and_state(free_port: int) -> None:
    log: list[Any] = []

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            try:
                await asyncio.open_connection("127.0.0.1", free_port)
                log.append("listening during startup")
            except OSError:
                log.append("not listening yet")
            scope["state"]["db"] = "ready"
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            log.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        log.append(dict(scope["state"]))
        scope["state"]["db"] = "changed by one request"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    io = fastsio.Server()
    await io.listen(free_port, host="127.0.0.1", app=app)
    for _ in range(2):
        answer = await raw_request(free_port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 204")
    await io.close()
    assert log == ["not listening yet", {"db": "ready"}, {"db": "ready"}, "shutdown"]


async def test_lifespan_startup_failure_does_not_listen(free_port: int) -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    io = fastsio.Server()
    with pytest.raises(LifespanError, match="no database"):
        await io.listen(free_port, host="127.0.0.1", app=app)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", free_port)
    await io.close()
