"""Namespace: a channel of the server with its own sockets, rooms and middlewares."""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Optional, Union

from .broadcast import BroadcastOperator, RemoteSocket
from .emitter import EventEmitter
from .socket import Middleware, Socket, _log_task_error, _spawn, _takes_next, run_middlewares

if TYPE_CHECKING:
    from .client import Client
    from .parent_namespace import ParentNamespace
    from .server import Server

__all__ = ["Namespace"]

logger = logging.getLogger(__name__)

Rooms = Union[str, Iterable[str]]


#: Names ``server_side_emit`` refuses: they mean something to the namespace itself (as Node's).
SERVER_SIDE_RESERVED_EVENTS = frozenset(("connect", "connection", "new_namespace"))


def _error_payload(err: Any, protocol: int) -> Any:
    if isinstance(err, str):
        message: str = err
        data = None
    elif isinstance(err, dict):
        # next({"message": ..., "data": ...}), as a JS object literal
        message = str(err.get("message", ""))
        data = err.get("data")
    else:
        message = getattr(err, "message", None) or str(err)
        if not isinstance(message, str):
            message = str(message)
        data = getattr(err, "data", None)
    if protocol == 3:
        # socket.io v2 clients get a bare payload.
        return data if data is not None else message
    payload: dict[str, Any] = {"message": message}
    if data is not None:
        payload["data"] = data
    return payload


