"""Mount a fastsio Server in any ASGI server or framework (the Python twin of Node's ``attachApp``).

The built-in uvloop/httptools server is the fast path; under ASGI the ASGI
server owns the sockets and does its own WebSocket framing, so each ASGI
connection gets a small bridge object that speaks the same interface the
engine uses for its own connections (``respond``, ``accept_websocket``,
``ws_close``...). The engine hands it messages, not frames: a broadcast's
ASGI events are derived once on its ``PreparedMessage`` and shared by every
ASGI recipient; the ASGI server frames (and, if it negotiated
permessage-deflate, compresses) each one for its connection.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Awaitable, Callable, Optional

from ._impl import ws_frames
from .engineio.transport import Packet, PreparedMessage, asgi_send_events
from .http import Request, WebSocketHandler

__all__ = ["ASGIApp"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _request_from_scope(scope: Scope, body: bytes, upgrade: bool) -> Request:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = headers[name] + ", " + value if name in headers else value
    qs = scope.get("query_string", b"").decode("latin-1")
    url = scope.get("raw_path", scope["path"].encode()).decode("latin-1") if scope.get("raw_path") else scope["path"]
    if qs:
        url = url + "?" + qs
    client = scope.get("client") or ("", 0)
    method = "GET" if scope["type"] == "websocket" else scope.get("method", "GET")
    return Request(method, url, headers, body, client[0] if client else "",
                   scope.get("scheme") in ("https", "wss"), scope.get("http_version", "1.1"), True, upgrade)


class _HttpBridge:
    """One ASGI HTTP request, answered by the engine through ``respond``."""

    __slots__ = ("_current", "_done")

    def __init__(self, req: Request) -> None:
        self._current: Optional[Request] = req
        self._done: asyncio.Future[tuple[int, list[tuple[str, str]], bytes]] = \
            asyncio.get_running_loop().create_future()

    @property
    def writable(self) -> bool:
        return True

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes = b"", close: bool = False) -> None:
        self._current = None
        if not self._done.done():
            self._done.set_result((status, headers, body))

    def reject_upgrade(self, status: int, message: str) -> None:
        self.respond(status, [("Content-Type", "text/html")], message.encode())


class _WebSocketBridge:
    """One ASGI WebSocket: the engine hands it Engine.IO packets and prepared broadcasts.

    The ASGI server does its own framing, so the bridge takes messages, not
    frames (``takes_messages``): a broadcast's ``websocket.send`` events are
    built once per protocol version on the ``PreparedMessage`` and the same
    event objects are queued for every ASGI recipient; packets for this
    socket alone become events here. One queue keeps both in the order the
    engine wrote them.

    The events wait in that queue for the ASGI ``send``, under the engine's
    slow-consumer policy: ``queued`` counts their bytes; past
    ``drop_volatile_above`` the bridge is not ``writable`` (volatile packets
    are dropped), and a write that would take it past ``max_buffered_bytes``
    disconnects the client with "transport error" and close code 1008.
    """

    __slots__ = ("_current", "_send", "_out", "_waiter", "_handler", "_parser", "_state", "max_message_size",
                 "queued", "_engine")

    #: tells the engine's WebSocket transport to hand over packets and prepared messages, not frames
    takes_messages = True

    def __init__(self, req: Request, send: Send, engine: Any = None) -> None:
        self._current: Optional[Request] = req
        self._send = send
        # (event, size) pairs for the ASGI send; (None, 0) ends the pump
        self._out: deque[tuple[Optional[dict[str, Any]], int]] = deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._handler: Optional[WebSocketHandler] = None
        self._parser: Any = None
        self._state = "connecting"
        self.max_message_size = 1_000_000
        #: bytes of messages waiting for the ASGI send
        self.queued = 0
        self._engine = engine

    @property
    def writable(self) -> bool:
        if self._state != "open":
            return False
        engine = self._engine
        return engine is None or self.queued <= engine.drop_volatile_above

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes = b"", close: bool = False) -> None:
        self.reject_upgrade(status, body.decode("utf-8", "replace"))

    def reject_upgrade(self, status: int, message: str) -> None:
        self._current = None
        self._state = "closed"
        self._push(({"type": "websocket.close", "code": 1008, "reason": message[:120]}, 0))
        self._push((None, 0))

    def accept_websocket(self, handler: WebSocketHandler, *, max_message_size: int,
                         per_message_deflate: bool = False, extra_headers: Optional[list[tuple[str, str]]] = None,
                         max_fragments: int = 1000) -> bool:
        # per_message_deflate is the ASGI server's business: it negotiates and compresses by itself
        self._current = None
        self._handler = handler
        self.max_message_size = max_message_size
        self._state = "open"
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra_headers or ()]
        self._push(({"type": "websocket.accept", "headers": headers}, 0))
        return True

    # -- output: what the engine's WebSocket transport hands over ---------------------------

    def write_prepared(self, message: PreparedMessage, protocol: int) -> None:
        """Queue a broadcast: the events the message built once for every ASGI recipient."""
        if self._state != "open":
            return
        items, total = message.asgi_events(protocol)
        self._enqueue(items, total)

    def write_packets(self, packets: list[Packet], protocol: int) -> None:
        """Queue Engine.IO packets for this socket alone."""
        if self._state != "open":
            return
        items, total = asgi_send_events(packets, protocol == 3)
        self._enqueue(items, total)

    def write(self, data: bytes) -> None:
        """Queue server-to-client WebSocket frames (parsed back into events: the slow way).

        The engine's transport does not write frames here (``takes_messages``);
        this serves a caller that does not know that.
        """
        if self._state != "open":
            return
        if self._parser is None:
            self._parser = ws_frames.FrameParser(1 << 62, client_side=True, max_fragments=1 << 30)
        items = []
        total = 0
        close: Optional[tuple[int, str]] = None
        for opcode, payload, _ in self._parser.feed(data):
            if opcode == ws_frames.OP_TEXT:
                size = len(payload) if payload.isascii() else len(payload.encode("utf-8"))
                items.append(({"type": "websocket.send", "text": payload}, size))
                total += size
            elif opcode == ws_frames.OP_BINARY:
                items.append(({"type": "websocket.send", "bytes": payload}, len(payload)))
                total += len(payload)
            elif opcode == ws_frames.OP_CLOSE:
                close = ws_frames.parse_close(payload)
                break
        if items:
            self._enqueue(items, total)
        if close is not None and self._state == "open":
            self._close(1000 if close[0] == 1005 else close[0], close[1])

    def _enqueue(self, items: Any, total: int) -> None:
        engine = self._engine
        if engine is not None and self.queued + total > engine.max_buffered_bytes:
            self._overflow(engine)
            return
        self.queued += total
        self._out.extend(items)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _push(self, item: tuple[Optional[dict[str, Any]], int]) -> None:
        self._out.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def ws_close(self, code: int = 1000, reason: str = "", close_reason: str = "forced close",
                 description: Any = None) -> None:
        if self._state != "open":
            return
        self._close(code, reason)
        self._report_close(close_reason, description)

    def _overflow(self, engine: Any) -> None:
        # the ASGI server does not take our messages as fast as they come: what waits is
        # dropped, the close goes first in line, and the session ends as a slow consumer
        pending = self.queued
        kept = [item for item in self._out if item[0] is not None and item[0]["type"] != "websocket.send"]
        self._out.clear()
        self._out.extend(kept)  # the accept, if it has not gone yet
        self.queued = 0
        engine._slow_consumers += 1
        self.ws_close(1008, "write buffer overflow", "transport error",
                      f"write buffer overflow: {pending} bytes pending for a client that does not read "
                      f"(max_buffered_bytes={engine.max_buffered_bytes})")

    def _close(self, code: int, reason: str) -> None:
        self._state = "closed"
        self._push(({"type": "websocket.close", "code": code, "reason": reason}, 0))
        self._push((None, 0))

    def _report_close(self, reason: str, description: Any = None) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            if description is None:
                handler.on_ws_close(reason)
            else:
                handler.on_ws_close(reason, description)

    async def pump_out(self) -> None:
        out = self._out
        send = self._send
        loop = asyncio.get_running_loop()
        while True:
            if not out:
                waiter = self._waiter = loop.create_future()
                await waiter
                continue
            event, size = out.popleft()
            if event is None:
                return
            try:
                await send(event)
            except Exception:
                self._state = "closed"
                self._report_close("transport error")
                return
            if size:
                left = self.queued - size
                self.queued = left if left > 0 else 0

    def on_receive(self, event: dict[str, Any]) -> bool:
        """Handle one ASGI event; False once the socket is gone."""
        kind = event["type"]
        if kind == "websocket.receive":
            handler = self._handler
            if handler is None or self._state != "open":
                return True
            data = event.get("text")
            if data is None:
                data = event.get("bytes") or b""
            if len(data) > self.max_message_size:
                self.ws_close(1009, "message too big", "transport error")
                return True
            handler.on_ws_message(data)
            return True
        if kind == "websocket.disconnect":
            self._state = "closed"
            self._report_close("transport close")
            # the peer is gone: what still waits cannot be delivered
            self._out.clear()
            self.queued = 0
            self._push((None, 0))
            return False
        return True


class ASGIApp:
    """An ASGI application serving a :class:`fastsio.Server`.

    Args:
        io: the Socket.IO server (or a standalone ``fastsio.Engine``).
        other_app: an ASGI app for every request outside the Socket.IO path
            (FastAPI, Starlette...); without it those get 404.
        other_asgi_app: the same, spelled as python-socketio spells it.

    Example:
        >>> io = fastsio.Server(cors={"origin": "*"})
        >>> app = fastsio.ASGIApp(io, other_app=fastapi_app)
        >>> # uvicorn module:app
    """

    def __init__(self, io: Any, other_app: Optional[Callable[..., Awaitable[None]]] = None, *,
                 other_asgi_app: Optional[Callable[..., Awaitable[None]]] = None) -> None:
        if other_app is not None and other_asgi_app is not None:
            raise TypeError("give other_app or other_asgi_app, not both")
        self.io = io
        self.other_app = other_app if other_app is not None else other_asgi_app

    @property
    def other_asgi_app(self) -> Optional[Callable[..., Awaitable[None]]]:
        """``other_app`` under python-socketio's name."""
        return self.other_app

    @property
    def engine(self) -> Any:
        return self.io.engine if hasattr(self.io, "sockets") and hasattr(self.io, "of") else self.io

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if getattr(self.io, "_inits_pending", False):
            # No lifespan events (lifespan="off"): start the adapters on this loop now.
            self.io._start_adapter_inits()
        engine = self.engine
        path = scope.get("path", "")
        if path not in engine._paths and not self._is_client_file(path):
            if self.other_app is not None:
                await self.other_app(scope, receive, send)
                return
            if kind == "http":
                await _send_response(send, 404, [("Content-Type", "text/plain")], b"Not Found")
            else:
                await send({"type": "websocket.close", "code": 1000})
            return
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)

    def _is_client_file(self, path: str) -> bool:
        return path.startswith(self.engine._path.rstrip("/") + "/socket.io.")

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        # the shutdown closes the Socket.IO server first (io.close(): what is queued
        # still leaves, sockets end with "server shutting down"), then the other app's
        if self.other_app is not None:
            # The other app owns the lifespan: start the adapters now, without waiting.
            if getattr(self.io, "_inits_pending", False):
                self.io._start_adapter_inits()

            async def receive_then_close() -> dict[str, Any]:
                event = await receive()
                if event.get("type") == "lifespan.shutdown":
                    await self._close_io()
                return event

            await self.other_app(scope, receive_then_close, send)
            return
        is_server = hasattr(self.io, "_init_adapters")
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                if is_server:
                    # The adapters' init() (a Redis subscription...) runs on the serving loop.
                    try:
                        await self.io._init_adapters()
                    except Exception as exc:
                        logger.exception("an adapter failed to start")
                        await send({"type": "lifespan.startup.failed", "message": f"adapter failed to start: {exc!r}"})
                        return
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await self._close_io()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _close_io(self) -> None:
        try:
            await self.io.close()
        except Exception:
            logger.exception("closing the Socket.IO server at lifespan shutdown failed")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = self.engine
        limit = engine.max_http_buffer_size
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return
            body = event.get("body", b"")
            size += len(body)
            if size > limit:
                engine._on_oversize(scope.get("path", "") + "?" + scope.get("query_string", b"").decode("latin-1"))
                await _send_response(send, 413, [("Content-Type", "text/plain")], b"Payload Too Large")
                return
            chunks.append(body)
            if not event.get("more_body"):
                break
        req = _request_from_scope(scope, b"".join(chunks), False)
        bridge = _HttpBridge(req)
        req.connection = bridge  # type: ignore[assignment]
        engine.handle_request(req)
        # a long poll waits here; if the client goes away the poll is aborted
        disconnect = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            waiters: set["asyncio.Future[Any]"] = {bridge._done, disconnect}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            disconnect.cancel()
        if not bridge._done.done():
            bridge._current = None
            if req._on_abort is not None:
                req._on_abort()
            return
        status, headers, body = bridge._done.result()
        await _send_response(send, status, headers, body)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = await receive()
        if event["type"] != "websocket.connect":
            return
        req = _request_from_scope(scope, b"", True)
        bridge = _WebSocketBridge(req, send, self.engine)
        req.connection = bridge  # type: ignore[assignment]
        self.engine.handle_request(req)
        writer = asyncio.ensure_future(bridge.pump_out())
        try:
            while bridge._state != "closed":
                event = await receive()
                if not bridge.on_receive(event):
                    break
            await writer
        finally:
            if not writer.done():
                writer.cancel()
            bridge._report_close("transport close")


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return


async def _send_response(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
