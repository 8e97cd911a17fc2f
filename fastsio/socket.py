"""Socket: one client's connection to one namespace, and its handshake.

A ``Socket`` is an event emitter in both directions: ``socket.on(event)``
listens to the client, ``socket.emit(event, ...)`` sends to it. Handlers
receive the event's arguments positionally; when the client asked for an
acknowledgement the handler's return value answers it.
"""
from __future__ import annotations

import asyncio
import email.utils
import inspect
import logging
import secrets
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Optional, Union

from . import _tasks
from ._arity import required_positional
from ._impl import sio_codec
from .adapter import BroadcastOptions
from .emitter import EventEmitter, Listener, run_listener
from .exceptions import AckTimeout

if TYPE_CHECKING:
    from .broadcast import BroadcastOperator
    from .client import Client
    from .namespace import Namespace

__all__ = ["Socket", "Handshake", "RESERVED_EVENTS"]

logger = logging.getLogger(__name__)

#: Event names a server may not emit: the client gives them a meaning of its own.
RESERVED_EVENTS = frozenset(
    ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")
)

#: Reasons after which a session is kept for connection state recovery (as Node).
RECOVERABLE_DISCONNECT_REASONS = frozenset(
    (
        "transport error",
        "transport close",
        "forced close",
        "ping timeout",
        "server shutting down",
        "forced server close",
    )
)


def generate_id() -> str:
    """A random url-safe id of 20 characters (15 random bytes, like Node's base64id)."""
    return secrets.token_urlsafe(15)


def _takes_next(fn: Callable[..., Any]) -> bool:
    """Whether a middleware is Node style ``fn(arg, next)`` rather than ``fn(arg)``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count >= 2


_background = _tasks.ALL


def _spawn(aw: Awaitable[Any], done: Callable[["asyncio.Future[Any]"], None],
           owner: Optional[set["asyncio.Future[Any]"]] = None) -> "asyncio.Future[Any]":
    return _tasks.spawn(aw, done, owner)


Middleware = tuple[Callable[..., Any], bool]


def run_middlewares(fns: list[Middleware], arg: Any, done: Callable[[Optional[BaseException]], None],
                    owner: Optional[set["asyncio.Future[Any]"]] = None) -> None:
    """Run ``fns`` on ``arg`` in order, then call ``done(err)`` once.

    Each entry is ``(fn, takes_next)``. Node-style ``fn(arg, next)`` goes on
    with ``next()`` and stops with ``next(err)``; ``fn(arg)`` goes on when it
    returns and stops when it raises. Either may be a coroutine function;
    its task is also held in ``owner`` when given (so it can be cancelled).
    """
    _MiddlewareRun(list(fns), arg, done, owner).step(0)


class _MiddlewareRun:
    """One run of a middleware chain.

    An object rather than a closure that calls itself: such a closure is a
    reference cycle (holding ``arg``, a socket) left to the cyclic GC.
    """

    __slots__ = ("fns", "arg", "done", "owner")

    def __init__(self, fns: list[Middleware], arg: Any, done: Callable[[Optional[BaseException]], None],
                 owner: Optional[set["asyncio.Future[Any]"]]) -> None:
        self.fns = fns
        self.arg = arg
        self.done = done
        self.owner = owner

    def step(self, i: int) -> None:
        fns = self.fns
        done = self.done
        if i == len(fns):
            done(None)
            return
        fn, takes_next = fns[i]
        if takes_next:
            called = False

            def next_(err: Any = None) -> None:
                nonlocal called
                if called:
                    return
                called = True
                if err is not None and err is not False:
                    done(err)
                else:
                    self.step(i + 1)

            try:
                result = fn(self.arg, next_)
            except Exception as exc:
                next_(exc)
                return
            if inspect.isawaitable(result):
                def on_done(fut: "asyncio.Future[Any]") -> None:
                    if not fut.cancelled() and fut.exception() is not None:
                        next_(fut.exception())
                _spawn(result, on_done, self.owner)
        else:
            try:
                result = fn(self.arg)
            except Exception as exc:
                done(exc)
                return
            if inspect.isawaitable(result):
                def on_done2(fut: "asyncio.Future[Any]") -> None:
                    if fut.cancelled():
                        done(asyncio.CancelledError())
                    elif fut.exception() is not None:
                        done(fut.exception())
                    else:
                        self.step(i + 1)
                _spawn(result, on_done2, self.owner)
            else:
                self.step(i + 1)


def _ack_args(result: Any) -> list[Any]:
    # The handler's return value answers the ack: a tuple is several
    # arguments, None is none.
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


class Handshake:
    """What the client sent when it connected to the namespace.

    Attributes:
        headers: request headers (lower-case names).
        address: the client's IP address.
        xdomain: whether the request had an ``Origin`` header.
        secure: whether the connection is over TLS.
        issued: when the socket was created, in milliseconds since the epoch.
        url: the request target of the first HTTP request.
        query: query parameters of the first HTTP request.
        auth: the auth payload of the namespace CONNECT packet.
    """

    __slots__ = ("headers", "address", "xdomain", "secure", "issued", "url", "query", "auth")

    def __init__(
        self,
        headers: dict[str, str],
        address: str,
        xdomain: bool,
        secure: bool,
        issued: int,
        url: str,
        query: dict[str, str],
        auth: dict[str, Any],
    ) -> None:
        self.headers = headers
        self.address = address
        self.xdomain = xdomain
        self.secure = secure
        self.issued = issued
        self.url = url
        self.query = query
        self.auth = auth

    @property
    def time(self) -> str:
        """The creation date as text (RFC 1123, GMT); computed on demand to keep sockets small."""
        return email.utils.formatdate(self.issued / 1000, usegmt=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy, as sent across a cluster."""
        return {
            "headers": self.headers,
            "time": self.time,
            "address": self.address,
            "xdomain": self.xdomain,
            "secure": self.secure,
            "issued": self.issued,
            "url": self.url,
            "query": self.query,
            "auth": self.auth,
        }

    def __repr__(self) -> str:
        return f"Handshake({self.to_dict()!r})"


