"""The Engine.IO v4 server (and v3 with ``allow_eio3``): sessions, handshake, errors, CORS.

Error answers follow Node's engine.io: code 0 "Transport unknown", 1
"Session ID unknown", 2 "Bad handshake method", 3 "Bad request", 4
"Forbidden" (HTTP 403), 5 "Unsupported protocol version"; every other
code is HTTP 400. A refused WebSocket upgrade gets a plain 400 and a close.
"""
from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Optional, Union

import orjson

from .. import _tasks
from ..emitter import EventEmitter
from ..http import HttpConnection, HttpServer, Request, response_head
from ..options import EngineOptions, resolve
from .cookie import session_cookie
from .deadlines import DeadlineWheel
from .polling import PollingTransport
from .socket import EngineSocket
from .transport import TRANSPORTS, PreparedMessage, http_compress
from .websocket import WebSocketTransport

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Engine", "EngineStats", "ERROR_MESSAGES"]

logger = logging.getLogger(__name__)

UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, UNSUPPORTED_PROTOCOL_VERSION = range(6)

ERROR_MESSAGES = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}

COMPRESSION_THRESHOLD = 1024
#: seconds a closing engine waits for a polling client's next GET after its last answer
POLL_GRACE = 1.0
_ORIGIN_OK = re.compile(r"^[\x21-\x7e]*$")

Response = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class EngineStats:
    """Counters of the slow-consumer policy since the engine started (``engine.stats``).

    Attributes:
        volatile_dropped: volatile packets not sent to a client because it was
            past ``drop_volatile_above`` bytes of pending output (or, on
            polling, had no GET waiting).
        slow_consumer_disconnects: clients disconnected because they were past
            ``max_buffered_bytes`` (reason ``"transport error"``).
    """

    volatile_dropped: int
    slow_consumer_disconnects: int


def default_generate_id(request: Optional[Request] = None) -> str:
    """A random, URL-safe 20-character session id (Node uses the same length)."""
    return base64.urlsafe_b64encode(os.urandom(15)).decode()


