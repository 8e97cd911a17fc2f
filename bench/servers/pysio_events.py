"""The benchmark app's handlers, written once against python-socketio's API.

``pysio_app.py`` installs them on python-socketio's ``AsyncServer`` and
``compat_app.py`` on ``fastsio.compat``'s (the same code, only the import
changed). This module imports neither, so both interpreters can load it.

On connection: join room "all". Event bcast(n, payload): emit "msg" with
payload to room "all" n times, then ack. Event echo(x): ack x.
"""
from __future__ import annotations

import argparse
from typing import Any


def install(sio: Any) -> None:
    """Registers connect, bcast and echo on ``sio`` (a python-socketio-style ``AsyncServer``)."""

    @sio.event
    async def connect(sid: str, environ: dict, auth: object = None) -> None:
        await sio.enter_room(sid, "all")

    @sio.event
    async def bcast(sid: str, n: int, payload: object) -> None:
        for _ in range(n):
            await sio.emit("msg", payload, room="all")
        return None

    @sio.event
    async def echo(sid: str, data: object) -> object:
        return data


def parse_args() -> argparse.Namespace:
    """``--port`` (3000) and ``--host`` (127.0.0.1), as every bench server takes them."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    return parser.parse_args()
