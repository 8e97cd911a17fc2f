"""A cluster adapter over one Redis stream, wire-compatible with Node's ``@socket.io/redis-streams-adapter`` 0.3.

What Node's adapter (0.3.1, on ``socket.io-adapter`` 2.5 ``ClusterAdapter``)
puts in Redis, as sniffed from a two-server Node cluster (``MONITOR``,
``XRANGE``) and read in its ``lib/adapter.ts``:

Stream (``XADD <stream_name> MAXLEN ~ <max_len> * uid <uid> nsp <nsp> type <n> data <d>``),
for the messages every server must see, in order:

====  ===================  ==========================================================
type  message              ``data``
====  ===================  ==========================================================
3     BROADCAST (no ack)   ``{"packet":{"type":2,"data":[ev,...args]},"opts":{"rooms":[..],"except":[..],"flags":{..}}}``
4     SOCKETS_JOIN         ``{"opts":{...},"rooms":[..]}``
5     SOCKETS_LEAVE        ``{"opts":{...},"rooms":[..]}``
6     DISCONNECT_SOCKETS   ``{"opts":{...},"close":bool}``
====  ===================  ==========================================================

- ``uid``: the sending adapter's id (8 random bytes as 16 hex characters,
  one per namespace and server); ``nsp``: the namespace name; ``type``: the
  ClusterAdapter message type as a decimal string.
- ``data``: ``JSON.stringify`` of the message data, or, when the message may
  carry binary (types 3, 8, 9, 10, 12) and does, the base64 of its
  MessagePack (``@msgpack/msgpack`` 2.8: binary as *bin*). A reader tells
  them apart by the first character (``{`` is JSON).
- The packet has no ``nsp`` and no ``id``; ``flags`` holds the operator's
  flags as Node has them (``{"volatile":true}``, ``{"compress":false}``...).
- The entry id (``1796115273530-0``) is the broadcast's offset for
  connection state recovery: every server with recovery on appends it as the
  last argument of the event it writes to its clients.
- Every server reads the stream with one ``XREAD COUNT <read_count> BLOCK
  <ms> STREAMS <stream_name> <last id>`` loop (``$`` at first), per server,
  not per namespace; entries of another namespace, or from itself, are
  skipped.

Pub/sub, for the ephemeral messages (they have no business in the stream):
each adapter SUBSCRIBEs ``<channel_prefix>#<nsp>#`` (public) and
``<channel_prefix>#<nsp>#<uid>#`` (its own). The public channel carries
BROADCAST with ack (type 3 with ``requestId``), FETCH_SOCKETS (7) and
SERVER_SIDE_EMIT (9); answers (8 FETCH_SOCKETS_RESPONSE, 10
SERVER_SIDE_EMIT_RESPONSE, 11 BROADCAST_CLIENT_COUNT, 12 BROADCAST_ACK) go
to the requester's own channel. The payload is always MessagePack of the
whole message ``{"type": n, "data": {...}, "uid": uid, "nsp": nsp}`` (type
as a number here).

``server_count`` is ``PUBSUB NUMSUB <channel_prefix>#<nsp>#``: the number of
adapters subscribed to the public channel. Node 0.3 sends no heartbeats
(its ``heartbeatInterval``/``heartbeatTimeout`` options are accepted and
unused); a server that dies leaves the count when Redis drops its
connection.

Sessions (connection state recovery): on a recoverable disconnect,
``SET <session_key_prefix><pid> <base64 of MessagePack {sid, pid, rooms,
data}> PX <max_disconnection_duration in ms>``. On a reconnect with
``pid``/``offset``: ``MULTI GET DEL EXEC`` on the key (a session is restored
once) and ``XRANGE <stream> <offset> <offset>`` (the offset must still be in
the stream); then the BROADCAST entries after the offset whose rooms match
the session's, each with its entry id appended. A missing session, a
malformed or trimmed offset gives a fresh session.

fastsio specifics (same wire): with recovery on, a server delivers its own
broadcasts to its clients when its reader meets them in the stream, so every
client of the cluster sees the stream's order and a replay never repeats or
skips a packet; a restore is stitched to the reader's position. A
server-side ``_restore_refused`` puts a session back (with its remaining
time) when the reconnect is refused by a middleware.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..adapter import BroadcastOptions, InMemoryAdapter
from .cluster import ClusterAdapter, ClusterMessage
from .._impl import sio_codec
from ..exceptions import ProtocolError
from . import _wire

try:
    from redis.exceptions import ConnectionError as RedisConnectionError
except ImportError:  # pragma: no cover - redis is a dependency of this module
    RedisConnectionError = ConnectionError  # type: ignore[misc,assignment]

if TYPE_CHECKING:
    from ..namespace import Namespace

__all__ = ["RedisStreamsAdapter", "create_adapter"]

logger = logging.getLogger(__name__)

# ClusterAdapter message types (socket.io-adapter).
BROADCAST = 3
SOCKETS_JOIN = 4
SOCKETS_LEAVE = 5
DISCONNECT_SOCKETS = 6
FETCH_SOCKETS = 7
FETCH_SOCKETS_RESPONSE = 8
SERVER_SIDE_EMIT = 9
SERVER_SIDE_EMIT_RESPONSE = 10
BROADCAST_CLIENT_COUNT = 11
BROADCAST_ACK = 12

_MAY_CARRY_BINARY = frozenset((BROADCAST, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE,
                               BROADCAST_ACK))

_DEFAULTS: dict[str, Any] = {
    "stream_name": "socket.io",
    "max_len": 10_000,
    "read_count": 100,
    "block_time": 5.0,
    "session_key_prefix": "sio:session:",
    "heartbeat_interval": 5.0,
    "heartbeat_timeout": 10.0,
    "channel_prefix": "socket.io",
    "requests_timeout": 5.0,
    "only_plaintext": False,
}

# Restore reads the stream in pages of this size, at most this many pages.
_RESTORE_PAGE = 1000
_RESTORE_MAX_PAGES = 100
# The reader reads on at most this many times to reach its own last broadcast.
_CATCH_UP_READS = 20
# Deadline of one Redis command beyond its own blocking time.
_COMMAND_DEADLINE = 5.0
# A reconnect whose session is not in Redis (yet) while its offset is this
# recent (by Redis's clock) is tried again after each of these delays: in a
# reconnect storm the old server may store the session after the client is
# already back on another one (it sees the cut as the client does).
_RESTORE_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
_RESTORE_RETRY_WINDOW_MS = 30_000
_RETRY = object()
# Deadline of a pipeline of many commands (a mass reconnect's restores).
_BATCH_DEADLINE = 15.0


# -- encodings -----------------------------------------------------------------


def _has_binary(obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return True
    if depth > 64:
        return False
    if isinstance(obj, (list, tuple)):
        return any(_has_binary(v, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return any(_has_binary(v, depth + 1) for v in obj.values())
    return False


_pack = _wire.encode
_unpack = _wire.decode


def encode_entry(uid: str, nsp: str, type_: int, data: Any, only_plaintext: bool = False) -> dict[str, Any]:
    """The stream entry fields Node's adapter writes for one cluster message."""
    fields: dict[str, Any] = {"uid": uid, "nsp": nsp, "type": str(type_)}
    if data is not None:
        if not only_plaintext and type_ in _MAY_CARRY_BINARY and _has_binary(data):
            fields["data"] = base64.b64encode(_pack(data))
        else:
            fields["data"] = _wire.encode_json(data)
    return fields


