"""The official Socket.IO Admin UI (``@socket.io/admin-ui`` 0.5) on a fastsio server.

``io.instrument(...)`` is the snake_case twin of Node's ``instrument(io,
options)``: it speaks the admin protocol on the ``/admin`` namespace, so the
hosted page at https://admin.socket.io (or the ``ui/dist`` folder of the npm
package, served anywhere) can watch and drive the server.

What the UI gets:

- ``config`` (the supported features) and, in development mode,
  ``all_sockets`` when it connects;
- ``server_stats`` every ``stats_interval`` seconds: ``serverId``,
  ``hostname``, ``pid``, ``uptime``, ``clientsCount``,
  ``pollingClientsCount``, ``aggregatedEvents`` (connections,
  disconnections, packets and bytes in and out, per second) and
  ``namespaces``;
- in development mode, live updates: ``socket_connected``,
  ``socket_updated`` (transport upgrades, changes of ``socket.data``),
  ``socket_disconnected``, ``room_joined``, ``room_left``,
  ``event_received`` and ``event_sent``.

Commands from the UI (``emit``, ``join``, ``leave``, ``_disconnect``) go
through the server's operators, so with a cluster adapter they act on every
server. ``read_only=True`` refuses them all.

Cost: the traffic counters (a probe, see :mod:`fastsio.probes`) and the
stats timer run only while an admin client is connected; then a broadcast
costs one count, never work per recipient. ``event_sent`` is sent for
emits to one socket, not for broadcasts (those are counted in
``aggregatedEvents``). Development mode adds one listener per socket for
incoming and outgoing events. As in Node, development mode keeps the UI's
own fields in ``socket.data["_admin"]`` (so they cross a cluster).

The browser must be allowed in with credentials: add the UI's origin to the
server's ``cors`` option, e.g. ``cors={"origin": ["https://admin.socket.io"],
"credentials": True}``.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import os
import re
import secrets
import socket as _socket
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

from .exceptions import ConnectionRejected
from .probes import Probe, add_probe, frames_size, remove_probe

if TYPE_CHECKING:
    from .namespace import Namespace
    from .server import Server
    from .socket import Socket

__all__ = ["instrument", "Instrumentation", "InMemoryStore", "RedisStore"]

logger = logging.getLogger(__name__)

_BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$")
_ALL_FEATURES = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]


def _now_js() -> str:
    """The current time as a JavaScript ``Date`` serialises (ISO 8601, ms, Z)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _process_start() -> float:
    """When this process started (wall clock), for ``uptime`` like Node's."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of proc(5), counted after the command name
        with open("/proc/uptime", "rb") as f:
            booted_ago = float(f.read().split()[0])
        return time.time() - booted_ago + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


class InMemoryStore:
    """Admin session ids of this process (Node's ``InMemoryStore``)."""

    def __init__(self) -> None:
        self.sessions: set[str] = set()

    def does_session_exist(self, session_id: str) -> bool:
        """Whether ``session_id`` was handed out by ``save_session``."""
        return session_id in self.sessions

    def save_session(self, session_id: str) -> None:
        """Remembers ``session_id``."""
        self.sessions.add(session_id)


class RedisStore:
    """Admin session ids in Redis, shared by a cluster (Node's ``RedisStore``).

    Keys are ``<prefix>#<session id>`` with ``session_duration`` seconds to
    live, as Node writes them, so Node and fastsio servers accept each other's
    sessions.

    Args:
        redis_client: a ``redis.asyncio`` client.
        prefix: key prefix.
        session_duration: seconds a session stays valid.
    """

    def __init__(self, redis_client: Any, prefix: str = "socket.io-admin", session_duration: int = 86400) -> None:
        self.redis = redis_client
        self.prefix = prefix
        self.session_duration = session_duration

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}#{session_id}"

    async def does_session_exist(self, session_id: str) -> bool:
        """Whether the key of ``session_id`` exists."""
        return bool(await self.redis.exists(self._key(session_id)))

    async def save_session(self, session_id: str) -> None:
        """Writes the key of ``session_id`` with its expiry."""
        await self.redis.set(self._key(session_id), "true", ex=self.session_duration)


