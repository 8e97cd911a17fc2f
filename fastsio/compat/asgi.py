"""``ASGIApp``: python-socketio's ASGI application, with its routing and static-file rules.

Requests under ``socketio_path`` go to the Socket.IO server; other HTTP
requests are answered from ``static_files`` when one matches and exists on
disk, then by ``other_asgi_app``, then with 404. ``lifespan`` goes to the
other app unless ``on_startup``/``on_shutdown`` are given.

The app also runs natively: ``python -m fastsio serve module:app`` (or the
host's ``io.run(app=...)``) serves the Socket.IO path on fastsio's own server
and hands every other path to this object; ``.engineio_server`` is the
``AsyncServer`` (its ``.fastsio_server`` the fastsio Server) and
``.other_asgi_app`` the other app.
"""
from __future__ import annotations

import inspect
import logging
import os
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Union

from ..asgi import ASGIApp as _NativeASGIApp
from .server import current_scope

if TYPE_CHECKING:
    from .server import AsyncServer

__all__ = ["ASGIApp", "get_static_file"]

logger = logging.getLogger("fastsio.compat")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
StaticFiles = dict[str, Union[str, dict[str, str]]]

CONTENT_TYPES = {
    "css": "text/css",
    "gif": "image/gif",
    "html": "text/html",
    "jpg": "image/jpeg",
    "js": "application/javascript",
    "json": "application/json",
    "png": "image/png",
    "txt": "text/plain",
}


def get_static_file(path: str, static_files: StaticFiles) -> Optional[dict[str, str]]:
    """The file (``{"filename", "content_type"}``) ``static_files`` maps URL ``path`` to, or None.

    The rules are python-socketio's: an exact key wins; else the longest key
    that is a prefix of the path (``"/static"`` or ``"/static/"``) maps to a
    directory and the rest of the path is appended; a result ending in ``/``
    gets the ``""`` key's file, or ``index.html``; ``..`` is refused; the
    content type comes from ``content_type`` or the extension.
    """
    rest = ""
    entry = static_files.get(path)
    if entry is None:
        head = path
        while head:
            head, last = head.rsplit("/", 1)
            rest = "/" + last + rest
            if head in static_files:
                entry = static_files[head]
                break
            if head + "/" in static_files:
                entry = static_files[head + "/"]
                break
    if "../" in rest or entry is None:
        return None
    found: dict[str, str] = {"filename": entry} if isinstance(entry, str) else dict(entry)
    if found["filename"].endswith("/") and rest.startswith("/"):
        rest = rest[1:]
    found["filename"] += rest
    if found["filename"].endswith("/"):
        default = static_files.get("")
        if default is None:
            found["filename"] += "index.html"
        elif isinstance(default, str):
            found["filename"] += default
        else:
            found["filename"] += default["filename"]
            if "content_type" in default:
                found["content_type"] = default["content_type"]
    if "content_type" not in found:
        ext = found["filename"].rsplit(".")[-1]
        found["content_type"] = CONTENT_TYPES.get(ext, "application/octet-stream")
    return found


class ASGIApp:
    """python-socketio's ``socketio.ASGIApp`` for a ``fastsio.compat.AsyncServer``.

    Args:
        socketio_server: the ``AsyncServer``.
        other_asgi_app: an ASGI app for every other request (FastAPI, Starlette...).
        static_files: URL path -> file name, or ``{"filename", "content_type"}``.
        socketio_path: the Socket.IO endpoint (``"socket.io"``).
        on_startup: called (or awaited) on ASGI lifespan startup.
        on_shutdown: called (or awaited) on ASGI lifespan shutdown.

    Attributes:
        engineio_server: the ``AsyncServer`` (python-engineio's attribute name).
        other_asgi_app: the other app, or None.

    Example:
        >>> sio = socketio.AsyncServer(async_mode="asgi")
        >>> app = socketio.ASGIApp(sio, fastapi_app, static_files={"/": "index.html"})
        >>> # uvicorn module:app   or   python -m fastsio serve module:app
    """

    def __init__(self, socketio_server: "AsyncServer", other_asgi_app: Optional[Callable[..., Any]] = None,
                 static_files: Optional[StaticFiles] = None, socketio_path: Optional[str] = "socket.io",
                 on_startup: Optional[Callable[[], Any]] = None,
                 on_shutdown: Optional[Callable[[], Any]] = None) -> None:
        self.engineio_server = socketio_server
        self.other_asgi_app = other_asgi_app
        self.static_files: StaticFiles = static_files or {}
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        path = socketio_path
        if path is not None:
            path = "/" + path.strip("/") + "/"
            io = socketio_server.fastsio_server
            if io._engine is not None and io.engine.path != path:
                logger.warning("the engine of %r already answers %s, not %s", io, io.engine.path, path)
            else:
                io.path(path)
        self.engineio_path = path
        self._native = _NativeASGIApp(socketio_server.fastsio_server)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path = scope.get("path", "")
        if kind in ("http", "websocket") and (
                self.engineio_path is None or (path if path.endswith("/") else path + "/").startswith(self.engineio_path)):
            token = current_scope.set(scope)
            try:
                await self._native(scope, receive, send)
            finally:
                current_scope.reset(token)
            return
        static = get_static_file(path, self.static_files) if kind == "http" and self.static_files else None
        if static is not None and os.path.exists(static["filename"]):
            await self._serve_file(static, receive, send)
        elif self.other_asgi_app is not None:
            await self.other_asgi_app(scope, receive, send)
        elif kind == "http":
            await self._not_found(send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _serve_file(self, static: dict[str, str], receive: Receive, send: Send) -> None:
        event = await receive()
        if event["type"] != "http.request":
            return
        with open(static["filename"], "rb") as f:
            body = f.read()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", static["content_type"].encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _not_found(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Not Found"})

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.other_asgi_app is not None and self.on_startup is None and self.on_shutdown is None:
            await self.other_asgi_app(scope, receive, send)
            return
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                if not await self._hook(self.on_startup):
                    await send({"type": "lifespan.startup.failed"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                if not await self._hook(self.on_shutdown):
                    await send({"type": "lifespan.shutdown.failed"})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _hook(fn: Optional[Callable[[], Any]]) -> bool:
        if fn is None:
            return True
        try:
            result = fn()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("lifespan hook failed")
            return False
        return True
