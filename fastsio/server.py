"""Server: the Socket.IO server, bound to an Engine.IO server.

The server owns the namespaces; the methods it shares with ``Namespace``
(``emit``, ``to``, ``use``, ``fetch_sockets``...) act on the main namespace
``"/"``, which is also ``io.sockets``.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
import signal
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, TypeVar, Union, overload

from ._impl import sio_codec
from .adapter import InMemoryAdapter, SessionAwareAdapter
from .broadcast import BroadcastOperator, RemoteSocket
from .client import Client
from .namespace import Namespace
from .options import ServerOptions, engine_option_names, resolve
from .engineio.cookie import session_cookie
from .parent_namespace import ParentNamespace
from . import _tasks
from .socket import Socket, _log_task_error, _spawn

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Server"]

logger = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])

Rooms = Union[str, Iterable[str]]
NamespaceMatcher = Union[str, "re.Pattern[str]", Callable[..., Any]]

_warned_missing_bundle = False
_STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
_CLIENT_FILES = frozenset(
    (
        "socket.io.js",
        "socket.io.js.map",
        "socket.io.min.js",
        "socket.io.min.js.map",
        "socket.io.esm.min.js",
        "socket.io.esm.min.js.map",
        "socket.io.msgpack.min.js",
        "socket.io.msgpack.min.js.map",
    )
)

class Server:
    """A Socket.IO v4 server.

    Args:
        port: listen on this port as soon as an event loop runs the server
            (``Server(3000)`` like Node's ``new Server(3000)``).
        path: the path the server answers on (``"/socket.io/"``).
        serve_client: serve the client bundle at ``<path>/socket.io.js`` when
            the files are shipped in ``fastsio/static``.
        adapter: the adapter class (or factory taking the namespace).
        parser: an object with ``encode(type, nsp, data, id)`` and a
            ``Decoder`` class, like ``fastsio._impl.sio_codec`` (the default).
        connect_timeout: seconds a connection may stay without joining a namespace.
        connection_state_recovery: None, or a dict with
            ``max_disconnection_duration`` (seconds, 120) and
            ``skip_middlewares`` (True).
        cleanup_empty_child_namespaces: drop dynamic child namespaces when
            their last socket leaves.
        **engine_options: passed to the Engine.IO server (``ping_interval``,
            ``ping_timeout``, ``cors``, ``transports``, ``allow_eio3``...).

    Every option is declared in ``fastsio.options.ServerOptions`` (type and
    default); an unknown one raises ``TypeError`` at construction, naming
    the closest valid one.

    Example:
        >>> io = fastsio.Server(cors={"origin": "*"})
        >>> @io.on("connection")
        ... def on_connection(socket):
        ...     socket.emit("hello", "world")
        >>> io.run(port=3000)
    """

    def __init__(self, port: Optional[int] = None, **options: Unpack[ServerOptions]) -> None:
        o = resolve(ServerOptions, options, "Server")
        self._options = o
        self._path = "/socket.io"
        self.path(o["path"])
        self._serve_client: bool = bool(o["serve_client"])
        self._connect_timeout: Optional[float] = o["connect_timeout"]
        self._parser: Any = o["parser"] or sio_codec
        recovery = o["connection_state_recovery"]
        self._recovery: Optional[dict[str, Any]] = None
        if recovery is not None and recovery is not False:
            merged = {"max_disconnection_duration": 120, "skip_middlewares": True}
            if isinstance(recovery, dict):
                merged.update(recovery)
            self._recovery = merged
        self._cleanup_empty_child_namespaces = bool(o["cleanup_empty_child_namespaces"])
        engine_names = engine_option_names()
        self._engine_options: dict[str, Any] = {k: v for k, v in options.items() if k in engine_names}
        session_cookie(self._engine_options.get("cookie"))  # the Engine is built later: check its cookie now
        self._adapter: Callable[[Namespace], Any] = o["adapter"] or (
            SessionAwareAdapter if self._recovery is not None else InMemoryAdapter
        )
        self._nsps: dict[str, Namespace] = {}
        # Observers of traffic (admin UI, metrics): empty unless enabled, so the
        # hot paths pay one truth test (see fastsio/probes.py).
        self._probes: list[Any] = []
        # Called (once a loop serves) each time listen() starts: features that
        # must run whether or not a client connected (the admin UI's stats in a cluster).
        self._serving_hooks: list[Callable[[], None]] = []
        # Called when close() starts, to stop what a serving hook started.
        self._closing_hooks: list[Callable[[], None]] = []
        # True while some namespace's adapter init() waits for a loop to run it.
        self._inits_pending = False
        self._parent_nsps: list[tuple[Callable[..., Any], ParentNamespace]] = []
        self._parent_from_regex: list[tuple["re.Pattern[str]", ParentNamespace]] = []
        self._engine: Any = None
        # tasks this server started (coroutine handlers, async broadcast-ack callbacks...):
        # close() cancels what is still running
        self._tasks: set[asyncio.Future[Any]] = set()
        self._pending_port: Optional[int] = None
        self._asgi_host: Any = None
        self.sockets: Namespace = self.of("/")
        self._metrics: Any = None
        self._metrics_path: Optional[str] = None
        if o["metrics"]:
            self._enable_metrics(o["metrics"])
        if port is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                # No loop yet: run() (or a later listen()) uses the port.
                self._pending_port = port
            else:
                _spawn(loop.create_task(self.listen(port)), _log_task_error)

    def __repr__(self) -> str:
        return f"<Server path={self._path!r} namespaces={list(self._nsps)!r}>"

    # -- getters / setters like Node ----------------------------------------

    def path(self, value: Optional[str] = None) -> Any:
        """Get the path (``"/socket.io"``), or set it and return the server."""
        if value is None:
            return self._path
        self._path = value[:-1] if value.endswith("/") else value
        return self

    def serve_client(self, value: Optional[bool] = None) -> Any:
        """Get whether the client bundle is served, or set it and return the server."""
        if value is None:
            return self._serve_client
        self._serve_client = bool(value)
        return self

    def connect_timeout(self, value: Optional[float] = None) -> Any:
        """Get the connect timeout in seconds, or set it and return the server."""
        if value is None:
            return self._connect_timeout
        self._connect_timeout = value
        return self

    def adapter(self, value: Optional[Callable[[Namespace], Any]] = None) -> Any:
        """Get the adapter class, or set it (re-creating every namespace's adapter) and return the server."""
        if value is None:
            return self._adapter
        self._adapter = value
        for nsp in self._nsps.values():
            nsp._init_adapter()
        return self

    @property
    def engine(self) -> Any:
        """The Engine.IO server (created on first use with the engine options)."""
        if self._engine is None:
            from .engineio import Engine

            opts = dict(self._engine_options)
            opts["path"] = self._path
            self.bind(Engine(**opts))
        return self._engine

    # -- serving ------------------------------------------------------------

    def instrument(self, **options: Any) -> Any:
        """Serves the official Admin UI (``@socket.io/admin-ui`` 0.5) on ``/admin``.

        The twin of Node's ``instrument(io, options)``; the options are those
        of :func:`fastsio.admin.instrument` (``auth``, ``mode``,
        ``read_only``, ``namespace_name``, ``server_id``, ``store``,
        ``stats_interval``).

        Returns:
            The :class:`fastsio.admin.Instrumentation`.
        """
        from .admin import instrument

        return instrument(self, **options)

    async def listen(self, port: Optional[int] = None, host: str = "0.0.0.0", ssl: Any = None,
                     app: Any = None) -> "Server":
        """Start the built-in HTTP server on the running loop.

        Returns once the server accepts connections.

        Args:
            app: an ASGI app (FastAPI, Starlette, a ``fastsio.ASGIApp``...) served on the
                same port for every path outside the Socket.IO path (:mod:`fastsio.asgi_host`);
                its lifespan startup runs before the port listens, its shutdown in ``close()``.
        """
        if port is None:
            port = self._pending_port
        if port is None:
            raise ValueError("listen() needs a port")
        self._pending_port = None
        await self._init_adapters()
        if app is None:
            await self.engine.listen(port, host=host, ssl=ssl)
            return self
        from .asgi_host import AsgiHost

        hosted = AsgiHost(app, self.engine, native_paths=[p for p in (self._metrics_path,) if p])
        await hosted.startup()
        try:
            hosted.install(self.engine.http_server())
            await self.engine.listen(port, host=host, ssl=ssl)
        except BaseException:
            await hosted.shutdown()
            raise
        self._asgi_host = hosted
        return self

    def _start_adapter_inits(self) -> list["asyncio.Future[Any]"]:
        """Start, on the running loop, every adapter init() still waiting for one; the unfinished ones."""
        self._inits_pending = False
        running = []
        for nsp in list(self._nsps.values()):
            task = nsp._start_adapter_init()
            if task is not None:
                if task.done():
                    nsp._adapter_init = None
                else:
                    running.append(task)
        return running

    async def _init_adapters(self) -> None:
        """Wait until every namespace's adapter has finished its init().

        Raises:
            Exception: what a failing init() raised (a Redis that cannot be
                reached, for instance), after the others finished.
        """
        for hook in list(self._serving_hooks):
            hook()
        tasks = [nsp._start_adapter_init() for nsp in list(self._nsps.values())]
        self._inits_pending = False
        started = [t for t in tasks if t is not None]
        if not started:
            return
        done, pending = await asyncio.wait(started, timeout=5)
        if pending:
            logger.warning("still waiting for the adapters of %d namespace(s) to start", len(pending))
            await asyncio.wait(pending)
        for nsp in list(self._nsps.values()):
            task = nsp._adapter_init
            if task is not None and isinstance(task, asyncio.Future) and task.done():
                nsp._adapter_init = None
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

    attach = listen

    def run(self, port: Optional[int] = None, host: str = "0.0.0.0", ssl: Any = None, app: Any = None,
            workers: Union[int, str] = 1, shutdown_timeout: float = 10.0) -> None:
        """Serve until SIGINT or SIGTERM, then close gracefully (blocking, on uvloop).

        ``app``: an ASGI app for every path outside the Socket.IO path, as in :meth:`listen`.
        ``workers=N`` (or ``"auto"``) serves with N processes on one port, each
        closing within ``shutdown_timeout`` seconds on a signal: see
        ``fastsio.workers.run`` and docs/workers.md.
        """
        from . import workers as _workers

        # "auto" on one usable core is one process, which can hold TLS connections
        if _workers.resolve_workers(workers) != 1 or os.environ.get("FASTSIO_WORKER"):
            _workers.run(self, port=port if port is not None else self._pending_port, host=host,
                         workers=workers, ssl=ssl, shutdown_timeout=shutdown_timeout, app=app)
            return

        async def main() -> None:
            await self.listen(port, host=host, ssl=ssl, app=app)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                except (NotImplementedError, RuntimeError):
                    pass
            try:
                await stop.wait()
            finally:
                await self.close()

        try:
            import uvloop
        except ImportError:
            asyncio.run(main())
        else:
            uvloop.run(main())

    async def close(self, timeout: float = 5.0) -> None:
        """Close gracefully, within ``timeout`` seconds.

        New connections are refused at once; every socket is disconnected
        (reason ``"server shutting down"`` on the server side), every adapter
        is closed (its ``close()`` awaited when it returns an awaitable; an
        adapter init() still running is cancelled first), what was emitted
        to the clients still leaves, then the connections close (the client
        sees ``"transport close"``, as with Node). Clients that do not read
        within ``timeout`` seconds are cut. Calling it again is harmless.

        Args:
            timeout: seconds to wait for the clients to take what is queued.

        Example:
            >>> await io.close(timeout=2)
        """
        for hook in list(self._closing_hooks):
            hook()
        for nsp in list(self._nsps.values()):
            for socket in list(nsp.sockets.values()):
                socket._onclose("server shutting down")
            pending = nsp._adapter_init
            nsp._adapter_init = None
            if isinstance(pending, asyncio.Future):
                if not pending.done():
                    pending.cancel()
                    await asyncio.wait([pending])
            elif inspect.iscoroutine(pending):
                pending.close()
            try:
                result = nsp.adapter.close()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("error while closing the adapter of %s", nsp.name)
        if self._engine is not None:
            await self._engine.close(timeout=timeout)
        hosted, self._asgi_host = self._asgi_host, None
        if hosted is not None:
            await hosted.shutdown()
        await _tasks.cancel(self._tasks)

    def bind(self, engine: Any) -> "Server":
        """Use ``engine`` (an Engine.IO server) for the connections."""
        self._engine = engine
        engine.on("connection", self.onconnection)
        if hasattr(engine, "fallback") and engine.fallback is None:
            # Always installed: it checks serve_client() at request time, so
            # the setter works after bind() too.
            engine.fallback = self._serve_static
        return self

    def onconnection(self, conn: Any) -> "Server":
        """Take a new Engine.IO connection (advanced: ``bind`` calls it)."""
        if self._inits_pending:
            # Served by an engine that was not started through listen().
            self._start_adapter_inits()
        client = Client(self, conn)
        if conn.protocol == 3:
            # socket.io v2 clients are connected to "/" without asking.
            client._connect("/", {})
        return self

    def _new_decoder(self) -> Any:
        return self._parser.Decoder()

    def _enable_metrics(self, conf: Any) -> None:
        from .metrics import Metrics, _prometheus

        options = conf if isinstance(conf, dict) else {}
        unknown = set(options) - {"path", "max_event_labels"}
        if unknown:
            raise TypeError(f"unknown metrics option(s) {sorted(unknown)}: expected 'path', 'max_event_labels'")
        _prometheus()  # a missing prometheus-client fails here, not at the first scrape
        path = options.get("path", "/metrics")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("metrics path must start with '/'")
        self._metrics = Metrics(self, int(options.get("max_event_labels", 100)))
        self._metrics_path = path

    def _serve_static(self, request: Any) -> Optional[tuple[int, list[tuple[str, str]], bytes]]:
        path: str = request.path
        if path == self._metrics_path:
            from .metrics import CONTENT_TYPE

            return 200, [("content-type", CONTENT_TYPE), ("cache-control", "no-store")], self._metrics.render()
        if not self._serve_client:
            return None
        prefix = self._path + "/"
        if not path.startswith(prefix):
            return None
        name = path[len(prefix):]
        if name not in _CLIENT_FILES:
            return None
        file = os.path.join(_STATIC_DIR, name)
        try:
            with open(file, "rb") as f:
                body = f.read()
        except OSError:
            global _warned_missing_bundle
            if not _warned_missing_bundle:
                _warned_missing_bundle = True
                logger.warning(
                    "client bundle %s is not installed: copy socket.io-client's dist/ files into %s "
                    "(bash ci/setup.sh does it from npm), or serve it yourself", name, _STATIC_DIR)
            return None
        etag = '"' + str(int(os.path.getmtime(file))) + "-" + str(len(body)) + '"'
        inm = request.headers.get("if-none-match")
        if inm in (etag, "W/" + etag):
            return 304, [("etag", etag)], b""
        ctype = "application/json" if name.endswith(".map") else "application/javascript"
        return 200, [
            ("content-type", ctype + "; charset=utf-8"),
            ("cache-control", "public, max-age=0"),
            ("etag", etag),
        ], body

    # -- namespaces ---------------------------------------------------------

    def of(self, name: NamespaceMatcher, fn: Optional[Callable[..., Any]] = None) -> Namespace:
        """The namespace ``name``, created if needed.

        ``name`` may also be a compiled regular expression (tested with
        ``search``, like JavaScript's ``test``) or a function
        ``fn(name, auth, next)`` calling ``next(err, allow)`` (or
        ``fn(name, auth)`` returning a bool, possibly async): a
        ``ParentNamespace`` then creates matching namespaces on demand.

        Args:
            fn: optional ``connection`` listener.
        """
        if isinstance(name, re.Pattern) or callable(name):
            parent = ParentNamespace(self)
            if isinstance(name, re.Pattern):
                pattern = name

                def matcher(nsp: str, auth: Any, next_: Callable[..., Any]) -> None:
                    next_(None, pattern.search(nsp) is not None)

                self._parent_nsps.append((matcher, parent))
                self._parent_from_regex.append((pattern, parent))
            else:
                self._parent_nsps.append((name, parent))
            if fn is not None:
                parent.on("connect", fn)
            return parent
        if not name.startswith("/"):
            name = "/" + name
        nsp = self._nsps.get(name)
        if nsp is None:
            for pattern, parent in self._parent_from_regex:
                if pattern.search(name):
                    return parent._create_child(name)
            nsp = Namespace(self, name)
            self._nsps[name] = nsp
            if name != "/":
                self.sockets._emit_local("new_namespace", nsp)
        if fn is not None:
            nsp.on("connect", fn)
        return nsp

    def _check_namespace(self, name: str, auth: dict[str, Any], fn: Callable[[Optional[Namespace]], None]) -> None:
        parents = list(self._parent_nsps)

        def run(i: int) -> None:
            if i >= len(parents):
                fn(None)
                return
            matcher, parent = parents[i]
            answered = False

            def next_(err: Any = None, allow: Any = False) -> None:
                nonlocal answered
                if answered:
                    return
                answered = True
                if err or not allow:
                    run(i + 1)
                    return
                existing = self._nsps.get(name)
                if existing is not None:
                    # created in the meantime
                    fn(existing)
                    return
                fn(parent._create_child(name))

            try:
                if _arity(matcher) >= 3:
                    result = matcher(name, auth, next_)
                    if inspect.isawaitable(result):
                        _spawn(result, _log_task_error)
                    return
                result = matcher(name, auth)
            except Exception:
                logger.exception("namespace matcher failed")
                next_(True)
                return
            if inspect.isawaitable(result):
                def done(fut: "asyncio.Future[Any]") -> None:
                    if fut.cancelled() or fut.exception() is not None:
                        next_(True)
                    else:
                        next_(None, fut.result())
                _spawn(result, done)
            else:
                next_(None, result)

        run(0)

    # -- event emitter: delegated to the main namespace ---------------------

    @overload
    def on(self, event: str) -> Callable[[_F], _F]: ...

    @overload
    def on(self, event: str, listener: Callable[..., Any]) -> "Server": ...

    def on(self, event: str, listener: Optional[Callable[..., Any]] = None) -> Any:
        """Listen to ``connection``/``connect``/``new_namespace`` (works as a decorator).

        Example:
            >>> @io.on("connection")
            ... async def on_connection(socket): ...
        """
        if listener is None:
            return self.sockets.on(event)
        self.sockets.on(event, listener)
        return self

    add_listener = on

    def once(self, event: str, listener: Optional[Callable[..., Any]] = None) -> Any:
        """Like ``on``, for the next event only."""
        result = self.sockets.once(event, listener)
        return self if listener is not None else result

    def off(self, event: str, listener: Callable[..., Any]) -> "Server":
        """Remove a listener."""
        self.sockets.off(event, listener)
        return self

    remove_listener = off

    def remove_all_listeners(self, event: Optional[str] = None) -> "Server":
        """Remove every listener (of ``event``)."""
        self.sockets.remove_all_listeners(event)
        return self

    def listeners(self, event: str) -> list[Callable[..., Any]]:
        """The listeners of ``event``."""
        return self.sockets.listeners(event)

    def listener_count(self, event: str) -> int:
        """How many listeners ``event`` has."""
        return self.sockets.listener_count(event)

    def event_names(self) -> list[str]:
        """The events with listeners."""
        return self.sockets.event_names()

    # -- namespace methods on the main namespace --------------------------

    def use(self, fn: Callable[..., Any]) -> "Server":
        """Add a connection middleware to the main namespace (see ``Namespace.use``)."""
        self.sockets.use(fn)
        return self

    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to every socket of the main namespace."""
        return self.sockets.emit(event, *args)

    def emit_with_ack(self, event: str, *args: Any) -> "asyncio.Future[list[Any]]":
        """Broadcast and return an awaitable of the answers (needs ``timeout()``)."""
        return self.sockets.emit_with_ack(event, *args)

    def send(self, *args: Any) -> "Server":
        """Emit a ``message`` event to every socket."""
        self.sockets.emit("message", *args)
        return self

    write = send

    def to(self, room: Rooms) -> BroadcastOperator:
        """Target a room (or rooms)."""
        return self.sockets.to(room)

    in_ = to

    def except_(self, room: Rooms) -> BroadcastOperator:
        """Leave out a room (or rooms)."""
        return self.sockets.except_(room)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Give the next broadcast's acknowledgements a deadline, in seconds."""
        return self.sockets.timeout(seconds)

    def compress(self, compress: bool) -> BroadcastOperator:
        """Set the compress flag."""
        return self.sockets.compress(compress)

    @property
    def volatile(self) -> BroadcastOperator:
        """The next emit may be dropped for clients that cannot take it now."""
        return self.sockets.volatile

    @property
    def local(self) -> BroadcastOperator:
        """The next emit reaches this server's sockets only."""
        return self.sockets.local

    async def fetch_sockets(self) -> list[Union[Socket, RemoteSocket]]:
        """The sockets of the main namespace."""
        return await self.sockets.fetch_sockets()

    def sockets_join(self, rooms: Rooms) -> None:
        """Make every socket of the main namespace join ``rooms``."""
        self.sockets.sockets_join(rooms)

    def sockets_leave(self, rooms: Rooms) -> None:
        """Make every socket of the main namespace leave ``rooms``."""
        self.sockets.sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the main namespace."""
        self.sockets.disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to the other servers of the cluster."""
        return self.sockets.server_side_emit(event, *args)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Send ``event`` to the other servers and return their answers."""
        return await self.sockets.server_side_emit_with_ack(event, *args)

    async def all_sockets(self) -> set[str]:
        """Ids of every socket of the main namespace."""
        return await self.sockets.all_sockets()


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 3
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return 3
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count
