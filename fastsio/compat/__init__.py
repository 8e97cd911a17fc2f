"""python-socketio 5.x's asyncio server API on fastsio: ``import fastsio.compat as socketio``.

An app written for python-socketio's ``AsyncServer`` runs unchanged but the
import::

    import fastsio.compat as socketio

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
    app = socketio.ASGIApp(sio, other_asgi_app=fastapi_app)

    @sio.event
    async def connect(sid, environ, auth):
        await sio.emit("hello", (1, 2), to=sid)

Under uvicorn it behaves as python-socketio; ``python -m fastsio serve
module:app`` (or ``sio.fastsio_server.run(port=...)``) serves it on fastsio's
own server with the shared-frame fast path. See
docs/migrating-from-python-socketio.md for what differs.
"""
from __future__ import annotations

from . import exceptions
from .asgi import ASGIApp
from .manager import AsyncManager
from .namespace import AsyncNamespace
from .redis_manager import AsyncPubSubManager, AsyncRedisManager
from .server import AsyncServer, Reason

__all__ = [
    "AsyncServer",
    "AsyncNamespace",
    "ASGIApp",
    "AsyncManager",
    "AsyncPubSubManager",
    "AsyncRedisManager",
    "Reason",
    "exceptions",
]
