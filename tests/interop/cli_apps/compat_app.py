"""A python-socketio style app on fastsio.compat (tests/interop/test_cli.py).

``sio`` is the compat AsyncServer, ``app`` a compat ASGIApp with a FastAPI app
beside it, as python-socketio users write them.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI

import fastsio.compat as socketio

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
api = FastAPI()


@api.get("/hello")
async def hello() -> dict[str, Any]:
    return {"hello": "compat"}


@sio.event
async def echo(sid: str, data: Any) -> Any:
    return data


app = socketio.ASGIApp(sio, other_asgi_app=api)
