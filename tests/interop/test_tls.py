"""TLS: ``io.listen(port, ssl=ctx)`` and ``io.run(ssl=ctx, workers="auto")`` with npm socket.io-client.

The certificate in tests/support/tls is a self-signed test certificate for
127.0.0.1 (valid until 2126); the clients trust it through socket.io-client's
``ca`` option, so the TLS handshake is verified as in production.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import fastsio

from conftest import RunNode, ServerFactory

TLS = Path(__file__).resolve().parent.parent / "support" / "tls"
CERT, KEY = TLS / "cert.pem", TLS / "key.pem"
ROOT = Path(__file__).resolve().parent.parent.parent


def server_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CERT, KEY)
    return ctx


def serve_broadcasts(io: fastsio.Server, clients: int, count: int) -> None:
    """echo acks its arguments; once ``clients`` said ready, ``count`` broadcasts go to all (the last ~200 kB)."""
    ready: list[str] = []

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        assert socket.handshake.secure

        @socket.on("echo")
        def echo(text: str, data: bytes, ack: Any) -> None:
            ack(text, data)

        @socket.on("ready")
        def on_ready() -> None:
            ready.append(socket.id)
            if len(ready) == clients:
                for k in range(count - 1):
                    io.emit("m", k)
                io.emit("m", count - 1, "x" * 200_000)


@pytest.mark.parametrize("mode", ["websocket", "polling", "upgrade"])
async def test_every_transport_over_tls(sio_server: ServerFactory, free_port: int, run_node: RunNode,
                                        mode: str) -> None:
    n, count = 3, 50
    io = fastsio.Server()
    serve_broadcasts(io, n, count)
    await io.listen(free_port, host="127.0.0.1", ssl=server_context())
    try:
        run = (await run_node("tls_client.mjs", f"port={free_port}", f"ca={CERT}", f"mode={mode}", f"n={n}",
                              f"count={count}", timeout=30)).check()
    finally:
        await asyncio.wait_for(io.close(), 10)
    results = run.events("client")
    assert len(results) == n, run.describe()
    for r in results:
        assert r["got"] == list(range(count)), run.describe()
        assert r["big_length"] == 200_000
        assert r["secure_seen"] is True
        assert r["transport"] == ("polling" if mode == "polling" else "websocket")


async def test_plain_http_on_a_tls_port_is_cut_and_the_server_goes_on(free_port: int, run_node: RunNode,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    io = fastsio.Server()
    serve_broadcasts(io, 1, 5)
    await io.listen(free_port, host="127.0.0.1", ssl=server_context())
    try:
        # not a TLS ClientHello: the handshake fails and the connection is closed, nothing else
        reader, writer = await asyncio.open_connection("127.0.0.1", free_port)
        writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10)
        assert not rest.startswith(b"HTTP/"), rest[:100]
        writer.close()
        # a TLS client that never finishes its handshake does not hold anything up
        stalled = [await asyncio.open_connection("127.0.0.1", free_port) for _ in range(5)]
        run = (await run_node("tls_client.mjs", f"port={free_port}", f"ca={CERT}", "n=1", "count=5",
                              timeout=30)).check()
        assert run.one("client")["got"] == list(range(5))
        for _, w in stalled:
            w.close()
    finally:
        await asyncio.wait_for(io.close(), 10)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text


APP = """
import sys
sys.path.insert(0, {tests!r})
import ssl, fastsio
from test_tls import CERT, KEY, serve_broadcasts

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(CERT, KEY)
io = fastsio.Server()
serve_broadcasts(io, 2, 10)
print("STARTING", flush=True)
io.run(port=int(sys.argv[1]), host="127.0.0.1", ssl=ctx, workers="auto")
"""


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) pins the process to one core")
async def test_workers_auto_on_one_core_serves_tls(free_port: int, run_node: RunNode, tmp_path: Path) -> None:
    # "auto" on a machine (or a container's cpuset) of one core is one process, which can hold TLS
    script = tmp_path / "app.py"
    script.write_text(APP.format(tests=str(Path(__file__).resolve().parent)))
    env = dict(os.environ)
    env.pop("FASTSIO_WORKER", None)
    proc = await asyncio.create_subprocess_exec(
        "taskset", "-c", "0", sys.executable, str(script), str(free_port), env=env, cwd=str(ROOT),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", free_port)
                w.close()
                break
            except OSError:
                if proc.returncode is not None or time.monotonic() > deadline:
                    err = await proc.stderr.read() if proc.stderr else b""  # type: ignore[union-attr]
                    pytest.fail(f"the server did not start (exit {proc.returncode}):\n{err.decode()[-3000:]}")
                await asyncio.sleep(0.1)
        run = (await run_node("tls_client.mjs", f"port={free_port}", f"ca={CERT}", "n=2", "count=10",
                              timeout=30)).check()
        assert [r["got"] for r in run.events("client")] == [list(range(10))] * 2
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
    assert proc.returncode == 0


async def test_a_hosted_asgi_app_sees_https_and_wss(free_port: int) -> None:
    import aiohttp

    scopes: list[tuple[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scopes.append((scope["type"], scope["scheme"]))
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": scope["scheme"].encode()})
        elif scope["type"] == "websocket":
            scopes.append((scope["type"], scope["scheme"]))
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": scope["scheme"]})
            await send({"type": "websocket.close"})

    io = fastsio.Server()
    await io.listen(free_port, host="127.0.0.1", ssl=server_context(), app=app)
    client_ctx = ssl.create_default_context(cafile=str(CERT))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://127.0.0.1:{free_port}/hello", ssl=client_ctx) as resp:
                assert (resp.status, await resp.text()) == (200, "https")
            async with http.ws_connect(f"wss://127.0.0.1:{free_port}/live", ssl=client_ctx) as ws:
                assert (await ws.receive_str(timeout=5)) == "wss"
    finally:
        await asyncio.wait_for(io.close(timeout=1), 10)
    assert scopes == [("http", "https"), ("websocket", "wss")]
