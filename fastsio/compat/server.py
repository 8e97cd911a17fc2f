"""``AsyncServer``: python-socketio 5.x's asyncio server API on a :class:`fastsio.Server`.

Handlers are addressed by sid, as in python-socketio (``@sio.event``,
``@sio.on(event, namespace=...)``, ``connect(sid, environ[, auth])``,
``disconnect(sid[, reason])``); every call goes to the fastsio server
underneath (``sio.fastsio_server``), whose engine, codecs and fan-out do
the work. There is no second engine and no second room table.
"""
from __future__ import annotations

import asyncio
import contextvars
import difflib
import email.utils
import importlib
import inspect
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar, Union

from ..exceptions import AckTimeout, ConnectionRejected
from ..options import defaults as _fastsio_defaults
from ..options import ServerOptions
from ..server import Server
from . import exceptions
from .manager import AsyncManager
from .namespace import AsyncNamespace, _fits

if TYPE_CHECKING:
    from ..socket import Socket

__all__ = ["AsyncServer", "Reason"]

logger = logging.getLogger("fastsio.compat")

_F = TypeVar("_F", bound=Callable[..., Any])

#: the ASGI scope of the request being handled (set by ``fastsio.compat.ASGIApp``)
current_scope: contextvars.ContextVar[Optional[dict[str, Any]]] = contextvars.ContextVar(
    "fastsio_compat_scope", default=None)


class Reason:
    """Disconnect reasons as python-socketio names them (``sio.reason.CLIENT_DISCONNECT``...)."""

    #: the server disconnected the client (``sio.disconnect(sid)``, shutdown)
    SERVER_DISCONNECT = "server disconnect"
    #: the client disconnected
    CLIENT_DISCONNECT = "client disconnect"
    #: the client stopped answering pings
    PING_TIMEOUT = "ping timeout"
    #: the connection was closed
    TRANSPORT_CLOSE = "transport close"
    #: the connection failed (or sent something that does not decode)
    TRANSPORT_ERROR = "transport error"


# fastsio's (Node's) reasons -> python-socketio's
_REASONS = {
    "server namespace disconnect": Reason.SERVER_DISCONNECT,
    "forced close": Reason.SERVER_DISCONNECT,
    "forced server close": Reason.SERVER_DISCONNECT,
    "server shutting down": Reason.SERVER_DISCONNECT,
    "client namespace disconnect": Reason.CLIENT_DISCONNECT,
    "ping timeout": Reason.PING_TIMEOUT,
    "transport close": Reason.TRANSPORT_CLOSE,
    "transport error": Reason.TRANSPORT_ERROR,
    "parse error": Reason.TRANSPORT_ERROR,
}

#: python-socketio's own engine options (python-engineio's names)
ENGINEIO_OPTIONS = frozenset((
    "async_mode", "ping_interval", "ping_timeout", "max_http_buffer_size", "allow_upgrades",
    "http_compression", "compression_threshold", "cookie", "cors_allowed_origins", "cors_credentials",
    "monitor_clients", "transports", "engineio_logger", "logger", "json", "async_handlers",
))

_ASYNC_MODES = (None, "asgi")
_RESERVED = ("connect", "disconnect")
_tasks: set["asyncio.Future[Any]"] = set()


def _keep(task: "asyncio.Future[Any]") -> "asyncio.Future[Any]":
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    task.add_done_callback(_log_failure)
    return task


