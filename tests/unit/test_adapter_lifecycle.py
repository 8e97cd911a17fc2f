"""Adapter life cycle: an awaitable init() runs on the loop that serves; close() is awaited.

The regression: ``io = fastsio.Server(adapter=...)`` made before any loop ran
used to schedule the adapter's init() on a throwaway loop, where it never ran.
"""
from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import fastsio


class Recorder(fastsio.InMemoryAdapter):
    """Records on which loop init() and close() ran."""

    log: list[tuple[str, str, Any]] = []
    fail = False
    slow = 0.0

    def init(self) -> Any:
        async def run() -> None:
            if Recorder.slow:
                await asyncio.sleep(Recorder.slow)
            if Recorder.fail:
                raise ConnectionError("Error connecting to 127.0.0.1:1. Connection refused.")
            Recorder.log.append(("init", self.nsp.name, asyncio.get_running_loop()))
        return run()

    def close(self) -> Any:
        async def run() -> None:
            await asyncio.sleep(0)
            Recorder.log.append(("close", self.nsp.name, asyncio.get_running_loop()))
        return run()


@pytest.fixture(autouse=True)
def _reset() -> Any:
    Recorder.log = []
    Recorder.fail = False
    Recorder.slow = 0.0
    yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_module_level_server_inits_on_the_listen_loop() -> None:
    # No loop runs here: the pattern of a module-level `io = fastsio.Server(...)`.
    io = fastsio.Server(adapter=Recorder)
    chat = io.of("/chat")
    assert Recorder.log == []

    async def main() -> list[tuple[str, str, Any]]:
        loop = asyncio.get_running_loop()
        await io.listen(_free_port(), host="127.0.0.1")
        # listen() returned: both inits finished, on this loop.
        seen = list(Recorder.log)
        assert sorted((k, n) for k, n, _ in seen) == [("init", "/"), ("init", "/chat")]
        assert all(lp is loop for _, _, lp in seen)
        # A namespace made while the loop runs inits at once.
        io.of("/later")
        for _ in range(50):
            if len(Recorder.log) == 3:
                break
            await asyncio.sleep(0.01)
        assert Recorder.log[-1][:2] == ("init", "/later") and Recorder.log[-1][2] is loop
        await io.close()
        closes = [(k, n) for k, n, lp in Recorder.log if k == "close" and lp is loop]
        assert sorted(closes) == [("close", "/"), ("close", "/chat"), ("close", "/later")]
        return seen

    asyncio.run(main())
    assert chat.adapter.nsp is chat


def test_listen_raises_when_an_adapter_cannot_start() -> None:
    io = fastsio.Server(adapter=Recorder)
    Recorder.fail = True

    async def main() -> None:
        with pytest.raises(ConnectionError, match="Connection refused"):
            await asyncio.wait_for(io.listen(_free_port(), host="127.0.0.1"), 10)
        await io.close()

    asyncio.run(main())


async def test_server_made_inside_the_loop_listen_waits_for_init() -> None:
    Recorder.slow = 0.05
    io = fastsio.Server(adapter=Recorder)
    assert Recorder.log == []
    await io.listen(_free_port(), host="127.0.0.1")
    assert [(k, n) for k, n, _ in Recorder.log] == [("init", "/")]
    await io.close()
    assert ("close", "/") in [(k, n) for k, n, _ in Recorder.log]


async def test_close_cancels_an_init_still_running() -> None:
    Recorder.slow = 30
    io = fastsio.Server(adapter=Recorder)
    await asyncio.sleep(0)
    await asyncio.wait_for(io.close(), 5)
    assert [(k, n) for k, n, _ in Recorder.log] == [("close", "/")]


def test_asgi_lifespan_startup_runs_inits_and_shutdown_closes() -> None:
    io = fastsio.Server(adapter=Recorder)
    app = fastsio.ASGIApp(io)

    async def main() -> list[dict[str, Any]]:
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for e in ({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}):
            events.put_nowait(e)
        sent: list[dict[str, Any]] = []

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)
            if msg["type"] == "lifespan.startup.complete":
                assert [(k, n) for k, n, _ in Recorder.log] == [("init", "/")]

        await asyncio.wait_for(app({"type": "lifespan"}, events.get, send), 10)
        return sent

    sent = asyncio.run(main())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [k for k, _, _ in Recorder.log] == ["init", "close"]


def test_asgi_lifespan_startup_fails_when_an_adapter_cannot_start() -> None:
    io = fastsio.Server(adapter=Recorder)
    Recorder.fail = True
    app = fastsio.ASGIApp(io)

    async def main() -> list[dict[str, Any]]:
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        events.put_nowait({"type": "lifespan.startup"})
        sent: list[dict[str, Any]] = []

        async def send(msg: dict[str, Any]) -> None:
            sent.append(msg)

        await asyncio.wait_for(app({"type": "lifespan"}, events.get, send), 10)
        return sent

    sent = asyncio.run(main())
    assert sent[0]["type"] == "lifespan.startup.failed" and "Connection refused" in sent[0]["message"]