class _WatchedData(dict):  # type: ignore[type-arg]
    """``socket.data`` that tells the admin UI when a top-level key changes."""

    __slots__ = ("_notify",)

    def __init__(self, initial: dict[str, Any], notify: Callable[[], None]) -> None:
        super().__init__(initial)
        self._notify = notify

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._notify()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._notify()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._notify()

    def pop(self, *args: Any) -> Any:
        value = super().pop(*args)
        self._notify()
        return value

    def setdefault(self, key: str, default: Any = None) -> Any:
        value = super().setdefault(key, default)
        self._notify()
        return value


class _EventBuffer(Probe):
    """``aggregatedEvents``: counts per second, type and sub-type."""

    def __init__(self) -> None:
        self.buffer: dict[tuple[int, str, Optional[str]], int] = {}

    def push(self, type_: str, sub_type: Optional[str] = None, count: int = 1) -> None:
        key = (int(time.time()) * 1000, type_, sub_type)
        self.buffer[key] = self.buffer.get(key, 0) + count

    def take(self) -> list[dict[str, Any]]:
        values = []
        for (ts, type_, sub_type), count in self.buffer.items():
            entry: dict[str, Any] = {"timestamp": ts, "type": type_, "count": count}
            if sub_type is not None:
                entry["subType"] = sub_type
            values.append(entry)
        self.buffer = {}
        return values

    # probe hooks: one count per message, per broadcast for broadcasts
    def on_read(self, client: Any, data: Union[str, bytes]) -> None:
        self.push("packetsIn")
        self.push("bytesIn", None, frames_size((data,)))

    def on_write(self, client: Any, parts: Sequence[Union[str, bytes]]) -> None:
        self.push("packetsOut", None, len(parts))
        self.push("bytesOut", None, frames_size(parts))

    def on_broadcast(self, nsp: Any, packet: Any, parts: Sequence[Union[str, bytes]], count: int) -> None:
        if count:
            self.push("packetsOut", None, count * len(parts))
            self.push("bytesOut", None, count * frames_size(parts))


def _serialize(socket: Any, nsp: str) -> dict[str, Any]:
    """A socket (local or remote) as the UI expects it."""
    data = socket.data if isinstance(socket.data, dict) else {}
    found = data.get("_admin")
    admin: dict[str, Any] = found if isinstance(found, dict) else {}
    hs = socket.handshake
    headers = dict(getattr(hs, "headers", {}) or {})
    address = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or getattr(hs, "address", "")
    return {
        "id": socket.id,
        "clientId": admin.get("clientId"),
        "transport": admin.get("transport"),
        "nsp": nsp,
        "data": {k: v for k, v in data.items() if k != "_admin"},
        "handshake": {
            "address": address,
            "headers": headers,
            "query": dict(getattr(hs, "query", {}) or {}),
            "issued": getattr(hs, "issued", 0),
            "secure": bool(getattr(hs, "secure", False)),
            "time": getattr(hs, "time", ""),
            "url": getattr(hs, "url", ""),
            "xdomain": bool(getattr(hs, "xdomain", False)),
        },
        "rooms": sorted(socket.rooms),
    }