def decode_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A stream entry back into ``{uid, nsp, type, data}``.

    Raises:
        ProtocolError: a field is missing or malformed.
    """
    try:
        uid = fields[b"uid"].decode()
        nsp = fields[b"nsp"].decode()
        type_ = int(fields[b"type"])
    except (KeyError, ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(f"invalid stream entry: {err!r}") from None
    message: dict[str, Any] = {"uid": uid, "nsp": nsp, "type": type_}
    raw = fields.get(b"data")
    if raw:
        if raw[:1] == b"{":
            message["data"] = _wire.decode_json(raw)
        else:
            try:
                packed = base64.b64decode(raw, validate=True)
            except ValueError as err:
                raise ProtocolError(f"invalid base64 in a stream entry: {err}") from None
            message["data"] = _unpack(packed)
    return message


_opts_to_wire = _wire.opts_to_wire
_opts_from_wire = _wire.opts_from_wire


def _rooms(value: Any) -> list[str]:
    return list(_wire._rooms(value, "rooms"))


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _entry_id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _valid_offset(offset: str) -> bool:
    ms, sep, seq = offset.partition("-")
    return bool(sep) and ms.isdigit() and seq.isdigit() and ms.isascii() and seq.isascii()


def _replayable(fields: dict[bytes, bytes]) -> Any:
    """``(nsp, args, opts)`` of a stream entry a recovered socket may get again, or False."""
    if fields.get(b"type") != b"3":
        return False
    try:
        message = decode_entry(fields)
        data = message.get("data")
        if not isinstance(data, dict) or "requestId" in data:
            return False
        packet = data.get("packet")
        if not isinstance(packet, dict) or not isinstance(packet.get("data"), list) or "id" in packet:
            return False
        opts = _opts_from_wire(data.get("opts"))
    except ProtocolError:
        return False
    if opts.flags.get("volatile"):
        return False  # not kept for recovery (fastsio's in-memory adapter and Node's neither)
    return message["nsp"], packet["data"], opts


# -- the shared part: one per server ---------------------------------------------


class _Bus:
    """The Redis connections and tasks one server shares between its namespaces.

    One reader task (blocking XREAD) for the stream, one pub/sub reader, one
    writer task that sends stream entries and session keys in order, in
    pipelines.
    """

    def __init__(self, client: Any, options: dict[str, Any], owns_client: bool) -> None:
        self.client = client
        self.options = options
        self.owns_client = owns_client
        self.stream: str = options["stream_name"]
        self.adapters: dict[str, "RedisStreamsAdapter"] = {}
        self.last_id: Optional[str] = None  # the last entry the reader dispatched
        self._reader: Optional["asyncio.Task[None]"] = None
        self._subscriber: Optional["asyncio.Task[None]"] = None
        self._writer: Optional["asyncio.Task[None]"] = None
        self._pubsub: Any = None
        self._queue: list[tuple[Any, ...]] = []
        self._wake = asyncio.Event()
        self._inflight: Optional["asyncio.Future[None]"] = None
        # own entry id -> (adapter, packet, opts), waiting for the reader
        self._own: dict[str, tuple["RedisStreamsAdapter", Any, BroadcastOptions]] = {}
        self._holds = 0
        self._restores: list[tuple[Any, ...]] = []
        self._retries: dict["asyncio.Future[Any]", int] = {}
        self._restorer: Optional["asyncio.Future[None]"] = None
        self._released = asyncio.Event()
        self._released.set()
        self._starting: Optional["asyncio.Future[None]"] = None
        self._closed = False
        self.connected = True

    # -- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        # Pin the reader's position before anything is written, so nothing
        # another server adds from now on is missed ("$" would race).
        last = await asyncio.wait_for(self.client.xrevrange(self.stream, count=1), _COMMAND_DEADLINE)
        self.last_id = last[0][0].decode() if last else "0-0"
        self._pubsub = self.client.pubsub()
        # A pub/sub connection needs a channel before it listens.
        await self._pubsub.subscribe(self.options["channel_prefix"] + "#")
        self._reader = asyncio.ensure_future(self._read_loop())
        self._subscriber = asyncio.ensure_future(self._subscribe_loop())
        self._writer = asyncio.ensure_future(self._write_loop())

    async def subscribe(self, adapter: "RedisStreamsAdapter") -> None:
        await self.start()
        self.adapters[adapter.nsp.name] = adapter
        await self._pubsub.subscribe(adapter.public_channel, adapter.private_channel)

    async def unsubscribe(self, adapter: "RedisStreamsAdapter") -> None:
        if self.adapters.get(adapter.nsp.name) is adapter:
            del self.adapters[adapter.nsp.name]
        if self._pubsub is not None:
            try:
                await asyncio.wait_for(self._pubsub.unsubscribe(adapter.public_channel, adapter.private_channel),
                                       _COMMAND_DEADLINE)
            except Exception:
                pass
        if not self.adapters:
            await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            # Let what was queued reach Redis (bounded).
            self._wake.set()
            deadline = time.monotonic() + 2
            while (self._queue or self._inflight is not None) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        for task in (self._reader, self._subscriber, self._writer):
            if task is not None:
                task.cancel()
        for task in (self._reader, self._subscriber, self._writer):
            if task is not None:
                try:
                    await task
                except BaseException:
                    pass
        if self._pubsub is not None:
            try:
                await asyncio.wait_for(self._pubsub.aclose(), _COMMAND_DEADLINE)
            except Exception:
                pass
        if self.owns_client:
            try:
                await asyncio.wait_for(self.client.aclose(), _COMMAND_DEADLINE)
            except Exception:
                pass

    def _set_connected(self, up: bool, err: Optional[BaseException] = None) -> None:
        if up and not self.connected:
            logger.warning("redis streams adapter: connection to Redis is back (stream %r, reading after %s)",
                           self.stream, self.last_id)
        elif not up and self.connected:
            logger.warning("redis streams adapter: lost the connection to Redis (%s); retrying", err)
            # The answers to requests in flight will not come: fail them now.
            for adapter in list(self.adapters.values()):
                adapter._fail_requests(ConnectionError(f"lost the connection to Redis: {err}"))
        self.connected = up

    # -- reading the stream -------------------------------------------------

    async def _read_loop(self) -> None:
        block = float(self.options["block_time"])
        try:
            # A client built by the user may have a socket timeout shorter than the block.
            socket_timeout = self.client.connection_pool.connection_kwargs.get("socket_timeout")
        except AttributeError:
            socket_timeout = None
        if isinstance(socket_timeout, (int, float)) and socket_timeout > 0:
            block = min(block, socket_timeout / 2)
        block_ms = max(1, int(block * 1000))
        count = self.options["read_count"]
        backoff = 0.05
        while not self._closed:
            try:
                resp = await asyncio.wait_for(
                    self.client.xread({self.stream: self.last_id}, count=count, block=block_ms),
                    self.options["block_time"] + _COMMAND_DEADLINE,
                )
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self._set_connected(False, err)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            self._set_connected(True)
            if not resp:
                continue
            entries = resp[0][1]
            if self._own or self._inflight is not None:
                try:
                    await self._read_own_to_end(entries, count)
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # dispatch what was read; the next XREAD retries
                    logger.debug("redis streams adapter: reading on to own entries failed: %r", err)
            for raw_id, fields in entries:
                while self._holds:
                    # A restore is joining the live stream: wait until its socket
                    # is connected (again if another restore held meanwhile).
                    try:
                        await asyncio.wait_for(self._released.wait(), _COMMAND_DEADLINE)
                    except asyncio.TimeoutError:
                        logger.warning("redis streams adapter: a restore held the reader too long")
                        self._holds = 0
                        self._released.set()
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                try:
                    await self._dispatch(entry_id, fields)
                except Exception:
                    logger.exception("redis streams adapter: failed to handle stream entry %s", entry_id)
                self.last_id = entry_id

    async def _read_own_to_end(self, entries: list[Any], count: int) -> None:
        """Read on (without blocking) until ``entries`` reach this server's last sent broadcast.

        With recovery on, this server delivers its own broadcasts when the
        reader meets them. Redis answers a blocked XREAD after the first XADD
        of a pipeline, so a burst of emits would come back in several small
        reads, each written to every client apart; reading on to the last
        entry the writer knows (waiting for its pipeline's answer first)
        delivers the burst in one loop iteration, coalesced as without
        recovery. Bounded: at most ``_CATCH_UP_READS`` reads.
        """
        own_uids = {adapter.uid for adapter in self.adapters.values()}
        for _ in range(_CATCH_UP_READS):
            if not entries:
                return
            if self._inflight is not None and any(
                    fields.get(b"uid", b"").decode("utf-8", "replace") in own_uids
                    and _entry_id(raw_id) not in self._own for raw_id, fields in entries):
                # An own entry whose XADD answer is not processed yet.
                try:
                    await asyncio.wait_for(asyncio.shield(self._inflight), _COMMAND_DEADLINE)
                except asyncio.TimeoutError:
                    return
            if not self._own:
                return
            last = _entry_id(entries[-1][0])
            if _id_key(next(reversed(self._own))) <= _id_key(last):
                return
            resp = await asyncio.wait_for(self.client.xread({self.stream: last}, count=count), _COMMAND_DEADLINE)
            if not resp or not resp[0][1]:
                return
            entries.extend(resp[0][1])

    async def _dispatch(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        nsp_raw = fields.get(b"nsp")
        if not nsp_raw:
            return
        adapter = self.adapters.get(nsp_raw.decode("utf-8", "replace"))
        if adapter is None:
            return
        if self._own:
            self._flush_stale_own(entry_id)
        uid = fields.get(b"uid", b"").decode("utf-8", "replace")
        if uid == adapter.uid:
            own = self._own.pop(entry_id, None)
            if own is None and self._inflight is not None:
                # The XADD's answer may not be processed yet: wait for its batch.
                try:
                    await asyncio.wait_for(asyncio.shield(self._inflight), _COMMAND_DEADLINE)
                except Exception:
                    pass
                own = self._own.pop(entry_id, None)
            if own is not None:
                own[0]._deliver_own(own[1], own[2], entry_id)
            return
        try:
            message = decode_entry(fields)
        except ProtocolError as err:
            logger.debug("redis streams adapter: ignoring entry %s: %s", entry_id, err)
            return
        adapter._on_message(message, entry_id)

    def _flush_stale_own(self, entry_id: str) -> None:
        # Own entries older than what the reader meets now will never come
        # (the stream was lost with a Redis restart): deliver them late
        # rather than never.
        key = _id_key(entry_id)
        while self._own:
            first = next(iter(self._own))
            if _id_key(first) >= key:
                return
            adapter, packet, opts = self._own.pop(first)
            adapter._deliver_own(packet, opts, first)

    # -- pub/sub ------------------------------------------------------------

    async def _subscribe_loop(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                # redis-py resubscribes on the next call once Redis is back.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            if msg is None or msg.get("type") != "message":
                continue
            channel = msg["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode("utf-8", "replace")
            for adapter in list(self.adapters.values()):
                if channel == adapter.public_channel or channel == adapter.private_channel:
                    try:
                        message = _unpack(msg["data"])
                        if not isinstance(message, dict):
                            raise ProtocolError("a cluster message must be a map")
                        adapter._on_message(message, None)
                    except ProtocolError as err:
                        logger.debug("redis streams adapter: ignoring pub/sub message: %s", err)
                    except Exception:
                        logger.exception("redis streams adapter: failed to handle a pub/sub message")
                    break

    # -- writing ------------------------------------------------------------

    def xadd(self, fields: dict[str, Any], on_done: Optional[Callable[[Optional[str]], None]] = None) -> None:
        """Queue one stream entry; ``on_done(entry_id or None on failure)`` runs in queue order."""
        self._queue.append(("xadd", fields, on_done))
        self._wake.set()

    def set_session(self, key: str, value: bytes, ttl_ms: int) -> None:
        self._queue.append(("set", key, value, ttl_ms))
        self._wake.set()

    async def _write_loop(self) -> None:
        max_len = self.options["max_len"]
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                fut: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
                self._inflight = fut
                try:
                    pipe = self.client.pipeline(transaction=False)
                    for item in batch:
                        if item[0] == "xadd":
                            pipe.xadd(self.stream, item[1], maxlen=max_len, approximate=True)
                        elif item[0] == "pub":
                            pipe.publish(item[1], item[2])
                        else:
                            pipe.set(item[1], item[2], px=item[3])
                    try:
                        results = await asyncio.wait_for(pipe.execute(raise_on_error=False), _BATCH_DEADLINE)
                    except asyncio.CancelledError:
                        raise
                    except Exception as err:
                        self._set_connected(False, err)
                        results = [err] * len(batch)
                    for item, result in zip(batch, results):
                        if item[0] != "xadd" or item[2] is None:
                            if isinstance(result, Exception):
                                logger.warning("redis streams adapter: could not send (%s): %s", item[0], result)
                            continue
                        entry_id = None
                        if not isinstance(result, Exception):
                            entry_id = result.decode() if isinstance(result, bytes) else str(result)
                        try:
                            item[2](entry_id)
                        except Exception:
                            logger.exception("redis streams adapter: publish callback failed")
                finally:
                    self._inflight = None
                    if not fut.done():
                        fut.set_result(None)

    def publish_soon(self, channel: str, payload: bytes) -> None:
        """Queue one PUBLISH (in order with the stream entries)."""
        self._queue.append(("pub", channel, payload))
        self._wake.set()

    # -- connection state recovery: restores in batches ----------------------

    def restore(self, adapter: "RedisStreamsAdapter", pid: str, offset: str) -> "asyncio.Future[Any]":
        fut: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self._queue_restore((adapter, pid, offset, fut))
        return fut

    def _queue_restore(self, item: tuple[Any, ...]) -> None:
        if item[3].done() or self._closed:
            self._retries.pop(item[3], None)
            if not item[3].done():
                item[3].set_result(None)
            return
        self._restores.append(item)
        if self._restorer is None or self._restorer.done():
            self._restorer = asyncio.ensure_future(self._run_restores())

    async def _run_restores(self) -> None:
        while self._restores:
            batch, self._restores = self._restores, []
            try:
                results = await self._restore_batch(batch)
            except Exception as err:
                logger.warning("redis streams adapter: could not restore %d session(s): %r", len(batch), err)
                results = [None] * len(batch)
            loop = asyncio.get_running_loop()
            for item, result in zip(batch, results):
                fut = item[3]
                if result is _RETRY:
                    attempt = self._retries.get(fut, 0)
                    self._retries[fut] = attempt + 1
                    loop.call_later(_RESTORE_RETRY_DELAYS[attempt], self._queue_restore, item)
                    continue
                self._retries.pop(fut, None)
                if not fut.done():
                    fut.set_result(result)
            if any(r is not None and r is not _RETRY for r in results):
                # The reader waits until the restored sockets are connected (the
                # namespace connects them in the callbacks just scheduled).
                self.hold()

    async def _restore_batch(self, batch: list[tuple[Any, ...]]) -> list[Any]:
        prefix = self.options["session_key_prefix"]
        offsets = sorted({item[2] for item in batch}, key=_id_key)
        pipe = self.client.pipeline(transaction=True)
        for _, pid, _, _ in batch:
            pipe.get(prefix + pid)
            pipe.pttl(prefix + pid)
            pipe.delete(prefix + pid)
        for offset in offsets:
            pipe.xrange(self.stream, offset, offset, count=1)
        pipe.time()
        replies = await asyncio.wait_for(pipe.execute(), _BATCH_DEADLINE)
        started = time.monotonic()
        n = len(batch)
        known = {offset for offset, found in zip(offsets, replies[3 * n:3 * n + len(offsets)]) if found}
        redis_now = replies[-1]
        now_ms = int(redis_now[0]) * 1000 + int(redis_now[1]) // 1000
        sessions: list[Any] = []
        for i, (adapter, pid, offset, fut) in enumerate(batch):
            raw, pttl = replies[3 * i], replies[3 * i + 1]
            session = None
            if raw is not None and offset in known:
                session = adapter._decode_session(pid, raw, pttl, started)
            elif (raw is None and offset in known and self._retries.get(fut, 0) < len(_RESTORE_RETRY_DELAYS)
                  and now_ms - _id_key(offset)[0] < _RESTORE_RETRY_WINDOW_MS):
                session = _RETRY  # its old server may not have stored it yet
            sessions.append(session)
        wanted = [o for o in offsets if o in known and any(
            s is not None and s is not _RETRY and b[2] == o for s, b in zip(sessions, batch))]
        if not wanted:
            return sessions
        # One read of the stream from the oldest offset, stitched to the reader.
        entries: list[tuple[tuple[int, int], str, Any]] = []
        start = wanted[0]
        for _ in range(_RESTORE_MAX_PAGES):
            page = await asyncio.wait_for(
                self.client.xrange(self.stream, "(" + start, "+", count=_RESTORE_PAGE), _BATCH_DEADLINE)
            for raw_id, fields in page:
                start = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                entries.append((_id_key(start), start, fields))
            # Done once the replay reaches what the reader dispatched (the
            # reader delivers the rest live); it may have gone on meanwhile.
            if not page or _id_key(start) >= _id_key(self.last_id or "0-0"):
                break
        else:
            logger.warning("redis streams adapter: too much to replay for %d session(s)", len(wanted))
            for session, item in zip(sessions, batch):
                if isinstance(session, dict):
                    item[0]._restore_refused(session)
            return [None] * n
        live = _id_key(self.last_id or "0-0")
        # Decoded once for every session of the batch: (key, id, nsp, data, opts).
        replayable: list[tuple[tuple[int, int], str, str, Any, BroadcastOptions]] = []
        mentioned: set[str] = set()  # every room an entry targets or excepts
        for key, entry_id, fields in entries:
            if key > live:
                break
            packet = _replayable(fields)
            if packet is not False:
                replayable.append((key, entry_id, packet[0], packet[1], packet[2]))
                mentioned.update(packet[2].rooms)
                mentioned.update(packet[2].except_)
        # Sessions cut at the same moment share their offset and, often, their
        # rooms: their replay is one list, worked out once (unless an entry
        # names a session's own id room).
        replays: dict[tuple[str, str, frozenset[str]], list[list[Any]]] = {}
        for i, (adapter, pid, offset, _) in enumerate(batch):
            session = sessions[i]
            if not isinstance(session, dict):
                continue
            nsp = adapter.nsp.name
            rooms = frozenset(session["rooms"])
            share: Optional[tuple[str, str, frozenset[str]]] = None
            if session["sid"] not in mentioned:
                share = (nsp, offset, rooms - {session["sid"]})
                shared = replays.get(share)
                if shared is not None:
                    session["missed_packets"] = list(shared)
                    continue
            after = _id_key(offset)
            missed = session["missed_packets"]
            if share is not None:
                replays[share] = missed
            for key, entry_id, entry_nsp, data, opts in replayable:
                if key <= after or entry_nsp != nsp:
                    continue
                if (not opts.rooms or not rooms.isdisjoint(opts.rooms)) and rooms.isdisjoint(opts.except_):
                    missed.append([*data, entry_id])
            logger.debug("restored session %s from %s: %d missed, live at %s", pid, offset, len(missed),
                         self.last_id)
        return sessions

    # -- holding the reader while a restore joins the live stream ---------------

    def hold(self) -> None:
        self._holds += 1
        self._released.clear()
        loop = asyncio.get_running_loop()
        # Released two loop turns later: after the namespace's callback that
        # connects the restored socket has run (it is scheduled when the
        # restore task finishes, one turn from now).
        loop.call_soon(loop.call_soon, self._release)

    def _release(self) -> None:
        self._holds -= 1
        if self._holds <= 0:
            self._holds = 0
            self._released.set()


# -- the adapter of one namespace ------------------------------------------------


class RedisStreamsAdapter(ClusterAdapter):
    """Node's ``@socket.io/redis-streams-adapter`` 0.3 for one namespace of one server.

    A transport under ``fastsio.adapters.cluster.ClusterAdapter``: the
    protocol (message types, requests, acks) is the cluster module's; this
    class carries the messages over the stream and pub/sub as Node's adapter
    does (see the module docstring) and keeps connection state recovery
    across the cluster. Build it with ``RedisStreamsAdapter.from_url(url,
    **options)`` (or ``create_adapter(client, **options)``) and give the
    result to ``fastsio.Server(adapter=...)``.

    Example:
        >>> io = fastsio.Server(
        ...     adapter=RedisStreamsAdapter.from_url("redis://127.0.0.1:6379/0"),
        ...     connection_state_recovery={"max_disconnection_duration": 120},
        ... )
    """

    _has_offsets = True

    def __init__(self, nsp: "Namespace", bus: _Bus) -> None:
        super().__init__(nsp, requests_timeout=bus.options["requests_timeout"])
        self.bus = bus
        prefix = bus.options["channel_prefix"]
        self.public_channel = f"{prefix}#{nsp.name}#"
        self.private_channel = f"{prefix}#{nsp.name}#{self.uid}#"
        recovery = nsp.server._recovery
        self._recovery_ms: Optional[int] = (
            int(float(recovery.get("max_disconnection_duration", 120)) * 1000) if recovery is not None else None
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Callable[["Namespace"], "RedisStreamsAdapter"]:
        """An adapter factory for ``fastsio.Server(adapter=...)`` connected to the Redis at ``url``.

        Args:
            url: ``redis://host:port/db`` (any form ``redis.asyncio.from_url`` takes).
            **options: see ``create_adapter``.

        Raises:
            TypeError: an unknown option.
            ValueError: an option out of range.
        """
        import redis.asyncio as redis_asyncio

        opts = _check_options(options)
        # redis-py's default socket timeout (5 s) would cut a blocking XREAD.
        client = redis_asyncio.from_url(url, decode_responses=False,
                                        socket_timeout=opts["block_time"] + _COMMAND_DEADLINE)
        return _Factory(client, opts, owns_client=True)

    # -- life cycle ---------------------------------------------------------

    async def init(self) -> None:
        """Subscribe this namespace's channels (and start the server's reader once)."""
        await self.bus.subscribe(self)

    async def close(self) -> None:
        """Fail the requests in flight, unsubscribe; the last namespace stops the reader."""
        super().close()
        await self.bus.unsubscribe(self)

    async def server_count(self) -> int:
        """``PUBSUB NUMSUB`` of the public channel: the servers of this namespace, as Node counts them."""
        try:
            res = await asyncio.wait_for(self.bus.client.pubsub_numsub(self.public_channel), _COMMAND_DEADLINE)
        except (ConnectionError, OSError, RedisConnectionError):
            # A pooled connection that died with a Redis restart: once more on a new one.
            res = await asyncio.wait_for(self.bus.client.pubsub_numsub(self.public_channel), _COMMAND_DEADLINE)
        return int(res[0][1]) if res else 0

    # -- the transport ----------------------------------------------------------

    def _do_publish(self, message: ClusterMessage) -> None:
        type_ = message["type"]
        data = message.get("data")
        ephemeral = type_ in (FETCH_SOCKETS, SERVER_SIDE_EMIT) or (
            type_ == BROADCAST and isinstance(data, dict) and "requestId" in data)
        if ephemeral:
            self.bus.publish_soon(self.public_channel, _pack(message))
            return None
        if type_ in (1, 2, 13):
            return None  # heartbeats: Node 0.3 counts servers with NUMSUB instead
        self.bus.xadd(encode_entry(message["uid"], message["nsp"], type_, data, self.bus.options["only_plaintext"]))
        return None

    def _do_publish_response(self, requester_uid: str, response: ClusterMessage) -> None:
        channel = f"{self.bus.options['channel_prefix']}#{self.nsp.name}#{requester_uid}#"
        self.bus.publish_soon(channel, _pack(response))
        return None

    # -- broadcast ----------------------------------------------------------

    def _in_stream_order(self, packet: Any, opts: BroadcastOptions) -> bool:
        # With recovery on, every event that is not volatile goes out in stream
        # order (an emit with an ack too, so it cannot overtake the ones before).
        return (self._recovery_ms is not None and packet.type == sio_codec.EVENT and "volatile" not in opts.flags
                and not opts.flags.get("local"))

    def broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        """Publish once (one XADD); with recovery on, deliver when the reader meets the entry.

        Delivering this server's own broadcasts in stream order (not when the
        XADD answers) gives every client the stream's order, so the offset a
        client holds always means "everything up to here".
        """
        if not self._in_stream_order(packet, opts):
            ClusterAdapter.broadcast(self, packet, opts)
            return
        wire: dict[str, Any] = {"type": sio_codec.EVENT, "data": packet.data}
        if packet.id is not None:
            wire["id"] = packet.id  # as Node publishes it; never replayed
        data = {"packet": wire, "opts": _opts_to_wire(opts)}
        fields = encode_entry(self.uid, self.nsp.name, BROADCAST, data, self.bus.options["only_plaintext"])
        packet.data = list(packet.data)

        def done(entry_id: Optional[str]) -> None:
            if entry_id is None:
                # Not in the stream: deliver locally, without an offset, as Node does.
                InMemoryAdapter.broadcast(self, packet, opts)
            else:
                self.bus._own[entry_id] = (self, packet, opts)

        self.bus.xadd(fields, done)

    def _deliver_own(self, packet: Any, opts: BroadcastOptions, entry_id: str) -> None:
        if packet.id is None:
            packet.data.append(entry_id)
        InMemoryAdapter.broadcast(self, packet, opts)

    # -- connection state recovery ----------------------------------------------

    def persist_session(self, session: dict[str, Any]) -> None:
        if self._recovery_ms is None:
            return
        self._store_session(session, self._recovery_ms)

    def _store_session(self, session: dict[str, Any], ttl_ms: int) -> None:
        value = {"sid": session["sid"], "pid": session["pid"], "rooms": list(session["rooms"]),
                 "data": session["data"]}
        try:
            encoded = base64.b64encode(_pack(value))
        except Exception as err:
            logger.warning("redis streams adapter: session %s not stored: %s", session["pid"], err)
            return
        self.bus.set_session(self.bus.options["session_key_prefix"] + session["pid"], encoded, max(1, ttl_ms))

    def restore_session(self, pid: str, offset: str) -> Any:
        """The stored session of ``pid`` plus what it missed after ``offset``, or None (a future of it).

        Concurrent restores (a mass reconnect) share one round trip for their
        session keys and one read of the stream.
        """
        if not isinstance(pid, str) or not pid or not isinstance(offset, str) or not _valid_offset(offset):
            return None
        return self.bus.restore(self, pid, offset)

    def _decode_session(self, pid: str, raw: bytes, pttl: Any, now: float) -> Optional[dict[str, Any]]:
        try:
            session = _unpack(base64.b64decode(raw))
            if not isinstance(session, dict) or not isinstance(session.get("sid"), str):
                raise ProtocolError("a session must be a map with a sid")
            rooms = _rooms(session.get("rooms"))
        except (ProtocolError, ValueError) as err:
            logger.warning("redis streams adapter: ignoring session %s: %s", pid, err)
            return None
        data = session.get("data")
        return {
            "sid": session["sid"],
            "pid": pid,
            "rooms": rooms,
            "data": data if isinstance(data, dict) else {},
            "missed_packets": [],
            "_expires_at": now + (pttl / 1000 if isinstance(pttl, int) and pttl > 0 else 0),
        }

    def _restore_refused(self, session: dict[str, Any]) -> None:
        expires_at = session.get("_expires_at")
        if not isinstance(expires_at, float):
            return
        left = int((expires_at - time.monotonic()) * 1000)
        if left > 0:
            self._store_session(session, left)


class _Factory:
    """What ``from_url``/``create_adapter`` return: ``factory(nsp)`` makes a namespace's adapter."""

    def __init__(self, client: Any, options: dict[str, Any], owns_client: bool) -> None:
        self.bus = _Bus(client, options, owns_client)

    def __call__(self, nsp: "Namespace") -> RedisStreamsAdapter:
        return RedisStreamsAdapter(nsp, self.bus)


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown option(s) for the redis streams adapter: {', '.join(sorted(unknown))}")
    opts = dict(_DEFAULTS)
    opts.update(options)
    for name in ("stream_name", "session_key_prefix", "channel_prefix"):
        if not isinstance(opts[name], str) or not opts[name]:
            raise ValueError(f"{name} must be a non-empty string")
    for name in ("max_len", "read_count"):
        if not isinstance(opts[name], int) or isinstance(opts[name], bool) or opts[name] < 1:
            raise ValueError(f"{name} must be a positive integer")
    for name in ("block_time", "heartbeat_interval", "heartbeat_timeout", "requests_timeout"):
        if not isinstance(opts[name], (int, float)) or isinstance(opts[name], bool) or opts[name] <= 0:
            raise ValueError(f"{name} must be a positive number of seconds")
    opts["only_plaintext"] = bool(opts["only_plaintext"])
    return opts


