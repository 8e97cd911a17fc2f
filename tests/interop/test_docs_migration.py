"""Runs every Python example of docs/migrating-from-python-socketio.md and docs/migrating-from-node.md
against real clients (python-socketio's AsyncClient), under uvicorn and on fastsio's own server."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import socketio as pysio

from compat_support import http_get, serve
from sio_helpers import WAIT, connect

DOCS = Path(__file__).resolve().parents[2] / "docs"
pytestmark = pytest.mark.timeout(60)


def examples(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)


def load(code: str, name: str) -> ModuleType:
    module = ModuleType(name)
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)
    return module


def test_pages_have_the_examples_this_test_runs() -> None:
    assert len(examples("migrating-from-python-socketio.md")) == 4
    assert len(examples("migrating-from-node.md")) == 1
    for code in examples("migrating-from-python-socketio.md"):
        assert "import fastsio.compat as socketio" in code


@pytest.mark.parametrize("mode", ["uvicorn", "native"])
async def test_python_socketio_chat_example(mode: str, free_port: int, clients: Any) -> None:
    doc = load(examples("migrating-from-python-socketio.md")[0], "doc_chat")
    async with serve(mode, doc.app, doc.sio, free_port):
        alice, bob = clients(), clients()
        joined: asyncio.Queue[Any] = asyncio.Queue()
        chats: asyncio.Queue[Any] = asyncio.Queue()
        alice.on("joined", joined.put_nowait)
        alice.on("chat", chats.put_nowait)
        await connect(alice, free_port, auth={"name": "alice"})
        await connect(bob, free_port, auth={"name": "bob"}, transports=["polling"])
        assert await asyncio.wait_for(joined.get(), WAIT) == "bob"
        assert await bob.call("chat", "hi", timeout=WAIT) == ("ok", 1)
        assert await bob.call("chat", "again", timeout=WAIT) == ("ok", 2)
        assert await asyncio.wait_for(chats.get(), WAIT) == {"from": "bob", "text": "hi"}
        assert sorted(doc.sio.rooms(bob.get_sid())) == sorted([bob.get_sid(), "lobby"])


async def test_python_socketio_fastapi_example(free_port: int, clients: Any) -> None:
    doc = load(examples("migrating-from-python-socketio.md")[1], "doc_fastapi")
    async with serve("uvicorn", doc.app, doc.sio, free_port):
        c = clients()
        await connect(c, free_port)
        assert await c.call("ping", timeout=WAIT) == "pong"
        assert await http_get(free_port, "/health") == (200, "application/json", '{"ok":true,"clients":1}')


async def test_python_socketio_native_example(free_port: int, clients: Any) -> None:
    doc = load(examples("migrating-from-python-socketio.md")[2], "doc_native")
    await doc.sio.fastsio_server.listen(free_port, host="127.0.0.1")
    try:
        c = clients()
        await connect(c, free_port)
        assert await c.call("echo", {"x": [1, b"\x02"]}, timeout=WAIT) == {"x": [1, b"\x02"]}
    finally:
        await doc.sio.shutdown()


async def test_python_socketio_redis_example(redis_server: Any, free_port: int, clients: Any) -> None:
    code = examples("migrating-from-python-socketio.md")[3].replace("redis://127.0.0.1:6379/0", redis_server.url)
    doc = load(code, "doc_redis")
    import fastsio.compat as socketio

    assert isinstance(doc.sio.manager, socketio.AsyncRedisManager)
    await doc.sio.fastsio_server.listen(free_port, host="127.0.0.1")
    try:
        c = clients()
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        c.on("news", got.set_result)
        await connect(c, free_port)
        await asyncio.wait_for(doc.mgr.subscribed.wait(), WAIT)
        emitter = socketio.AsyncRedisManager(redis_server.url, write_only=True)
        await emitter.emit("news", "from another process", namespace="/")
        await emitter.close()
        assert await asyncio.wait_for(got, WAIT) == "from another process"
    finally:
        await doc.sio.shutdown()


async def test_node_migration_example(free_port: int, clients: Any, capsys: Any) -> None:
    doc = load(examples("migrating-from-node.md")[0], "doc_node")
    await doc.io.listen(free_port, host="127.0.0.1")
    try:
        refused = clients()
        err: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        refused.on("connect_error", lambda data: err.done() or err.set_result(data))
        with pytest.raises(pysio.exceptions.ConnectionError):
            await connect(refused, free_port, auth={"token": "wrong"})
        assert await asyncio.wait_for(err, WAIT) == {"message": "not authorized", "data": {"code": 401}}
        a, b = clients(), clients()
        shouts: asyncio.Queue[Any] = asyncio.Queue()
        a.on("shout", shouts.put_nowait)
        await connect(a, free_port, auth={"token": "secret"})
        await connect(b, free_port, auth={"token": "secret"})
        assert await b.call("greet", "bob", timeout=WAIT) == "hello bob"
        assert await b.call("later", 30, timeout=WAIT) == "done"
        await b.emit("shout", "HEY")
        assert await asyncio.wait_for(shouts.get(), WAIT) == "HEY"
        sid = b.get_sid()
        await b.disconnect()
        for _ in range(200):
            if sid in capsys.readouterr().out:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the disconnect handler did not print")
    finally:
        await doc.io.close()