class Instrumentation:
    """What ``io.instrument()`` set up; ``close()`` stops its timer.

    Attributes:
        namespace: the admin namespace.
        server_id: the id the UI shows for this server.
        supported_features: what the UI may do here.
    """

    def __init__(
        self,
        io: "Server",
        auth: Any,
        mode: str,
        read_only: bool,
        namespace_name: str,
        server_id: Optional[str],
        store: Any,
        stats_interval: float,
    ) -> None:
        if mode not in ("development", "production"):
            raise ValueError(f'mode must be "development" or "production", not {mode!r}')
        if stats_interval <= 0:
            raise ValueError("stats_interval must be > 0")
        self.io = io
        self.mode = mode
        self.store = store if store is not None else InMemoryStore()
        self.server_id = server_id or _socket.gethostname()
        self.stats_interval = stats_interval
        self.supported_features = [] if read_only else list(_ALL_FEATURES)
        self.supported_features.append("AGGREGATED_EVENTS")
        if mode == "development":
            self.supported_features.append("ALL_EVENTS")
        self.namespace: "Namespace" = io.of(namespace_name)
        self._events = _EventBuffer()
        self._admins: set[str] = set()
        self._pending_sessions: dict[str, str] = {}
        self._timer: Optional[asyncio.TimerHandle] = None
        self._polling: set[str] = set()
        self._started = _process_start()
        self._engine_hooked = False
        # With a cluster adapter an admin page may be connected to any server,
        # so every server counts and sends its stats all the time, as in Node;
        # alone, a server does so only while an admin client is connected.
        self._always = type(self.namespace.adapter).__module__ != "fastsio.adapter"
        self._check_auth(auth)
        self.namespace.on("connection", self._on_admin_connection)
        if self._always:
            io._serving_hooks.append(self._start)
            io._closing_hooks.append(self._stop)
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # listen() starts it
            else:
                self._start()
        if mode == "development":
            for nsp in list(io._nsps.values()):
                self._watch_namespace(nsp)
            io.on("new_namespace", self._watch_namespace)
        if io._engine is not None:
            self._hook_engine()

    # -- authentication ---------------------------------------------------

    def _check_auth(self, auth: Any) -> None:
        if auth is False or auth is None:
            logger.warning("admin UI: authentication is disabled, please use with caution")
            return
        if callable(auth):
            check = auth

            async def by_callable(socket: "Socket") -> None:
                ok = check(dict(socket.handshake.auth or {}))
                if asyncio.iscoroutine(ok) or isinstance(ok, asyncio.Future):
                    ok = await ok
                if not ok:
                    raise ConnectionRejected("invalid credentials")

            self.namespace.use(by_callable)
            return
        if not isinstance(auth, dict) or auth.get("type") != "basic":
            raise ValueError('invalid auth option: False or {"type": "basic", "username": ..., "password": <bcrypt hash>}')
        username, password = auth.get("username"), auth.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not _BCRYPT_HASH.match(password):
            raise ValueError("the `password` field must be a valid bcrypt hash")
        try:
            import bcrypt
        except ImportError:  # pragma: no cover - depends on the install
            raise ImportError("basic auth of the admin UI needs bcrypt: pip install fastsio[admin]") from None
        hashed = password.encode()

        async def middleware(socket: "Socket") -> None:
            given = socket.handshake.auth or {}
            session_id = given.get("sessionId")
            if isinstance(session_id, str) and session_id:
                exists = self.store.does_session_exist(session_id)
                if asyncio.iscoroutine(exists) or isinstance(exists, asyncio.Future):
                    exists = await exists
                if exists:
                    return
            user, secret = given.get("username"), given.get("password")
            if user == username and isinstance(secret, str):
                # bcrypt costs tens of milliseconds: off the event loop
                ok = await asyncio.get_running_loop().run_in_executor(
                    None, bcrypt.checkpw, secret.encode("utf-8", "surrogatepass"), hashed
                )
                if ok:
                    new_id = secrets.token_hex(8)
                    saved = self.store.save_session(new_id)
                    if asyncio.iscoroutine(saved):
                        await saved
                    self._pending_sessions[socket.id] = new_id
                    return
            raise ConnectionRejected("invalid credentials")

        self.namespace.use(middleware)

    # -- the admin namespace ----------------------------------------------

    async def _on_admin_connection(self, socket: "Socket") -> None:
        session_id = self._pending_sessions.pop(socket.id, None)
        if session_id is not None:
            socket.emit("session", session_id)
        self._register_commands(socket)
        self._admins.add(socket.id)
        socket.on("disconnect", lambda *_: self._on_admin_left(socket.id))
        if len(self._admins) == 1:
            self._start()
        socket.emit("config", {"supportedFeatures": self.supported_features})
        if self.mode == "development":
            socket.emit("all_sockets", await self._all_sockets())

    def _live(self) -> bool:
        return bool(self._admins) or self._always

    def _on_admin_left(self, sid: str) -> None:
        self._admins.discard(sid)
        self._pending_sessions.pop(sid, None)
        if not self._live():
            self._stop()

    async def _all_sockets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        for name, nsp in list(self.io._nsps.items()):
            try:
                sockets = await nsp.fetch_sockets()
            except Exception as exc:  # a cluster peer that does not answer
                logger.warning("admin UI: fetch_sockets on %s failed: %s", name, exc)
                sockets = list(nsp.sockets.values())
            result.extend(_serialize(s, name) for s in sockets)
        return result

    def _register_commands(self, socket: "Socket") -> None:
        features = self.supported_features
        io = self.io

        # Handlers take *args: the UI's arguments are untrusted (and a fixed
        # signature one parameter longer would be read as a Node-style ack).
        def arg(args: tuple[Any, ...], i: int) -> Any:
            return args[i] if len(args) > i else None

        def scope(args: tuple[Any, ...], i: int) -> Any:
            nsp, filter_ = arg(args, 0), arg(args, i)
            if not isinstance(nsp, str) or not nsp.startswith("/"):
                return None
            if filter_ is not None and not isinstance(filter_, str):
                return None
            target = io.of(nsp)
            return target.in_(filter_) if filter_ else target

        if "EMIT" in features:
            @socket.on("emit")
            def on_emit(*args: Any) -> None:
                target, ev = scope(args, 1), arg(args, 2)
                if target is not None and isinstance(ev, str):
                    target.emit(ev, *args[3:])

        if "JOIN" in features:
            @socket.on("join")
            def on_join(*args: Any) -> None:
                target, room = scope(args, 2), arg(args, 1)
                if target is not None and isinstance(room, str):
                    target.sockets_join(room)

        if "LEAVE" in features:
            @socket.on("leave")
            def on_leave(*args: Any) -> None:
                target, room = scope(args, 2), arg(args, 1)
                if target is not None and isinstance(room, str):
                    target.sockets_leave(room)

        if "DISCONNECT" in features:
            @socket.on("_disconnect")
            def on_disconnect(*args: Any) -> None:
                target = scope(args, 2)
                if target is not None:
                    target.disconnect_sockets(bool(arg(args, 1)))

    # -- server stats -----------------------------------------------------

    def _start(self) -> None:
        self._hook_engine()
        add_probe(self.io, self._events)
        if self._timer is None:
            self._emit_stats()

    def _stop(self) -> None:
        remove_probe(self.io, self._events)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._events.buffer = {}

    def close(self) -> None:
        """Stops the stats timer and the counters."""
        self._always = False
        self._stop()

    def _emit_stats(self) -> None:
        self._timer = None
        if not self._live():
            return
        engine = self.io._engine
        self.namespace.emit("server_stats", {
            "serverId": self.server_id,
            "hostname": _socket.gethostname(),
            "pid": os.getpid(),
            "uptime": round(time.time() - self._started, 3),
            "clientsCount": engine.clients_count if engine is not None else 0,
            "pollingClientsCount": len(self._polling),
            "aggregatedEvents": self._events.take(),
            "namespaces": [{"name": n, "socketsCount": len(nsp.sockets)} for n, nsp in list(self.io._nsps.items())],
        })
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - emitted from a loop callback
            return
        self._timer = loop.call_later(self.stats_interval, self._emit_stats)

    # -- engine: connections, disconnections, polling clients --------------

    def _hook_engine(self) -> None:
        if self._engine_hooked:
            return
        self._engine_hooked = True
        engine = self.io.engine
        for conn in list(engine.clients.values()):
            self._track_conn(conn, count=False)
        engine.on("connection", self._on_engine_connection)

    def _on_engine_connection(self, conn: Any) -> None:
        self._track_conn(conn, count=True)

    def _track_conn(self, conn: Any, count: bool) -> None:
        events = self._events
        if count and self._live():
            events.push("rawConnection")
        if conn.transport.name == "polling":
            self._polling.add(conn.id)
            conn.once("upgrade", lambda *_: self._polling.discard(conn.id))

        def on_close(reason: Any = None, *_: Any) -> None:
            self._polling.discard(conn.id)
            if self._live():
                events.push("rawDisconnection", str(reason))

        conn.on("close", on_close)

    # -- development mode: every socket of every namespace ----------------

    def _watch_namespace(self, nsp: "Namespace") -> None:
        admin = self.namespace
        name = nsp.name

        def on_connection(socket: "Socket") -> None:
            # socket.data outlives the socket (a stored recovery session keeps it): what it
            # calls must not hold the socket, or each instrumented socket is a reference cycle
            socket_ref = weakref.ref(socket)

            def updated() -> None:
                watched = socket_ref()
                if watched is not None and self._live():
                    admin.emit("socket_updated", {"id": watched.id, "nsp": name,
                                                  "data": {k: v for k, v in watched.data.items() if k != "_admin"}})

            data = dict(socket.data) if isinstance(socket.data, dict) else {}
            data["_admin"] = {"clientId": socket.client.id[:12], "transport": socket.conn.transport.name}
            socket.data = _WatchedData(data, updated)
            if self._live():
                admin.emit("socket_connected", _serialize(socket, name), _now_js())

            def on_upgrade(transport: Any, *_: Any) -> None:
                tname = getattr(transport, "name", str(transport))
                info = socket.data.get("_admin")
                if isinstance(info, dict):
                    info["transport"] = tname
                if self._live():
                    admin.emit("socket_updated", {"id": socket.id, "nsp": name, "transport": tname})

            socket.conn.on("upgrade", on_upgrade)
            if nsp is not admin:
                def received(*args: Any) -> None:
                    if self._live():
                        admin.emit("event_received", name, socket.id, list(args), _now_js())

                def sent(*args: Any) -> None:
                    if self._live():
                        admin.emit("event_sent", name, socket.id, list(args), _now_js())

                socket.on_any(received)
                # Emits to this socket only: not registered as an outgoing
                # watcher of the namespace, so broadcasts stay per broadcast.
                if socket._any_out is None:
                    socket._any_out = []
                socket._any_out.append(sent)

            def on_disconnect(reason: Any = None, *_: Any) -> None:
                if self._live():
                    admin.emit("socket_disconnected", name, socket.id, reason, _now_js())

            socket.on("disconnect", on_disconnect)

        nsp.prepend_listener("connection", on_connection)

        def joined(room: str, sid: str) -> None:
            if self._live():
                admin.emit("room_joined", name, room, sid, _now_js())

        def left(room: str, sid: str) -> None:
            if self._live():
                # after the leave completes, as Node's process.nextTick
                asyncio.get_running_loop().call_soon(
                    lambda: admin.emit("room_left", name, room, sid, _now_js()) if self._live() else None
                )

        nsp.adapter.on("join-room", joined)
        nsp.adapter.on("leave-room", left)