def create_adapter(redis_client: Any, **options: Any) -> Callable[["Namespace"], RedisStreamsAdapter]:
    """An adapter factory for ``fastsio.Server(adapter=...)`` over a redis-py asyncio client you built.

    The client must use ``decode_responses=False``. It is not closed by the
    adapter.

    Args:
        redis_client: a ``redis.asyncio.Redis``.
        stream_name: the stream's key (Node's ``streamName``), default ``"socket.io"``.
        max_len: approximate MAXLEN of the stream (``maxLen``), default 10,000.
        read_count: entries per XREAD (``readCount``), default 100.
        block_time: seconds one XREAD blocks (``blockTimeInMs``), default 5.
        session_key_prefix: prefix of the session keys (``sessionKeyPrefix``), default ``"sio:session:"``.
        heartbeat_interval: accepted like Node's ``heartbeatInterval`` (Node 0.3 sends no heartbeats,
            neither does this adapter), default 5.
        heartbeat_timeout: likewise (``heartbeatTimeout``), default 10.
        channel_prefix: prefix of the pub/sub channels (``channelPrefix``), default ``"socket.io"``.
        requests_timeout: seconds to wait for the answers of fetch_sockets and server_side_emit, default 5.
        only_plaintext: never base64-MessagePack, always JSON (``onlyPlaintext``), default False.

    Raises:
        TypeError: an unknown option.
        ValueError: an option out of range.
    """
    return _Factory(redis_client, _check_options(options), owns_client=False)


RedisStreamsAdapter.create_adapter = staticmethod(create_adapter)  # type: ignore[attr-defined]
