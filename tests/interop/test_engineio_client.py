"""engine.io-client v6 (Node) against a fastsio Engine that echoes.

The driver is tests/peers/eio_echo.mjs; it checks on its side that every
message came back unchanged and in order, and the server side here checks the
order in which it received them.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest


def expected_message(i: int) -> str | bytes:
    """Message ``i`` as eio_echo.mjs builds it (text even, binary odd)."""
    if i % 2 == 0:
        n = i // 2
        if n == 0:
            return ""
        extras = ["", "é✓😀", "4not-a-packet", "b64?", " spaces ", "x" * 300]
        return f"t{n}:{extras[n % len(extras)]}"
    n = (i - 1) // 2
    length = 4 + (3000 if n % 7 == 0 else n % 41)
    return n.to_bytes(4, "big") + bytes((n + k) % 256 for k in range(4, length))


class EchoServer:
    """Echoes every message; records what arrived and the transports seen.

    With ``push=M`` every connection also gets M server-initiated messages
    ``srv:<i>``: the first five at once in the connection handler (so before
    any upgrade), the rest paced over the loop and paused at 80% until the
    socket has upgraded, so they span the upgrade.
    """

    def __init__(self, engine: Any, push: int = 0) -> None:
        self.push_count = push
        self.received: list[str | bytes] = []
        self.transports: list[str] = []
        self.upgrades: list[str] = []
        self.closes: list[tuple[Any, ...]] = []
        self.pushed_before_upgrade: int | None = None
        self.tasks: list[asyncio.Task[None]] = []
        engine.on("connection", self.on_connection)

    def on_connection(self, sock: Any) -> None:
        self.transports.append(sock.transport.name)
        upgraded = asyncio.Event()

        def on_message(data: str | bytes) -> None:
            self.received.append(data)
            sock.send(data)

        def on_upgrade(transport: Any) -> None:
            self.upgrades.append(transport.name)
            upgraded.set()

        sock.on("message", on_message)
        sock.on("upgrade", on_upgrade)
        sock.on("close", lambda *args: self.closes.append(args))
        if self.push_count:
            for i in range(5):
                sock.send(f"srv:{i}")
            self.tasks.append(asyncio.ensure_future(self.push(sock, 5, self.push_count, upgraded)))

    async def push(self, sock: Any, start: int, count: int, upgraded: asyncio.Event) -> None:
        for i in range(start, count):
            if i == int(count * 0.8) and not upgraded.is_set():
                await asyncio.wait_for(upgraded.wait(), 10)
            if upgraded.is_set() and self.pushed_before_upgrade is None:
                self.pushed_before_upgrade = i
            sock.send(f"srv:{i}")
            if i % 5 == 4:
                await asyncio.sleep(0.002)


@pytest.mark.parametrize("mode", ["websocket", "polling"])
async def test_echo_in_order(eio_server: Any, run_node: Any, mode: str) -> None:
    engine, port = await eio_server()
    server = EchoServer(engine)
    count = 100
    run = await run_node("eio_echo.mjs", f"port={port}", f"mode={mode}", f"count={count}", timeout=60)
    result = run.one("result")
    assert result["ok"], run.describe()
    assert result["transport"] == mode
    assert not result["upgraded"]
    assert result["text_echoed"] == count and result["binary_echoed"] == count
    assert server.transports == [mode]
    assert server.upgrades == []
    assert server.received == [expected_message(i) for i in range(2 * count)]
    run.check()


async def test_echo_across_upgrade(eio_server: Any, run_node: Any, wait_until: Any) -> None:
    engine, port = await eio_server()
    push = 500
    server = EchoServer(engine, push=push)
    count = 250  # 500 messages from the client, 500 echoes and 500 pushes back
    run = await run_node(
        "eio_echo.mjs", f"port={port}", "mode=upgrade", f"count={count}", f"push={push}", timeout=90
    )
    result = run.one("result")
    assert result["ok"], run.describe()
    assert result["transport"] == "websocket" and result["upgraded"]
    assert result["echoed"] == 2 * count
    assert result["pushed"] == push and result["push_in_order"]
    # Both directions carried messages before and after the upgrade.
    assert 0 < result["sent_before_upgrade"] < result["sent"], run.describe()
    assert 0 < result["pushed_before_upgrade"] < push, run.describe()
    assert server.pushed_before_upgrade is not None and 0 < server.pushed_before_upgrade < push
    assert server.transports == ["polling"]
    assert server.upgrades == ["websocket"]
    assert server.received == [expected_message(i) for i in range(2 * count)]
    run.check()
    for task in server.tasks:
        await task


async def test_client_close_reaches_server(eio_server: Any, run_node: Any, wait_until: Any) -> None:
    engine, port = await eio_server()
    server = EchoServer(engine)
    run = await run_node("eio_echo.mjs", f"port={port}", "mode=websocket", "count=3", timeout=30)
    run.check()
    await wait_until(lambda: len(server.closes) == 1, what="the engine socket's close event")
