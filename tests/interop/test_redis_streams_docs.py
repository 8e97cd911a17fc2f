"""The example of docs/recovery-cluster.md runs as written, against a real redis-server."""
from __future__ import annotations

import asyncio
import re
import socket as socket_mod
from pathlib import Path
from typing import Any

import socketio

DOC = Path(__file__).resolve().parents[2] / "docs" / "recovery-cluster.md"


SCALING = DOC.parent / "scaling.md"


def test_the_scaling_page_links_the_recovery_page() -> None:
    assert "recovery-cluster.md" in SCALING.read_text()


async def test_scaling_page_recovery_example_runs(redis_server: Any) -> None:
    section = SCALING.read_text().split("## Connection state recovery in a cluster", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)[:1]
    ns: dict[str, Any] = {}
    exec(compile(code.replace('"redis://127.0.0.1:6379/0"', repr(redis_server.url)), str(SCALING), "exec"), ns)
    io = ns["io"]
    with socket_mod.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await io.listen(port, host="127.0.0.1")
    try:
        assert await io.of("/").adapter.server_count() == 1
        assert io._recovery["max_disconnection_duration"] == 120
    finally:
        await asyncio.wait_for(io.close(), 10)


async def test_doc_example_runs(redis_server: Any) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[:1]
    code = code.replace('"redis://127.0.0.1:6379/0"', repr(redis_server.url))
    ns: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), ns)
    io = ns["io"]
    with socket_mod.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await io.listen(port, host="127.0.0.1")
    client = socketio.AsyncClient()
    try:
        await client.connect(f"http://127.0.0.1:{port}", auth={"user": "ann"}, transports=["websocket"])
        for _ in range(200):
            sockets = await io.fetch_sockets()
            if sockets:
                break
            await asyncio.sleep(0.02)
        (sock,) = sockets
        assert "news" in sock.rooms and sock.data == {"user": "ann"}
        assert await io.of("/").adapter.server_count() == 1
    finally:
        await client.disconnect()
        await asyncio.wait_for(io.close(), 10)
