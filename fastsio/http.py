"""HTTP/1.1 and WebSocket connections on asyncio protocol callbacks.

One :class:`HttpConnection` per TCP connection: httptools parses requests,
pipelined requests are answered in order, and a request upgraded to
WebSocket switches the same object to frame parsing (``ws_frames``). No
coroutine or task exists per idle connection; deadlines are loop timers.

Bad input gets an HTTP error status and the connection is closed: malformed
HTTP -> 400, headers over ``max_header_size`` -> 431 (counted as the bytes
arrive, so an unterminated header line cannot grow past it), too many headers
-> 400, a request that does not complete its headers in ``header_timeout``
(from its first byte) or its body in ``body_timeout`` is dropped, an idle
keep-alive connection is closed after ``keep_alive_timeout`` (CRLFs between
requests do not count as activity), and right away when it still holds output
its peer does not read. A closed connection whose output has not drained
within ``drain_timeout`` is aborted.

Writes are coalesced: everything written to a connection during one loop
iteration goes out in one ``transport.write`` at the start of the next.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import sys
import zlib
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl

import httptools

from ._impl import fanout, http_fast, ws_frames
from .exceptions import WebSocketError

__all__ = ["Request", "HttpConnection", "HttpServer", "WebSocketHandler", "STATUS_TEXT", "deflate_message",
           "response_head"]

logger = logging.getLogger(__name__)

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

STATUS_TEXT = {
    101: "Switching Protocols",
    200: "OK",
    204: "No Content",
    301: "Moved Permanently",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """The status line and ``headers`` of an HTTP/1.1 response, each line ending in CRLF.

    What ``HttpConnection.respond_head`` takes; it adds Content-Length and Connection.
    """
    lines = [f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Unknown')}\r\n"]
    for k, v in headers:
        lines.append(f"{k}: {v}\r\n")
    return "".join(lines).encode("latin-1")


# fastsio._impl.http_fast: a poll's plain GET recognised whole, and a query split, without Python loops
_split_query: Callable[[str], Optional[dict[str, str]]] = http_fast.split_query
_parse_simple_get: Callable[[bytes, int, int, dict[bytes, str], dict[str, str], frozenset[str]],
                            Optional[tuple[str, dict[str, str]]]] = http_fast.parse_simple_get


def parse_query(qs: str) -> dict[str, str]:
    """A query string -> its parameters, the first value of each name (blank values kept).

    The same as the first value per name of ``urllib.parse.parse_qsl(qs,
    keep_blank_values=True)``; a query with nothing to unquote (an Engine.IO
    poll's ``EIO=4&transport=polling&t=...&sid=...``) is split directly.
    """
    q = _split_query(qs)
    if q is None:
        q = {}
        for k, v in parse_qsl(qs, keep_blank_values=True):
            q.setdefault(k, v)
    return q


class Request:
    """One parsed HTTP request, as handed to the engine and to user hooks.

    Attributes:
        method: e.g. ``"GET"``.
        url: the raw request target, path and query.
        path: the path part of ``url``.
        query: query parameters, first value of each name.
        headers: header names in lower case -> value (repeated headers joined by ", ").
        body: the request body.
        remote_address: the peer's IP address.
        secure: True when the connection is TLS.
    """

    __slots__ = ("method", "url", "path", "query_string", "_query", "headers", "body",
                 "remote_address", "secure", "http_version", "keep_alive", "upgrade", "connection",
                 "_on_abort", "_handshake_sid")

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes,
                 remote_address: str, secure: bool, http_version: str = "1.1",
                 keep_alive: bool = True, upgrade: bool = False) -> None:
        self.method = method
        self.url = url
        path, _, qs = url.partition("?")
        self.path = path
        self.query_string = qs
        self._query: Optional[dict[str, str]] = None
        self.headers = headers
        self.body = body
        self.remote_address = remote_address
        self.secure = secure
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.connection: Optional["HttpConnection"] = None
        # called when the connection drops before the request is answered (a pending poll)
        self._on_abort: Optional[Callable[[], None]] = None
        self._handshake_sid: Optional[str] = None

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (first value of each), parsed on first use."""
        q = self._query
        if q is None:
            q = self._query = parse_query(self.query_string)
        return q

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class WebSocketHandler:
    """What an upgraded connection reports to (the engine's WebSocket transport)."""

    def on_ws_message(self, data: "str | bytes") -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def on_ws_close(self, reason: str, description: Any = None) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def on_ws_drain(self) -> None:  # pragma: no cover - interface
        pass


class HttpServer:
    """Accepts TCP connections and hands complete requests to ``handler``.

    Args:
        handler: ``handler(request)`` for each request; it answers with
            ``request.connection.respond(...)`` (now or later) or upgrades
            with ``request.connection.accept_websocket(...)``.
        max_header_size: bytes of request line + headers before 431.
        max_headers: header lines before 400.
        max_body_size: body bytes before 413.
        header_timeout: seconds to receive a request's headers.
        body_timeout: seconds to receive a request's body after its headers.
        keep_alive_timeout: seconds an idle keep-alive connection is kept.
        max_write_buffer: bytes of output pending for one connection before
            it is closed as a slow consumer (the engine's ``max_buffered_bytes``).
        drain_timeout: seconds a closed connection may take to hand its last
            bytes to the peer before it is aborted.
        drop_volatile_above: bytes of output pending for one connection past
            which volatile packets are dropped for it.
    """

    def __init__(self, handler: Callable[[Request], Any], *, max_header_size: int = 16384,
                 max_headers: int = 100, max_body_size: int = 1_000_000,
                 header_timeout: float = 5.0, body_timeout: float = 10.0,
                 keep_alive_timeout: float = 5.0, max_write_buffer: int = 16 * 1024 * 1024,
                 drain_timeout: float = 30.0, drop_volatile_above: int = 1024 * 1024) -> None:
        self.handler = handler
        self.max_header_size = max_header_size
        self.max_headers = max_headers
        self.max_body_size = max_body_size
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.max_write_buffer = max_write_buffer
        self.drain_timeout = drain_timeout
        self.drop_volatile_above = drop_volatile_above
        self.connections: set[HttpConnection] = set()
        #: connections closed because their peer did not read (max_write_buffer)
        self.slow_consumer_disconnects = 0
        #: called with the request target when a body is refused with 413
        self.oversize_hook: Optional[Callable[[str], None]] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._flushq: Any = None
        self.secure = False
        #: an ASGI app hosted beside the engine (fastsio.asgi_host.AsgiHost): its
        #: ``stream(conn, url)`` takes the requests outside the Socket.IO path
        self.asgi_host: Any = None

    def _protocol_factory(self) -> "HttpConnection":
        return HttpConnection(self)

    async def listen(self, port: int, host: Optional[str] = "0.0.0.0", ssl: Any = None,
                     backlog: int = 4096, sock: Any = None) -> asyncio.AbstractServer:
        """Start accepting on ``host:port`` (or on the listening socket ``sock``) on the running loop.

        ``backlog`` is large because a reconnect storm (every client of a dead
        server coming back within milliseconds) overflows a short accept queue:
        dropped SYNs are retried after 1, 3, 7 s and clients hit their connect
        timeout. The kernel caps it at ``net.core.somaxconn``.
        """
        loop = asyncio.get_running_loop()
        self._flushq = fanout.FlushQueue(loop)
        self.secure = ssl is not None
        if sock is not None:
            self._server = await loop.create_server(self._protocol_factory, sock=sock, ssl=ssl, backlog=backlog)
        else:
            self._server = await loop.create_server(self._protocol_factory, host, port, ssl=ssl,
                                                    backlog=backlog, reuse_address=True)
        return self._server

    @property
    def sockets(self) -> list[Any]:
        return list(getattr(self._server, "sockets", None) or ())

    def flush_queue(self) -> Any:
        """The FlushQueue every connection of this server registers its pending output with."""
        if self._flushq is None:
            self._flushq = fanout.FlushQueue(asyncio.get_event_loop())
        return self._flushq

    async def close(self) -> None:
        """Stop accepting and close every connection."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass
            self._server = None


_H_IDLE, _H_HEADERS, _H_BODY, _H_HANDLING, _H_WS, _H_CLOSED = range(6)

# Request headers stay with a session (handshake.headers) for its whole life; names,
# and the values that repeat across clients, are kept once. The caches are process-wide
# and fed by clients, so they are bounded in count and in the length of what they keep.
_MAX_SHARED_LEN = 256
_HEADER_NAMES: dict[bytes, str] = {}
_SHARED_VALUES: dict[str, str] = {}
_SHARED_VALUE_HEADERS = frozenset((
    "host", "user-agent", "accept", "accept-encoding", "accept-language", "connection", "upgrade",
    "origin", "sec-websocket-version", "sec-websocket-extensions", "cache-control", "pragma", "referer",
    "sec-fetch-dest", "sec-fetch-mode", "sec-fetch-site",
))


class HttpConnection(asyncio.Protocol):
    """One TCP connection: HTTP/1.1 until upgraded, then WebSocket."""

    __slots__ = ("server", "transport", "parser", "loop", "state", "_timer", "_url", "_headers",
                 "_header_bytes", "_header_count", "_body", "_body_size", "_queue", "_current",
                 "_wbuf", "_paused", "remote_address", "ws_parser", "ws_handler",
                 "_inflater", "deflate", "_upgrade_tail", "_closing", "_error", "_dispatching",
                 "_hraw", "_seq", "_body_left", "_stream", "on_drain", "_deadline", "_timer_at", "__weakref__")

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: Optional[asyncio.Transport] = None
        self.parser: Any = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.state = _H_IDLE
        self._timer: Optional[asyncio.TimerHandle] = None
        # the connection's one deadline (loop time, -1: none) and when its timer fires (_arm)
        self._deadline = -1.0
        self._timer_at = 0.0
        self._url: list[bytes] = []
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._header_count = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._queue: list[Request] = []
        self._current: Optional[Request] = None
        # what this connection writes in the current loop iteration (fanout.WriteBuffer);
        # broadcasts push their shared frames straight into it
        self._wbuf: Any = None
        self._paused = False
        self.remote_address = ""
        self.ws_parser: Any = None
        self.ws_handler: Optional[WebSocketHandler] = None
        self._inflater: Any = None
        #: permessage-deflate was negotiated on this WebSocket
        self.deflate = False
        self._upgrade_tail = b""
        self._closing = False
        self._error: Optional[int] = None
        self._dispatching = False
        # raw bytes of the current message's head fed to the parser so far, which
        # message that is (a counter), and the body bytes still expected (-1: chunked)
        self._hraw = 0
        self._seq = 0
        self._body_left = -1
        # the request being received whose body is streamed to the hosted ASGI app
        self._stream: Any = None
        #: called when the kernel buffer has room again (a streamed ASGI response waits for it)
        self.on_drain: Optional[Callable[[], None]] = None

    # -- asyncio.Protocol -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        self.remote_address = peer[0] if peer else ""
        self.parser = httptools.HttpRequestParser(self)
        srv = self.server
        self._wbuf = fanout.WriteBuffer(self, srv.flush_queue(), srv.max_write_buffer, srv.drop_volatile_above)
        # the flush queue writes to the transport itself (see _flush) until the connection closes
        self._wbuf.transport = transport
        self.server.connections.add(self)
        self._arm(self.server.header_timeout)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        prev = self.state
        self.state = _H_CLOSED
        self._cancel_timer()
        self.server.connections.discard(self)
        # the parser's callbacks, the write buffer, the request body streamed to a hosted ASGI
        # app and the error a WebSocket frame parser keeps (its traceback holds our frames) point
        # back at this connection: let go of them, so a closed connection is freed by reference
        # counting, not the cyclic GC
        self.parser = None
        self.ws_parser = None
        self._stream = None
        if self._wbuf is not None:
            self._wbuf.clear()
            self._wbuf = None
        if prev == _H_WS and self.ws_handler is not None:
            handler, self.ws_handler = self.ws_handler, None
            handler.on_ws_close("transport close" if exc is None else "transport error")
        elif self._current is not None:
            cb, self._current._on_abort = self._current._on_abort, None
            self._current = None
            if cb is not None:
                cb()

    def pause_writing(self) -> None:
        self._paused = True
        if self._wbuf is not None:
            self._wbuf.paused = True

    def resume_writing(self) -> None:
        self._paused = False
        wbuf = self._wbuf
        if wbuf is not None:
            wbuf.paused = False
            backlog = self.transport.get_write_buffer_size() if self.transport is not None else 0
            wbuf.buffered = backlog + sum(map(len, wbuf.chunks))
        if self.ws_handler is not None:
            self.ws_handler.on_ws_drain()
        elif self.on_drain is not None:
            self.on_drain()

    @property
    def writable(self) -> bool:
        """False once closed or past ``drop_volatile_above`` bytes of pending output (volatile packets are dropped then)."""
        return self.state != _H_CLOSED and not self._closing and self._wbuf.buffered <= self._wbuf.drop_above

    def data_received(self, data: bytes) -> None:
        if self.state == _H_WS:
            self._ws_data(data)
            return
        if self.state == _H_CLOSED or self._closing:
            return
        if (self.state == _H_IDLE and self._current is None and not self._queue and self._error is None
                and self.server.asgi_host is None):
            # a long-polling client's next GET, whole in one segment: recognised without
            # the parser's callbacks (anything else goes to the parser, limits and errors included)
            srv = self.server
            got = _parse_simple_get(data, srv.max_header_size, srv.max_headers, _HEADER_NAMES, _SHARED_VALUES,
                                    _SHARED_VALUE_HEADERS)
            if got is not None:
                self._simple_get(got[0], got[1])
                return
        # no timer is armed here: the header timer starts with a message's first byte
        # (on_message_begin), so CRLFs between requests do not move any deadline
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade:
            # the bytes after the upgrade request are WebSocket frames, not HTTP
            self.transport.pause_reading()  # type: ignore[union-attr]
        except (httptools.HttpParserError, ValueError):
            if self._error is None:
                self._error = 400
            if self._queue or self._current is not None:
                # answer the good requests parsed before the bad one first, as Node does
                self.transport.pause_reading()  # type: ignore[union-attr]
                self.state = _H_HANDLING
                self._next_request()
            else:
                self._fail(self._error)
            return
        if self._current is None and self._queue:
            self._next_request()

    def _feed(self, data: bytes) -> None:
        """Feed ``data`` to the parser, never more than ``max_header_size`` bytes of one head.

        httptools keeps an unterminated header line to itself until it ends, so the
        limit is enforced here on raw bytes: in the head of a message the parser is
        fed at most what is left of the budget, and a head still incomplete once the
        budget is spent is refused with 431 (as Node's parser does).
        """
        limit = self.server.max_header_size
        n = len(data)
        view = memoryview(data)
        pos = 0
        while pos < n:
            state = self.state
            if state == _H_BODY:
                left = self._body_left
                end = n if left < 0 else min(n, pos + max(left, 1))
            else:
                # a head in progress, or the start of the next one
                if state != _H_HEADERS:
                    self._hraw = 0
                budget = limit - self._hraw
                if budget <= 0:
                    self._error = 431
                    raise ValueError("header too large")
                end = min(n, pos + budget)
            seq = self._seq
            try:
                self.parser.feed_data(view[pos:end] if pos or end < n else data)
            except httptools.HttpParserUpgrade as exc:
                offset = exc.args[0] if exc.args else end - pos
                self._upgrade_tail = bytes(view[pos + offset:])
                raise
            if self.state == _H_HEADERS and (
                    self._seq == seq if state == _H_HEADERS else state != _H_BODY and self._seq == seq + 1):
                # the same head is still incomplete, or the only one begun in this slice
                # began at its start (after CRLFs at most): all of it counts. A head that
                # began in the middle of a slice is counted from the next one (at most
                # one slice of it goes uncounted: bounded)
                self._hraw += end - pos
                if self._hraw >= limit:
                    self._error = 431
                    raise ValueError("header too large")
            pos = end

    def eof_received(self) -> Optional[bool]:
        return None

    # -- httptools callbacks ------------------------------------------------

    def on_message_begin(self) -> None:
        self._url.clear()
        self._headers = {}
        self._header_bytes = 0
        self._header_count = 0
        self._body.clear()
        self._body_size = 0
        self._body_left = -1
        self._hraw = 0
        self._seq += 1
        self.state = _H_HEADERS
        # from its first byte a request must complete its headers in time, also when it
        # arrived pipelined behind one still being answered
        self._arm(self.server.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        if self._header_bytes > self.server.max_header_size:
            self._error = 431
            raise ValueError("header too large")
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        self._header_count += 1
        if self._header_bytes > self.server.max_header_size:
            self._error = 431
            raise ValueError("header too large")
        if self._header_count > self.server.max_headers:
            self._error = 400
            raise ValueError("too many headers")
        key = _HEADER_NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
            if len(_HEADER_NAMES) < 512 and len(name) <= _MAX_SHARED_LEN:
                _HEADER_NAMES[name] = key
        val = value.decode("latin-1")
        if key in _SHARED_VALUE_HEADERS and len(val) <= _MAX_SHARED_LEN:
            # the same few values on every connection (host, user agent...): one string for all
            shared = _SHARED_VALUES.get(val)
            if shared is None:
                if len(_SHARED_VALUES) < 4096:
                    _SHARED_VALUES[val] = val
            else:
                val = shared
        old = self._headers.get(key)
        if old is None:
            self._headers[key] = val
        elif key == "content-length" or key == "transfer-encoding" or key == "host":
            # a repeated framing header is a request-smuggling vector: refuse it
            self._error = 400
            raise ValueError("duplicate framing header")
        else:
            self._headers[key] = old + ", " + val

    def on_headers_complete(self) -> None:
        cl = self._headers.get("content-length")
        if cl is not None and not cl.isdigit():
            self._error = 400
            raise ValueError("bad content-length")
        host = self.server.asgi_host
        if host is not None:
            stream = host.stream(self, b"".join(self._url))
            if stream is not None:
                # outside the Socket.IO path: the hosted ASGI app gets the request now and
                # its body as it arrives (the stream keeps its own deadlines and limits)
                self._stream = stream
                self._queue.append(stream)
                self._body_left = int(cl) if cl is not None else -1
                self.state = _H_BODY
                self._disarm()
                return
        if cl is not None:
            if int(cl) > self.server.max_body_size:
                self._error = 413
                raise ValueError("body too large")
            self._body_left = int(cl)
        self.state = _H_BODY
        self._arm(self.server.body_timeout)

    def on_body(self, body: bytes) -> None:
        if self._body_left >= 0:
            self._body_left -= len(body)
        if self._stream is not None:
            self._stream.feed(body)
            return
        self._body_size += len(body)
        if self._body_size > self.server.max_body_size:
            self._error = 413
            raise ValueError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        stream = self._stream
        if stream is not None:
            self._stream = None
            if self.state == _H_BODY:
                self.state = _H_HANDLING
            stream.feed_eof()
            if len(self._queue) > 8:
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        parser = self.parser
        try:
            method = parser.get_method().decode("ascii")
        except Exception:
            method = "GET"
        url = b"".join(self._url).decode("latin-1")
        req = Request(method, url, self._headers, b"".join(self._body), self.remote_address,
                      self.server.secure, parser.get_http_version(), parser.should_keep_alive(),
                      parser.should_upgrade())
        req.connection = self
        self._url.clear()
        self._body.clear()
        self._queue.append(req)
        if len(self._queue) > 8:
            # a client pipelining without reading answers: stop reading until it catches up
            self.transport.pause_reading()  # type: ignore[union-attr]
        self.state = _H_HANDLING
        self._disarm()

    def _simple_get(self, url: str, headers: dict[str, str]) -> None:
        # what on_message_begin .. on_message_complete do for a keep-alive GET without a body
        self._seq += 1
        self._hraw = 0
        self._disarm()  # the request is complete
        self.state = _H_HANDLING
        req = Request("GET", url, headers, b"", self.remote_address, self.server.secure)
        req.connection = self
        self._queue.append(req)
        self._next_request()

    # -- request dispatch ------------------------------------------------

    def _next_request(self) -> None:
        if self._dispatching:
            # respond() called from inside a handler: the loop below picks up the next
            # request, so 200 pipelined requests do not nest 200 calls deep
            return
        self._dispatching = True
        try:
            while self._current is None and self._queue and not self._closing and self.state != _H_CLOSED:
                req = self._queue.pop(0)
                self._current = req
                try:
                    self.server.handler(req)
                except Exception:
                    logger.exception("request handler failed")
                    if self._current is req:
                        self.respond(500, [], b"", close=True)
        finally:
            self._dispatching = False
        if self._current is None and not self._queue:
            if self._error is not None and self.state != _H_CLOSED and not self._closing:
                # a malformed request behind good ones: answered once those are
                self._fail(self._error)
                return
            if self.state == _H_HANDLING and not self._closing:
                # (a closing connection keeps its drain deadline)
                self.state = _H_IDLE
                self._arm(self.server.keep_alive_timeout)
                if not self._closing and self.transport is not None:
                    self.transport.resume_reading()

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes = b"",
                close: bool = False) -> None:
        """Answer the current request.

        Args:
            status: HTTP status code.
            headers: extra headers (Content-Length and Connection are added).
            body: the response body.
            close: close the connection after the response.
        """
        self.respond_head(response_head(status, headers), body, close)

    def respond_head(self, head: bytes, body: bytes = b"", close: bool = False) -> None:
        """Answer the current request with a head built before (``response_head``), then ``body``.

        Content-Length and Connection are added, as ``respond`` does.
        """
        req = self._current
        if self.state == _H_CLOSED or self.transport is None:
            self._current = None
            return
        if req is not None and (not req.keep_alive or req.upgrade):
            # after an upgrade request the parser is done with this connection
            close = True
        tail = b"Connection: close\r\n\r\n" if close else b"Connection: keep-alive\r\n\r\n"
        if len(body) < 4096:
            self._write(b"%sContent-Length: %d\r\n%s%s" % (head, len(body), tail, body))
        else:
            # a large body (a broadcast's shared payload) is queued as it is, not copied here
            self._write(b"%sContent-Length: %d\r\n%s" % (head, len(body), tail))
            self._write(body)
        self._current = None
        if close:
            self._close_after_flush()
            return
        self._next_request()

    def finish(self, close: bool = False) -> None:
        """The current request was answered by the caller's own writes (the ASGI host): go on."""
        req = self._current
        if req is not None:
            # answered: nothing to tell it on a drop any more (a hosted request's callback is
            # its own bound method, a cycle the cyclic GC would have to find)
            req._on_abort = None
        self._current = None
        if close:
            self._close_after_flush()
            return
        self._next_request()

    def _fail(self, status: int) -> None:
        """Answer a malformed request with ``status`` and close."""
        if self.state == _H_CLOSED or self._closing:
            return
        if self._current is not None and self._current._on_abort is not None:
            # a request still being answered (a poll, a streamed ASGI request) learns it is gone
            cb, self._current._on_abort = self._current._on_abort, None
            self._current = None
            cb()
        self._current = None
        self._queue = []
        if status == 413 and self.server.oversize_hook is not None:
            try:
                self.server.oversize_hook(b"".join(self._url).decode("latin-1"))
            except Exception:
                logger.exception("oversize hook failed")
        body = STATUS_TEXT.get(status, "Error").encode()
        self._write(f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        self._close_after_flush()

    def reject_upgrade(self, status: int, message: str) -> None:
        """Refuse a WebSocket upgrade the way Node engine.io does, then close."""
        self._current = None
        body = message.encode()
        self._write(f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Bad Request')}\r\nConnection: close\r\n"
                    f"Content-type: text/html\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        self._close_after_flush()

    # -- WebSocket -----------------------------------------------------------

    def accept_websocket(self, handler: WebSocketHandler, *, max_message_size: int,
                         per_message_deflate: bool = False, extra_headers: Optional[list[tuple[str, str]]] = None,
                         max_fragments: int = 1000) -> bool:
        """Complete the upgrade of the current request; False if the request is not a valid one.

        On False a 400 answer has been sent and the connection is closing.
        """
        req = self._current
        assert req is not None
        key = req.headers.get("sec-websocket-key", "")
        if not _valid_ws_request(req) or not _valid_ws_key(key):
            self.reject_upgrade(400, "Bad Request")
            return False
        accept = base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest()).decode()
        lines = ["HTTP/1.1 101 Switching Protocols\r\n", "Upgrade: websocket\r\n", "Connection: Upgrade\r\n",
                 f"Sec-WebSocket-Accept: {accept}\r\n"]
        deflate = False
        if per_message_deflate:
            answer = _negotiate_deflate(req.headers.get("sec-websocket-extensions", ""))
            if answer is not None:
                deflate = True
                lines.append(f"Sec-WebSocket-Extensions: {answer}\r\n")
        self.deflate = deflate
        for k, v in extra_headers or ():
            lines.append(f"{k}: {v}\r\n")
        lines.append("\r\n")
        self._write("".join(lines).encode("latin-1"))
        self._current = None
        self._queue = []
        self.state = _H_WS
        self._cancel_timer()
        # the HTTP parser and its buffers are done with: an idle WebSocket keeps only what it uses
        self.parser = None
        self._headers = {}
        self._url = []
        self._body = []
        self.ws_handler = handler
        self.ws_parser = ws_frames.FrameParser(max_message_size, max_fragments=max_fragments,
                                               allow_rsv1=deflate)
        if deflate:
            self._inflater = zlib.decompressobj(-15)
        tail, self._upgrade_tail = self._upgrade_tail, b""
        assert self.transport is not None
        self.transport.resume_reading()
        if tail:
            # frames sent right behind the upgrade request: fed once the caller has set up
            # the session this connection belongs to
            self.loop.call_soon(self._ws_data, tail)  # type: ignore[union-attr]
        return True

    def _ws_data(self, data: bytes) -> None:
        if self.state != _H_WS:
            return
        try:
            messages = self.ws_parser.feed(data)
        except WebSocketError as exc:
            # the parser keeps the error to raise it again: without its traceback (the frames
            # of this connection and of the parser), which would make a reference cycle
            exc.__traceback__ = None
            self.ws_close(exc.code, exc.reason, "transport error")
            return
        for opcode, payload, compressed in messages:
            if self.state != _H_WS:
                return
            if opcode == 1 or opcode == 2:
                if compressed:
                    try:
                        payload = self._inflate(payload, opcode)
                    except WebSocketError as exc:
                        self.ws_close(exc.code, exc.reason, "transport error")
                        return
                handler = self.ws_handler
                if handler is not None:
                    handler.on_ws_message(payload)
            elif opcode == 9:
                self.write(ws_frames.build_frame(10, payload))
            elif opcode == 8:
                try:
                    code, _ = ws_frames.parse_close(payload)
                except WebSocketError as exc:
                    self.ws_close(exc.code, exc.reason, "transport error")
                    return
                self.ws_close(1000 if code == 1005 else code, "", "transport close")
                return
            # pongs need no answer; the Engine.IO heartbeat is what keeps sessions alive

    def _inflate(self, data: bytes, opcode: int) -> "str | bytes":
        limit = int(getattr(self.ws_handler, "max_message_size", 1_000_000))
        d = self._inflater
        out: bytes = d.decompress(data + b"\x00\x00\xff\xff", limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise WebSocketError(1009, "message too big")
        if opcode == 1:
            try:
                return out.decode("utf-8")
            except UnicodeDecodeError:
                raise WebSocketError(1007, "invalid UTF-8") from None
        return out

    def ws_close(self, code: int = 1000, reason: str = "", close_reason: str = "forced close",
                 description: Any = None) -> None:
        """Send a close frame, then close the TCP connection; report ``close_reason`` once."""
        if self.state != _H_WS:
            return
        self.state = _H_CLOSED
        handler, self.ws_handler = self.ws_handler, None
        try:
            self._write(ws_frames.build_close(code, reason))
        except Exception:
            pass
        self._close_after_flush()
        if handler is not None:
            if description is None:
                handler.on_ws_close(close_reason)
            else:
                handler.on_ws_close(close_reason, description)

    # -- output -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue ``data``; it leaves in one write with the rest of this iteration's output."""
        if self.state == _H_CLOSED:
            return
        self._wbuf.push(data)

    def _write(self, data: bytes) -> None:
        # also after close: the close frame / last answer still has to leave
        if self._wbuf is not None:
            self._wbuf.push(data)

    def _flush(self) -> None:
        # FlushQueue.flush does the same (from C) while _wbuf.transport is set, i.e. until
        # the connection closes; the close after the last flush is done here
        transport = self.transport
        if transport is None or self._wbuf is None:
            return
        data = self._wbuf.take()
        if data is None:
            return
        if transport.is_closing():
            return
        transport.write(data)
        # what the transport still holds is pending output too; below the transport's
        # high-water mark (not paused) it is small and leaves soon: counted as 0
        self._wbuf.buffered = transport.get_write_buffer_size() if self._paused else 0
        if self._closing:
            transport.close()

    def _overflow(self) -> None:
        """Output past ``max_write_buffer``: the peer does not read (called by the write buffer)."""
        wbuf = self._wbuf
        if wbuf is None or wbuf.max_bytes < 0:
            return
        # nothing more is queued until the connection is dealt with, right after the
        # broadcast or write that got here (not from inside it)
        wbuf.max_bytes = -1
        assert self.loop is not None
        self.loop.call_soon(self._on_overflow, wbuf.buffered)

    def _on_overflow(self, pending: int) -> None:
        wbuf = self._wbuf
        if wbuf is None or self.transport is None or self.transport.is_closing():
            return
        wbuf.clear()
        wbuf.max_bytes = sys.maxsize
        self.server.slow_consumer_disconnects += 1
        cap = self.server.max_write_buffer
        logger.info("closing slow consumer %s: %d bytes pending", self.remote_address, pending)
        if self.state == _H_WS:
            # the close frame goes behind what the kernel and the transport still hold:
            # a peer that reads again gets it; one that does not is aborted after drain_timeout
            self.ws_close(1008, "write buffer overflow", "transport error",
                          f"write buffer overflow: {pending} bytes pending for a client that does not "
                          f"read (max_buffered_bytes={cap})")
        else:
            self.abort()

    def _close_after_flush(self) -> None:
        first = not self._closing
        self._closing = True
        if self._wbuf is not None:
            self._wbuf.transport = None  # the flush that empties the buffer closes the transport (_flush)
        if (self._wbuf is None or not self._wbuf.pending) and self.transport is not None:
            self.transport.close()
        if first and self.loop is not None:
            # a peer that never reads would keep the connection (and its output) forever:
            # what has not drained by then is dropped
            self._arm(self.server.drain_timeout)

    def close(self) -> None:
        """Close the connection (WebSocket: with close code 1001 "going away")."""
        if self.state == _H_WS:
            self.ws_close(1001, "", "forced close")
            return
        if self._current is not None:
            cb, self._current._on_abort = self._current._on_abort, None
            self._current = None
            if cb is not None:
                cb()
        self._close_after_flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- timers -----------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        # One deadline per connection, moved on every request: moving it is two stores.
        # The loop timer is re-made only when the new deadline comes before the armed
        # one; a timer that fires before the deadline re-arms for the rest (_on_timer).
        loop = self.loop
        assert loop is not None
        deadline = loop.time() + delay
        self._deadline = deadline
        if self._timer is not None:
            if self._timer_at <= deadline:
                return
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._on_timer)

    def _disarm(self) -> None:
        # no deadline until the next _arm; the armed timer (if any) finds none and stops
        self._deadline = -1.0

    def _cancel_timer(self) -> None:
        self._deadline = -1.0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline < 0:
            return
        loop = self.loop
        assert loop is not None
        # the loop's clock has a millisecond grain: within one of the deadline is at it
        if loop.time() < deadline - 0.001:
            self._timer_at = deadline
            self._timer = loop.call_at(deadline, self._on_timer)
            return
        self._deadline = -1.0
        self._on_timeout()

    def _on_timeout(self) -> None:
        self._timer = None
        if self._closing:
            # drain_timeout: the peer did not take the last bytes
            logger.debug("aborting %s: output not drained", self.remote_address)
            self.abort()
        elif self.state in (_H_HEADERS, _H_BODY):
            if self._current is None and not self._queue:
                self._fail(408)
            else:
                # a request still being answered: a 408 cannot go before its answer
                self.close()
        elif self.state == _H_IDLE:
            transport = self.transport
            # Idle past keep_alive_timeout. Answers the peer has not read yet (a
            # poll response to a slow client) still leave: the close waits for
            # them up to drain_timeout, as Node's keep-alive timer starts only
            # once a response is flushed; a peer that never reads is then cut.
            self._close_after_flush()


def _negotiate_deflate(header: str) -> Optional[str]:
    """The permessage-deflate answer to a client's offers, or None to decline (RFC 7692).

    The server always asks for ``server_no_context_takeover``: every message it
    compresses is then independent of the connection, so a broadcast is
    compressed once and the same frame goes to every client. Only a 15-bit
    window is used, so an offer limiting the server's window below that is
    declined.
    """
    for offer in header.split(","):
        parts = [p.strip() for p in offer.split(";")]
        if parts[0].lower() != "permessage-deflate":
            continue
        params: dict[str, str] = {}
        ok = True
        for part in parts[1:]:
            name, _, value = part.partition("=")
            name = name.strip().lower()
            value = value.strip().strip('"')
            if name in params or name not in ("server_no_context_takeover", "client_no_context_takeover",
                                                "server_max_window_bits", "client_max_window_bits"):
                ok = False
                break
            params[name] = value
        if not ok:
            continue
        if "server_max_window_bits" in params and params["server_max_window_bits"] != "15":
            continue
        answer = "permessage-deflate; server_no_context_takeover"
        if "server_max_window_bits" in params:
            answer += "; server_max_window_bits=15"
        return answer
    return None


_DEFLATE_TEMPLATE = zlib.compressobj(6, zlib.DEFLATED, -15)


def deflate_message(data: bytes) -> bytes:
    """One message compressed on its own (no context takeover), without the 00 00 ff ff tail."""
    c = _DEFLATE_TEMPLATE.copy()
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def _valid_ws_request(req: Request) -> bool:
    h = req.headers
    if req.method != "GET":
        return False
    if h.get("upgrade", "").lower() != "websocket":
        return False
    if "upgrade" not in [t.strip() for t in h.get("connection", "").lower().split(",")]:
        return False
    if h.get("sec-websocket-version", "") != "13":
        return False
    if req.body or h.get("content-length", "0") not in ("", "0") or "transfer-encoding" in h:
        return False
    return True


def _valid_ws_key(key: str) -> bool:
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except Exception:
        return False