class Namespace(EventEmitter):
    """A namespace: sockets, an adapter for rooms, and connection middlewares.

    Attributes:
        name: the namespace name, such as ``"/"`` or ``"/chat"``.
        sockets: connected sockets, id -> ``Socket``.
        adapter: the rooms adapter of this namespace.
        server: the ``Server``.

    Events: ``connection`` / ``connect`` (socket); events sent with
    ``server_side_emit`` by other servers of a cluster.

    Example:
        >>> chat = io.of("/chat")
        >>> @chat.on("connection")
        ... def on_connection(socket): ...
    """

    __slots__ = ("name", "server", "sockets", "adapter", "_pre_connect", "_fns", "_ids", "_outgoing_sids", "_parent",
                 "_encode", "_directs", "_adapter_init", "_dispatch_hook")

    def __init__(self, server: "Server", name: str) -> None:
        super().__init__()
        self.server = server
        self.name = name
        self.sockets: dict[str, Socket] = {}
        self._pre_connect: dict[str, Socket] = {}
        # socket id -> its engine session's fanout.DirectWriter (the broadcast fast path)
        self._directs: dict[str, Any] = {}
        self._fns: list[Middleware] = []
        self._ids = 0
        # Ids of sockets with outgoing catch-all listeners: broadcasts look
        # at this set only when it is not empty.
        self._outgoing_sids: set[str] = set()
        self._parent: Optional["ParentNamespace"] = None
        # fn(socket, data, ack_id) taking over event dispatch for this namespace (fastsio.compat)
        self._dispatch_hook: Optional[Callable[[Socket, list[Any], Optional[int]], None]] = None
        # The server's parser encodes every packet of this namespace.
        self._encode: Callable[..., list[Any]] = server._parser.encode
        self._adapter_init: Optional[Awaitable[Any]] = None
        self._init_adapter()

    def _init_adapter(self) -> None:
        self.adapter = self.server._adapter(self)
        # What the adapter's init() returned, while it may still be pending:
        # an awaitable not yet started (no loop ran when the namespace was
        # made), then the task running it on the loop that serves.
        self._adapter_init = None
        result = self.adapter.init()
        if inspect.isawaitable(result):
            self._adapter_init = result
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                # Module level, before any loop: listen(), run(), the ASGI
                # startup or the first connection start it on the serving loop.
                self.server._inits_pending = True
                return
            self._start_adapter_init()

    def _start_adapter_init(self) -> Optional["asyncio.Future[Any]"]:
        """Start the pending adapter init on the running loop; the task, or None when there is none."""
        pending = self._adapter_init
        if pending is None:
            return None
        if not isinstance(pending, asyncio.Future):
            task = asyncio.ensure_future(pending)
            name = self.name

            def done(fut: "asyncio.Future[Any]") -> None:
                if not fut.cancelled() and fut.exception() is not None:
                    logger.error("the adapter of namespace %s failed to start", name, exc_info=fut.exception())

            task.add_done_callback(done)
            self._adapter_init = pending = task
        return pending

    def __repr__(self) -> str:
        return f"<Namespace {self.name!r} sockets={len(self.sockets)}>"

    def _next_ack_id(self) -> int:
        ack_id = self._ids
        self._ids += 1
        return ack_id

    # -- middlewares and connection --------------------------------------

    def use(self, fn: Callable[..., Any]) -> "Namespace":
        """Add a connection middleware.

        ``fn(socket, next)`` Node style: ``next()`` accepts, ``next(err)``
        refuses; or ``fn(socket)`` (plain or ``async def``) that refuses by
        raising. The client gets ``connect_error`` with the error's message
        and its ``data`` attribute.

        Example:
            >>> @io.use
            ... async def auth(socket):
            ...     if socket.handshake.auth.get("token") != "secret":
            ...         raise fastsio.ConnectionRejected("not authorized", {"code": 401})
        """
        self._fns.append((fn, _takes_next(fn)))
        return self

    def _add_client(self, client: "Client", auth: dict[str, Any], on_connected: Callable[[Socket], Any]) -> None:
        recovery = self.server._recovery
        if recovery is not None:
            pid = auth.get("pid")
            offset = auth.get("offset")
            if isinstance(pid, str) and isinstance(offset, str):
                try:
                    session = self.adapter.restore_session(pid, offset)
                except Exception:
                    logger.exception("error while restoring session")
                    session = None
                if inspect.isawaitable(session):
                    def restored(fut: "asyncio.Future[Any]") -> None:
                        s = None
                        if not fut.cancelled() and fut.exception() is None:
                            s = fut.result()
                        elif not fut.cancelled():
                            logger.error("error while restoring session", exc_info=fut.exception())
                        self._add_socket(client, auth, s, on_connected)
                    _spawn(session, restored)
                    return
                self._add_socket(client, auth, session, on_connected)
                return
        self._add_socket(client, auth, None, on_connected)

    def _add_socket(
        self,
        client: "Client",
        auth: dict[str, Any],
        session: Optional[dict[str, Any]],
        on_connected: Callable[[Socket], Any],
    ) -> None:
        if client.conn.ready_state != "open":
            self._restore_refused(session)
            return
        socket = Socket(self, client, auth, session)
        self._pre_connect[socket.id] = socket
        recovery = self.server._recovery
        if socket.recovered and recovery is not None and recovery.get("skip_middlewares", True):
            self._do_connect(socket, on_connected)
            return
        if not self._fns:
            self._do_connect(socket, on_connected)
            return

        def done(err: Optional[BaseException]) -> None:
            socket._pending = None
            if client.conn.ready_state != "open" or client._closed:
                socket._cleanup()
                self._restore_refused(session)
                return
            if err is not None:
                socket._cleanup()
                self._restore_refused(session)
                socket._error(_error_payload(err, client.conn.protocol))
                return
            self._do_connect(socket, on_connected)

        socket._pending = set()
        run_middlewares(self._fns, socket, done, socket._pending)

    def _restore_refused(self, session: Optional[dict[str, Any]]) -> None:
        # A restored session whose socket never connected stays restorable.
        if session is None:
            return
        try:
            result = self.adapter._restore_refused(session)
        except Exception:
            logger.exception("error while keeping a session after a refused reconnect")
            return
        if inspect.isawaitable(result):
            _spawn(result, _log_task_error)

    def _do_connect(self, socket: Socket, on_connected: Callable[[Socket], Any]) -> None:
        self._pre_connect.pop(socket.id, None)
        self.sockets[socket.id] = socket
        direct = getattr(socket._conn, "_direct", None)
        if direct is not None:
            self._directs[socket.id] = direct
        # The CONNECT packet goes out before user handlers run, so a handler
        # that emits or disconnects does it after the client saw the connect.
        socket._onconnect()
        on_connected(socket)
        self._emit_local("connect", socket)
        self._emit_local("connection", socket)

    def _remove(self, socket: Socket) -> None:
        if self.sockets.pop(socket.id, None) is None:
            self._pre_connect.pop(socket.id, None)
        self._directs.pop(socket.id, None)
        self._outgoing_sids.discard(socket.id)
        if self._parent is not None and not self.sockets:
            self._parent._on_child_empty(self)

    # -- broadcasting -----------------------------------------------------

    def _operator(self) -> BroadcastOperator:
        return BroadcastOperator(self.adapter)

    def to(self, room: Rooms) -> BroadcastOperator:
        """Target a room (or rooms) for the next emit."""
        return self._operator().to(room)

    in_ = to

    def except_(self, room: Rooms) -> BroadcastOperator:
        """Leave a room (or rooms) out of the next emit."""
        return self._operator().except_(room)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Give the acknowledgements of the next broadcast a deadline, in seconds."""
        return self._operator().timeout(seconds)

    def compress(self, compress: bool) -> BroadcastOperator:
        """Set the compress flag of the next emit."""
        return self._operator().compress(compress)

    @property
    def volatile(self) -> BroadcastOperator:
        """The next emit may be dropped for clients that cannot take it now."""
        return self._operator().volatile

    @property
    def local(self) -> BroadcastOperator:
        """The next emit reaches the sockets of this server only."""
        return self._operator().local

    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to every socket of the namespace.

        A callable last argument collects acknowledgements; it needs
        ``timeout()`` first (see ``BroadcastOperator.emit``).
        """
        return self._operator().emit(event, *args)

    def emit_with_ack(self, event: str, *args: Any) -> "asyncio.Future[list[Any]]":
        """Broadcast and return an awaitable of every client's answer (needs ``timeout()``)."""
        return self._operator().emit_with_ack(event, *args)

    def send(self, *args: Any) -> "Namespace":
        """Emit a ``message`` event to every socket."""
        self.emit("message", *args)
        return self

    write = send

    async def fetch_sockets(self) -> list[Union[Socket, RemoteSocket]]:
        """The sockets of the namespace (on every server of a cluster)."""
        return await self._operator().fetch_sockets()

    def sockets_join(self, rooms: Rooms) -> None:
        """Make every socket join ``rooms``."""
        self._operator().sockets_join(rooms)

    def sockets_leave(self, rooms: Rooms) -> None:
        """Make every socket leave ``rooms``."""
        self._operator().sockets_leave(rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket (and close their connections if ``close``)."""
        self._operator().disconnect_sockets(close)

    async def all_sockets(self) -> set[str]:
        """Ids of every socket of the namespace."""
        return await self._operator().all_sockets()

    # -- server-side events ------------------------------------------------

    def server_side_emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to the other servers of the cluster.

        A callable last argument gets ``(err, responses)``; with the in-memory
        adapter there is no other server and it gets ``(None, [])`` at once.

        Raises:
            ValueError: ``event`` is a reserved name.
        """
        if event in SERVER_SIDE_RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        result = self.adapter.server_side_emit([event, *args])
        if inspect.isawaitable(result):
            _spawn(result, _log_task_error)
        return True

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Like ``server_side_emit``, returning the other servers' answers.

        Raises:
            AckTimeout: not every server answered in time.
        """
        import asyncio

        fut: "asyncio.Future[list[Any]]" = asyncio.get_running_loop().create_future()

        def callback(err: Any, responses: list[Any]) -> None:
            if fut.done():
                return
            if err is not None:
                try:
                    err.responses = responses
                except AttributeError:
                    pass
                fut.set_exception(err)
            else:
                fut.set_result(responses)

        self.server_side_emit(event, *args, callback)
        return await fut

    def _on_server_side_emit(self, args: list[Any]) -> None:
        self._emit_local(*args)
