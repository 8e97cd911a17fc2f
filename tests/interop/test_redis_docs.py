"""The Python examples of docs/scaling.md, run against a real redis-server.

Each example follows an ``<!-- example: NAME -->`` marker; the test runs it
with the documented URL pointed at the test's Redis, then checks what the
page promises with python-socketio clients.
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import socketio

from conftest import _another_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
DOC_URL = "redis://127.0.0.1:6379/0"


def _examples() -> dict[str, str]:
    text = DOC.read_text()
    found = re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", text, re.S)
    return dict(found)


def _run(name: str, url: str) -> dict[str, Any]:
    code = _examples()[name].replace(DOC_URL, url)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, f"docs/scaling.md:{name}", "exec"), namespace)
    return namespace


def test_every_marked_example_is_python() -> None:
    assert set(_examples()) == {"server", "create_adapter", "emitter"}
    assert DOC_URL in DOC.read_text()


async def test_server_emitter_and_create_adapter_examples(redis_server: Any) -> None:
    one = _run("server", redis_server.url)["io"]
    two = _run("server", redis_server.url)["io"]
    three = _run("create_adapter", redis_server.url)
    ports = [_another_port(), _another_port(), _another_port()]
    two.of("/admin")
    for io, port in zip((one, two, three["io"]), ports):
        await io.listen(port, host="127.0.0.1")
    client = socketio.AsyncClient(reconnection=False)
    admin = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    client.on("*", lambda ev, *args: got.append((ev, *args)))
    admin.on("*", lambda ev, *args: got.append(("admin", ev, *args)), namespace="/admin")
    try:
        await client.connect(f"http://127.0.0.1:{ports[1]}", transports=["websocket"])
        await admin.connect(f"http://127.0.0.1:{ports[1]}", namespaces=["/admin"], transports=["websocket"])
        assert await one.sockets.adapter.server_count() == 3

        # one server emits, a client of another gets it
        one.to("news").emit("headline", "x")
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [("headline", "x")]
        got.clear()
        # the documented server-side event with its ack
        assert await three["io"].server_side_emit_with_ack("reload-config", 3) == ["reloaded 3", "reloaded 3"]

        await _run("emitter", redis_server.url)["main"]()
        for _ in range(200):
            if len(got) >= 2:
                break
            await asyncio.sleep(0.01)
        assert ("headline", {"title": "hello"}, b"\x00\x01") in got
        assert ("admin", "tick", 1) in got
        for _ in range(200):
            if any("weekly" in s.rooms for s in await one.fetch_sockets()):
                break
            await asyncio.sleep(0.01)
        assert any("weekly" in s.rooms for s in await one.fetch_sockets())
    finally:
        await client.disconnect()
        await admin.disconnect()
        for io in (one, two, three["io"]):
            await asyncio.wait_for(io.close(), 10)
        await three["pub"].aclose()
