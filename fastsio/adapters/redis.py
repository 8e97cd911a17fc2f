"""Redis adapters and emitter, wire-compatible with Node's ``@socket.io/redis-adapter`` 8.3.

``RedisAdapter`` is Node's classic ``createAdapter`` (plain PUBLISH /
SUBSCRIBE, any Redis >= 2.8): fastsio servers and Node socket.io servers that
share one Redis and one ``key`` form one cluster, in both directions, for every
cluster operation. ``Emitter`` is ``@socket.io/redis-emitter`` 5: it publishes
from outside a server (cron jobs, web handlers, workers). ``RedisShardedAdapter``
(Node's ``createShardedAdapter``, Redis 7 sharded pub/sub) lives in
``fastsio.adapters.redis_sharded`` and is re-exported here.

Example:
    >>> import fastsio
    >>> from fastsio.adapters.redis import RedisAdapter
    >>> io = fastsio.Server(adapter=RedisAdapter.from_url("redis://127.0.0.1:6379/0"))

Channels (``key`` defaults to ``"socket.io"``, ``nsp`` is the namespace name):

=============================  ===================================================
``<key>#<nsp>#``               broadcasts to everybody or to 2+ rooms (msgpack)
``<key>#<nsp>#<room>#``        broadcasts to exactly one room (PSUBSCRIBE ``<key>#<nsp>#*``)
``<key>-request#<nsp>#``       requests (JSON; broadcasts with acks in msgpack)
``<key>-response#<nsp>#``      responses (JSON; client acks in msgpack)
``<key>-response#<nsp>#<uid>#`` responses for one server (``publish_on_specific_response_channel``)
=============================  ===================================================

One server holds one subscriber connection to Redis for all its namespaces
(Node holds one per ``subClient``, usually shared too), and one connection
that publishes, in order, pipelining what piles up. Each namespace's adapter
has its own 6-character uid, like Node's. ``server_count()`` is ``PUBSUB
NUMSUB`` of the request channel, which every server subscribes to exactly once
per namespace.

Delivery is at most once, as Redis pub/sub is: while Redis is unreachable,
messages for the cluster are dropped (with a log line), local delivery goes on,
the subscriber reconnects with backoff and re-subscribes by itself, and cluster
requests in flight fail with ``ConnectionError``.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Union

from .. import _tasks
from .._impl import sio_codec
from ..adapter import BroadcastOptions, InMemoryAdapter
from ..exceptions import AckTimeout, ProtocolError
from . import _wire
from .redis_sharded import RedisShardedAdapter, create_sharded_adapter

if TYPE_CHECKING:
    from ..namespace import Namespace
    from ..socket import Socket

__all__ = ["RedisAdapter", "RedisAdapterFactory", "create_adapter", "Emitter", "RedisShardedAdapter",
           "create_sharded_adapter"]

logger = logging.getLogger(__name__)

# Request types of the classic protocol (lib/index.ts).
SOCKETS = 0
ALL_ROOMS = 1
REMOTE_JOIN = 2
REMOTE_LEAVE = 3
REMOTE_DISCONNECT = 4
REMOTE_FETCH = 5
SERVER_SIDE_EMIT = 6
BROADCAST = 7
BROADCAST_CLIENT_COUNT = 8
BROADCAST_ACK = 9

_OPERATION = {
    SOCKETS: "sockets",
    ALL_ROOMS: "allRooms",
    REMOTE_FETCH: "fetchSockets",
    SERVER_SIDE_EMIT: "serverSideEmit",
}

# Events another server may not fire on this one through server_side_emit:
# they mean something to the namespace itself (Node refuses to send them).
_NOT_REMOTE_EVENTS = frozenset(("connect", "connection", "new_namespace"))

# Bounds: what piles up while Redis is slow or away is dropped, not kept.
_MAX_QUEUED = 10_000
_BATCH = 512
_HEALTH_INTERVAL = 5.0
_SUBSCRIBE_TIMEOUT = 10.0
_BACKOFF_MIN = 0.05
_BACKOFF_MAX = 2.0


def _describe(pool: Any) -> str:
    kw = getattr(pool, "connection_kwargs", {}) or {}
    if "path" in kw:
        return f"unix:{kw['path']}"
    return f"{kw.get('host', '?')}:{kw.get('port', '?')}"


def _own_connection(pool: Any) -> Any:
    """A new connection made like the pool's (TLS, unix socket, auth, Sentinel...), but ours and RESP2.

    The adapter keeps it for itself (a subscribed connection must never go
    back to a pool) and speaks RESP2 on it whatever the client's ``protocol``.
    """
    kwargs = dict(pool.connection_kwargs)
    kwargs["protocol"] = 2
    return pool.connection_class(**kwargs)


class _Throttle:
    """Logs a warning at most once a second, counting what it swallowed."""

    __slots__ = ("_next", "_dropped")

    def __init__(self) -> None:
        self._next = 0.0
        self._dropped = 0

    def warn(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            self._dropped += 1
            return
        self._next = now + 1.0
        if self._dropped:
            msg += " (%d similar messages not logged)"
            args = (*args, self._dropped)
            self._dropped = 0
        logger.warning(msg, *args)


# -- the publisher: one connection, in order, pipelined ----------------------------


class _Publisher:
    """Publishes ``(channel, data)`` pairs in order on one dedicated connection.

    ``publish`` never blocks: it queues and wakes the writer task, which sends
    everything queued as one pipeline. While Redis is unreachable the queue is
    dropped (at most once, like Redis pub/sub itself); it never holds more than
    ``_MAX_QUEUED`` messages.
    """

    def __init__(self, pool: Any, what: str) -> None:
        self._pool = pool
        self._what = what
        self._conn: Any = None
        self._queue: collections.deque[tuple[bytes, bytes, Optional["asyncio.Future[None]"]]] = collections.deque()
        self._wake: Optional[asyncio.Event] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._closed = False
        self._down = False
        self._throttle = _Throttle()
        self.dropped = 0
        self._enqueued = 0
        self._finished = 0
        self._waiters: collections.deque[tuple[int, "asyncio.Future[None]"]] = collections.deque()

    def publish(self, channel: bytes, data: bytes, want_future: bool = False) -> Optional["asyncio.Future[None]"]:
        if self._closed:
            raise RuntimeError(f"{self._what} is closed")
        fut: Optional["asyncio.Future[None]"] = None
        if want_future:
            fut = asyncio.get_running_loop().create_future()
        if len(self._queue) >= _MAX_QUEUED:
            self.dropped += 1
            self._throttle.warn("%s: %d messages wait for Redis already, dropping one", self._what, _MAX_QUEUED)
            if fut is not None:
                fut.set_exception(ConnectionError(f"{self._what}: too many messages wait for Redis"))
            return fut
        self._queue.append((channel, data, fut))
        self._enqueued += 1
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        assert self._wake is not None
        self._wake.set()
        return fut

    async def _connect(self) -> Any:
        if self._conn is None:
            self._conn = _own_connection(self._pool)
        await self._conn.connect()
        return self._conn

    def _drop_all(self, err: BaseException) -> None:
        n = 0
        while self._queue:
            _, _, fut = self._queue.popleft()
            n += 1
            if fut is not None and not fut.done():
                fut.set_exception(err)
        self.dropped += n
        self._settle(n)

    async def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while not self._closed:
            await wake.wait()
            wake.clear()
            while self._queue and not self._closed:
                try:
                    conn = await self._connect()
                except Exception as err:
                    if not self._down:
                        self._down = True
                        logger.warning("%s: cannot reach Redis at %s (%s); dropping cluster messages until it is back",
                                       self._what, _describe(self._pool), err)
                    self._drop_all(ConnectionError(f"{self._what}: Redis is unreachable ({err})"))
                    break
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), _BATCH))]
                try:
                    packed = conn.pack_commands([(b"PUBLISH", ch, data) for ch, data, _ in batch])
                    await conn.send_packed_command(packed, check_health=False)
                    for _ in batch:
                        await conn.read_response(disable_decoding=True)
                except Exception as err:
                    if not self._down:
                        self._down = True
                        logger.warning("%s: lost the connection to Redis at %s (%s)", self._what,
                                       _describe(self._pool), err)
                    try:
                        await conn.disconnect()
                    except Exception:
                        pass
                    failure = ConnectionError(f"{self._what}: publishing to Redis failed ({err})")
                    for _, _, fut in batch:
                        if fut is not None and not fut.done():
                            fut.set_exception(failure)
                    self.dropped += len(batch)
                    self._settle(len(batch))
                    continue
                if self._down:
                    self._down = False
                    logger.warning("%s: publishing to Redis at %s again", self._what, _describe(self._pool))
                for _, _, fut in batch:
                    if fut is not None and not fut.done():
                        fut.set_result(None)
                self._settle(len(batch))

    def _settle(self, n: int) -> None:
        self._finished += n
        while self._waiters and self._waiters[0][0] <= self._finished:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    async def flush(self, timeout: float = 5.0) -> None:
        """Waits until what was queued so far is sent (or dropped), at most ``timeout`` seconds."""
        if self._finished >= self._enqueued:
            return
        fut: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._waiters.append((self._enqueued, fut))
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self._what}: Redis did not take the queued messages within {timeout:g} s") from None

    async def close(self) -> None:
        self._closed = True
        self._drop_all(ConnectionError(f"{self._what} is closed"))
        self._settle(0)
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()
        task, self._task = self._task, None
        conn, self._conn = self._conn, None
        await _stop_reader(task, conn)


async def _stop_reader(task: "Optional[asyncio.Task[Any]]", conn: Any) -> None:
    """Cancel a connection's reader task and wait for it, then disconnect the connection.

    Whatever the task or the disconnect raise is dropped: the caller is closing
    and has already failed everything that waited on them.
    """
    if task is not None:
        task.cancel()
        try:
            await task
        except BaseException:
            pass
    if conn is not None:
        try:
            await conn.disconnect()
        except Exception:
            pass


# -- the bus: one subscriber connection per server --------------------------------


class _Bus:
    """One server's link to Redis: a subscriber connection shared by its namespaces' adapters.

    Owns the reader task (dispatching by channel / pattern), the health check
    (a PING when the connection has been quiet for a while, so a Redis that
    stalls is noticed), reconnection with backoff and re-subscription.
    """

    def __init__(self, pub: Any, sub: Any, owned: list[Any]) -> None:
        self.pub = pub
        self.sub = sub
        self._owned = owned  # clients created by from_url: closed with the bus
        self.publisher = _Publisher(pub.connection_pool, "redis adapter")
        self._channels: dict[bytes, Callable[[bytes, bytes], None]] = {}
        self._patterns: dict[bytes, Callable[[bytes, bytes], None]] = {}
        self._adapters: set["RedisAdapter"] = set()
        self._confirm: dict[tuple[bytes, bytes], list["asyncio.Future[None]"]] = {}
        self._conn: Any = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._start_lock: Optional[asyncio.Lock] = None
        self._up = False
        self._closed = False
        self._last_rx = 0.0
        self._pinged = False
        self._throttle = _Throttle()
        self.where = _describe(sub.connection_pool)
        self.reconnects = 0

    @property
    def up(self) -> bool:
        """Whether the subscriber connection is established and subscribed."""
        return self._up

    async def attach(self, adapter: "RedisAdapter") -> None:
        if self._closed:
            raise RuntimeError("the redis adapter is closed")
        self._adapters.add(adapter)
        for ch in (adapter._request_channel, adapter._response_channel, adapter._specific_channel):
            self._channels[ch] = adapter._on_message
        self._patterns[adapter._pattern] = adapter._on_pmessage
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        try:
            async with self._start_lock:
                # The namespaces of a server start together: the first connects.
                if self._task is None:
                    await self._connect_first()
                    return
            if self._up:
                await self._subscribe([adapter._request_channel, adapter._response_channel,
                                       adapter._specific_channel], [adapter._pattern], wait=True)
        except BaseException:
            self._adapters.discard(adapter)
            self._forget(adapter)
            raise

    def _forget(self, adapter: "RedisAdapter") -> tuple[list[bytes], list[bytes]]:
        channels = []
        for ch in (adapter._request_channel, adapter._response_channel, adapter._specific_channel):
            if self._channels.get(ch) == adapter._on_message:
                del self._channels[ch]
                channels.append(ch)
        patterns = []
        if self._patterns.get(adapter._pattern) == adapter._on_pmessage:
            del self._patterns[adapter._pattern]
            patterns.append(adapter._pattern)
        return channels, patterns

    async def detach(self, adapter: "RedisAdapter") -> None:
        if adapter not in self._adapters:
            return
        self._adapters.discard(adapter)
        channels, patterns = self._forget(adapter)
        if not self._adapters:
            await self.close()
            return
        if self._up and self._conn is not None:
            try:
                if channels:
                    await self._conn.send_command(b"UNSUBSCRIBE", *channels, check_health=False)
                if patterns:
                    await self._conn.send_command(b"PUNSUBSCRIBE", *patterns, check_health=False)
            except Exception as err:
                logger.debug("unsubscribe failed: %s", err)

    async def _connect_first(self) -> None:
        self._conn = _own_connection(self.sub.connection_pool)
        try:
            await self._conn.connect()
        except Exception as err:
            raise ConnectionError(f"redis adapter: cannot reach Redis at {self.where}: {err}") from err
        self._last_rx = asyncio.get_running_loop().time()
        self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await self._subscribe(list(self._channels), list(self._patterns), wait=True)
        except BaseException:
            await self.close()
            raise
        self._up = True

    async def _subscribe(self, channels: list[bytes], patterns: list[bytes], wait: bool) -> None:
        loop = asyncio.get_running_loop()
        futs: list["asyncio.Future[None]"] = []
        if wait:
            for kind, names in ((b"subscribe", channels), (b"psubscribe", patterns)):
                for name in names:
                    fut = loop.create_future()
                    self._confirm.setdefault((kind, name), []).append(fut)
                    futs.append(fut)
        conn = self._conn
        if channels:
            await conn.send_command(b"SUBSCRIBE", *channels, check_health=False)
        if patterns:
            await conn.send_command(b"PSUBSCRIBE", *patterns, check_health=False)
        if futs:
            try:
                await asyncio.wait_for(asyncio.gather(*futs), _SUBSCRIBE_TIMEOUT)
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"redis adapter: Redis at {self.where} did not confirm the subscriptions "
                    f"within {_SUBSCRIBE_TIMEOUT:g} s") from None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = _BACKOFF_MIN
        while not self._closed:
            conn = self._conn
            try:
                while True:
                    resp = await conn.read_response(disable_decoding=True, timeout=_HEALTH_INTERVAL)
                    now = loop.time()
                    if resp is None:
                        if now - self._last_rx >= 3 * _HEALTH_INTERVAL:
                            raise ConnectionError(f"no answer from Redis for {3 * _HEALTH_INTERVAL:g} s")
                        if now - self._last_rx >= _HEALTH_INTERVAL and not self._pinged:
                            self._pinged = True
                            await conn.send_command(b"PING", check_health=False)
                        continue
                    self._last_rx = now
                    self._pinged = False
                    self._dispatch(resp)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if self._closed:
                    return
                self._lost(err)
            try:
                await conn.disconnect()
            except Exception:
                pass
            # Reconnect with backoff until Redis is back (or the bus closes).
            while not self._closed:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                try:
                    await conn.connect()
                    self._last_rx = loop.time()
                    self._pinged = False
                    await self._subscribe(list(self._channels), list(self._patterns), wait=False)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    logger.debug("redis adapter: reconnect to %s failed: %s", self.where, err)
                    try:
                        await conn.disconnect()
                    except Exception:
                        pass
                    continue
                backoff = _BACKOFF_MIN
                self._up = True
                self.reconnects += 1
                logger.warning("redis adapter: connection to Redis at %s is back; re-subscribed %d channels "
                               "and %d patterns", self.where, len(self._channels), len(self._patterns))
                break

    def _lost(self, err: BaseException) -> None:
        was_up = self._up
        self._up = False
        if was_up:
            logger.warning("redis adapter: lost the connection to Redis at %s (%s); cluster messages are lost "
                           "until it is back, local delivery goes on", self.where, err)
        failure = ConnectionError(f"redis adapter: lost the connection to Redis at {self.where} ({err})")
        for adapter in list(self._adapters):
            adapter._fail_requests(failure)

    def _dispatch(self, resp: Any) -> None:
        if not isinstance(resp, list) or not resp:
            return
        kind = resp[0]
        try:
            if kind == b"pmessage" and len(resp) == 4:
                handler = self._patterns.get(resp[1])
                if handler is not None:
                    handler(resp[2], resp[3])
            elif kind == b"message" and len(resp) == 3:
                handler = self._channels.get(resp[1])
                if handler is not None:
                    handler(resp[1], resp[2])
            elif kind in (b"subscribe", b"psubscribe") and len(resp) >= 2:
                for fut in self._confirm.pop((kind, resp[1]), ()):
                    if not fut.done():
                        fut.set_result(None)
        except ProtocolError as err:
            self._throttle.warn("redis adapter: dropped a malformed message on %r: %s", resp[2 if kind == b"pmessage"
                                                                                           else 1], err)
        except Exception:
            logger.exception("redis adapter: error while handling a message from Redis")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._up = False
        for futs in self._confirm.values():
            for fut in futs:
                if not fut.done():
                    fut.cancel()
        self._confirm.clear()
        task, self._task = self._task, None
        conn, self._conn = self._conn, None
        await _stop_reader(task, conn)
        await self.publisher.close()
        for client in self._owned:
            try:
                await client.aclose()
            except Exception:
                pass


# -- pending requests ---------------------------------------------------------------


class _Request:
    __slots__ = ("type", "num_sub", "count", "result", "future", "timer", "callback")

    def __init__(self, type: int, num_sub: int, result: Any, future: Optional["asyncio.Future[Any]"],
                 callback: Optional[Callable[..., Any]] = None) -> None:
        self.type = type
        self.num_sub = num_sub
        self.count = 1  # the local answer is the first
        self.result = result
        self.future = future
        self.timer: Optional[asyncio.TimerHandle] = None
        self.callback = callback


def _call(fn: Callable[..., Any], *args: Any) -> None:
    try:
        ret = fn(*args)
        if inspect.isawaitable(ret):
            _tasks.spawn(ret)   # held until done, its failure logged
    except Exception:
        logger.exception("acknowledgement callback failed")


# -- the adapter ----------------------------------------------------------------------


class RedisAdapter(InMemoryAdapter):
    """The adapter of one namespace on one server of a Redis cluster (Node's classic ``RedisAdapter``).

    Build it through ``RedisAdapter.from_url(...)`` or ``create_adapter(...)``,
    which return the factory ``fastsio.Server(adapter=...)`` takes.

    Attributes:
        uid: this adapter's id on the bus (6 characters, like Node's).
        requests_timeout: seconds to wait for the other servers' answers.
    """

    __slots__ = ("uid", "requests_timeout", "_bus", "_key", "_specific", "_channel", "_channel_b", "_pattern",
                 "_request_channel", "_response_channel", "_specific_channel", "_own_prefix", "_requests",
                 "_ack_requests", "_closed", "_attached", "counters")

    def __init__(self, nsp: "Namespace", bus: _Bus, key: str, requests_timeout: float,
                 publish_on_specific_response_channel: bool) -> None:
        super().__init__(nsp)
        self.uid = _wire.uid()
        self.requests_timeout = requests_timeout
        self._bus = bus
        self._key = key
        self._specific = publish_on_specific_response_channel
        self._channel = f"{key}#{nsp.name}#"
        self._channel_b = self._channel.encode()
        self._pattern = self._channel_b + b"*"
        self._request_channel = f"{key}-request#{nsp.name}#".encode()
        self._response_channel = f"{key}-response#{nsp.name}#".encode()
        self._specific_channel = self._response_channel + self.uid.encode() + b"#"
        # msgpack of [uid, ...] starts with these bytes: own broadcasts are dropped undecoded.
        self._own_prefix = b"\x93\xa6" + self.uid.encode()
        self._requests: dict[str, _Request] = {}
        self._ack_requests: dict[str, tuple[Callable[[int], Any], Callable[..., Any], asyncio.TimerHandle]] = {}
        self._closed = False
        self._attached = False
        #: messages published and received on the bus, requests that timed out (read by fastsio.metrics)
        self.counters = {"published": 0, "received": 0, "request_timeouts": 0}

    @staticmethod
    def from_url(url: str, key: str = "socket.io", requests_timeout: float = 5,
                 publish_on_specific_response_channel: bool = False) -> "RedisAdapterFactory":
        """A factory for ``fastsio.Server(adapter=...)``, on a Redis it connects to by URL.

        Args:
            url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` or ``unix://...``.
            key: the channel prefix (Node's ``key``), the same on every server of the cluster.
            requests_timeout: seconds to wait for answers to ``fetch_sockets``,
                ``all_rooms`` and ``server_side_emit`` with an ack (Node's
                ``requestsTimeout``, 5000 ms).
            publish_on_specific_response_channel: answer on the requester's own
                response channel instead of the shared one.

        Returns:
            The factory; the connections open when the first namespace's
            adapter initialises, on the serving loop, and close with ``await io.close()``.

        Raises:
            ValueError: a bad option value.

        Example:
            >>> io = fastsio.Server(adapter=RedisAdapter.from_url("redis://127.0.0.1:6379/0"))
        """
        _check_options(key, requests_timeout)
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        def make() -> tuple[Any, Any, list[Any]]:
            client = aioredis.Redis.from_url(
                url, socket_connect_timeout=5, socket_timeout=10, decode_responses=False,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2), protocol=2)
            return client, client, [client]

        return RedisAdapterFactory(make, key, requests_timeout, publish_on_specific_response_channel)

    def __repr__(self) -> str:
        return f"<RedisAdapter nsp={self.nsp.name!r} uid={self.uid!r}>"

    # -- life cycle ---------------------------------------------------------------

    async def init(self) -> None:
        """Subscribes this namespace's channels; returns once Redis confirmed them.

        Raises:
            ConnectionError: Redis is unreachable.
            TimeoutError: Redis did not confirm the subscriptions in time.
        """
        if self._attached:
            return
        await self._bus.attach(self)
        self._attached = True

    async def close(self) -> None:
        """Unsubscribes; fails the requests still waiting. Closes the connections with the last adapter."""
        if self._closed:
            return
        self._closed = True
        self._fail_requests(ConnectionError("redis adapter closed"))
        for _, _, timer in self._ack_requests.values():
            timer.cancel()
        self._ack_requests.clear()
        await self._bus.detach(self)

    def _fail_requests(self, err: BaseException) -> None:
        requests, self._requests = self._requests, {}
        for req in requests.values():
            if req.timer is not None:
                req.timer.cancel()
            what = _OPERATION.get(req.type, "request")
            failure = type(err)(f"{err} while waiting for {what} responses")
            if req.callback is not None:
                try:
                    failure.responses = req.result  # type: ignore[attr-defined]
                except AttributeError:
                    pass
                _call(req.callback, failure, req.result)
            elif req.future is not None and not req.future.done():
                req.future.set_exception(failure)

    # -- publishing ---------------------------------------------------------------

    def _publish(self, channel: bytes, data: bytes) -> None:
        self.counters["published"] += 1
        self._bus.publisher.publish(channel, data)

    def _publish_response(self, request: dict[str, Any], data: bytes) -> None:
        channel = self._response_channel
        if self._specific:
            req_uid = request.get("uid")
            if isinstance(req_uid, str):
                channel = self._response_channel + req_uid.encode() + b"#"
        self._publish(channel, data)

    def _json(self, obj: Any) -> bytes:
        return _wire.encode_json(obj)

    # -- broadcast ----------------------------------------------------------------

    def broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        """Sends ``packet`` to the matching sockets of every server: published once, delivered locally at once."""
        if not opts.flags.get("local"):
            msg = _wire.encode([self.uid, {"type": 2, "data": packet.data, "nsp": self.nsp.name},
                                _wire.opts_to_wire(opts)])
            channel = self._channel_b
            if len(opts.rooms) == 1:
                for room in opts.rooms:
                    channel = channel + room.encode() + b"#"
            self._publish(channel, msg)
        super().broadcast(packet, opts)

    def broadcast_with_ack(self, packet: Any, opts: BroadcastOptions, client_count_callback: Callable[[int], Any],
                           ack: Callable[..., Any]) -> None:
        """A broadcast whose clients' acknowledgements come back from every server."""
        if not opts.flags.get("local"):
            request_id = _wire.uid()
            msg = _wire.encode({"uid": self.uid, "requestId": request_id, "type": BROADCAST,
                                "packet": {"type": 2, "data": packet.data, "nsp": self.nsp.name},
                                "opts": _wire.opts_to_wire(opts)})
            timeout = opts.flags.get("timeout")
            if timeout is None:
                timeout = self.requests_timeout
            timer = asyncio.get_running_loop().call_later(timeout, self._ack_requests.pop, request_id, None)
            self._ack_requests[request_id] = (client_count_callback, ack, timer)
            self._publish(self._request_channel, msg)
        super().broadcast_with_ack(packet, opts, client_count_callback, ack)

    # -- cluster operations ---------------------------------------------------------

    async def server_count(self) -> int:
        """How many servers serve this namespace: ``PUBSUB NUMSUB`` of the request channel.

        Raises:
            ConnectionError: Redis is unreachable.
        """
        try:
            result = await self._bus.pub.execute_command("PUBSUB", "NUMSUB", self._request_channel)
        except Exception as err:
            raise ConnectionError(f"redis adapter: serverCount failed, Redis at {self._bus.where}: {err}") from err
        # [(channel, count)] with redis-py's callback, [channel, count] without
        if result and isinstance(result[0], (tuple, list)):
            result = result[0]
        try:
            return int(result[1])
        except (IndexError, TypeError, ValueError):
            raise ConnectionError(f"redis adapter: unexpected PUBSUB NUMSUB answer {result!r}") from None

    async def _request(self, type: int, body: dict[str, Any], num_sub: int, result: Any) -> Any:
        request_id = _wire.uid()
        body = {"uid": self.uid, "requestId": request_id, "type": type, **body}
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[Any]" = loop.create_future()
        req = _Request(type, num_sub, result, fut)
        what = _OPERATION[type]

        def expire() -> None:
            if self._requests.pop(request_id, None) is not None and not fut.done():
                self.counters["request_timeouts"] += 1
                fut.set_exception(TimeoutError(
                    f"timeout reached while waiting for {what} response "
                    f"({req.count} of {num_sub} servers answered in {self.requests_timeout:g} s)"))

        req.timer = loop.call_later(self.requests_timeout, expire)
        self._requests[request_id] = req
        self._publish(self._request_channel, self._json(body))
        try:
            return await fut
        finally:
            req.timer.cancel()
            self._requests.pop(request_id, None)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        """Local ``Socket`` objects plus, for the other servers' sockets, dicts for ``RemoteSocket``.

        Raises:
            TimeoutError: not every server answered within ``requests_timeout``.
            ConnectionError: Redis is unreachable or was lost meanwhile.
        """
        local: list[Any] = list(super().fetch_sockets(opts))
        if opts.flags.get("local"):
            return local
        num_sub = await self.server_count()
        if num_sub <= 1:
            return local
        wire = _wire.opts_to_wire(opts, flags=False)
        result: list[Any] = await self._request(REMOTE_FETCH, {"opts": wire}, num_sub, local)
        return result

    async def all_rooms(self) -> set[str]:
        """Every room of this namespace on every server (socket-id rooms included, as Node).

        Raises:
            TimeoutError: not every server answered within ``requests_timeout``.
            ConnectionError: Redis is unreachable or was lost meanwhile.
        """
        rooms = set(self.rooms)
        num_sub = await self.server_count()
        if num_sub <= 1:
            return rooms
        result: set[str] = await self._request(ALL_ROOMS, {}, num_sub, rooms)
        return result

    def add_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        """Matching sockets of every server join ``rooms`` (local ones at once)."""
        super().add_sockets(opts, rooms)
        if not opts.flags.get("local"):
            self._publish(self._request_channel, self._json(
                {"uid": self.uid, "type": REMOTE_JOIN, "opts": _wire.opts_to_wire(opts, flags=False),
                 "rooms": list(rooms)}))

    def del_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        """Matching sockets of every server leave ``rooms`` (local ones at once)."""
        super().del_sockets(opts, rooms)
        if not opts.flags.get("local"):
            self._publish(self._request_channel, self._json(
                {"uid": self.uid, "type": REMOTE_LEAVE, "opts": _wire.opts_to_wire(opts, flags=False),
                 "rooms": list(rooms)}))

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnects the matching sockets of every server (local ones at once)."""
        if not opts.flags.get("local"):
            self._publish(self._request_channel, self._json(
                {"uid": self.uid, "type": REMOTE_DISCONNECT, "opts": _wire.opts_to_wire(opts, flags=False),
                 "close": bool(close)}))
        super().disconnect_sockets(opts, close)

    def server_side_emit(self, packet: list[Any]) -> Any:
        """Sends ``[event, *args]`` to the other servers; a trailing callable collects their answers.

        The callback gets ``(err, responses)``: ``err`` is an ``AckTimeout``
        when not every server answered within ``requests_timeout`` (its
        ``responses`` holds what came), a ``ConnectionError`` when Redis is
        unreachable. Arguments travel as JSON, as between Node servers.
        """
        if packet and callable(packet[-1]):
            return self._server_side_emit_with_ack(packet[:-1], packet[-1])
        self._publish(self._request_channel, self._json({"uid": self.uid, "type": SERVER_SIDE_EMIT, "data": packet}))
        return None

    async def _server_side_emit_with_ack(self, data: list[Any], ack: Callable[..., Any]) -> None:
        try:
            num_sub = await self.server_count() - 1
        except ConnectionError as err:
            _call(ack, err, [])
            return
        if num_sub <= 0:
            _call(ack, None, [])
            return
        request_id = _wire.uid()
        responses: list[Any] = []
        req = _Request(SERVER_SIDE_EMIT, num_sub, responses, None, ack)
        req.count = 0

        def expire() -> None:
            if self._requests.pop(request_id, None) is not None:
                self.counters["request_timeouts"] += 1
                err = AckTimeout(f"timeout reached: only {len(responses)} responses received out of {num_sub}")
                err.responses = responses  # type: ignore[attr-defined]
                _call(ack, err, responses)

        req.timer = asyncio.get_running_loop().call_later(self.requests_timeout, expire)
        self._requests[request_id] = req
        self._publish(self._request_channel, self._json(
            {"uid": self.uid, "requestId": request_id, "type": SERVER_SIDE_EMIT, "data": data}))

    # -- receiving -------------------------------------------------------------------

    def _on_pmessage(self, channel: bytes, data: bytes) -> None:
        self.counters["received"] += 1
        base = self._channel_b
        if not channel.startswith(base):
            return
        if len(channel) > len(base) + 1:
            # One-room broadcast: skip it undecoded unless somebody here is in that room.
            try:
                room = channel[len(base):-1].decode()
            except UnicodeDecodeError:
                return
            if room not in self.rooms:
                return
        if data.startswith(self._own_prefix):
            return
        msg = _wire.decode(data)
        if not isinstance(msg, list) or len(msg) < 3:
            raise ProtocolError("a broadcast is not an array [uid, packet, opts]")
        uid, packet, raw_opts = msg[0], msg[1], msg[2]
        if uid == self.uid:
            return
        if not isinstance(packet, dict):
            raise ProtocolError("a broadcast packet is not an object")
        if packet.get("nsp", "/") != self.nsp.name:
            return
        opts = _wire.opts_from_wire(raw_opts)
        self._local_broadcast(_packet(packet, self.nsp.name), opts)

    def _local_broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        try:
            InMemoryAdapter.broadcast(self, packet, opts)
        except (TypeError, ValueError) as err:
            raise ProtocolError(f"a broadcast from the cluster cannot be sent to clients: {err}") from None

    def _on_message(self, channel: bytes, data: bytes) -> None:
        self.counters["received"] += 1
        if channel == self._request_channel:
            self._on_request(data)
        else:
            self._on_response(data)

    def _on_request(self, data: bytes) -> None:
        request = _wire.decode_any(data)
        if not isinstance(request, dict):
            raise ProtocolError("a request is not an object")
        if request.get("uid") == self.uid:
            # Our own request: local work was done when it was sent.
            return
        type_ = request.get("type")
        if type_ == BROADCAST:
            self._on_broadcast_request(request)
        elif type_ in (REMOTE_JOIN, REMOTE_LEAVE, REMOTE_DISCONNECT):
            self._on_remote_change(type_, request)
        elif type_ == REMOTE_FETCH:
            opts = _wire.opts_from_wire(request.get("opts"))
            sockets = [_wire.socket_to_wire(s) for s in InMemoryAdapter.fetch_sockets(self, opts)]
            self._publish_response(request, self._fetch_answer(request.get("requestId"), sockets))
        elif type_ == ALL_ROOMS:
            self._publish_response(request, self._json({"requestId": request.get("requestId"),
                                                        "rooms": list(self.rooms)}))
        elif type_ == SOCKETS:
            rooms = _wire.opts_from_wire({"rooms": request.get("rooms")}).rooms
            ids = self._target_ids(BroadcastOptions(rooms))
            self._publish_response(request, self._json({"requestId": request.get("requestId"), "sockets": ids}))
        elif type_ == SERVER_SIDE_EMIT:
            self._on_server_side_emit(request)
        else:
            logger.debug("redis adapter: ignoring request of unknown type %r", type_)

    def _fetch_answer(self, request_id: Any, sockets: list[dict[str, Any]]) -> bytes:
        try:
            return self._json({"requestId": request_id, "sockets": sockets})
        except TypeError as err:
            logger.error("redis adapter: socket.data of a fetched socket is not JSON-serialisable (%s); "
                         "sent as {}", err)
            for entry in sockets:
                try:
                    self._json(entry["data"])
                except TypeError:
                    entry["data"] = {}
            return self._json({"requestId": request_id, "sockets": sockets})

    def _on_remote_change(self, type_: int, request: dict[str, Any]) -> None:
        raw = request.get("opts")
        if raw is None:
            # Legacy single-socket form (socket.io-redis 5 and older).
            sid = request.get("sid")
            sock = self.nsp.sockets.get(sid) if isinstance(sid, str) else None
            if sock is None:
                return
            room = request.get("room")
            if type_ == REMOTE_JOIN and isinstance(room, str):
                sock.join(room)
            elif type_ == REMOTE_LEAVE and isinstance(room, str):
                sock.leave(room)
            elif type_ == REMOTE_DISCONNECT:
                sock.disconnect(bool(request.get("close")))
            self._publish_response(request, self._json({"requestId": request.get("requestId")}))
            return
        opts = _wire.opts_from_wire({"rooms": raw.get("rooms"), "except": raw.get("except")}
                                    if isinstance(raw, dict) else raw)
        if type_ == REMOTE_DISCONNECT:
            InMemoryAdapter.disconnect_sockets(self, opts, bool(request.get("close")))
            return
        rooms = request.get("rooms")
        if not isinstance(rooms, list):
            raise ProtocolError("a join/leave request has no rooms array")
        names = [_wire._room(r) for r in rooms]
        if type_ == REMOTE_JOIN:
            InMemoryAdapter.add_sockets(self, opts, names)
        else:
            InMemoryAdapter.del_sockets(self, opts, names)

    def _on_server_side_emit(self, request: dict[str, Any]) -> None:
        data = request.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ProtocolError("a serverSideEmit request has no [event, ...args] data")
        if data[0] in _NOT_REMOTE_EVENTS:
            raise ProtocolError(f"a serverSideEmit of the reserved event {data[0]!r}")
        request_id = request.get("requestId")
        if request_id is None:
            self.nsp._on_server_side_emit(data)
            return
        called = False

        def callback(*args: Any) -> None:
            nonlocal called
            if called:
                return
            called = True
            # Only the first argument travels; always on the shared response channel (as Node).
            self._publish(self._response_channel, self._json(
                {"type": SERVER_SIDE_EMIT, "requestId": request_id, "data": args[0] if args else None}))

        self.nsp._on_server_side_emit([*data, callback])

    def _on_broadcast_request(self, request: dict[str, Any]) -> None:
        request_id = request.get("requestId")
        if not isinstance(request_id, str):
            raise ProtocolError("a broadcast request has no requestId")
        if request_id in self._ack_requests:
            return
        raw = request.get("opts")
        opts = _wire.opts_from_wire(raw)
        packet = request.get("packet")
        if not isinstance(packet, dict):
            raise ProtocolError("a broadcast request has no packet")
        pkt = _packet(packet, self.nsp.name)
        timeout = opts.flags.get("timeout")
        if not isinstance(timeout, (int, float)):
            timeout = self.requests_timeout

        def on_count(count: int) -> None:
            self._publish_response(request, self._json(
                {"type": BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count}))

        def on_ack(*args: Any) -> None:
            self._publish_response(request, _wire.encode(
                {"type": BROADCAST_ACK, "requestId": request_id, "packet": args[0] if args else None}))

        try:
            InMemoryAdapter.broadcast_with_ack(self, pkt, opts, on_count, on_ack)
        except (TypeError, ValueError) as err:
            raise ProtocolError(f"a broadcast from the cluster cannot be sent to clients: {err}") from None
        ack_id = pkt.id
        if ack_id is not None:
            # Clients that never answer must not keep the entry forever.
            asyncio.get_running_loop().call_later(timeout + 1, self._drop_acks, ack_id)

    def _drop_acks(self, ack_id: int) -> None:
        for sock in self.nsp.sockets.values():
            if sock._acks:
                sock._acks.pop(ack_id, None)

    def _on_response(self, data: bytes) -> None:
        response = _wire.decode_any(data)
        if not isinstance(response, dict):
            raise ProtocolError("a response is not an object")
        request_id = response.get("requestId")
        if not isinstance(request_id, str):
            return
        entry = self._ack_requests.get(request_id)
        if entry is not None:
            type_ = response.get("type")
            if type_ == BROADCAST_CLIENT_COUNT:
                count = response.get("clientCount")
                if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                    raise ProtocolError("a broadcast client count is not a count")
                entry[0](count)
            elif type_ == BROADCAST_ACK:
                entry[1](response.get("packet"))
            return
        req = self._requests.get(request_id)
        if req is None:
            return
        if req.type == REMOTE_FETCH:
            sockets = response.get("sockets")
            req.count += 1
            if isinstance(sockets, list):
                for item in sockets:
                    try:
                        req.result.append(_wire.socket_from_wire(item))
                    except ProtocolError as err:
                        logger.warning("redis adapter: dropped a malformed fetched socket: %s", err)
        elif req.type == ALL_ROOMS:
            rooms = response.get("rooms")
            req.count += 1
            if isinstance(rooms, list):
                for room in rooms:
                    try:
                        req.result.add(_wire._room(room))
                    except ProtocolError:
                        pass
        elif req.type == SERVER_SIDE_EMIT:
            if response.get("type") != SERVER_SIDE_EMIT:
                return
            req.result.append(response.get("data"))
            if len(req.result) >= req.num_sub:
                self._requests.pop(request_id, None)
                if req.timer is not None:
                    req.timer.cancel()
                if req.callback is not None:
                    _call(req.callback, None, req.result)
            return
        else:
            return
        if req.count >= req.num_sub:
            self._requests.pop(request_id, None)
            if req.timer is not None:
                req.timer.cancel()
            if req.future is not None and not req.future.done():
                req.future.set_result(req.result)


def _packet(packet: dict[str, Any], nsp: str) -> Any:
    data = packet.get("data")
    if not isinstance(data, list) or not data:
        raise ProtocolError("a broadcast packet has no data array")
    type_ = packet.get("type", 2)
    if type_ not in (2, 5):
        raise ProtocolError(f"a broadcast packet of type {type_!r} (not an event)")
    return sio_codec.Packet(sio_codec.EVENT, nsp, data)


def _check_options(key: Any, requests_timeout: Any) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("key must be a non-empty string")
    if isinstance(requests_timeout, bool) or not isinstance(requests_timeout, (int, float)) \
            or not 0 < requests_timeout < math.inf:
        raise ValueError("requests_timeout must be a positive number of seconds")


class RedisAdapterFactory:
    """What ``RedisAdapter.from_url`` and ``create_adapter`` return: ``Server(adapter=...)`` calls it per namespace.

    All the namespaces of one server share its connections (one subscriber,
    one publisher). Use one factory per ``Server``.

    Attributes:
        key, requests_timeout, publish_on_specific_response_channel: the options.
    """

    def __init__(self, make_clients: Callable[[], tuple[Any, Any, list[Any]]], key: str, requests_timeout: float,
                 publish_on_specific_response_channel: bool) -> None:
        self._make_clients = make_clients
        self.key = key
        self.requests_timeout = float(requests_timeout)
        self.publish_on_specific_response_channel = bool(publish_on_specific_response_channel)
        self._bus: Optional[_Bus] = None

    def __repr__(self) -> str:
        return f"<RedisAdapterFactory key={self.key!r}>"

    @property
    def bus(self) -> Optional[_Bus]:
        """The live connection set, once a namespace initialised (internal; for tests and metrics)."""
        return self._bus

    def __call__(self, nsp: "Namespace") -> RedisAdapter:
        bus = self._bus
        if bus is None or bus._closed:
            pub, sub, owned = self._make_clients()
            bus = self._bus = _Bus(pub, sub, owned)
        return RedisAdapter(nsp, bus, self.key, self.requests_timeout, self.publish_on_specific_response_channel)


def create_adapter(pub_client: Any, sub_client: Any = None, *, key: str = "socket.io", requests_timeout: float = 5,
                   publish_on_specific_response_channel: bool = False) -> RedisAdapterFactory:
    """A factory for ``fastsio.Server(adapter=...)`` on redis-py asyncio clients you built (Node's ``createAdapter``).

    Use this for TLS, Sentinel, unix sockets or authentication set up your
    way. The adapter opens two connections of its own, made like the clients'
    (a subscriber from ``sub_client``, a publisher from ``pub_client``, both
    RESP2), and closes them on ``await io.close()``; it never closes your clients.

    Args:
        pub_client: a ``redis.asyncio.Redis``; publishes and runs ``PUBSUB NUMSUB``.
        sub_client: a ``redis.asyncio.Redis`` for the subscriber connection
            (``pub_client``'s pool when None).
        key, requests_timeout, publish_on_specific_response_channel: as ``RedisAdapter.from_url``.

    Raises:
        ValueError: a bad option value.
        TypeError: a client that is not a redis-py asyncio client.

    Example:
        >>> import redis.asyncio as redis
        >>> pub = redis.Redis(host="127.0.0.1", ssl=True)
        >>> io = fastsio.Server(adapter=create_adapter(pub, redis.Redis(host="127.0.0.1", ssl=True)))
    """
    _check_options(key, requests_timeout)
    for client in (pub_client, sub_client):
        if client is not None and not hasattr(client, "connection_pool"):
            raise TypeError(f"expected a redis.asyncio.Redis client, got {type(client).__name__}")
    sub = sub_client if sub_client is not None else pub_client
    return RedisAdapterFactory(lambda: (pub_client, sub, []), key, requests_timeout,
                               publish_on_specific_response_channel)


# -- the emitter ----------------------------------------------------------------------

Rooms = Union[str, Iterable[str]]


def _rooms_of(room: Rooms) -> list[str]:
    return [room] if isinstance(room, str) else list(room)


class Emitter:
    """Publishes to a Redis cluster of socket.io servers from outside one (Node's ``@socket.io/redis-emitter``).

    Emitting needs a running event loop. Each method returns at once; the
    messages go out in order on one connection. ``emit`` and the other
    methods return an ``asyncio.Future`` that is done once Redis took the
    message (await it, or ``await emitter.flush()``, before a script exits),
    or fails with ``ConnectionError``.

    Args:
        redis_client: a ``redis.asyncio.Redis``.
        key: the channel prefix of the cluster (``"socket.io"``).
        nsp: the namespace (``"/"``).

    Example:
        >>> emitter = Emitter.from_url("redis://127.0.0.1:6379/0")
        >>> await emitter.to("room1").emit("news", {"x": 1})
        >>> await emitter.of("/admin").emit("alert", b"\\x00\\x01")
        >>> await emitter.close()
    """

    __slots__ = ("_client", "_key", "_nsp", "_publisher", "_owned", "_rooms", "_except", "_flags")

    def __init__(self, redis_client: Any, key: str = "socket.io", nsp: str = "/", *, _publisher: Any = None,
                 _owned: bool = False, _rooms: tuple[str, ...] = (), _except: tuple[str, ...] = (),
                 _flags: Optional[dict[str, Any]] = None) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty string")
        if not isinstance(nsp, str):
            raise ValueError("nsp must be a string")
        if not hasattr(redis_client, "connection_pool"):
            raise TypeError(f"expected a redis.asyncio.Redis client, got {type(redis_client).__name__}")
        self._client = redis_client
        self._key = key
        self._nsp = nsp if nsp.startswith("/") else "/" + nsp
        self._publisher = _publisher if _publisher is not None else _Publisher(redis_client.connection_pool,
                                                                               "redis emitter")
        self._owned = _owned
        self._rooms = _rooms
        self._except = _except
        self._flags = _flags or {}

    @classmethod
    def from_url(cls, url: str, key: str = "socket.io") -> "Emitter":
        """An emitter on a Redis it connects to by URL (closed by ``await emitter.close()``)."""
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10, protocol=2)
        return cls(client, key, "/", _owned=True)

    def __repr__(self) -> str:
        return f"<Emitter nsp={self._nsp!r} rooms={list(self._rooms)!r}>"

    def _with(self, nsp: Optional[str] = None, rooms: Optional[tuple[str, ...]] = None,
              except_: Optional[tuple[str, ...]] = None, flags: Optional[dict[str, Any]] = None) -> "Emitter":
        return Emitter(self._client, self._key, nsp if nsp is not None else self._nsp, _publisher=self._publisher,
                       _owned=self._owned, _rooms=self._rooms if rooms is None else rooms,
                       _except=self._except if except_ is None else except_,
                       _flags=self._flags if flags is None else flags)

    # -- modifiers ------------------------------------------------------------------

    def of(self, nsp: str) -> "Emitter":
        """The same emitter for namespace ``nsp`` (a leading ``/`` is added when missing)."""
        return self._with(nsp=nsp if nsp.startswith("/") else "/" + nsp, rooms=(), except_=(), flags={})

    def to(self, room: Rooms) -> "Emitter":
        """Also target ``room`` (a name or several)."""
        rooms = list(self._rooms)
        for r in _rooms_of(room):
            if r not in rooms:
                rooms.append(r)
        return self._with(rooms=tuple(rooms))

    in_ = to

    def except_(self, room: Rooms) -> "Emitter":
        """Leave out the sockets of ``room`` (a name or several)."""
        rooms = list(self._except)
        for r in _rooms_of(room):
            if r not in rooms:
                rooms.append(r)
        return self._with(except_=tuple(rooms))

    @property
    def volatile(self) -> "Emitter":
        """Servers may drop the event for clients that cannot take it now."""
        return self._with(flags={**self._flags, "volatile": True})

    def compress(self, compress: bool) -> "Emitter":
        """Set the compress flag."""
        return self._with(flags={**self._flags, "compress": bool(compress)})

    # -- publishing -------------------------------------------------------------------

    def _publish(self, channel: str, data: bytes) -> "asyncio.Future[None]":
        fut = self._publisher.publish(channel.encode(), data, want_future=True)
        assert fut is not None
        return fut

    def _opts(self) -> dict[str, Any]:
        return {"rooms": list(self._rooms), "except": list(self._except)}

    def emit(self, event: str, *args: Any) -> "asyncio.Future[None]":
        """Send ``event`` to the targeted sockets of every server.

        Raises:
            ValueError: a reserved event name, or an acknowledgement callback
                (not supported by the emitter, as in Node).
            TypeError: arguments with no msgpack form.
        """
        if event in sio_codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        if args and callable(args[-1]):
            raise ValueError("acknowledgements are not supported by the emitter")
        packet = {"type": 2, "data": [event, *args], "nsp": self._nsp}
        # Node's emitter writes the options in this order.
        opts = {"rooms": list(self._rooms), "flags": self._flags, "except": list(self._except)}
        msg = _wire.encode(["emitter", packet, opts])
        channel = f"{self._key}#{self._nsp}#"
        if len(self._rooms) == 1:
            channel += self._rooms[0] + "#"
        return self._publish(channel, msg)

    def _request_channel(self) -> str:
        return f"{self._key}-request#{self._nsp}#"

    def sockets_join(self, rooms: Rooms) -> "asyncio.Future[None]":
        """Make the targeted sockets of every server join ``rooms``."""
        return self._publish(self._request_channel(), _wire.encode_json(
            {"type": REMOTE_JOIN, "opts": self._opts(), "rooms": _rooms_of(rooms)}))

    def sockets_leave(self, rooms: Rooms) -> "asyncio.Future[None]":
        """Make the targeted sockets of every server leave ``rooms``."""
        return self._publish(self._request_channel(), _wire.encode_json(
            {"type": REMOTE_LEAVE, "opts": self._opts(), "rooms": _rooms_of(rooms)}))

    def disconnect_sockets(self, close: bool = False) -> "asyncio.Future[None]":
        """Disconnect the targeted sockets of every server (closing their connections if ``close``)."""
        return self._publish(self._request_channel(), _wire.encode_json(
            {"type": REMOTE_DISCONNECT, "opts": self._opts(), "close": bool(close)}))

    def server_side_emit(self, event: str, *args: Any) -> "asyncio.Future[None]":
        """Fire ``event`` on every server (``io.on(event, ...)``); arguments travel as JSON.

        Raises:
            ValueError: a reserved name, or an acknowledgement callback (not supported, as in Node).
        """
        if event in sio_codec.RESERVED_EVENTS:
            raise ValueError(f'"{event}" is a reserved event name')
        if args and callable(args[-1]):
            raise ValueError("acknowledgements are not supported by the emitter")
        return self._publish(self._request_channel(), _wire.encode_json(
            {"uid": "emitter", "type": SERVER_SIDE_EMIT, "data": [event, *args]}))

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every message emitted so far reached Redis (or was dropped), at most ``timeout`` seconds."""
        await self._publisher.flush(timeout)

    async def close(self) -> None:
        """Flush, then give back the connection (and close the client ``from_url`` made)."""
        await self.flush()
        await self._publisher.close()
        if self._owned:
            await self._client.aclose()

    aclose = close