class Engine(EventEmitter):
    """A standalone Engine.IO server, usable without Socket.IO (Node's ``engine.io``).

    Args:
        path: the URL path the engine answers (default ``"/engine.io/"``).
        ping_interval: seconds between server pings.
        ping_timeout: seconds to wait for a pong before closing ("ping timeout").
        upgrade_timeout: seconds an unfinished upgrade may take.
        max_http_buffer_size: largest message / POST body in bytes.
        allow_request: ``fn(request)`` (may be async) returning True to accept;
            returning False or raising refuses with 403 (code 4).
        transports: allowed transports.
        allow_upgrades: whether polling may upgrade to websocket.
        per_message_deflate: negotiate permessage-deflate on WebSockets; messages
            of 1 kB or more are then sent compressed (a dict ``{"threshold": bytes}``
            sets the size).
        http_compression: gzip/deflate polling responses of 1 kB or more; a dict
            ``{"threshold": bytes}`` sets the size.
        cookie: False, True (``io`` cookie) or a dict of Node's cookie options in
            snake_case (``name``, ``path``, ``domain``, ``http_only``, ``same_site``,
            ``secure``, ``max_age``, ``expires``, ``partitioned``, ``priority``), see
            fastsio/engineio/cookie.py.
        cors: None, or a dict with ``origin`` (str, list, ``re.Pattern``, True or
            a callable), ``credentials``, ``methods``, ``allowed_headers``,
            ``exposed_headers``, ``max_age``.
        allow_eio3: also accept Engine.IO v3 clients (socket.io v2 clients).
        initial_packet: a message sent right after the open packet.
        add_trailing_slash: match ``path`` with its trailing slash only.
        header_timeout: seconds a request may take to send its headers.
        keep_alive_timeout: seconds an idle keep-alive HTTP connection is kept.
        body_timeout: seconds a request may take to send its body after its headers.
        max_buffered_bytes: bytes of output pending for one client that is not
            reading (a polling client that stopped polling, a WebSocket peer
            that stopped reading) before it is disconnected with "transport
            error" (WebSocket: close frame 1008).
        drop_volatile_above: bytes of output pending for one client past which
            ``volatile`` packets are dropped for it (on polling they are also
            dropped while no GET is waiting, as in Node).
        drain_timeout: seconds a closed connection may take to hand its last
            bytes to its peer before it is aborted (Node's ``ws`` waits 30 s).

    Every option is declared in ``fastsio.options.EngineOptions`` (type and
    default); an unknown one raises ``TypeError`` naming the closest valid one.

    Example:
        >>> engine = Engine()
        >>> @engine.on("connection")
        ... def on_connection(sock):
        ...     sock.on("message", lambda data: sock.send(data))
        >>> await engine.listen(3000, host="127.0.0.1")
    """

    def __init__(self, **options: Unpack[EngineOptions]) -> None:
        super().__init__()
        o = resolve(EngineOptions, options, "Engine")
        path: str = o["path"]
        self.ping_interval = float(o["ping_interval"])
        self.ping_timeout = float(o["ping_timeout"])
        self.upgrade_timeout = float(o["upgrade_timeout"])
        self.max_http_buffer_size = int(o["max_http_buffer_size"])
        self.allow_request: Optional[Callable[[Request], Any]] = o["allow_request"]
        self.transports = tuple(t for t in o["transports"] if t in TRANSPORTS)
        self.allow_upgrades: bool = o["allow_upgrades"]
        per_message_deflate = o["per_message_deflate"]
        self.per_message_deflate = bool(per_message_deflate)
        self.deflate_threshold = 1024
        if isinstance(per_message_deflate, dict):
            self.deflate_threshold = int(per_message_deflate.get("threshold", 1024))
        http_compression = o["http_compression"]
        self.http_compression = bool(http_compression)
        self.compression_threshold = COMPRESSION_THRESHOLD
        if isinstance(http_compression, dict):
            self.compression_threshold = int(http_compression.get("threshold", COMPRESSION_THRESHOLD))
        self.cookie: Union[bool, dict[str, Any]] = o["cookie"]
        self._cookie = session_cookie(self.cookie)  # a bad cookie option fails here, not per handshake
        self.cors: Optional[dict[str, Any]] = o["cors"]
        self.allow_eio3: bool = o["allow_eio3"]
        self.initial_packet: Any = o["initial_packet"]
        self.add_trailing_slash: bool = o["add_trailing_slash"]
        self.header_timeout: float = o["header_timeout"]
        self.keep_alive_timeout: float = o["keep_alive_timeout"]
        self.body_timeout: float = o["body_timeout"]
        self.max_buffered_bytes = int(o["max_buffered_bytes"])
        self.drop_volatile_above = int(o["drop_volatile_above"])
        self.drain_timeout = float(o["drain_timeout"])
        self.clients: dict[str, EngineSocket] = {}
        # counters behind .stats (the WebSocket fast path counts in the HTTP server's too)
        self._volatile_dropped = 0
        self._slow_consumers = 0
        self.generate_id: Callable[..., Any] = default_generate_id
        self.fallback: Optional[Callable[[Request], Any]] = None
        #: ``fn(request) -> bool`` consulted for a request naming a session this process
        #: does not hold; True means it took the request (workers: the owner serves it)
        self.session_router: Optional[Callable[[Request], bool]] = None
        self._middlewares: list[Callable[..., Any]] = []
        self._http: Optional[HttpServer] = None
        self.path = path
        self._pending: set[asyncio.Future[Any]] = set()
        self._wheel: Optional[DeadlineWheel] = None
        # set by close(): new sessions are refused from then on
        self._closing = False
        # prebuilt heads of polling answers (_respond_poll), for the CORS options they were built with
        self._heads: dict[tuple[str, Optional[str], bool, Optional[str]], bytes] = {}
        self._heads_cors: Optional[dict[str, Any]] = None

    def _deadlines(self) -> DeadlineWheel:
        """The heartbeat deadlines of every session (made on first use, on the running loop)."""
        wheel = self._wheel
        if wheel is None:
            wheel = self._wheel = DeadlineWheel(asyncio.get_event_loop())
        return wheel

    # -- configuration -----------------------------------------------------------------

    @property
    def path(self) -> str:
        """The URL path this engine answers."""
        return self._path

    @path.setter
    def path(self, value: str) -> None:
        value = value.rstrip("/") or ""
        self._path = value + "/" if self.add_trailing_slash else value
        self._paths = (self._path,) if self.add_trailing_slash else (value, value + "/")

    @property
    def stats(self) -> EngineStats:
        """The slow-consumer counters (plain ints, a snapshot; see :class:`EngineStats`)."""
        dropped, slow = self._volatile_dropped, self._slow_consumers
        http = self._http
        if http is not None:
            slow += http.slow_consumer_disconnects
            if http._flushq is not None:
                dropped += http._flushq.volatile_dropped
        return EngineStats(dropped, slow)

    @property
    def clients_count(self) -> int:
        """How many sessions are open."""
        return len(self.clients)

    def use(self, fn: Callable[..., Any]) -> "Engine":
        """Add an HTTP middleware, run before every engine request.

        ``fn(request, next)`` calls ``next()`` to go on or ``next(err)`` to refuse
        (400, code 3); ``async def fn(request)`` refuses by raising.
        """
        self._middlewares.append(fn)
        return self

    def _upgrades_for(self, transport: str) -> list[str]:
        if transport == "polling" and self.allow_upgrades and "websocket" in self.transports:
            return ["websocket"]
        return []

    # -- serving ----------------------------------------------------------------------------

    def http_server(self) -> HttpServer:
        """The HTTP server this engine answers on (made on first use)."""
        if self._http is None:
            self._http = HttpServer(self.handle_request, max_body_size=self.max_http_buffer_size,
                                    header_timeout=self.header_timeout, keep_alive_timeout=self.keep_alive_timeout,
                                    body_timeout=self.body_timeout, max_write_buffer=self.max_buffered_bytes,
                                    drain_timeout=self.drain_timeout,
                                    drop_volatile_above=self.drop_volatile_above)
            self._http.oversize_hook = self._on_oversize
        return self._http

    def _on_oversize(self, url: str) -> None:
        # the body was refused before it was read: the session it was meant for ends
        sid = Request("POST", url, {}, b"", "", False).query.get("sid")
        sock = self.clients.get(sid) if sid else None
        if sock is not None:
            sock._on_close("transport error", "payload too large")

    async def listen(self, port: int, host: Optional[str] = "0.0.0.0", ssl: Any = None) -> "Engine":
        """Start the built-in uvloop/httptools server; returns once it accepts connections."""
        self._closing = False
        await self.http_server().listen(port, host, ssl)
        return self

    attach = listen

    @property
    def sockets(self) -> list[Any]:
        """The listening sockets (``sockets[0].getsockname()`` gives the port)."""
        return self._http.sockets if self._http is not None else []

    async def close(self, reason: str = "forced close", timeout: float = 5.0) -> None:
        """Close gracefully: stop accepting, flush every session, close them, within ``timeout`` seconds.

        New sessions are refused at once (a handshake gets 400, code 3,
        "Server shutting down"). Each session sends what it has buffered and
        then its close packet (a polling client gets them on its next GET,
        as Node does; the listener stays open until then, since that GET may
        come on a new TCP connection; a polling client that has not polled
        for a second is taken as gone); sessions that have not finished within
        ``timeout`` seconds (a client that stopped reading or polling) are
        closed without waiting, then the listener closes and every connection
        still open at the deadline is aborted. Calling it again is harmless.

        Args:
            reason: the engine sockets' ``close`` reason.
            timeout: seconds to wait for the clients, in all.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        self._closing = True
        http = self._http
        for sock in list(self.clients.values()):
            sock.close(reason=reason)
        while self.clients and loop.time() < deadline:
            now = loop.time()
            for sock in list(self.clients.values()):
                t = sock.transport
                # a polling client that has not come back for its close packet within
                # a second of its last answer is gone (a live one polls again at once)
                if (isinstance(t, PollingTransport) and not t.writable and not sock.upgrading
                        and now - t.answered_at > POLL_GRACE):
                    sock._on_close(reason)
            await asyncio.sleep(0.01)
        for sock in list(self.clients.values()):
            sock._on_close(reason)
        if http is not None:
            if http._server is not None:
                http._server.close()
            # answered polls and WebSocket close frames still leaving: bounded by the same deadline
            for conn in list(http.connections):
                conn.close()
            while http.connections and loop.time() < deadline:
                await asyncio.sleep(0.01)
            for conn in list(http.connections):
                conn.abort()
            await http.close()
        # requests still in an async allow_request / middleware / generate_id
        await _tasks.cancel(self._pending)

    def _remove(self, sock: EngineSocket) -> None:
        if self.clients.get(sock.id) is sock:
            del self.clients[sock.id]

    # -- requests ---------------------------------------------------------------------------------

    def handle_request(self, req: Request) -> None:
        """Answer one HTTP request (the HttpServer handler)."""
        if req.path not in self._paths:
            self._fallback(req)
            return
        router = self.session_router
        if router is not None and router(req):
            return
        if self._middlewares:
            self._spawn(self._run_middlewares(req))
            return
        self._verify(req)

    handle_upgrade = handle_request

    def _spawn(self, coro: Awaitable[Any]) -> None:
        _tasks.spawn(coro, None, self._pending)

    async def _run_middlewares(self, req: Request) -> None:
        try:
            for fn in self._middlewares:
                await _call_middleware(fn, req)
        except Exception as exc:
            self._abort(req, BAD_REQUEST, {"name": "MIDDLEWARE_FAILURE", "error": exc})
            return
        self._verify(req)

    def _fallback(self, req: Request) -> None:
        if self.fallback is not None:
            try:
                result = self.fallback(req)
            except Exception:
                logger.exception("request hook failed")
                self._respond(req, 500, [], b"")
                return
            if inspect.isawaitable(result):
                self._spawn(self._await_fallback(req, result))
                return
            if result is not None:
                self._respond(req, *result)
                return
        self._respond(req, 404, [("Content-Type", "text/plain")], b"Not Found")

    async def _await_fallback(self, req: Request, result: Awaitable[Any]) -> None:
        try:
            response = await result
        except Exception:
            logger.exception("request hook failed")
            response = (500, [], b"")
        if response is None:
            response = (404, [("Content-Type", "text/plain")], b"Not Found")
        self._respond(req, *response)

    def _verify(self, req: Request) -> None:
        if req.method == "OPTIONS" and self.cors is not None and not req.upgrade:
            self._preflight(req)
            return
        query = req.query
        transport = query.get("transport", "")
        if transport not in TRANSPORTS or transport not in self.transports:
            self._abort(req, UNKNOWN_TRANSPORT, {"transport": transport})
            return
        origin = req.headers.get("origin")
        if origin is not None and not _ORIGIN_OK.match(origin):
            self._abort(req, BAD_REQUEST, {"name": "INVALID_ORIGIN", "origin": origin})
            return
        sid = query.get("sid")
        if sid:
            sock = self.clients.get(sid)
            if sock is None:
                self._abort(req, UNKNOWN_SID, {"sid": sid})
                return
            if req.upgrade:
                if transport != "websocket" or not self.allow_upgrades:
                    self._abort(req, BAD_REQUEST, {"name": "TRANSPORT_MISMATCH"})
                    return
                self._upgrade(req, sock)
                return
            if sock.transport.name != transport:
                self._abort(req, BAD_REQUEST, {"name": "TRANSPORT_MISMATCH"})
                return
            t = sock.transport
            if isinstance(t, PollingTransport):
                t.on_request(req)
            else:
                self._abort(req, BAD_REQUEST, {"name": "TRANSPORT_MISMATCH"})
            return
        if req.method != "GET":
            self._abort(req, BAD_HANDSHAKE_METHOD, {"method": req.method})
            return
        if transport == "websocket" and not req.upgrade:
            self._abort(req, BAD_REQUEST, {"name": "TRANSPORT_HANDSHAKE_ERROR"})
            return
        if transport == "polling" and req.upgrade:
            self._abort(req, BAD_REQUEST, {"name": "TRANSPORT_HANDSHAKE_ERROR"})
            return
        if self.allow_request is None:
            self._handshake(req, transport)
            return
        try:
            result = self.allow_request(req)
        except Exception as exc:
            self._abort(req, FORBIDDEN, {"message": str(exc) or ERROR_MESSAGES[FORBIDDEN]})
            return
        if inspect.isawaitable(result):
            self._spawn(self._await_allow(req, transport, result))
            return
        self._after_allow(req, transport, result)

    async def _await_allow(self, req: Request, transport: str, result: Awaitable[Any]) -> None:
        try:
            ok = await result
        except Exception as exc:
            self._abort(req, FORBIDDEN, {"message": str(exc) or ERROR_MESSAGES[FORBIDDEN]})
            return
        self._after_allow(req, transport, ok)

    def _after_allow(self, req: Request, transport: str, ok: Any) -> None:
        if ok is False or ok is None or isinstance(ok, str):
            message = ok if isinstance(ok, str) and ok else ERROR_MESSAGES[FORBIDDEN]
            self._abort(req, FORBIDDEN, {"message": message})
            return
        self._handshake(req, transport)

    def _handshake(self, req: Request, transport: str) -> None:
        if self._closing:
            self._abort(req, BAD_REQUEST, {"name": "SERVER_SHUTTING_DOWN", "message": "Server shutting down"})
            return
        eio = req.query.get("EIO")
        if eio == "4":
            protocol = 4
        elif eio == "3" and self.allow_eio3:
            protocol = 3
        else:
            self._abort(req, UNSUPPORTED_PROTOCOL_VERSION, {"protocol": eio})
            return
        try:
            sid = self.generate_id(req)
        except Exception:
            logger.exception("generate_id failed")
            self._abort(req, BAD_REQUEST, {"name": "ID_GENERATION_ERROR"})
            return
        if inspect.isawaitable(sid):
            self._spawn(self._await_id(req, transport, protocol, sid))
            return
        self._open_session(req, transport, protocol, str(sid))

    async def _await_id(self, req: Request, transport: str, protocol: int, pending: Awaitable[Any]) -> None:
        try:
            sid = await pending
        except Exception:
            logger.exception("generate_id failed")
            self._abort(req, BAD_REQUEST, {"name": "ID_GENERATION_ERROR"})
            return
        self._open_session(req, transport, protocol, str(sid))

    def _open_session(self, req: Request, transport: str, protocol: int, sid: str) -> None:
        if sid in self.clients:
            logger.error("generate_id returned a session id in use")
            self._abort(req, BAD_REQUEST, {"name": "ID_GENERATION_ERROR"})
            return
        if transport == "polling":
            t: Any = PollingTransport(self, protocol, req)
            sock = EngineSocket(self, sid, protocol, t, req)
            self.clients[sid] = sock
            req._handshake_sid = sid
            # open (and initial_packet) are buffered first, so the handshake GET carries both
            sock._open()
            t.on_request(req)
        else:
            t = WebSocketTransport(protocol, self.max_http_buffer_size, self.deflate_threshold)
            conn = req.connection
            assert conn is not None
            headers = self._ws_headers(req, sid)
            if not conn.accept_websocket(t, max_message_size=self.max_http_buffer_size,
                                         per_message_deflate=self.per_message_deflate, extra_headers=headers):
                self.emit("connection_error", _error_event(req, BAD_REQUEST, {"name": "BAD_UPGRADE"}))
                return
            t.attach(conn)
            sock = EngineSocket(self, sid, protocol, t, req)
            self.clients[sid] = sock
            sock._open()
        self.emit("connection", sock)

    def _upgrade(self, req: Request, sock: EngineSocket) -> None:
        t = WebSocketTransport(sock.protocol, self.max_http_buffer_size, self.deflate_threshold)
        conn = req.connection
        assert conn is not None
        if not conn.accept_websocket(t, max_message_size=self.max_http_buffer_size,
                                     per_message_deflate=self.per_message_deflate,
                                     extra_headers=self._ws_headers(req, None)):
            self.emit("connection_error", _error_event(req, BAD_REQUEST, {"name": "BAD_UPGRADE"}))
            return
        t.attach(conn)
        if sock.ready_state != "open" or sock.upgrading or sock.upgraded or sock.transport.name == "websocket":
            # as Node: the second WebSocket for a session is accepted, then closed at once
            t.close()
            return
        sock._maybe_upgrade(t)

    def _ws_headers(self, req: Request, sid: Optional[str]) -> list[tuple[str, str]]:
        headers: dict[str, str] = {}
        if sid is not None:
            cookie = self._cookie_header(sid)
            if cookie:
                headers["Set-Cookie"] = cookie
            self.emit("initial_headers", headers, req)
        self.emit("headers", headers, req)
        return list(headers.items())

    # -- answers ---------------------------------------------------------------------------------------

    def _abort(self, req: Request, code: int, context: dict[str, Any]) -> None:
        message = context.get("message") or ERROR_MESSAGES[code]
        self.emit("connection_error", _error_event(req, code, context, message))
        conn = req.connection
        if conn is None:
            return
        if req.upgrade:
            conn.reject_upgrade(400, message)
            return
        status = 403 if code == FORBIDDEN else 400
        body = orjson.dumps({"code": code, "message": message})
        self._respond(req, status, [("Content-Type", "application/json")], body)

    def _respond(self, req: Request, status: int, headers: list[tuple[str, str]], body: bytes,
                 compress: bool = False) -> None:
        conn = req.connection
        if conn is None or conn._current is not req:
            return
        all_headers = list(headers)
        if self.cors is not None:
            all_headers.extend(self._cors_headers(req))
        if compress and self.http_compression and len(body) >= self.compression_threshold:
            enc = req.headers.get("accept-encoding", "")
            if "gzip" in enc:
                body = http_compress(body, "gzip")
                all_headers.append(("Content-Encoding", "gzip"))
            elif "deflate" in enc:
                body = http_compress(body, "deflate")
                all_headers.append(("Content-Encoding", "deflate"))
        sid = req._handshake_sid
        if self._listeners is not None or (sid is not None and self.cookie):
            hdrs = dict(all_headers)
            if sid is not None:
                cookie = self._cookie_header(sid)
                if cookie:
                    hdrs["Set-Cookie"] = cookie
                self.emit("initial_headers", hdrs, req)
            self.emit("headers", hdrs, req)
            all_headers = list(hdrs.items())
        conn.respond(status, all_headers, body)

    def _respond_poll(self, req: Request, body: bytes, ctype: str, compress: bool,
                      message: Optional[PreparedMessage] = None, protocol: int = 4,
                      supports_binary: bool = False) -> None:
        """Answer a polling GET or POST with 200 and ``body``, as Node's polling transport does.

        The status line and headers are prebuilt once per combination (content
        type, content coding, CORS origin, IE's X-XSS-Protection) and reused;
        a broadcast's ``message`` gives its shared compressed body. What varies
        per request (the handshake's cookie, ``headers`` listeners, a callable
        CORS origin) and the ASGI bridge take the general path.
        """
        conn = req.connection
        if conn is None or conn._current is not req:
            return
        enc: Optional[str] = None
        if compress and self.http_compression and len(body) >= self.compression_threshold:
            accept = req.headers.get("accept-encoding", "")
            if "gzip" in accept:
                enc = "gzip"
            elif "deflate" in accept:
                enc = "deflate"
            if enc is not None:
                if message is not None:
                    body = message.poll_body_compressed(protocol, supports_binary, enc)
                else:
                    body = http_compress(body, enc)
        ua = req.headers.get("user-agent")
        ie = ua is not None and (";MSIE" in ua or "Trident/" in ua)
        cors = self.cors
        lst = self._listeners
        sid = req._handshake_sid
        if ((lst is not None and (lst.get("headers") or (sid is not None and lst.get("initial_headers"))))
                or (sid is not None and self.cookie) or (cors is not None and callable(cors.get("origin")))
                or type(conn) is not HttpConnection):
            self._respond(req, 200, _poll_headers(ctype, enc, ie), body)
            return
        heads = self._heads
        if self._heads_cors is not cors:
            heads.clear()
            self._heads_cors = cors
        origin = req.headers.get("origin") if cors is not None else None
        key = (ctype, enc, ie, origin)
        head = heads.get(key)
        if head is None:
            headers = _poll_headers(ctype, enc, ie)
            if cors is not None:
                headers.extend(self._cors_headers(req))
            head = response_head(200, headers)
            if len(heads) >= 256:
                # origins come from clients: the cache stays bounded
                heads.clear()
            heads[key] = head
        conn.respond_head(head, body)

    def _cookie_header(self, sid: str) -> Optional[str]:
        return self._cookie.header(sid) if self._cookie is not None else None

    # -- CORS ------------------------------------------------------------------------------------------------

    def _allowed_origin(self, req: Request) -> Optional[str]:
        assert self.cors is not None
        origin_opt = self.cors.get("origin", "*")
        origin = req.headers.get("origin")
        if origin_opt == "*" or origin_opt is None:
            return "*"
        if origin is None:
            return None
        if origin_opt is True:
            return origin
        if isinstance(origin_opt, str):
            return origin_opt
        if isinstance(origin_opt, re.Pattern):
            return origin if origin_opt.search(origin) else None
        if isinstance(origin_opt, (list, tuple, set, frozenset)):
            for o in origin_opt:
                if (isinstance(o, re.Pattern) and o.search(origin)) or o == origin:
                    return origin
            return None
        if callable(origin_opt):
            try:
                result = origin_opt(origin)
            except Exception:
                return None
            if result is True:
                return origin
            if isinstance(result, str):
                return result
            return None
        return None

    def _cors_headers(self, req: Request) -> list[tuple[str, str]]:
        assert self.cors is not None
        out: list[tuple[str, str]] = []
        allowed = self._allowed_origin(req)
        if allowed is not None:
            out.append(("Access-Control-Allow-Origin", allowed))
        if allowed != "*":
            out.append(("Vary", "Origin"))
        if self.cors.get("credentials"):
            out.append(("Access-Control-Allow-Credentials", "true"))
        exposed = self.cors.get("exposed_headers")
        if exposed:
            out.append(("Access-Control-Expose-Headers", _join(exposed)))
        return out

    def _preflight(self, req: Request) -> None:
        assert self.cors is not None
        headers = self._cors_headers(req)
        methods = self.cors.get("methods", ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"))
        headers.append(("Access-Control-Allow-Methods", _join(methods)))
        allowed_headers = self.cors.get("allowed_headers")
        if allowed_headers:
            headers.append(("Access-Control-Allow-Headers", _join(allowed_headers)))
        elif "access-control-request-headers" in req.headers:
            headers.append(("Access-Control-Allow-Headers", req.headers["access-control-request-headers"]))
            headers.append(("Vary", "Access-Control-Request-Headers"))
        if self.cors.get("max_age") is not None:
            headers.append(("Access-Control-Max-Age", str(int(self.cors["max_age"]))))
        conn = req.connection
        if conn is not None:
            conn.respond(204, headers, b"")


def _poll_headers(ctype: str, enc: Optional[str], ie: bool) -> list[tuple[str, str]]:
    # Node's polling transport: Content-Type, cache-control no-store, X-XSS-Protection for IE
    headers = [("Content-Type", ctype), ("Cache-Control", "no-store")]
    if ie:
        headers.append(("X-XSS-Protection", "0"))
    if enc is not None:
        headers.append(("Content-Encoding", enc))
    return headers


def _join(value: Union[str, Iterable[str]]) -> str:
    return value if isinstance(value, str) else ",".join(value)


def _error_event(req: Request, code: int, context: dict[str, Any], message: Optional[str] = None) -> dict[str, Any]:
    return {"req": req, "code": code, "message": message or ERROR_MESSAGES[code], "context": context}


async def _call_middleware(fn: Callable[..., Any], req: Request) -> None:
    params = len(inspect.signature(fn).parameters)
    if params >= 2:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def next_(err: Any = None) -> None:
            if not fut.done():
                fut.set_result(err)

        result = fn(req, next_)
        if inspect.isawaitable(result):
            await result
        err = await fut
        if err is not None:
            raise err if isinstance(err, BaseException) else Exception(str(err))
    else:
        result = fn(req)
        if inspect.isawaitable(result):
            await result