def _log_failure(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("handler failed", exc_info=task.exception())


def _data_args(data: Any) -> list[Any]:
    """python-socketio's rule: a tuple is several arguments, None is none, anything else is one."""
    if data is None:
        return []
    if isinstance(data, tuple):
        return list(data)
    return [data]


def _ack_args(result: Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _engine_options(options: dict[str, Any], check_origin: Callable[[Any], bool]) -> tuple[dict[str, Any], bool]:
    """python-engineio's options -> fastsio's; returns (fastsio options, origin check needed)."""
    out: dict[str, Any] = {}
    mode = options.pop("async_mode", None)
    if mode not in _ASYNC_MODES:
        raise ValueError(f"async_mode={mode!r} is not supported by fastsio.compat: serve the server with "
                         "fastsio.compat.ASGIApp (async_mode='asgi') or sio.fastsio_server.run()")
    interval = options.pop("ping_interval", 25)
    grace = 0.0
    if isinstance(interval, (tuple, list)):
        interval, grace = interval[0], interval[1]
    out["ping_interval"] = float(interval)
    # python-engineio adds the grace period to the wait for the client's pong
    out["ping_timeout"] = float(options.pop("ping_timeout", 20)) + float(grace)
    out["max_http_buffer_size"] = int(options.pop("max_http_buffer_size", 1_000_000))
    out["allow_upgrades"] = bool(options.pop("allow_upgrades", True))
    compression = options.pop("http_compression", True)
    threshold = int(options.pop("compression_threshold", 1024))
    out["http_compression"] = {"threshold": threshold} if compression else False
    out["cookie"] = _cookie_option(options.pop("cookie", None))
    origins = options.pop("cors_allowed_origins", None)
    credentials = bool(options.pop("cors_credentials", True))
    check = False
    if origins is None:
        check = True  # same origin only, as python-engineio
    elif origins == "*":
        out["cors"] = {"origin": True, "credentials": credentials}
    elif isinstance(origins, str):
        out["cors"] = {"origin": [origins], "credentials": credentials}
        check = True
    elif isinstance(origins, (list, tuple, set)):
        if origins:
            out["cors"] = {"origin": list(origins), "credentials": credentials}
            check = True
    else:
        raise TypeError("cors_allowed_origins must be None, '*', a string or a list of strings")
    transports = options.pop("transports", None)
    if transports is not None:
        out["transports"] = tuple(transports)
    options.pop("monitor_clients", None)  # fastsio always watches heartbeats
    eio_logger = options.pop("engineio_logger", None)
    if eio_logger is None:
        eio_logger = options.pop("logger", None)
    else:
        options.pop("logger", None)
    _set_logger("fastsio.engineio", eio_logger)
    if options.pop("json", None) is not None:
        logger.warning("fastsio.compat ignores json=: packets are encoded with orjson")
    options.pop("async_handlers", None)
    if check:
        out["allow_request"] = check_origin
    return out, check


# python-engineio writes a dict cookie's attributes as given (``True``: a flag),
# and a string cookie as ``name=sid; path=/; SameSite=Lax``: no Node defaults
_COOKIE_ATTRIBUTES = {"path": "path", "domain": "domain", "samesite": "same_site", "httponly": "http_only",
                      "secure": "secure", "max-age": "max_age", "max_age": "max_age", "expires": "expires",
                      "partitioned": "partitioned", "priority": "priority"}


def _cookie_option(cookie: Any) -> Any:
    """python-engineio's ``cookie`` as fastsio's Engine option (the same Set-Cookie attributes)."""
    if cookie is None or cookie is False:
        return False
    if isinstance(cookie, str):
        return {"name": cookie, "path": "/", "same_site": "lax", "http_only": False}
    if not isinstance(cookie, dict):
        raise TypeError("cookie must be None, a string or a dict of cookie attributes")
    translated: dict[str, Any] = {"path": False, "http_only": False, "same_site": False}
    for key, value in cookie.items():
        if key == "name":
            translated["name"] = value
            continue
        name = _COOKIE_ATTRIBUTES.get(str(key).lower())
        if name is None:
            raise TypeError(f"unknown cookie attribute {key!r}; known: {', '.join(sorted(set(_COOKIE_ATTRIBUTES)))}")
        if callable(value):
            value = value()  # python-engineio calls it per handshake; fastsio once, here
        if name == "max_age" and isinstance(value, str):
            value = int(value)
        elif name == "expires" and isinstance(value, str):
            value = email.utils.parsedate_to_datetime(value)
        translated[name] = value
    return translated


def _set_logger(name: str, value: Any) -> None:
    if value is None or value is False:
        return
    target = logging.getLogger(name)
    if value is True:
        if target.level == logging.NOTSET:
            target.setLevel(logging.INFO)
        if not target.handlers:
            target.addHandler(logging.StreamHandler())


class _SessionContext:
    def __init__(self, server: "AsyncServer", sid: str, namespace: Optional[str]) -> None:
        self.server = server
        self.sid = sid
        self.namespace = namespace
        self.session: Optional[dict[str, Any]] = None

    async def __aenter__(self) -> dict[str, Any]:
        self.session = await self.server.get_session(self.sid, namespace=self.namespace)
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        await self.server.save_session(self.sid, self.session, namespace=self.namespace)


class AsyncServer:
    """python-socketio's ``socketio.AsyncServer``, running on fastsio.

    Args:
        client_manager: None (in memory), or ``AsyncRedisManager(url)`` for
            a cluster speaking python-socketio's Redis format.
        logger: True, False or a ``logging.Logger`` for Socket.IO messages.
        json: accepted; fastsio encodes with orjson (a warning is logged).
        async_handlers: True: every event runs in its own task; False: the
            events of one client run one after the other.
        namespaces: the namespaces accepted besides those with handlers
            (default ``["/"]``), or ``"*"`` for every namespace.
        always_connect: send the connect confirmation before the ``connect``
            handler runs (a refusal then arrives as a disconnect).
        serializer: ``"default"``, or ``"msgpack"`` when
            ``fastsio.parsers.msgpack`` is installed.
        **engineio_options: python-engineio's options: ``async_mode``
            (None or ``"asgi"``), ``ping_interval`` (seconds, or
            ``(interval, grace)``), ``ping_timeout``, ``max_http_buffer_size``,
            ``allow_upgrades``, ``http_compression``, ``compression_threshold``,
            ``cookie``, ``cors_allowed_origins`` (None: same origin only,
            ``"*"``, a string, a list, ``[]``: no CORS handling),
            ``cors_credentials``, ``monitor_clients``, ``transports``,
            ``engineio_logger``; and any option of ``fastsio.Server``.

    Attributes:
        fastsio_server: the :class:`fastsio.Server` doing the work (serve
            it natively with ``sio.fastsio_server.run(port=...)``).
        manager: the client manager.
        reason: the disconnect reason constants.

    Raises:
        TypeError: an unknown option (naming the closest valid one).

    Example:
        >>> import fastsio.compat as socketio
        >>> sio = socketio.AsyncServer(async_mode="asgi")
        >>> @sio.event
        ... async def chat(sid, data):
        ...     await sio.emit("chat", data, skip_sid=sid)
        >>> app = socketio.ASGIApp(sio)
    """

    reason = Reason
    reserved_events = list(_RESERVED)

    def __init__(self, client_manager: Optional[AsyncManager] = None, logger: Any = False, json: Any = None,
                 async_handlers: bool = True, namespaces: Union[None, str, list[str]] = None,
                 always_connect: bool = False, serializer: Any = "default", **kwargs: Any) -> None:
        native = set(_fastsio_defaults(ServerOptions))
        for key in kwargs:
            if key not in ENGINEIO_OPTIONS and key not in native:
                valid = sorted(ENGINEIO_OPTIONS | native)
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise TypeError(f"AsyncServer() got an unexpected option {key!r}{hint}")
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in ENGINEIO_OPTIONS}
        if json is not None:
            own["json"] = json
        options, self._check_origins = _engine_options(own, self._origin_allowed)
        self._allowed_origins: Optional[list[str]] = None
        cors = options.get("cors")
        if cors is not None and isinstance(cors.get("origin"), list):
            self._allowed_origins = list(cors["origin"])
        options.update(kwargs)  # native fastsio options win
        if serializer == "msgpack":
            try:
                msgpack_parser = importlib.import_module("fastsio.parsers.msgpack")
            except ImportError as exc:
                raise NotImplementedError("serializer='msgpack' needs fastsio.parsers.msgpack") from exc
            options["parser"] = msgpack_parser
        elif serializer != "default":
            raise NotImplementedError("fastsio.compat supports serializer='default' or 'msgpack'")
        self.fastsio_server = Server(**options)
        _set_logger("fastsio.compat", logger)
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger("fastsio.compat")
        self.async_handlers = async_handlers
        self.always_connect = always_connect
        self.namespaces: Union[str, list[str]] = namespaces or ["/"]
        self.handlers: dict[str, dict[str, Callable[..., Any]]] = {}
        self.namespace_handlers: dict[str, AsyncNamespace] = {}
        #: Engine.IO session id -> WSGI-style environ
        self.environ: dict[str, dict[str, Any]] = {}
        self._sessions: dict[tuple[str, str], dict[str, Any]] = {}
        self._pending: dict[tuple[str, str], "Socket"] = {}
        self._queues: dict[str, "asyncio.Future[Any]"] = {}
        self._disconnects: dict[tuple[str, str], "asyncio.Future[Any]"] = {}
        self.manager = client_manager if client_manager is not None else AsyncManager()
        self.manager.set_server(self)
        self.manager_initialized = False
        self.async_mode = "asgi"
        io = self.fastsio_server
        io.sockets.use(self._middleware)
        io.sockets.on("connection", self._on_connection)
        self._parent = io.of(self._accepts_namespace)
        self._parent.use(self._middleware)
        self._parent.on("connection", self._on_connection)

    def __repr__(self) -> str:
        return f"<fastsio.compat.AsyncServer on {self.fastsio_server!r}>"

    def is_asyncio_based(self) -> bool:
        """Always True (python-socketio's interface)."""
        return True

    # -- registration -------------------------------------------------------------------

    def on(self, event: str, handler: Optional[Callable[..., Any]] = None, namespace: Optional[str] = None) -> Any:
        """Register ``handler`` for ``event`` (works as a decorator).

        ``event`` may be ``"*"`` (every event without its own handler; the
        handler gets ``(event, sid, *args)``) and ``namespace`` may be
        ``"*"`` (the handler gets the namespace first).
        """
        ns = namespace or "/"

        def set_handler(fn: _F) -> _F:
            self.handlers.setdefault(ns, {})[event] = fn
            return fn

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """Register a handler named after the function (``@sio.event`` or ``@sio.event(namespace=...)``)."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            fn = args[0]
            self.on(fn.__name__, fn)
            return fn

        def set_handler(fn: _F) -> _F:
            self.on(fn.__name__, fn, *args, **kwargs)
            return fn

        return set_handler

    def register_namespace(self, namespace_handler: AsyncNamespace) -> None:
        """Register a class-based namespace (an ``AsyncNamespace`` instance).

        Raises:
            ValueError: not an ``AsyncNamespace``.
        """
        if not isinstance(namespace_handler, AsyncNamespace):
            raise ValueError("Not a namespace instance")
        namespace_handler._set_server(self)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler

    # -- emitting --------------------------------------------------------------------------

    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None,
                   ignore_queue: bool = False) -> None:
        """Emit ``event`` to one client (``to=sid``), a room, a list of rooms, or everybody.

        ``data`` is one argument, or several as a tuple; a list is one argument.
        ``callback`` gets the client's answer (for each client addressed).
        """
        await self.manager.emit(event, data, namespace or "/", room=to or room, skip_sid=skip_sid,
                                callback=callback, ignore_queue=ignore_queue)

    async def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None,
                   ignore_queue: bool = False) -> None:
        """Emit a ``message`` event."""
        await self.emit("message", data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                        callback=callback, ignore_queue=ignore_queue)

    async def call(self, event: str, data: Any = None, to: Optional[str] = None, sid: Optional[str] = None,
                   namespace: Optional[str] = None, timeout: Optional[float] = 60,
                   ignore_queue: bool = False) -> Any:
        """Emit to one client and return its answer (one value, a tuple of several, or None).

        Raises:
            socketio.exceptions.TimeoutError: no answer within ``timeout`` seconds
                (or the client went away first).
            ValueError: no client given.
            RuntimeError: ``async_handlers`` is False.
        """
        target = to or sid
        if target is None:
            raise ValueError("Cannot use call() to broadcast.")
        if not self.async_handlers:
            raise RuntimeError("Cannot use call() when async_handlers is False.")
        fut: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()

        def answered(*args: Any) -> None:
            if not fut.done():
                fut.set_result(args[0] if len(args) == 1 else (args if args else None))

        await self.emit(event, data, to=target, namespace=namespace, callback=answered, ignore_queue=ignore_queue)
        try:
            return await asyncio.wait_for(fut, timeout)
        except (asyncio.TimeoutError, AckTimeout):
            raise exceptions.TimeoutError() from None

    def _emit_local(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any,
                    callback: Optional[Callable[..., Any]]) -> None:
        io = self.fastsio_server
        nsp = io._nsps.get(namespace)
        if nsp is None:
            return
        args = _data_args(data)
        skip: list[str] = [] if skip_sid is None else ([skip_sid] if isinstance(skip_sid, str) else list(skip_sid))
        if isinstance(room, str) and room not in skip:
            sock = nsp.sockets.get(room) or self._pending.get((namespace, room))
            if sock is not None:
                if callback is not None:
                    sock.emit(event, *args, self._ack_relay(callback))
                else:
                    sock.emit(event, *args)
                return
        if callback is not None:
            if room is None:
                ids = set(nsp.sockets)
            else:
                ids = set()
                for r in ([room] if isinstance(room, str) else room):
                    ids.update(nsp.adapter.rooms.get(r, ()))
            for sid in ids:
                sock = nsp.sockets.get(sid)
                if sock is not None and sid not in skip:
                    sock.emit(event, *args, self._ack_relay(callback))
            return
        op: Any = nsp if room is None else nsp.to(room)
        if skip:
            op = op.except_(skip)
        op.emit(event, *args)

    @staticmethod
    def _ack_relay(callback: Callable[..., Any]) -> Callable[..., None]:
        def relay(*answer: Any) -> None:
            try:
                result = callback(*answer)
            except Exception:
                logger.exception("emit callback failed")
                return
            if inspect.isawaitable(result):
                _keep(asyncio.ensure_future(result))
        return relay

    # -- rooms -----------------------------------------------------------------------------

    async def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Put client ``sid`` in ``room``."""
        await self.manager.enter_room(sid, namespace or "/", room)

    async def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Take client ``sid`` out of ``room``."""
        await self.manager.leave_room(sid, namespace or "/", room)

    async def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        """Take every client out of ``room``."""
        await self.manager.close_room(room, namespace or "/")

    def rooms(self, sid: str, namespace: Optional[str] = None) -> list[str]:
        """The rooms client ``sid`` is in (its own room included)."""
        return self.manager.get_rooms(sid, namespace or "/")

    # -- sessions and clients ----------------------------------------------------------------

    def _socket(self, sid: str, namespace: Optional[str]) -> Optional["Socket"]:
        ns = namespace or "/"
        nsp = self.fastsio_server._nsps.get(ns)
        sock = nsp.sockets.get(sid) if nsp is not None else None
        if sock is None:
            sock = self._pending.get((ns, sid))
        return sock

    async def get_session(self, sid: str, namespace: Optional[str] = None) -> dict[str, Any]:
        """The user session of client ``sid`` (a dict; use ``session()`` to change it).

        Raises:
            KeyError: the client is not connected.
        """
        ns = namespace or "/"
        if self._socket(sid, ns) is None:
            raise KeyError("Session is disconnected")
        return self._sessions.setdefault((ns, sid), {})

    async def save_session(self, sid: str, session: dict[str, Any], namespace: Optional[str] = None) -> None:
        """Store the user session of client ``sid``."""
        ns = namespace or "/"
        if self._socket(sid, ns) is None:
            raise KeyError("Session is disconnected")
        self._sessions[(ns, sid)] = session

    def session(self, sid: str, namespace: Optional[str] = None) -> _SessionContext:
        """The user session as an async context manager, saved on exit.

        Example:
            >>> async with sio.session(sid) as session:
            ...     session["username"] = name
        """
        return _SessionContext(self, sid, namespace)

    async def disconnect(self, sid: str, namespace: Optional[str] = None, ignore_queue: bool = False) -> None:
        """Disconnect client ``sid``; its ``disconnect`` handler runs before this returns."""
        ns = namespace or "/"
        if ignore_queue or await self.manager.can_disconnect(sid, ns):
            await self._disconnect_local(sid, ns)

    async def _disconnect_local(self, sid: str, namespace: str) -> None:
        sock = self._socket(sid, namespace)
        if sock is None:
            return
        sock.disconnect()
        task = self._disconnects.pop((namespace, sid), None)
        if task is not None:
            await asyncio.shield(task)

    def transport(self, sid: str, namespace: Optional[str] = None) -> str:
        """``"polling"`` or ``"websocket"``."""
        sock = self._socket(sid, namespace)
        if sock is None:
            raise KeyError("Session is disconnected")
        return str(sock.conn.transport.name)

    def get_environ(self, sid: str, namespace: Optional[str] = None) -> Optional[dict[str, Any]]:
        """The WSGI-style environ of client ``sid`` (``REMOTE_ADDR``, ``HTTP_*``, ``asgi.scope``...)."""
        sock = self._socket(sid, namespace)
        if sock is None:
            return None
        return self.environ.get(sock.conn.id)

    # -- running --------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Disconnect every client and stop the server's background work."""
        await self.fastsio_server.close()
        closer = getattr(self.manager, "close", None)
        if closer is not None:
            await closer()

    async def handle_request(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer one ASGI request for the Socket.IO path (what ``ASGIApp`` calls)."""
        from ..asgi import ASGIApp as _NativeASGI

        token = current_scope.set(scope)
        try:
            await _NativeASGI(self.fastsio_server)(scope, receive, send)
        finally:
            current_scope.reset(token)

    def attach(self, app: Any, socketio_path: str = "socket.io") -> None:
        """Not supported: fastsio serves ASGI (``ASGIApp``) or its own server.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError("fastsio.compat does not attach to aiohttp/sanic/tornado apps: wrap the server in "
                                  "fastsio.compat.ASGIApp, or serve sio.fastsio_server.run(port=...)")

    def start_background_task(self, target: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> "asyncio.Task[Any]":
        """Run ``target(*args, **kwargs)`` as an asyncio task and return it."""
        task = asyncio.ensure_future(target(*args, **kwargs))
        _keep(task)
        return task

    async def sleep(self, seconds: float = 0) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)

    def instrument(self, auth: Any = None, mode: str = "development", read_only: bool = False,
                   server_id: Optional[str] = None, namespace: str = "/admin",
                   server_stats_interval: float = 2) -> Any:
        """Serve the Socket.IO Admin UI (python-socketio's signature, fastsio's ``instrument`` underneath).

        ``auth`` is python-socketio's: the expected login dict (plain
        password), a list of them, a callable taking the client's auth, or
        False for none.

        Raises:
            ValueError: ``auth`` is None, as python-socketio.
            NotImplementedError: a fastsio without ``Server.instrument`` (issue 13, the Admin UI).
        """
        native = getattr(self.fastsio_server, "instrument", None)
        if native is None:
            raise NotImplementedError("sio.instrument() needs the Admin UI support of issue 13 "
                                      "(fastsio.Server.instrument), which this fastsio does not have yet")
        if auth is None:
            raise ValueError("auth must be specified")
        check: Any
        if not auth:
            check = False
        elif isinstance(auth, dict):
            expected = dict(auth)
            check = lambda client: client == expected  # noqa: E731
        elif isinstance(auth, list):
            logins = list(auth)
            check = lambda client: client in logins  # noqa: E731
        else:
            check = auth
        return native(auth=check, mode=mode, read_only=read_only, namespace_name=namespace, server_id=server_id,
                      stats_interval=server_stats_interval)

    # -- connections ---------------------------------------------------------------------------

    def _origin_allowed(self, req: Any) -> bool:
        origin = req.headers.get("origin")
        if origin is None:
            return True
        if self._allowed_origins is not None:
            return origin in self._allowed_origins
        host = req.headers.get("host", "")
        scheme = "https" if req.secure else "http"
        allowed = {f"{scheme}://{host}"}
        fwd_proto = req.headers.get("x-forwarded-proto")
        fwd_host = req.headers.get("x-forwarded-host")
        if fwd_proto or fwd_host:
            allowed.add(f"{(fwd_proto or scheme).split(',')[0].strip()}://{(fwd_host or host).split(',')[0].strip()}")
        if origin not in allowed:
            logger.info("%s is not an accepted origin", origin)
            return False
        return True

    def _accepts_namespace(self, name: str, auth: Any) -> bool:
        return (name in self.handlers or name in self.namespace_handlers or self.namespaces == "*"
                or name in self.namespaces)

    def _ensure_environ(self, conn: Any) -> None:
        # Made when the connection's first namespace connects (the engine is left
        # alone until then, so ASGIApp may still set the path): under ASGI the
        # scope is the request carrying that CONNECT (the WebSocket's own for
        # WebSocket clients).
        if not self.manager_initialized:
            self.manager_initialized = True
            self.manager.initialize()
        if conn.id not in self.environ:
            self.environ[conn.id] = _environ(conn.request, current_scope.get())
            conn.on("close", lambda *a: self.environ.pop(conn.id, None))

    async def _middleware(self, socket: "Socket") -> None:
        self._ensure_environ(socket.conn)
        ns = socket.nsp.name
        if ns == "/" and not self._accepts_namespace("/", None):
            raise ConnectionRejected("Invalid namespace")
        key = (ns, socket.id)
        self._pending[key] = socket
        try:
            if self.always_connect:
                return
            await self._run_connect(socket)
        finally:
            if not self.always_connect:
                self._pending.pop(key, None)

    async def _run_connect(self, socket: "Socket") -> None:
        """Run the connect handler; raises ConnectionRejected with python-socketio's payload on refusal."""
        auth = socket.handshake.auth or None
        environ = self.environ.get(socket.conn.id, {})
        fail: dict[str, Any] = exceptions.ConnectionRefusedError().error_args
        try:
            ok = await self._trigger("connect", socket.nsp.name, socket.id, environ, auth)
        except exceptions.ConnectionRefusedError as exc:
            ok, fail = False, exc.error_args
        except exceptions.BuiltinConnectionRefusedError:
            ok, fail = False, {"message": "Connection refused by server"}
        if ok is False:
            raise ConnectionRejected(fail.get("message", ""), fail.get("data"))

    def _on_connection(self, socket: "Socket") -> None:
        socket.nsp._dispatch_hook = self._dispatch
        socket.on("disconnect", lambda reason: self._on_disconnect(socket, reason))
        if self.always_connect:
            _keep(asyncio.ensure_future(self._connect_after(socket)))

    async def _connect_after(self, socket: "Socket") -> None:
        key = (socket.nsp.name, socket.id)
        try:
            await self._run_connect(socket)
        except ConnectionRejected as exc:
            payload: dict[str, Any] = {"message": str(exc.args[0]) if exc.args else ""}
            if exc.data is not None:
                payload["data"] = exc.data
            from .._impl import sio_codec

            if socket.connected:
                socket._packet(sio_codec.DISCONNECT, payload)
                socket._onclose("server namespace disconnect")
        finally:
            self._pending.pop(key, None)

    def _on_disconnect(self, socket: "Socket", reason: str) -> None:
        ns, sid = socket.nsp.name, socket.id
        mapped = _REASONS.get(reason, Reason.SERVER_DISCONNECT)

        async def run() -> None:
            try:
                await self._trigger("disconnect", ns, sid, mapped)
            finally:
                self._sessions.pop((ns, sid), None)
                self._queues.pop(sid, None)

        task = _keep(asyncio.ensure_future(run()))
        self._disconnects[(ns, sid)] = task
        task.add_done_callback(lambda t: self._disconnects.pop((ns, sid), None))

    # -- events -------------------------------------------------------------------------------------

    def _find(self, event: str, namespace: str, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...], bool]:
        """(handler, its arguments, whether it is a namespace object's trigger_event)."""
        handlers = self.handlers
        table = handlers.get(namespace)
        if table is not None:
            fn = table.get(event)
            if fn is not None:
                return fn, args, False
            if event not in _RESERVED and "*" in table:
                return table["*"], (event, *args), False
        star = handlers.get("*")
        if star is not None:
            fn = star.get(event)
            if fn is not None:
                return fn, (namespace, *args), False
            if event not in _RESERVED and "*" in star:
                return star["*"], (event, namespace, *args), False
        ns_handler = self.namespace_handlers.get(namespace)
        if ns_handler is not None:
            return ns_handler.trigger_event, (event, *args), True
        ns_handler = self.namespace_handlers.get("*")
        if ns_handler is not None:
            return ns_handler.trigger_event, (event, namespace, *args), True
        return None, args, False

    async def _trigger(self, event: str, namespace: str, *args: Any) -> Any:
        fn, call_args, is_ns = self._find(event, namespace, args)
        if fn is None:
            return None
        if not is_ns and event in _RESERVED and not _fits(fn, len(call_args)):
            # connect(sid, environ) without auth, disconnect(sid) without reason
            call_args = call_args[:-1]
        return await _call(fn, *call_args)

    def _dispatch(self, socket: "Socket", data: list[Any], ack_id: Optional[int]) -> None:
        event = data[0] if isinstance(data[0], str) else str(data[0])
        ns = socket.nsp.name
        fn, args, _ = self._find(event, ns, (socket.id, *data[1:]))
        if fn is None:
            return
        if not inspect.iscoroutinefunction(fn):
            try:
                result = fn(*args)
            except Exception:
                logger.exception("handler for %r failed", event)
                return
            if not inspect.isawaitable(result):
                if ack_id is not None:
                    socket._ack_callback(ack_id)(*_ack_args(result))
                return
            coro: Awaitable[Any] = result
        else:
            coro = fn(*args)
        if self.async_handlers:
            _keep(asyncio.ensure_future(self._answer(socket, coro, ack_id)))
        else:
            previous = self._queues.get(socket.id)
            task = asyncio.ensure_future(self._answer_after(previous, socket, coro, ack_id))
            self._queues[socket.id] = task
            _keep(task)

    async def _answer(self, socket: "Socket", coro: Awaitable[Any], ack_id: Optional[int]) -> None:
        result = await coro
        if ack_id is not None:
            socket._ack_callback(ack_id)(*_ack_args(result))

    async def _answer_after(self, previous: Optional["asyncio.Future[Any]"], socket: "Socket",
                            coro: Awaitable[Any], ack_id: Optional[int]) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        await self._answer(socket, coro, ack_id)


def _environ(request: Any, scope: Optional[dict[str, Any]]) -> dict[str, Any]:
    """A WSGI-style environ of the first request of a connection, as python-socketio apps read it."""
    url = getattr(request, "url", "") or ""
    path, _, query = url.partition("?")
    headers: dict[str, str] = getattr(request, "headers", None) or {}
    secure = bool(getattr(request, "secure", False))
    env: dict[str, Any] = {
        "REQUEST_METHOD": getattr(request, "method", "GET"),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "RAW_URI": url,
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/" + str(getattr(request, "http_version", "1.1")),
        "REMOTE_ADDR": getattr(request, "remote_address", "") or "",
        "REMOTE_PORT": "0",
        "SERVER_NAME": "fastsio",
        "SERVER_PORT": "0",
        "SERVER_SOFTWARE": "fastsio",
        "wsgi.url_scheme": headers.get("x-forwarded-proto", "https" if secure else "http"),
    }
    for name, value in headers.items():
        if name == "content-type":
            env["CONTENT_TYPE"] = value
        elif name == "content-length":
            env["CONTENT_LENGTH"] = value
        else:
            env["HTTP_" + name.upper().replace("-", "_")] = value
    if scope is not None:
        env["asgi.scope"] = scope
        client = scope.get("client")
        if client:
            env["REMOTE_ADDR"], env["REMOTE_PORT"] = client[0], str(client[1])
        server = scope.get("server")
        if server:
            env["SERVER_NAME"], env["SERVER_PORT"] = str(server[0]), str(server[1])
        env["SCRIPT_NAME"] = scope.get("root_path", "")
    return env
