"""The interop servers run on uvloop (as io.run() does); a smaller set runs on the stdlib loop too."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sio_helpers import connect, future, got


async def test_interop_servers_run_on_uvloop() -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")


@pytest.mark.stdlib_loop
async def test_server_answers_on_both_loops(sio_server: Any, clients: Any, request: pytest.FixtureRequest) -> None:
    loop_module = type(asyncio.get_running_loop()).__module__
    expected = "uvloop" if "[uvloop]" in request.node.name else "asyncio"
    assert loop_module.startswith(expected), (loop_module, request.node.name)
    io, port = await sio_server()
    seen: "asyncio.Future[str]" = future()

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.on("which", lambda: type(asyncio.get_running_loop()).__module__)
        seen.set_result(socket.id)

    c = clients()
    await connect(c, port)
    await got(seen)
    assert (await c.call("which", timeout=10)).startswith(expected)
