"""Host an ASGI application (FastAPI, Starlette...) on fastsio's own HTTP server.

``io.run(port, app=asgi_app)`` and ``await io.listen(port, app=asgi_app)``
serve the Socket.IO path natively (the shared-frame fast path is untouched)
and hand every other request on the same port to ``asgi_app``
(ASGI 3, HTTP spec 2.3 and WebSocket spec 2.3):

- ``http`` scopes: HTTP/1.1 (and 1.0) requests, keep-alive and pipelining
  (answers in order), request bodies streamed to ``receive()`` as they arrive
  (reading pauses while more than ``body_buffer`` bytes wait for the app),
  response bodies streamed with ``Content-Length``, chunked or close-delimited
  framing, ``send()`` waiting while the client's kernel buffer is full
  (back-pressure), ``Expect: 100-continue``;
- ``websocket`` scopes for the app's own WebSocket routes: RFC 6455 handshake
  and frames from :mod:`fastsio.http` / ``ws_frames``, subprotocols, accept
  headers, close codes; incoming messages pause reading while the app is
  behind;
- the ``lifespan`` protocol: startup before the port listens (a failing
  startup raises :class:`LifespanError`), shutdown after it is closed; the
  lifespan ``state`` is copied into every request scope.

Deadlines: a request body must keep arriving (``body_timeout`` between
chunks, not counted while the app is the one not reading); a response waits
at most ``send_timeout`` for a client that does not read, then the connection
is dropped; once the client is gone ``send()`` raises :class:`ClientDisconnected`
and ``receive()`` returns the disconnect event, and an app still running
``cancel_grace`` seconds later is cancelled; lifespan startup and shutdown
have their own deadlines.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Optional
from urllib.parse import unquote_to_bytes

import httptools

from ._impl import ws_frames
from .exceptions import FastsioError
from .http import _H_CLOSED, STATUS_TEXT, HttpConnection, HttpServer, Request, WebSocketHandler

__all__ = ["AsgiHost", "ClientDisconnected", "LifespanError"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

_HTTP_ASGI = {"version": "3.0", "spec_version": "2.3"}
_WS_ASGI = {"version": "3.0", "spec_version": "2.3"}
_NO_BODY_STATUS = frozenset((204, 304))
_WRITE_PIECE = 256 * 1024


class ClientDisconnected(OSError):
    """``send()`` after the client went away (ASGI spec 2.4: an ``OSError``)."""


class LifespanError(FastsioError):
    """The ASGI app reported ``lifespan.startup.failed`` (or did not start in time)."""


class AsgiHost:
    """Serves ``app`` on an :class:`~fastsio.http.HttpServer` for every path outside the engine's path.

    Made by ``Server.listen(app=...)``; you rarely build one yourself.

    Args:
        app: the ASGI 3 application.
        engine: the Engine.IO server whose path (``/socket.io/`` and below) stays native.
        native_paths: more exact paths the built-in server keeps answering itself
            (the server's ``/metrics``).
        root_path: the ASGI ``root_path`` of every scope.
        body_buffer: request body bytes (or WebSocket message bytes) held for an
            app that does not read yet before reading from the socket pauses.
        body_timeout: seconds between two pieces of a request body.
        send_timeout: seconds a response waits for a client that does not read.
        cancel_grace: seconds an app may keep running after its client left.
        startup_timeout: seconds for ``lifespan.startup``.
        shutdown_timeout: seconds for ``lifespan.shutdown``.
        ws_max_message_size: the largest WebSocket message the app is given (bytes).
    """

    def __init__(self, app: ASGIApp, engine: Any, *, native_paths: "tuple[str, ...] | list[str]" = (),
                 root_path: str = "", body_buffer: int = 256 * 1024,
                 body_timeout: float = 10.0, send_timeout: float = 30.0, cancel_grace: float = 5.0,
                 startup_timeout: float = 60.0, shutdown_timeout: float = 30.0,
                 ws_max_message_size: int = 16 * 1024 * 1024) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI application, not {type(app).__qualname__}")
        self.app = app
        self.engine = engine
        self.native_paths = frozenset(native_paths)
        self.root_path = root_path
        self.body_buffer = int(body_buffer)
        self.body_timeout = float(body_timeout)
        self.send_timeout = float(send_timeout)
        self.cancel_grace = float(cancel_grace)
        self.startup_timeout = float(startup_timeout)
        self.shutdown_timeout = float(shutdown_timeout)
        self.ws_max_message_size = int(ws_max_message_size)
        #: the lifespan state, copied into every request scope
        self.state: dict[str, Any] = {}
        self._lifespan_supported = False
        self._lifespan: Optional[_Lifespan] = None
        self._tasks: set["asyncio.Task[None]"] = set()
        self._server: Optional[HttpServer] = None

    # -- wiring -----------------------------------------------------------------------------

    def install(self, server: HttpServer) -> None:
        """Take the non-Socket.IO requests of ``server`` from now on."""
        if server.asgi_host is not None and server.asgi_host is not self:
            raise RuntimeError("this server already hosts an ASGI app")
        server.asgi_host = self
        self._server = server
        native = server.handler
        if getattr(native, "_fastsio_asgi_host", None) is self:
            return

        def handler(req: Request) -> Any:
            if isinstance(req, _Stream):
                return req.start()
            return native(req)

        handler._fastsio_asgi_host = self  # type: ignore[attr-defined]
        server.handler = handler

    def uninstall(self) -> None:
        """Stop taking requests (the Socket.IO path keeps working)."""
        server, self._server = self._server, None
        if server is not None and server.asgi_host is self:
            server.asgi_host = None

    def stream(self, conn: HttpConnection, raw_url: bytes) -> Optional["_Stream"]:
        """The stream for a request whose headers are complete, or None for the Socket.IO path."""
        url = raw_url.decode("latin-1")
        path = url.partition("?")[0]
        native = self.engine.path.rstrip("/")
        if path == native or path.startswith(native + "/") or path in self.native_paths:
            return None
        parser = conn.parser
        try:
            method = parser.get_method().decode("ascii")
        except Exception:
            method = "GET"
        return _Stream(self, conn, method, url, parser.get_http_version(), parser.should_keep_alive(),
                       parser.should_upgrade())

    def _track(self, task: "asyncio.Task[None]") -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifespan ------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Run ``lifespan.startup`` (an app that does not speak lifespan is served without it).

        Raises:
            LifespanError: the app reported ``lifespan.startup.failed`` or missed the deadline.
        """
        lifespan = _Lifespan(self)
        self._lifespan = lifespan
        await lifespan.startup()
        self._lifespan_supported = lifespan.supported

    async def shutdown(self) -> None:
        """End the running requests (cancelled after ``cancel_grace``), then ``lifespan.shutdown``."""
        self.uninstall()
        if self._tasks:
            tasks = list(self._tasks)
            done, pending = await asyncio.wait(tasks, timeout=self.cancel_grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.shutdown()

    def _request_state(self) -> Optional[dict[str, Any]]:
        return dict(self.state) if self._lifespan_supported else None


class _Lifespan:
    """One run of the app with a ``lifespan`` scope."""

    def __init__(self, host: AsgiHost) -> None:
        self.host = host
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[Optional[str]] = loop.create_future()
        self.stopped: asyncio.Future[Optional[str]] = loop.create_future()
        self.received = 0
        self.supported = False
        self.task: Optional[asyncio.Task[None]] = None

    async def receive(self) -> Message:
        self.received += 1
        return await self.queue.get()

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            _set(self.started, None)
        elif kind == "lifespan.startup.failed":
            _set(self.started, str(message.get("message", "")) or "lifespan.startup.failed")
        elif kind == "lifespan.shutdown.complete":
            _set(self.stopped, None)
        elif kind == "lifespan.shutdown.failed":
            _set(self.stopped, str(message.get("message", "")) or "lifespan.shutdown.failed")
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")

    async def run(self) -> None:
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                        "state": self.host.state}
        try:
            await self.host.app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if not self.started.done():
                if self.received == 0:
                    # the app raised before asking for the first event: no lifespan support
                    logger.info("the ASGI app does not support lifespan (%s: %s); serving without it",
                                type(exc).__name__, exc)
                    _set(self.started, _UNSUPPORTED)
                else:
                    logger.exception("the ASGI app failed during lifespan startup")
                    _set(self.started, f"{type(exc).__name__}: {exc}")
            else:
                logger.exception("the ASGI app failed in its lifespan")
        finally:
            if not self.started.done():
                # returned without answering startup: served without lifespan
                _set(self.started, _UNSUPPORTED)
            _set(self.stopped, None)

    async def startup(self) -> None:
        self.task = asyncio.ensure_future(self.run())
        self.queue.put_nowait({"type": "lifespan.startup"})
        try:
            result = await asyncio.wait_for(asyncio.shield(self.started), self.host.startup_timeout)
        except asyncio.TimeoutError:
            self.task.cancel()
            raise LifespanError(f"the ASGI app did not finish lifespan startup in {self.host.startup_timeout:g} s") \
                from None
        if result is _UNSUPPORTED:
            return
        if result is not None:
            raise LifespanError(f"the ASGI app's lifespan startup failed: {result}")
        self.supported = True

    async def shutdown(self) -> None:
        task = self.task
        if task is None or not self.supported or task.done():
            return
        self.queue.put_nowait({"type": "lifespan.shutdown"})
        try:
            result = await asyncio.wait_for(asyncio.shield(self.stopped), self.host.shutdown_timeout)
        except asyncio.TimeoutError:
            logger.error("the ASGI app did not finish lifespan shutdown in %g s", self.host.shutdown_timeout)
            result = None
        if result is not None:
            logger.error("the ASGI app's lifespan shutdown failed: %s", result)
        if not task.done():
            try:
                await asyncio.wait_for(task, 1)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            except Exception:
                pass


_UNSUPPORTED = "\x00unsupported"


def _set(fut: "asyncio.Future[Any]", value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


class _Stream(Request):
    """One request outside the Socket.IO path, from its headers to the end of its answer.

    It sits in the connection's request queue like a native request, so
    pipelined answers keep their order; its body is fed while the app runs.
    """

    __slots__ = ("host", "conn", "raw_url", "chunks", "buffered", "body_done", "eof_given", "reading_paused",
                 "disconnected", "started", "complete", "task", "waiter", "drain_waiter", "timer",
                 "status", "out_headers", "framing", "keep", "left", "head", "expect_continue", "ws",
                 "cancel_timer", "is_current")

    def __init__(self, host: AsgiHost, conn: HttpConnection, method: str, url: str, http_version: str,
                 keep_alive: bool, upgrade: bool) -> None:
        super().__init__(method, url, conn._headers, b"", conn.remote_address, conn.server.secure, http_version,
                         keep_alive, upgrade)
        self.host = host
        self.conn = conn
        self.connection = conn
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.body_done = False
        self.eof_given = False
        self.reading_paused = False
        self.disconnected = False
        self.started = False
        self.complete = False
        self.is_current = False
        self.task: Optional[asyncio.Task[None]] = None
        self.waiter: Optional[asyncio.Future[None]] = None
        self.drain_waiter: Optional[asyncio.Future[None]] = None
        self.timer: Optional[asyncio.TimerHandle] = None
        self.cancel_timer: Optional[asyncio.TimerHandle] = None
        self.status = 200
        self.out_headers: list[tuple[bytes, bytes]] = []
        self.framing = ""
        self.keep = keep_alive
        self.left = -1
        self.head = b""
        self.expect_continue = self.headers.get("expect", "").lower() == "100-continue"
        self.ws: Optional[_WebSocket] = None
        self._on_abort = self._aborted
        self._arm_body_timer()

    # -- from the connection (httptools callbacks) -------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.disconnected or self.complete:
            return
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > self.host.body_buffer and not self.reading_paused:
            # the app is behind: stop reading; its receive() resumes it
            self.reading_paused = True
            self._cancel_body_timer()
            self.conn.transport.pause_reading()  # type: ignore[union-attr]
        elif not self.reading_paused:
            self._arm_body_timer()
        self._wake()

    def feed_eof(self) -> None:
        self.body_done = True
        self._cancel_body_timer()
        self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def _arm_body_timer(self) -> None:
        if self.body_done:
            return
        if self.timer is not None:
            self.timer.cancel()
        loop = self.conn.loop
        assert loop is not None
        self.timer = loop.call_later(self.host.body_timeout, self._body_timeout)

    def _cancel_body_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _body_timeout(self) -> None:
        self.timer = None
        if self.body_done or self.disconnected:
            return
        logger.info("request body from %s stalled for %g s: dropping it", self.remote_address, self.host.body_timeout)
        conn = self.conn
        if self.is_current and not self.started and not self.complete:
            self.complete = True
            self._gone()
            conn.respond(408, [("Content-Type", "text/plain")], b"Request Timeout", close=True)
        else:
            self._gone()
            conn.close()

    def _aborted(self) -> None:
        # the connection closed while this request was being answered
        self._gone()

    def _gone(self) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        self._cancel_body_timer()
        self._wake()
        d = self.drain_waiter
        if d is not None and not d.done():
            d.set_result(None)
        if self.ws is not None:
            self.ws.gone(1006)
        task = self.task
        if task is not None and not task.done() and self.cancel_timer is None and self.conn.loop is not None:
            self.cancel_timer = self.conn.loop.call_later(self.host.cancel_grace, self._cancel_app)

    def _cancel_app(self) -> None:
        task = self.task
        if task is not None and not task.done():
            logger.info("ASGI app still running %g s after its client left: cancelled", self.host.cancel_grace)
            task.cancel()

    # -- dispatch ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Called when this request's turn comes (the connection's handler)."""
        self.is_current = True
        if self.disconnected:
            return
        loop = self.conn.loop
        assert loop is not None
        if self.upgrade and self.headers.get("upgrade", "").lower() == "websocket":
            self.ws = _WebSocket(self)
            coro = self.ws.run()
        else:
            coro = self._run_http()
        self.task = loop.create_task(coro)
        self.host._track(self.task)

    def _scope(self, kind: str) -> Scope:
        conn = self.conn
        transport = conn.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        sock = transport.get_extra_info("sockname") if transport is not None else None
        raw = self.url.encode("latin-1")
        try:
            parsed = httptools.parse_url(raw)
            raw_path = parsed.path or b"/"
            query = parsed.query or b""
        except httptools.HttpParserInvalidURLError:
            raw_path, _, query = raw.partition(b"?")
        root = self.host.root_path
        scope: Scope = {
            "type": kind,
            "asgi": _HTTP_ASGI if kind == "http" else _WS_ASGI,
            "http_version": self.http_version if self.http_version in ("1.0", "1.1") else "1.1",
            "scheme": ("https" if self.secure else "http") if kind == "http" else ("wss" if self.secure else "ws"),
            "path": root + unquote_to_bytes(raw_path).decode("utf-8", "replace"),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": root,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()],
            "client": (peer[0], peer[1]) if peer and len(peer) >= 2 else None,
            "server": (sock[0], sock[1]) if sock and len(sock) >= 2 else None,
        }
        if kind == "http":
            scope["method"] = self.method
        else:
            proto = self.headers.get("sec-websocket-protocol", "")
            scope["subprotocols"] = [p.strip() for p in proto.split(",") if p.strip()]
        state = self.host._request_state()
        if state is not None:
            scope["state"] = state
        return scope

    # -- http -----------------------------------------------------------------------------------------

    async def _run_http(self) -> None:
        try:
            await self.host.app(self._scope("http"), self.receive, self.send)
        except asyncio.CancelledError:
            if not self.complete:
                self._abort_response()
            return
        except BaseException as exc:
            if isinstance(exc, ClientDisconnected) or self.disconnected:
                logger.debug("ASGI app stopped after its client left: %r", exc)
            else:
                logger.exception("ASGI app failed on %s %s", self.method, self.path)
            if not self.complete:
                self._abort_response(500)
            return
        finally:
            if self.cancel_timer is not None:
                self.cancel_timer.cancel()
                self.cancel_timer = None
        if not self.complete:
            if not self.started:
                logger.error("ASGI app returned without a response on %s %s", self.method, self.path)
            self._abort_response(500)

    def _abort_response(self, status: int = 0) -> None:
        """End a request the app did not answer completely."""
        self.complete = True
        conn = self.conn
        self._cancel_body_timer()
        if self.disconnected or not self.is_current:
            return
        if not self.started and status:
            self.disconnected = True
            conn.respond(status, [("Content-Type", "text/plain")], b"Internal Server Error", close=True)
            return
        # headers (or a part of the body) are out: the client must see a truncated answer
        self.disconnected = True
        conn.finish(close=True)

    async def receive(self) -> Message:
        while True:
            if self.disconnected or self.complete:
                return {"type": "http.disconnect"}
            if self.chunks:
                body = b"".join(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
                self.chunks.clear()
                self.buffered = 0
                if self.reading_paused:
                    self.reading_paused = False
                    self._arm_body_timer()
                    transport = self.conn.transport
                    if transport is not None and not transport.is_closing():
                        transport.resume_reading()
                return {"type": "http.request", "body": body, "more_body": not self.body_done}
            if self.body_done:
                if not self.eof_given:
                    self.eof_given = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            elif self.expect_continue and not self.started:
                self.expect_continue = False
                self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            loop = asyncio.get_running_loop()
            waiter = self.waiter = loop.create_future()
            await waiter

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            if self.disconnected:
                raise ClientDisconnected("the client disconnected")
            self._start_response(message)
            return
        if kind == "http.response.body":
            if not self.started:
                raise RuntimeError("http.response.body before http.response.start")
            if self.complete:
                raise RuntimeError("http.response.body after the response was complete")
            if self.disconnected:
                raise ClientDisconnected("the client disconnected")
            body = message.get("body", b"")
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise TypeError(f"http.response.body body must be bytes, not {type(body).__qualname__}")
            await self._body(bytes(body), bool(message.get("more_body", False)))
            return
        if kind == "http.response.trailers":
            return
        raise RuntimeError(f"unexpected ASGI message {kind!r} in an http scope")

    def _start_response(self, message: Message) -> None:
        status = int(message["status"])
        if not 100 <= status <= 999:
            raise ValueError(f"bad HTTP status {status}")
        headers: list[tuple[bytes, bytes]] = []
        length = -1
        chunked = False
        for pair in message.get("headers", ()):
            name, value = bytes(pair[0]).lower(), bytes(pair[1])
            if b"\r" in name or b"\n" in name or b":" in name or b"\r" in value or b"\n" in value or not name:
                raise ValueError(f"invalid response header {name!r}")
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise ValueError(f"invalid Content-Length {value!r}") from None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                if b"close" in value.lower():
                    self.keep = False
                continue
            headers.append((name, value))
        self.status = status
        self.out_headers = headers
        self.left = length
        self.framing = "length" if length >= 0 else ("chunked" if chunked else "")
        self.started = True

    def _head(self, body: bytes, more: bool) -> bytes:
        no_body = self.status in _NO_BODY_STATUS or self.status < 200 or self.method == "HEAD"
        headers = self.out_headers
        if not self.framing:
            if no_body:
                self.framing = "none"
            elif not more:
                self.framing = "length"
                self.left = len(body)
                headers.append((b"content-length", str(len(body)).encode()))
            elif self.http_version == "1.1":
                self.framing = "chunked"
                headers.append((b"transfer-encoding", b"chunked"))
            else:
                self.framing = "close"
        elif no_body:
            self.framing = "none"
        if self.framing == "close" or self.upgrade or not self.keep_alive:
            self.keep = False
        if not self.body_done:
            # the app answered before reading the whole body: the rest is not parsed, close after
            self.keep = False
        headers.append((b"connection", b"keep-alive" if self.keep else b"close"))
        reason = _reason(self.status)
        lines = [b"HTTP/1.1 %d %s\r\n" % (self.status, reason)]
        for k, v in headers:
            lines.append(k + b": " + v + b"\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    async def _body(self, body: bytes, more: bool) -> None:
        conn = self.conn
        out = b""
        if not self.head:
            self.head = out = self._head(body, more)
        framing = self.framing
        if framing == "none":
            body = b""
        elif framing == "length":
            if len(body) > self.left:
                raise RuntimeError("the response body is longer than its Content-Length")
            self.left -= len(body)
        if not more:
            self.complete = True
            if framing == "chunked":
                data = (b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n") if body else b"0\r\n\r\n"
            else:
                data = body
            short = framing == "length" and self.left > 0
            if short:
                logger.error("ASGI app ended a response %d bytes short of its Content-Length", self.left)
            conn.write(out + data if out else data)
            self._cancel_body_timer()
            if self.is_current and not self.disconnected:
                conn.finish(close=not self.keep or short or framing == "close")
            return
        if not body:
            if out:
                conn.write(out)
            return
        for i in range(0, len(body), _WRITE_PIECE):
            piece = body[i:i + _WRITE_PIECE]
            if framing == "chunked":
                piece = b"%x\r\n" % len(piece) + piece + b"\r\n"
            if out:
                piece, out = out + piece, b""
            conn.write(piece)
            await self._drain()

    async def _drain(self) -> None:
        """Wait while the client's kernel buffer is full (at most ``send_timeout``)."""
        conn = self.conn
        await asyncio.sleep(0)  # the coalesced write leaves first
        if self.disconnected or conn.state == _H_CLOSED or conn.transport is None \
                or conn.transport.is_closing():
            self._gone()
            raise ClientDisconnected("the client disconnected")
        if conn.writable:
            return
        loop = asyncio.get_running_loop()
        waiter = self.drain_waiter = loop.create_future()

        def drained() -> None:
            if not waiter.done():
                waiter.set_result(None)

        conn.on_drain = drained
        try:
            await asyncio.wait_for(waiter, self.host.send_timeout)
        except asyncio.TimeoutError:
            logger.info("client %s did not read its response for %g s: dropped", self.remote_address,
                        self.host.send_timeout)
            self._gone()
            conn.abort()
            raise ClientDisconnected("the client stopped reading") from None
        finally:
            self.drain_waiter = None
            if conn.on_drain is drained:
                conn.on_drain = None
        if self.disconnected:
            raise ClientDisconnected("the client disconnected")


def _reason(status: int) -> bytes:
    text = STATUS_TEXT.get(status)
    if text is None:
        try:
            text = HTTPStatus(status).phrase
        except ValueError:
            text = "Unknown"
    return text.encode("latin-1")


class _WebSocket(WebSocketHandler):
    """The app's side of a ``websocket`` scope: events in, frames out."""

    __slots__ = ("stream", "events", "queued", "state", "waiter", "drain_waiter", "close_code", "paused",
                 "max_message_size")

    def __init__(self, stream: _Stream) -> None:
        self.stream = stream
        self.events: deque[Message] = deque([{"type": "websocket.connect"}])
        self.queued = 0
        # connecting -> open -> closed
        self.state = "connecting"
        self.waiter: Optional[asyncio.Future[None]] = None
        self.drain_waiter: Optional[asyncio.Future[None]] = None
        self.close_code = 1006
        self.paused = False
        self.max_message_size = stream.host.ws_max_message_size

    # -- from the connection ----------------------------------------------------------------

    def on_ws_message(self, data: "str | bytes") -> None:
        if self.state != "open":
            return
        self.events.append({"type": "websocket.receive", "text": data} if isinstance(data, str)
                           else {"type": "websocket.receive", "bytes": data})
        self.queued += len(data)
        if self.queued > self.stream.host.body_buffer and not self.paused:
            self.paused = True
            transport = self.stream.conn.transport
            if transport is not None:
                transport.pause_reading()
        self._wake()

    def on_ws_close(self, reason: str, description: Any = None) -> None:
        self.gone(1000 if reason == "transport close" else 1006)

    def on_ws_drain(self) -> None:
        d = self.drain_waiter
        if d is not None and not d.done():
            d.set_result(None)

    def gone(self, code: int) -> None:
        if self.state == "closed":
            return
        was_open = self.state == "open"
        self.state = "closed"
        self.close_code = code
        if was_open or self.stream.is_current:
            self.events.append({"type": "websocket.disconnect", "code": code})
        self._wake()
        self.on_ws_drain()
        self.stream._gone()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    # -- the app's receive / send -----------------------------------------------------------

    async def receive(self) -> Message:
        while True:
            if self.events:
                event = self.events.popleft()
                if event["type"] == "websocket.receive":
                    data = event.get("text") if "text" in event else event.get("bytes")
                    self.queued -= len(data or b"")
                    if self.paused and self.queued <= self.stream.host.body_buffer // 2:
                        self.paused = False
                        transport = self.stream.conn.transport
                        if transport is not None and not transport.is_closing():
                            transport.resume_reading()
                return event
            if self.state == "closed":
                return {"type": "websocket.disconnect", "code": self.close_code}
            loop = asyncio.get_running_loop()
            waiter = self.waiter = loop.create_future()
            await waiter

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        conn = self.stream.conn
        if kind == "websocket.accept":
            if self.state != "connecting":
                raise RuntimeError("websocket.accept sent twice or after close")
            extra: list[tuple[str, str]] = []
            sub = message.get("subprotocol")
            if sub is not None:
                extra.append(("Sec-WebSocket-Protocol", str(sub)))
            for name, value in message.get("headers", ()):
                n, v = bytes(name).decode("latin-1"), bytes(value).decode("latin-1")
                if any(c in n + v for c in "\r\n") or n.lower() in ("sec-websocket-protocol",):
                    continue
                extra.append((n, v))
            self.stream.started = True
            self.stream.complete = True
            if not conn.accept_websocket(self, max_message_size=self.max_message_size, extra_headers=extra):
                self.state = "closed"
                self.events.append({"type": "websocket.disconnect", "code": 1006})
                raise ClientDisconnected("invalid WebSocket handshake")
            self.state = "open"
            return
        if kind == "websocket.send":
            if self.state == "connecting":
                raise RuntimeError("websocket.send before websocket.accept")
            if self.state == "closed":
                raise ClientDisconnected("the WebSocket is closed")
            text = message.get("text")
            if text is not None:
                conn.write(ws_frames.build_frame(ws_frames.OP_TEXT, str(text).encode("utf-8")))
            else:
                data = message.get("bytes")
                conn.write(ws_frames.build_frame(ws_frames.OP_BINARY, bytes(data or b"")))
            await self._drain()
            return
        if kind == "websocket.close":
            code = int(message.get("code", 1000))
            reason = str(message.get("reason") or "")
            if self.state == "connecting":
                self.state = "closed"
                self.stream.started = True
                self.stream.complete = True
                if self.stream.is_current and not self.stream.disconnected:
                    conn.reject_upgrade(403, "Forbidden")
                self.events.append({"type": "websocket.disconnect", "code": code})
                return
            if self.state == "open":
                self.state = "closed"
                self.close_code = code
                conn.ws_close(code, reason[:123], "forced close")
            return
        raise RuntimeError(f"unexpected ASGI message {kind!r} in a websocket scope")

    async def _drain(self) -> None:
        conn = self.stream.conn
        await asyncio.sleep(0)
        if self.state == "closed":
            raise ClientDisconnected("the WebSocket is closed")
        if conn.writable:
            return
        loop = asyncio.get_running_loop()
        waiter = self.drain_waiter = loop.create_future()
        try:
            await asyncio.wait_for(waiter, self.stream.host.send_timeout)
        except asyncio.TimeoutError:
            logger.info("WebSocket client %s did not read for %g s: dropped", self.stream.remote_address,
                        self.stream.host.send_timeout)
            conn.abort()
            raise ClientDisconnected("the client stopped reading") from None
        finally:
            self.drain_waiter = None
        if self.state == "closed":
            raise ClientDisconnected("the WebSocket is closed")

    async def run(self) -> None:
        stream = self.stream
        try:
            await stream.host.app(stream._scope("websocket"), self.receive, self.send)
        except asyncio.CancelledError:
            self._end(1011)
            return
        except BaseException as exc:
            if isinstance(exc, ClientDisconnected) or self.state == "closed":
                logger.debug("ASGI WebSocket app stopped after its client left: %r", exc)
            else:
                logger.exception("ASGI WebSocket app failed on %s", stream.path)
            self._end(1011, 500)
            return
        finally:
            if stream.cancel_timer is not None:
                stream.cancel_timer.cancel()
                stream.cancel_timer = None
        self._end(1000, 403)

    def _end(self, code: int, status: int = 500) -> None:
        """The app is done: close what it left open."""
        stream = self.stream
        conn = stream.conn
        if self.state == "connecting":
            self.state = "closed"
            stream.complete = True
            if stream.is_current and not stream.disconnected:
                conn.reject_upgrade(status, "Forbidden" if status == 403 else "Internal Server Error")
        elif self.state == "open":
            self.state = "closed"
            conn.ws_close(code, "", "forced close")
