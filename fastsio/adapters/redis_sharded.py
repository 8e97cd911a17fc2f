"""Redis sharded pub/sub transport of the ClusterAdapter: Node's ``createShardedAdapter``.

Wire-compatible with ``@socket.io/redis-adapter`` 8.3's sharded adapter
(``lib/sharded-adapter.ts``), so fastsio and Node servers on one Redis 7
form one cluster:

- channels (SSUBSCRIBE / SPUBLISH): ``<prefix>#<nsp>#`` carries every
  message, ``<prefix>#<nsp>#<uid>#`` the responses to the server whose
  adapter has that uid; with ``subscription_mode="dynamic"`` (the default)
  one ``<prefix>#<nsp>#<room>#`` per public room that has members on this
  server (subscribed when the room appears, unsubscribed when it empties),
  ``"dynamic-private"`` does it for socket-id rooms too, ``"static"`` never.
  A broadcast without ack to exactly one room goes to the room's channel
  (in ``"dynamic"`` mode unless the room looks like a socket id: 20
  characters), so servers without members of the room never receive it.
- a message is the ClusterAdapter dict (``fastsio.adapters.cluster``), as
  JSON, or as MessagePack (notepack.io's encoding) when its type may carry
  binary (3, 8, 9, 10, 12) and it does; receivers sniff the first byte.
- ``server_count()`` is ``PUBSUB SHARDNUMSUB <prefix>#<nsp>#``.

One Redis connection publishes (commands are pipelined by one writer task,
so messages keep their order) and one pub/sub connection reads, shared by
every namespace of the server. When Redis goes away the reader logs it,
fails the cluster requests in flight, reconnects with backoff and
re-subscribes every channel; local delivery goes on meanwhile and what is
published while the bus is down is dropped (logged), as Node does.

Example:
    >>> io = fastsio.Server(adapter=RedisShardedAdapter.from_url("redis://127.0.0.1:6379/0"))
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Optional

import orjson

from ..exceptions import ProtocolError
from . import _wire
from .cluster import ClusterAdapter, ClusterMessage

if TYPE_CHECKING:
    from ..namespace import Namespace

__all__ = ["RedisShardedAdapter", "create_sharded_adapter"]

logger = logging.getLogger(__name__)

_MODES = ("static", "dynamic", "dynamic-private")
# Types that may carry binary: msgpack when they do (Node's rule).
_MAY_CONTAIN_BINARY = frozenset((3, 8, 9, 10, 12))
_MAX_QUEUE = 100_000
_BACKOFF_MAX = 2.0
_CONNECT_DEADLINE = 10.0


def _encode(message: ClusterMessage) -> bytes:
    """JSON, or msgpack when a type that may carry binary does (orjson refuses bytes)."""
    if message["type"] in _MAY_CONTAIN_BINARY:
        try:
            return orjson.dumps(message)
        except (TypeError, orjson.JSONEncodeError):
            return _wire.encode(message)
    return _wire.encode_json(message)


class _Bus:
    """The Redis connections of one server, shared by the adapters of its namespaces."""

    def __init__(self, pub: Any, sub: Optional[Any], owned: bool, description: str) -> None:
        self.pub = pub
        self.sub = sub if sub is not None else pub
        self.owned = owned
        self.description = description
        # channel -> (adapter, is_response_channel)
        self.handlers: dict[bytes, tuple["RedisShardedAdapter", bool]] = {}
        self.subscribed: set[bytes] = set()
        self.adapters: set["RedisShardedAdapter"] = set()
        self.pubsub: Any = None
        self.reader: Optional["asyncio.Task[None]"] = None
        self.writer: Optional["asyncio.Task[None]"] = None
        self.syncer: Optional["asyncio.Task[None]"] = None
        self.queue: deque[tuple[bytes, bytes, Optional["asyncio.Future[None]"]]] = deque()
        self.wake = asyncio.Event()
        self.dirty = asyncio.Event()
        self.connected = False
        self.closed = False
        self.dropped = 0
        self.started: Optional["asyncio.Future[None]"] = None

    # -- start / stop -------------------------------------------------------

    async def start(self) -> None:
        if self.started is None:
            self.started = asyncio.ensure_future(self._first_connect())
        await asyncio.shield(self.started)

    async def _first_connect(self) -> None:
        try:
            await asyncio.wait_for(self._open(), _CONNECT_DEADLINE)
        except asyncio.TimeoutError:
            self.started = None
            raise ConnectionError(f"the sharded Redis adapter cannot reach Redis ({self.description}): "
                                  f"no answer within {_CONNECT_DEADLINE:g}s") from None
        except Exception as exc:
            self.started = None
            raise ConnectionError(f"the sharded Redis adapter cannot reach Redis ({self.description}): {exc}") \
                from exc
        self.connected = True
        self.reader = asyncio.ensure_future(self._read())
        self.writer = asyncio.ensure_future(self._write())
        self.syncer = asyncio.ensure_future(self._sync())

    async def _open(self) -> None:
        await self.pub.ping()
        self.pubsub = self.sub.pubsub()
        await self._resubscribe()

    async def stop(self) -> None:
        self.closed = True
        self.wake.set()
        self.dirty.set()
        if self.writer is not None:
            # flush what is queued (ADAPTER_CLOSE...), briefly
            try:
                await asyncio.wait_for(asyncio.shield(self.writer), 2)
            except (asyncio.TimeoutError, Exception):
                pass
        for task in (self.reader, self.writer, self.syncer):
            if task is not None and not task.done():
                task.cancel()
        tasks = [t for t in (self.reader, self.writer, self.syncer) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self.pubsub is not None:
            try:
                await asyncio.wait_for(self.pubsub.aclose(), 2)
            except Exception:
                pass
        if self.owned:
            for client in {id(self.pub): self.pub, id(self.sub): self.sub}.values():
                try:
                    await asyncio.wait_for(client.aclose(), 2)
                except Exception:
                    pass

    # -- subscriptions --------------------------------------------------------

    def want(self, channel: bytes, adapter: "RedisShardedAdapter", response: bool) -> None:
        self.handlers[channel] = (adapter, response)
        self.dirty.set()

    def unwant(self, channel: bytes) -> None:
        if self.handlers.pop(channel, None) is not None:
            self.dirty.set()

    async def _resubscribe(self) -> None:
        self.subscribed = set()
        wanted = list(self.handlers)
        if wanted:
            await self.pubsub.ssubscribe(*wanted)
            self.subscribed = set(wanted)

    async def _sync(self) -> None:
        while not self.closed:
            await self.dirty.wait()
            self.dirty.clear()
            if self.closed or not self.connected:
                continue
            wanted = set(self.handlers)
            add = wanted - self.subscribed
            remove = self.subscribed - wanted
            try:
                if add:
                    await self.pubsub.ssubscribe(*add)
                    self.subscribed |= add
                if remove:
                    await self.pubsub.sunsubscribe(*remove)
                    self.subscribed -= remove
            except Exception as exc:
                # the reader notices the lost connection and resubscribes everything
                logger.debug("subscription change failed: %s", exc)

    async def wait_synced(self, timeout: float = 5) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while set(self.handlers) != self.subscribed and loop.time() < end and not self.closed:
            await asyncio.sleep(0.005)

    # -- reading --------------------------------------------------------------

    async def _read(self) -> None:
        backoff = 0.05
        while not self.closed:
            try:
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.closed:
                    return
                await self._lost(exc)
                while not self.closed:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    try:
                        await self._reconnect()
                    except asyncio.CancelledError:
                        raise
                    except Exception as again:
                        logger.debug("Redis still unreachable: %s", again)
                        continue
                    backoff = 0.05
                    break
                continue
            if message is None:
                continue
            kind = message.get("type")
            if kind not in ("smessage", b"smessage", "message", b"message"):
                continue
            channel = message.get("channel")
            if isinstance(channel, str):
                channel = channel.encode()
            handler = self.handlers.get(channel)
            if handler is None:
                continue
            data = message.get("data")
            if isinstance(data, (bytes, bytearray)):
                handler[0]._on_raw(bytes(data), handler[1])

    async def _lost(self, exc: BaseException) -> None:
        self.connected = False
        logger.warning("lost the Redis bus (%s): %s; reconnecting", self.description, exc)
        error = ConnectionError(f"lost the connection to Redis ({self.description})")
        for adapter in list(self.adapters):
            adapter._fail_requests(error)
        try:
            await asyncio.wait_for(self.pubsub.aclose(), 1)
        except Exception:
            pass

    async def _reconnect(self) -> None:
        pubsub = self.sub.pubsub()
        try:
            self.pubsub = pubsub
            await asyncio.wait_for(self._resubscribe(), 5)
        except BaseException:
            try:
                await asyncio.wait_for(pubsub.aclose(), 1)
            except Exception:
                pass
            raise
        self.connected = True
        self.dirty.set()
        self.wake.set()
        logger.warning("the Redis bus is back (%s); %d channel(s) subscribed again",
                       self.description, len(self.subscribed))

    # -- writing --------------------------------------------------------------

    def publish(self, channel: bytes, data: bytes, fut: Optional["asyncio.Future[None]"] = None) -> None:
        if self.closed:
            return
        if len(self.queue) >= _MAX_QUEUE:
            self.queue.popleft()
            self._count_drop(1)
        self.queue.append((channel, data, fut))
        self.wake.set()

    def _count_drop(self, n: int) -> None:
        before = self.dropped
        self.dropped += n
        if before // 1000 != self.dropped // 1000 or before == 0:
            logger.warning("dropped %d message(s) for the Redis bus (%s) so far: it is unreachable or too slow",
                           self.dropped, self.description)

    async def _write(self) -> None:
        while True:
            if not self.queue:
                if self.closed:
                    return
                self.wake.clear()
                await self.wake.wait()
                continue
            if not self.connected:
                # the bus is down: drop what waits, local delivery is unaffected
                n = len(self.queue)
                for _, _, fut in self.queue:
                    if fut is not None and not fut.done():
                        fut.set_exception(ConnectionError("the Redis bus is down"))
                self.queue.clear()
                self._count_drop(n)
                continue
            batch: list[tuple[bytes, bytes, Optional["asyncio.Future[None]"]]] = []
            while self.queue and len(batch) < 512:
                batch.append(self.queue.popleft())
            try:
                if len(batch) == 1:
                    await self.pub.execute_command("SPUBLISH", batch[0][0], batch[0][1])
                else:
                    pipe = self.pub.pipeline(transaction=False)
                    for channel, data, _ in batch:
                        pipe.execute_command("SPUBLISH", channel, data)
                    await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._count_drop(len(batch))
                logger.debug("SPUBLISH failed: %s", exc)
                for _, _, fut in batch:
                    if fut is not None and not fut.done():
                        fut.set_exception(ConnectionError(f"publishing to Redis failed: {exc}"))
                continue
            for _, _, fut in batch:
                if fut is not None and not fut.done():
                    fut.set_result(None)


class RedisShardedAdapter(ClusterAdapter):
    """Node's sharded Redis adapter (``createShardedAdapter``, Redis >= 7).

    Made by :meth:`from_url` or :func:`create_sharded_adapter`, which return
    the factory ``fastsio.Server(adapter=...)`` takes (one adapter per
    namespace, all sharing the server's Redis connections).

    Args:
        nsp: the namespace.
        bus: the shared connections (internal).
        channel_prefix: the channel prefix (``"socket.io"``).
        subscription_mode: ``"dynamic"`` (default), ``"dynamic-private"`` or ``"static"``.
        requests_timeout: seconds for ``fetch_sockets`` and
            ``server_side_emit`` acks (5, as Node).
    """

    def __init__(
        self,
        nsp: "Namespace",
        bus: _Bus,
        *,
        channel_prefix: str = "socket.io",
        subscription_mode: str = "dynamic",
        requests_timeout: float = 5.0,
    ) -> None:
        super().__init__(nsp, requests_timeout=requests_timeout)
        self._bus = bus
        self.channel_prefix = channel_prefix
        self.subscription_mode = subscription_mode
        self.channel = f"{channel_prefix}#{nsp.name}#"
        self._channel = self.channel.encode()
        self.response_channel = f"{self.channel}{self.uid}#"
        self._dynamic = subscription_mode != "static"
        self._private = subscription_mode == "dynamic-private"
        # Own messages come back from Redis: drop them by their first bytes.
        self._self_json = b'{"uid":"' + self.uid.encode() + b'"'
        self._self_msgpack = b"\x84\xa3uid\xb0" + self.uid.encode()
        if self._dynamic:
            self.on("create-room", self._on_create_room)
            self.on("delete-room", self._on_delete_room)

    @staticmethod
    def from_url(
        url: str,
        channel_prefix: str = "socket.io",
        subscription_mode: str = "dynamic",
        requests_timeout: float = 5.0,
    ) -> Callable[["Namespace"], "RedisShardedAdapter"]:
        """The factory for ``fastsio.Server(adapter=...)``, connecting to ``url`` (a ``redis://`` address).

        The connections are made when the server starts (``listen()``,
        ``run()``, the ASGI startup) and closed by ``await io.close()``.

        Raises:
            ValueError: a bad option value.

        Example:
            >>> io = fastsio.Server(adapter=RedisShardedAdapter.from_url("redis://127.0.0.1:6379/0"))
        """
        return _from_url(url, channel_prefix=channel_prefix, subscription_mode=subscription_mode,
                         requests_timeout=requests_timeout)

    # -- life cycle -------------------------------------------------------------

    def init(self) -> Any:
        """Connect (first namespace), subscribe; a coroutine the namespace runs on the serving loop.

        Raises:
            ConnectionError: Redis cannot be reached.
        """
        return self._init()

    async def _init(self) -> None:
        bus = self._bus
        bus.adapters.add(self)
        bus.want(self._channel, self, False)
        bus.want(self.response_channel.encode(), self, True)
        for room in list(self.rooms):
            if self._separate(room):
                bus.want(self._room_channel(room), self, False)
        await bus.start()
        await bus.wait_synced()

    def close(self) -> Any:
        """Unsubscribe this namespace; the last one closes the connections it created."""
        super().close()
        return self._close()

    async def _close(self) -> None:
        bus = self._bus
        for channel, (adapter, _) in list(bus.handlers.items()):
            if adapter is self:
                bus.unwant(channel)
        bus.adapters.discard(self)
        if not bus.adapters and not bus.closed:
            await bus.wait_synced(1)
            await bus.stop()

    # -- dynamic subscriptions ---------------------------------------------------

    def _separate(self, room: str) -> bool:
        return self._private or (self._dynamic and room not in self.sids)

    def _room_channel(self, room: str) -> bytes:
        return (self.channel + room + "#").encode()

    def _on_create_room(self, room: str) -> None:
        if self._separate(room):
            self._bus.want(self._room_channel(room), self, False)

    def _on_delete_room(self, room: str) -> None:
        # At delete time a private room's socket may already be gone from sids:
        # drop the channel if we hold it.
        self._bus.unwant(self._room_channel(room))

    # -- transport ----------------------------------------------------------------

    def _channel_of(self, message: ClusterMessage) -> bytes:
        if message["type"] == 3 and self._dynamic:
            data = message["data"]
            if "requestId" not in data:
                rooms = data["opts"]["rooms"]
                if len(rooms) == 1 and (self._private or len(rooms[0]) != 20):
                    return self._room_channel(rooms[0])
        return self._channel

    def _do_publish(self, message: ClusterMessage) -> None:
        self._bus.publish(self._channel_of(message), _encode(message))

    def _do_publish_response(self, requester_uid: str, response: ClusterMessage) -> None:
        self._bus.publish((self.channel + requester_uid + "#").encode(), _encode(response))

    async def server_count(self) -> int:
        """``PUBSUB SHARDNUMSUB`` of the namespace channel: the servers subscribed to it.

        Raises:
            ConnectionError: Redis cannot be reached.
        """
        try:
            reply = await asyncio.wait_for(
                self._bus.pub.execute_command("PUBSUB", "SHARDNUMSUB", self._channel), self.requests_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"server_count: Redis ({self._bus.description}) did not answer within "
                               f"{self.requests_timeout:g}s") from None
        except Exception as exc:
            raise ConnectionError(f"cannot count the servers: Redis is unreachable ({self._bus.description}): {exc}") \
                from exc
        try:
            return int(reply[1])
        except (TypeError, ValueError, IndexError):
            if isinstance(reply, dict):
                return int(next(iter(reply.values()), 0))
            raise

    def _on_raw(self, raw: bytes, response: bool) -> None:
        if raw.startswith(self._self_json) or raw.startswith(self._self_msgpack):
            return
        try:
            message = _wire.decode_any(raw)
        except ProtocolError as exc:
            self._on_raw_error(exc)
            return
        if response:
            self._on_response(message)
        else:
            self._on_message(message)


def _factory(bus: _Bus, options: dict[str, Any]) -> Callable[["Namespace"], RedisShardedAdapter]:
    prefix = options.pop("channel_prefix", "socket.io")
    mode = options.pop("subscription_mode", "dynamic")
    timeout = options.pop("requests_timeout", 5.0)
    if options:
        raise TypeError(f"unknown option(s) for the sharded Redis adapter: {', '.join(sorted(options))}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("channel_prefix must be a non-empty string")
    if mode not in _MODES:
        raise ValueError(f"subscription_mode must be one of {', '.join(_MODES)}, not {mode!r}")
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError("requests_timeout must be a positive number of seconds")

    def make(nsp: "Namespace") -> RedisShardedAdapter:
        return RedisShardedAdapter(nsp, bus, channel_prefix=prefix, subscription_mode=mode,
                                   requests_timeout=timeout)

    return make


def create_sharded_adapter(pub: Any, sub: Any = None, **options: Any) -> Callable[["Namespace"], RedisShardedAdapter]:
    """The factory for ``fastsio.Server(adapter=...)`` on redis-py asyncio clients you made.

    Args:
        pub: a ``redis.asyncio.Redis`` (``decode_responses=False``) that publishes.
        sub: the client whose ``pubsub()`` reads (``pub`` when None: pub/sub
            uses a connection of its own anyway).
        channel_prefix: ``"socket.io"``.
        subscription_mode: ``"dynamic"``, ``"dynamic-private"`` or ``"static"``.
        requests_timeout: seconds (5).

    Raises:
        TypeError: an unknown option.
        ValueError: a bad option value.

    Example:
        >>> pub = redis.asyncio.Redis(host="127.0.0.1")
        >>> io = fastsio.Server(adapter=create_sharded_adapter(pub))
    """
    return _factory(_Bus(pub, sub, False, "user clients"), dict(options))


def _from_url(url: str, **options: Any) -> Callable[["Namespace"], RedisShardedAdapter]:
    import redis.asyncio as aioredis

    # Connecting has a deadline: a Redis that does not answer fails listen() instead of hanging it.
    client = aioredis.Redis.from_url(url, decode_responses=False, socket_connect_timeout=5)
    host = url.split("@")[-1]
    return _factory(_Bus(client, None, True, host), dict(options))
