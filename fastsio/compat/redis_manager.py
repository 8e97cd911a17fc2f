"""``AsyncRedisManager``: python-socketio's own Redis pub/sub format, so a python-socketio
cluster can move to fastsio one server at a time.

Every server PUBLISHes JSON objects on one channel (``"socketio"``) and
SUBSCRIBEs to it. Each object has a ``method`` and the sender's random
``host_id``:

- ``emit``: ``event``, ``data`` (the arguments as a list; with ``binary``
  true the first item is the data with ``{"_placeholder": true, "num": n}``
  in place of each binary value and the next items are the values in
  base64), ``namespace``, ``room`` (None: everybody), ``skip_sid``,
  ``callback`` (``[room, namespace, id]`` when the sender wants the answer);
- ``callback``: ``host_id`` is the *receiver* (the emitting server), with
  ``sid``, ``namespace``, ``id``, ``args``;
- ``disconnect`` (``sid``, ``namespace``), ``enter_room`` / ``leave_room``
  (``sid``, ``room``, ``namespace``), ``close_room`` (``room``, ``namespace``).

This is python-socketio's format, not Node's: for a cluster of fastsio and
Node servers use ``fastsio.adapters.redis`` (Node's ``@socket.io/redis-adapter``),
fastsio's native choice.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import logging
import uuid
from typing import Any, Callable, Optional

import orjson

from .manager import AsyncManager, Room

__all__ = ["AsyncPubSubManager", "AsyncRedisManager"]

logger = logging.getLogger("fastsio.compat")

#: answers awaited from other servers; the oldest are dropped past this many
MAX_PENDING_CALLBACKS = 10_000
#: largest nesting of the data of an emit message accepted from the channel
_MAX_DEPTH = 64


def _deconstruct(data: Any, out: list[bytes], depth: int = 0) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        out.append(bytes(data))
        return {"_placeholder": True, "num": len(out) - 1}
    if depth > _MAX_DEPTH:
        return data
    if isinstance(data, list):
        return [_deconstruct(item, out, depth + 1) for item in data]
    if isinstance(data, tuple):
        return [_deconstruct(item, out, depth + 1) for item in data]
    if isinstance(data, dict):
        return {key: _deconstruct(value, out, depth + 1) for key, value in data.items()}
    return data


def _has_binary(data: Any, depth: int = 0) -> bool:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return True
    if depth > _MAX_DEPTH:
        return False
    if isinstance(data, (list, tuple)):
        return any(_has_binary(item, depth + 1) for item in data)
    if isinstance(data, dict):
        return any(_has_binary(value, depth + 1) for value in data.values())
    return False


def _reconstruct(data: Any, attachments: list[bytes], depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError("data nested too deeply")
    if isinstance(data, list):
        return [_reconstruct(item, attachments, depth + 1) for item in data]
    if isinstance(data, dict):
        if data.get("_placeholder") is True and "num" in data:
            num = data["num"]
            if not isinstance(num, int) or not 0 <= num < len(attachments):
                raise ValueError("bad attachment placeholder")
            return attachments[num]
        return {key: _reconstruct(value, attachments, depth + 1) for key, value in data.items()}
    return data


class AsyncPubSubManager(AsyncManager):
    """The pub/sub part of python-socketio's format; subclasses give ``_publish`` and ``_listen``.

    Args:
        channel: the pub/sub channel.
        write_only: only publish (an emitter for another process: no server needed).
        logger: accepted for python-socketio's signature.
        json: accepted for python-socketio's signature (messages are JSON, encoded with orjson).
    """

    name = "asyncpubsub"

    def __init__(self, channel: str = "socketio", write_only: bool = False, logger: Any = None,
                 json: Any = None) -> None:
        super().__init__()
        self.channel = channel
        self.write_only = write_only
        self.host_id = uuid.uuid4().hex
        self._ids = itertools.count(1)
        self._callbacks: "collections.OrderedDict[int, Callable[..., Any]]" = collections.OrderedDict()
        self._task: Optional["asyncio.Task[Any]"] = None

    def initialize(self) -> None:
        """Start listening to the channel (the server calls it on its first connection)."""
        if not self.write_only and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _publish(self, message: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _listen(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError
        yield  # an async generator

    async def close(self) -> None:
        """Stop listening."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    # -- operations: this server, then the others ----------------------------------------

    async def emit(self, event: str, data: Any, namespace: Optional[str] = None, room: Room = None,
                   skip_sid: Any = None, callback: Optional[Callable[..., Any]] = None, to: Room = None,
                   **kwargs: Any) -> None:
        """Emit here and publish for the other servers (``ignore_queue=True``: here only)."""
        room = to or room
        namespace = namespace or "/"
        if kwargs.get("ignore_queue"):
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback)
            return
        remote_cb: Optional[list[Any]] = None
        if callback is not None:
            if self.server is None:
                raise RuntimeError("Callbacks can only be issued from the context of a server.")
            if room is None:
                raise ValueError("Cannot use callback without a room set.")
            ack_id = next(self._ids)
            self._callbacks[ack_id] = callback
            while len(self._callbacks) > MAX_PENDING_CALLBACKS:
                self._callbacks.popitem(last=False)
            remote_cb = [room, namespace, ack_id]
        args = list(data) if isinstance(data, tuple) else [data]
        binary = _has_binary(args)
        if binary:
            attachments: list[bytes] = []
            skeleton = _deconstruct(args, attachments)
            args = [skeleton, *[base64.b64encode(a).decode() for a in attachments]]
        message = {"method": "emit", "event": event, "data": args, "binary": binary, "namespace": namespace,
                   "room": room, "skip_sid": skip_sid, "callback": remote_cb, "host_id": self.host_id}
        if self.server is not None:
            self.server._emit_local(event, data, namespace, room, skip_sid, callback)
        await self._publish(message)

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        """True if ``sid`` is here; otherwise ask the other servers to disconnect it."""
        if self.server is not None and self.server._socket(sid, namespace) is not None:
            return True
        await self._publish({"method": "disconnect", "sid": sid, "namespace": namespace or "/",
                             "host_id": self.host_id})
        return False

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Disconnect ``sid`` here and on the other servers."""
        if kwargs.get("ignore_queue"):
            await super().disconnect(sid, namespace)
            return
        await super().disconnect(sid, namespace)
        await self._publish({"method": "disconnect", "sid": sid, "namespace": namespace or "/",
                             "host_id": self.host_id})

    async def enter_room(self, sid: str, namespace: str, room: str, eio_sid: Optional[str] = None) -> None:
        """Put ``sid`` in ``room``, here or on the server that has it."""
        if self.server is not None and self.server._socket(sid, namespace) is not None:
            await super().enter_room(sid, namespace, room)
            return
        await self._publish({"method": "enter_room", "sid": sid, "room": room, "namespace": namespace or "/",
                             "host_id": self.host_id})

    async def leave_room(self, sid: str, namespace: str, room: str) -> None:
        """Take ``sid`` out of ``room``, here or on the server that has it."""
        if self.server is not None and self.server._socket(sid, namespace) is not None:
            await super().leave_room(sid, namespace, room)
            return
        await self._publish({"method": "leave_room", "sid": sid, "room": room, "namespace": namespace or "/",
                             "host_id": self.host_id})

    async def close_room(self, room: str, namespace: Optional[str]) -> None:
        """Empty ``room`` here and on the other servers."""
        if self.server is not None:
            await super().close_room(room, namespace)
        await self._publish({"method": "close_room", "room": room, "namespace": namespace or "/",
                             "host_id": self.host_id})

    # -- messages from the channel ---------------------------------------------------------

    async def _run(self) -> None:
        async for raw in self._listen():
            try:
                message = orjson.loads(raw) if isinstance(raw, (bytes, bytearray, memoryview, str)) else raw
            except orjson.JSONDecodeError:
                logger.debug("ignoring a message that is not JSON on %s", self.channel)
                continue
            if not isinstance(message, dict) or not isinstance(message.get("method"), str):
                continue
            try:
                await self._handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("error handling a %r message from the channel", message.get("method"))

    async def _handle(self, message: dict[str, Any]) -> None:
        method = message["method"]
        server = self.server
        if method == "callback":
            if message.get("host_id") == self.host_id:
                ack_id = message.get("id")
                args = message.get("args")
                cb = self._callbacks.pop(ack_id, None) if isinstance(ack_id, int) else None
                if cb is not None:
                    result = cb(*(args if isinstance(args, list) else []))
                    if asyncio.iscoroutine(result):
                        await result
            return
        if message.get("host_id") == self.host_id or server is None:
            return
        namespace = message.get("namespace") or "/"
        if not isinstance(namespace, str):
            return
        if method == "emit":
            await self._handle_emit(message, namespace)
        elif method == "disconnect":
            sid = message.get("sid")
            if isinstance(sid, str):
                await server._disconnect_local(sid, namespace)
        elif method in ("enter_room", "leave_room"):
            sid, room = message.get("sid"), message.get("room")
            if isinstance(sid, str) and isinstance(room, str):
                sock = server._socket(sid, namespace)
                if sock is not None:
                    sock.join(room) if method == "enter_room" else sock.leave(room)
        elif method == "close_room":
            room = message.get("room")
            if isinstance(room, str):
                await AsyncManager.close_room(self, room, namespace)

    async def _handle_emit(self, message: dict[str, Any], namespace: str) -> None:
        assert self.server is not None
        event = message.get("event")
        data = message.get("data")
        if not isinstance(event, str) or not isinstance(data, list):
            return
        if message.get("binary"):
            if not data:
                return
            attachments = [base64.b64decode(a) for a in data[1:] if isinstance(a, str)]
            data = _reconstruct(data[0], attachments)
        payload: Any = data
        if isinstance(data, list):
            payload = data[0] if len(data) == 1 else tuple(data)
        room = message.get("room")
        skip = message.get("skip_sid")
        cb = message.get("callback")
        callback: Optional[Callable[..., Any]] = None
        if isinstance(cb, list) and len(cb) == 3:
            origin = message.get("host_id")
            cb_room, cb_nsp, cb_id = cb

            async def answer(*args: Any) -> None:
                await self._publish({"method": "callback", "host_id": origin, "sid": cb_room,
                                     "namespace": cb_nsp, "id": cb_id, "args": list(args)})

            callback = answer
        self.server._emit_local(event, payload, namespace, room, skip, callback)


class AsyncRedisManager(AsyncPubSubManager):
    """python-socketio's ``AsyncRedisManager`` (Redis pub/sub, python-socketio's format).

    Args:
        url: a ``redis://`` / ``rediss://`` / ``unix://`` URL.
        channel: the channel (python-socketio's default ``"socketio"``).
        write_only: only publish (to emit from a process that serves no clients).
        logger: accepted for python-socketio's signature.
        json: accepted for python-socketio's signature.
        redis_options: keyword arguments for ``redis.asyncio.Redis.from_url``.

    Example:
        >>> mgr = socketio.AsyncRedisManager("redis://127.0.0.1:6379/0")
        >>> sio = socketio.AsyncServer(client_manager=mgr)
    """

    name = "aioredis"

    def __init__(self, url: str = "redis://localhost:6379/0", channel: str = "socketio", write_only: bool = False,
                 logger: Any = None, json: Any = None, redis_options: Optional[dict[str, Any]] = None) -> None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the redis extra
            raise RuntimeError("AsyncRedisManager needs the redis package (pip install fastsio[redis])") from exc
        super().__init__(channel=channel, write_only=write_only, logger=logger, json=json)
        self.redis_url = url
        self.redis_options = dict(redis_options or {})
        self._redis: Any = None
        self._pubsub: Any = None
        #: set once the channel is subscribed (tests and callers may wait on it)
        self.subscribed = asyncio.Event()

    def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(self.redis_url, **self.redis_options)
        return self._redis

    async def _publish(self, message: dict[str, Any]) -> None:
        data = orjson.dumps(message)
        for attempt in range(2):
            try:
                await self._client().publish(self.channel, data)
                return
            except Exception:
                if attempt:
                    logger.exception("cannot publish to redis, giving up")
                    return
                logger.warning("cannot publish to redis, retrying")
                await self._reset()

    async def _reset(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:
                pass

    async def _listen(self) -> Any:
        import redis.asyncio as aioredis

        delay = 0.1
        while True:
            sub: Any = aioredis.Redis.from_url(self.redis_url, **self.redis_options)
            pubsub: Any = sub.pubsub(ignore_subscribe_messages=True)
            self._pubsub = pubsub
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                delay = 0.1
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        yield message.get("data")
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("redis subscription lost, retrying in %.1f s", delay)
            finally:
                self.subscribed.clear()
                try:
                    await pubsub.aclose()
                    await sub.aclose()
                except Exception:
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        """Stop listening and close the Redis connections."""
        await super().close()
        await self._reset()