def instrument(
    io: "Server",
    *,
    auth: Any = False,
    mode: str = "development",
    read_only: bool = False,
    namespace_name: str = "/admin",
    server_id: Optional[str] = None,
    store: Any = None,
    stats_interval: float = 2.0,
) -> Instrumentation:
    """Serves the Socket.IO Admin UI protocol on ``namespace_name``.

    Args:
        io: the server.
        auth: ``False`` (no authentication: a warning is logged),
            ``{"type": "basic", "username": ..., "password": <bcrypt hash>}``,
            or a callable taking the client's auth dict and returning (or
            awaiting) whether it may in (python-socketio's form).
        mode: ``"development"`` (live socket, room and event updates) or
            ``"production"`` (stats and commands only).
        read_only: refuse every command from the UI.
        namespace_name: the admin namespace.
        server_id: the name the UI shows (default: the host name).
        store: where admin session ids live: ``InMemoryStore()`` (default)
            or ``RedisStore(redis_client)`` for a cluster.
        stats_interval: seconds between two ``server_stats``.

    Returns:
        The :class:`Instrumentation`.

    Raises:
        ValueError: a bad ``auth`` (the password must be a bcrypt hash) or ``mode``.

    Example:
        >>> import bcrypt
        >>> io = fastsio.Server(cors={"origin": ["https://admin.socket.io"], "credentials": True})
        >>> io.instrument(auth={"type": "basic", "username": "admin",
        ...                     "password": bcrypt.hashpw(b"secret", bcrypt.gensalt()).decode()})
    """
    return Instrumentation(io, auth, mode, read_only, namespace_name, server_id, store, stats_interval)