# An ack entry: (callback, timer or None, callback wants a leading err, future or None)
_AckEntry = tuple[Callable[..., Any], Optional[asyncio.TimerHandle], bool, Optional["asyncio.Future[Any]"]]


class Socket(EventEmitter):
    """A client connected to a namespace.

    Attributes:
        id: the socket id (random, 20 url-safe characters; the room of its own).
        nsp: the ``Namespace``.
        client: the ``Client`` (one per Engine.IO connection).
        handshake: the ``Handshake``.
        data: free-form dict, JSON-serialisable so it can cross a cluster.
        connected: whether the socket is connected.
        recovered: whether the state was restored by connection state recovery.

    After its ``disconnect`` event a socket emits nothing more: its
    listeners, catch-all listeners and middlewares are dropped then, so the
    closures an application registers on it (which hold the socket) do not
    keep it alive in a reference cycle.

    Example:
        >>> @io.on("connection")
        ... def on_connection(socket):
        ...     socket.join("room1")
        ...     @socket.on("hello")
        ...     def hello(name):
        ...         return f"hi {name}"     # answers the client's ack
    """

    __slots__ = (
        "id",
        "nsp",
        "client",
        "_conn",
        "adapter",
        "handshake",
        "data",
        "connected",
        "recovered",
        "_pid",
        "_acks",
        "_fns",
        "_flags",
        "_any",
        "_any_out",
        "_recovery",
        "_missed",
        "_pending",
        "__weakref__",
    )

    def __init__(
        self,
        nsp: "Namespace",
        client: "Client",
        auth: dict[str, Any],
        previous_session: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        self.nsp = nsp
        self.client = client
        self._conn = client.conn
        self.adapter = nsp.adapter
        self._recovery = nsp.server._recovery is not None
        self._acks: Optional[dict[int, _AckEntry]] = None
        self._fns: Optional[list[Middleware]] = None
        self._flags: Optional[dict[str, Any]] = None
        self._any: Optional[list[Listener]] = None
        self._any_out: Optional[list[Listener]] = None
        self._missed: Optional[list[list[Any]]] = None
        # the tasks of its namespace middlewares while it waits to connect (cancelled if the client leaves)
        self._pending: Optional[set["asyncio.Future[Any]"]] = None
        self.connected = False
        self.data: dict[str, Any] = {}
        self._pid: Optional[str] = None
        if previous_session is not None:
            self.id: str = previous_session["sid"]
            self._pid = previous_session["pid"]
            self.adapter.add_all(self.id, previous_session["rooms"])
            self.data = previous_session["data"]
            # Sent right after the CONNECT packet (see _onconnect): a client
            # may drop events for a namespace it is not connected to yet.
            self._missed = previous_session["missed_packets"]
            self.recovered = True
        else:
            self.recovered = False
            if client.conn.protocol == 3:
                # socket.io v2 clients derive the id themselves.
                self.id = client.id if nsp.name == "/" else nsp.name + "#" + client.id
            else:
                # Not the Engine.IO id: that one is a secret for the transport.
                self.id = generate_id()
            if self._recovery:
                self._pid = generate_id()
        self.handshake = self._build_handshake(auth)

    def _build_handshake(self, auth: dict[str, Any]) -> Handshake:
        import time

        req = getattr(self._conn, "request", None)
        # Shared with the request (and the other namespaces of the connection), not copied.
        headers: dict[str, str] = getattr(req, "headers", None) or {}
        return Handshake(
            headers=headers,
            address=getattr(req, "remote_address", "") or "",
            xdomain="origin" in headers,
            secure=bool(getattr(req, "secure", False)),
            issued=int(time.time() * 1000),
            url=getattr(req, "url", "") or "",
            query=dict(getattr(req, "query", None) or {}),
            auth=auth,
        )

    def __repr__(self) -> str:
        return f"<Socket id={self.id!r} nsp={self.nsp.name!r} connected={self.connected}>"

    # -- properties -------------------------------------------------------

    @property
    def conn(self) -> Any:
        """The Engine.IO connection (``conn.transport.name``, events ``upgrade``, ``close``...)."""
        return self._conn

    @property
    def request(self) -> Any:
        """The first HTTP request of the Engine.IO connection."""
        return self._conn.request

    @property
    def disconnected(self) -> bool:
        """Whether the socket is disconnected."""
        return not self.connected

    @property
    def rooms(self) -> set[str]:
        """A copy of the rooms the socket is in (its own id included)."""
        rooms = self.adapter.socket_rooms(self.id)
        return set(rooms) if rooms else set()

    # -- sending ----------------------------------------------------------

    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to the client.

        A callable last argument is the ack callback: it gets the client's
        answer as ``(*args)``, or ``(err, *args)`` after ``timeout()``.

        Raises:
            ValueError: ``event`` is a reserved name.
        """
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        flags = self._flags
        self._flags = None
        ack_id: Optional[int] = None
        if args and callable(args[-1]):
            ack_id = self.nsp._next_ack_id()
            callback = args[-1]
            args = args[:-1]
            if not self._register_ack(ack_id, callback, flags, None):
                # nothing leaves a disconnected socket: a callback that takes an error hears it now
                if flags and flags.get("timeout") is not None:
                    asyncio.get_running_loop().call_soon(
                        self._call_ack, callback, AckTimeout("socket has been disconnected"))
                return True
        data = [event, *args]
        if self._recovery:
            # Through the adapter so the packet gets an offset and is kept.
            self.adapter.broadcast(
                sio_codec.Packet(sio_codec.EVENT, self.nsp.name, data, ack_id),
                BroadcastOptions((self.id,), (), flags),
            )
            return True
        if self._any_out:
            self._notify_outgoing(data)
        self.client._write(
            self.nsp._encode(sio_codec.EVENT, self.nsp.name, data, ack_id),
            bool(flags and flags.get("volatile")),
            not flags or flags.get("compress", True) is not False,
        )
        return True

    def emit_with_ack(self, event: str, *args: Any) -> "asyncio.Future[Any]":
        """Send ``event`` and return an awaitable of the client's answer.

        The event is sent at once, like ``emit``. The result is the answer's
        single argument (a tuple if several, None if none).

        Raises:
            AckTimeout: after ``timeout(seconds)``, when no answer came in time
                (also a ``TimeoutError``), when the socket disconnected first,
                or at once when it is already disconnected. A caller's own
                ``asyncio.wait_for`` may cancel it: the entry leaves the
                socket's ack table then too.
        """
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[Any]" = loop.create_future()
        if event in RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        flags = self._flags
        with_err = flags is not None and flags.get("timeout") is not None

        def callback(*answer: Any) -> None:
            if fut.done():
                return
            if with_err:
                err, answer = answer[0], answer[1:]
                if err is not None:
                    fut.set_exception(err)
                    return
            fut.set_result(answer[0] if len(answer) == 1 else (tuple(answer) if answer else None))

        # Registered by hand (not via emit) so a disconnect can fail the future.
        self._flags = None
        ack_id = self.nsp._next_ack_id()
        if not self._register_ack(ack_id, callback, flags, fut):
            fut.set_exception(AckTimeout("socket has been disconnected"))
            return fut
        data = [event, *args]
        if self._recovery:
            self.adapter.broadcast(
                sio_codec.Packet(sio_codec.EVENT, self.nsp.name, data, ack_id),
                BroadcastOptions((self.id,), (), flags),
            )
        else:
            if self._any_out:
                self._notify_outgoing(data)
            self.client._write(
                self.nsp._encode(sio_codec.EVENT, self.nsp.name, data, ack_id),
                bool(flags and flags.get("volatile")),
                not flags or flags.get("compress", True) is not False,
            )
        return fut

    def send(self, *args: Any) -> "Socket":
        """Emit a ``message`` event."""
        self.emit("message", *args)
        return self

    write = send

    def _packet(self, type_: int, data: Any = None, id_: Optional[int] = None) -> None:
        self.client._write(self.nsp._encode(type_, self.nsp.name, data, id_), False)

    # -- flags --------------------------------------------------------------

    def _set_flag(self, name: str, value: Any) -> "Socket":
        if self._flags is None:
            self._flags = {}
        self._flags[name] = value
        return self

    def timeout(self, seconds: float) -> "Socket":
        """Give the next emit's acknowledgement a deadline, in seconds.

        The ack callback then gets ``(err, *args)``; ``err`` is an
        ``AckTimeout`` when the client did not answer in time.
        """
        return self._set_flag("timeout", seconds)

    def compress(self, compress: bool) -> "Socket":
        """Set the compress flag of the next emit."""
        return self._set_flag("compress", compress)

    @property
    def volatile(self) -> "Socket":
        """The next emit may be dropped if the connection cannot write right now."""
        return self._set_flag("volatile", True)

    def _new_operator(self) -> "BroadcastOperator":
        from .broadcast import BroadcastOperator

        flags = self._flags or {}
        self._flags = None
        return BroadcastOperator(self.adapter, (), (self.id,), flags)

    @property
    def broadcast(self) -> "BroadcastOperator":
        """Every socket of the namespace but this one."""
        return self._new_operator()

    @property
    def local(self) -> "BroadcastOperator":
        """Like ``broadcast``, on this server only."""
        return self._new_operator().local

    def to(self, room: Union[str, Iterable[str]]) -> "BroadcastOperator":
        """Broadcast to ``room`` (or rooms), leaving this socket out."""
        return self._new_operator().to(room)

    in_ = to

    def except_(self, room: Union[str, Iterable[str]]) -> "BroadcastOperator":
        """Broadcast to everybody but ``room`` (or rooms) and this socket."""
        return self._new_operator().except_(room)

    # -- rooms ----------------------------------------------------------------

    def join(self, rooms: Union[str, Iterable[str]]) -> None:
        """Join a room or a list of rooms."""
        if not self.connected and self.id not in self.nsp._pre_connect:
            return
        self.adapter.add_all(self.id, (rooms,) if isinstance(rooms, str) else rooms)

    def leave(self, room: str) -> None:
        """Leave a room."""
        self.adapter.del_(self.id, room)

    # -- acknowledgements -------------------------------------------------

    def _add_ack(self, ack_id: int, callback: Callable[..., Any]) -> None:
        if self._acks is None:
            self._acks = {}
        self._acks[ack_id] = (callback, None, False, None)

    def _register_ack(
        self,
        ack_id: int,
        callback: Callable[..., Any],
        flags: Optional[dict[str, Any]],
        fut: Optional["asyncio.Future[Any]"],
    ) -> bool:
        """Enter an ack in this socket's registry; False (nothing entered) once it is disconnected.

        The entry leaves when the answer comes, when its timeout fires, when
        the socket disconnects, or when ``fut`` is done or cancelled first
        (``asyncio.wait_for(socket.emit_with_ack(...), 5)`` timing out).
        """
        if not self._can_send():
            return False
        if self._acks is None:
            self._acks = {}
        metrics = self.nsp.server._metrics
        if metrics is not None:
            callback = metrics.timed_ack(callback)
        timeout = flags.get("timeout") if flags else None
        if timeout is None:
            self._acks[ack_id] = (callback, None, False, fut)
        else:
            timer = asyncio.get_running_loop().call_later(timeout, self._ack_timed_out, ack_id)
            self._acks[ack_id] = (callback, timer, True, fut)
        if fut is not None:
            fut.add_done_callback(lambda _f, i=ack_id: self._drop_ack(i))  # type: ignore[misc]
        return True

    def _can_send(self) -> bool:
        # connected, or still in its namespace middlewares, on an open connection
        return ((self.connected or self.id in self.nsp._pre_connect)
                and self._conn.ready_state == "open")

    def _drop_ack(self, ack_id: int) -> None:
        acks = self._acks
        entry = acks.pop(ack_id, None) if acks else None
        if entry is not None and entry[1] is not None:
            entry[1].cancel()

    def _ack_timed_out(self, ack_id: int) -> None:
        entry = self._acks.pop(ack_id, None) if self._acks else None
        if entry is not None:
            self._call_ack(entry[0], AckTimeout("operation has timed out"))

    @staticmethod
    def _call_ack(callback: Callable[..., Any], *args: Any) -> None:
        try:
            run_listener(callback, *args)
        except Exception:
            logger.exception("ack callback failed")

    def _onack(self, ack_id: Optional[int], args: list[Any]) -> None:
        entry = self._acks.pop(ack_id, None) if (self._acks and ack_id is not None) else None
        if entry is None:
            logger.debug("bad ack %s", ack_id)
            return
        callback, timer, with_err, _ = entry
        if timer is not None:
            timer.cancel()
        if with_err:
            self._call_ack(callback, None, *args)
        else:
            self._call_ack(callback, *args)

    def _fail_acks(self) -> None:
        acks = self._acks
        if not acks:
            return
        self._acks = None
        for callback, timer, with_err, fut in acks.values():
            if timer is not None:
                timer.cancel()
                self._call_ack(callback, AckTimeout("socket has been disconnected"))
            elif fut is not None and not fut.done():
                fut.set_exception(AckTimeout("socket has been disconnected"))

    def _send_ack(self, ack_id: int, result: Any) -> None:
        if self.connected:
            self._packet(sio_codec.ACK, _ack_args(result), ack_id)

    # -- receiving --------------------------------------------------------

    def _onconnect(self) -> None:
        self.connected = True
        self.join(self.id)
        if self._conn.protocol == 3:
            self._packet(sio_codec.CONNECT)
        else:
            payload: dict[str, Any] = {"sid": self.id}
            if self._pid is not None:
                payload["pid"] = self._pid
            self._packet(sio_codec.CONNECT, payload)
        missed = self._missed
        if missed:
            self._missed = None
            for data in missed:
                self._packet(sio_codec.EVENT, data)

    def _onpacket(self, packet: Any) -> None:
        t = packet.type
        if t == sio_codec.EVENT or t == sio_codec.BINARY_EVENT:
            self._onevent(packet.data, packet.id)
        elif t == sio_codec.ACK or t == sio_codec.BINARY_ACK:
            self._onack(packet.id, packet.data or [])
        elif t == sio_codec.DISCONNECT:
            self._onclose("client namespace disconnect")

    def _onevent(self, data: list[Any], ack_id: Optional[int]) -> None:
        if not data or not (isinstance(data[0], str) or _is_number(data[0])):
            logger.debug("ignoring event without a name: %r", data)
            return
        if data[0] in RESERVED_EVENTS:
            # Clients never send these (socket.io-client refuses to); one that
            # does must not fire the server's own "disconnect"/"connect" handlers.
            logger.debug("ignoring reserved event %r from the client", data[0])
            return
        if self._any:
            for fn in list(self._any):
                try:
                    run_listener(fn, *data)
                except Exception:
                    logger.exception("on_any listener failed")
        if self._fns:
            def done(err: Optional[BaseException]) -> None:
                if err is not None:
                    self._emit_local("error", err)
                else:
                    self._dispatch(data, ack_id)
            run_middlewares(self._fns, data, done, self.nsp.server._tasks)
        else:
            self._dispatch(data, ack_id)

    def _dispatch(self, data: list[Any], ack_id: Optional[int]) -> None:
        if not self.connected:
            return
        hook = self.nsp._dispatch_hook
        if hook is not None:
            # a layer above routes every event itself (fastsio.compat)
            hook(self, data, ack_id)
            return
        if self._listeners is None:
            return
        name = data[0]
        listeners = self._listeners.get(name if isinstance(name, str) else _js_number_key(name))
        if not listeners:
            return
        args = data[1:]
        answered = ack_id is None
        for fn in list(listeners):
            node_style = required_positional(fn) == len(args) + 1
            try:
                if not node_style:
                    result = fn(*args)
                elif answered:
                    result = fn(*args, _no_ack)
                else:
                    # Node style: the ack callback is the last argument; the
                    # handler answers when it calls it (or never, as in Node).
                    answered = True
                    result = fn(*args, self._ack_callback(ack_id))  # type: ignore[arg-type]
            except Exception:
                logger.exception("handler for %r failed", data[0])
                continue
            if inspect.isawaitable(result):
                if not answered:
                    answered = True
                    _spawn(result, lambda t, i=ack_id: self._task_answer(t, i),  # type: ignore[misc]
                           self.nsp.server._tasks)
                else:
                    _spawn(result, _log_task_error, self.nsp.server._tasks)
            elif not answered:
                answered = True
                self._send_ack(ack_id, result)  # type: ignore[arg-type]

    def _ack_callback(self, ack_id: int) -> Callable[..., None]:
        """The Node-style ack function handed to a handler: sends the answer once."""
        sent = False

        def callback(*answer: Any) -> None:
            nonlocal sent
            if sent:
                return
            sent = True
            if self.connected:
                self._packet(sio_codec.ACK, list(answer), ack_id)

        return callback

    def _task_answer(self, task: "asyncio.Future[Any]", ack_id: int) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("handler failed", exc_info=exc)
            return
        self._send_ack(ack_id, task.result())

    def use(self, fn: Callable[..., Any]) -> "Socket":
        """Add a packet middleware ``fn(packet, next)``.

        ``packet`` is the list ``[event, *args]`` (it may be changed in place).
        ``next()`` goes on; ``next(err)`` drops the packet and emits
        ``"error"`` on the socket with ``err``. ``async def fn(packet)``
        refusing by raising works too.
        """
        if self._fns is None:
            self._fns = []
        self._fns.append((fn, _takes_next(fn)))
        return self

    # -- catch-all listeners ------------------------------------------------

    def on_any(self, listener: Listener) -> "Socket":
        """Call ``listener(event, *args)`` for every incoming event."""
        if self._any is None:
            self._any = []
        self._any.append(listener)
        return self

    def prepend_any(self, listener: Listener) -> "Socket":
        """Like ``on_any``, in front of the other catch-all listeners."""
        if self._any is None:
            self._any = []
        self._any.insert(0, listener)
        return self

    def off_any(self, listener: Optional[Listener] = None) -> "Socket":
        """Remove one catch-all listener, or all of them."""
        if self._any:
            if listener is None:
                self._any = None
            elif listener in self._any:
                self._any.remove(listener)
        return self

    def listeners_any(self) -> list[Listener]:
        """The catch-all listeners of incoming events."""
        return list(self._any or ())

    def on_any_outgoing(self, listener: Listener) -> "Socket":
        """Call ``listener(event, *args)`` for every event sent to the client."""
        if self._any_out is None:
            self._any_out = []
        self._any_out.append(listener)
        self.nsp._outgoing_sids.add(self.id)
        return self

    def prepend_any_outgoing(self, listener: Listener) -> "Socket":
        """Like ``on_any_outgoing``, in front of the others."""
        if self._any_out is None:
            self._any_out = []
        self._any_out.insert(0, listener)
        self.nsp._outgoing_sids.add(self.id)
        return self

    def off_any_outgoing(self, listener: Optional[Listener] = None) -> "Socket":
        """Remove one outgoing catch-all listener, or all of them."""
        if self._any_out:
            if listener is None:
                self._any_out = None
            elif listener in self._any_out:
                self._any_out.remove(listener)
        if not self._any_out:
            self._any_out = None
            self.nsp._outgoing_sids.discard(self.id)
        return self

    def listeners_any_outgoing(self) -> list[Listener]:
        """The catch-all listeners of outgoing events."""
        return list(self._any_out or ())

    def _notify_outgoing(self, data: list[Any]) -> None:
        for fn in list(self._any_out or ()):
            try:
                run_listener(fn, *data)
            except Exception:
                logger.exception("on_any_outgoing listener failed")

    # -- closing ----------------------------------------------------------

    def disconnect(self, close: bool = False) -> "Socket":
        """Disconnect from the namespace (reason ``"server namespace disconnect"``).

        Args:
            close: also close the underlying connection, with every other
                namespace of the same client.
        """
        if not self.connected:
            return self
        if close:
            self.client._disconnect()
        else:
            self._packet(sio_codec.DISCONNECT)
            self._onclose("server namespace disconnect")
        return self

    def _onerror(self, err: BaseException) -> None:
        self._emit_local("error", err)

    def _emit_reason(self, event: str, reason: str, description: Any) -> None:
        # disconnect/disconnecting listeners take (reason) or, as Node's, (reason, description)
        lst = self._listeners.get(event) if self._listeners is not None else None
        if not lst:
            return
        for fn in list(lst):
            try:
                if required_positional(fn) >= 2:
                    run_listener(fn, reason, description)
                else:
                    run_listener(fn, reason)
            except Exception:
                logger.exception("listener for %r failed", event)

    def _onclose(self, reason: str, description: Any = None) -> None:
        if not self.connected:
            return
        self._emit_reason("disconnecting", reason, description)
        if self._recovery and reason in RECOVERABLE_DISCONNECT_REASONS and self._pid is not None:
            result = self.adapter.persist_session(
                {"sid": self.id, "pid": self._pid, "rooms": list(self.rooms), "data": self.data}
            )
            if inspect.isawaitable(result):
                _spawn(result, _log_task_error)
        self._cleanup()
        self.client._remove(self)
        self.connected = False
        self._fail_acks()
        self._emit_reason("disconnect", reason, description)
        # nothing is emitted on a disconnected socket any more: its listeners and middlewares
        # (closures over the socket, typically) go, so it is freed without the cyclic GC
        self._listeners = None
        self._any = self._any_out = None
        self._fns = None

    def _cleanup(self) -> None:
        self.adapter.del_all(self.id)
        self.nsp._remove(self)

    def _error(self, payload: Any) -> None:
        self._packet(sio_codec.CONNECT_ERROR, payload)


def _no_ack(*answer: Any) -> None:
    """The callback a Node-style handler gets when the client asked for no ack (does nothing)."""


def _log_task_error(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("handler failed", exc_info=task.exception())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _js_number_key(value: Any) -> str:
    """The listener key Node uses for a numeric event name: JavaScript's String(number)."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)
