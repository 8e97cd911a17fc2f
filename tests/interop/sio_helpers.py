"""Small helpers shared by the python-socketio interop tests."""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Optional

import socketio

#: seconds any single wait may take before the test fails
WAIT = 10


async def connect(c: socketio.AsyncClient, port: int, transports: Optional[list[str]] = None, **kw: Any) -> None:
    """Connect ``c`` to the fastsio server on 127.0.0.1:``port`` (WebSocket unless told)."""
    kw.setdefault("wait_timeout", WAIT)
    await c.connect(f"http://127.0.0.1:{port}", transports=transports or ["websocket"], **kw)


def future() -> "asyncio.Future[Any]":
    return asyncio.get_running_loop().create_future()


async def got(fut: Awaitable[Any]) -> Any:
    """``fut``'s result, failing after WAIT seconds."""
    return await asyncio.wait_for(fut, WAIT)
