"""The local bus: the workers of one machine joined by Unix sockets (Node's ``@socket.io/cluster-adapter``).

``LocalAdapter`` is a thin transport under
:class:`fastsio.adapters.cluster.ClusterAdapterWithHeartbeat`: the messages,
requests, acks and heartbeats are that module's, exactly the protocol Node's
cluster adapter speaks between its workers; this module only carries them.

The carrier is a mesh, not a hub: each worker listens on a Unix stream
socket in the primary's private directory (``b<index>.sock``) and opens one
connection to every other worker, on which it sends (it receives on the
connections the others opened to it). A broadcast is encoded once
(MessagePack, ``_wire.encode``), framed once, and the same bytes are written
to each other worker: one hop, and the primary does no work per message
(through a hub it would copy every broadcast once more and be one more
process on the path). Per connection, messages keep their order.

One ``LocalBus`` per worker process carries the messages of every
namespace; each namespace's adapter registers with it. A response goes only
to the worker whose adapter asked (learnt from the messages that worker
sent). When a worker's connection ends, its adapters are taken out at once
instead of after the heartbeat timeout.
"""
from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections import deque
from typing import TYPE_CHECKING, Any, Optional

from ..exceptions import ProtocolError
from . import _wire
from .cluster import ClusterAdapterWithHeartbeat, ClusterMessage

if TYPE_CHECKING:
    from ..namespace import Namespace

__all__ = ["LocalAdapter", "LocalBus", "install_bus"]

logger = logging.getLogger(__name__)

_LEN = struct.Struct("!I")
_HELLO = struct.Struct("!4sH")
_MAGIC = b"FSB1"
#: largest message one worker accepts from another
MAX_MESSAGE = 64 * 1024 * 1024
#: messages kept for a worker that is not connected yet (starting, restarting)
MAX_QUEUED = 10_000
_RETRY_MIN, _RETRY_MAX = 0.05, 1.0


class _Out(asyncio.Protocol):
    """This worker's sending connection to one other worker."""

    def __init__(self, bus: "LocalBus", index: int) -> None:
        self.bus = bus
        self.index = index
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        pass  # nothing comes back on a sending connection

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.transport = None
        self.bus._lost_out(self.index, self)


class _In(asyncio.Protocol):
    """A connection another worker opened to send to this one: frames in, messages out."""

    def __init__(self, bus: "LocalBus") -> None:
        self.bus = bus
        self.buf = bytearray()
        self.peer: Optional[int] = None
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        n = len(buf)
        try:
            if self.peer is None:
                if n < _HELLO.size:
                    return
                magic, peer = _HELLO.unpack_from(buf)
                if magic != _MAGIC or peer >= self.bus.count:
                    raise ProtocolError("not a fastsio worker")
                self.peer = peer
                pos = _HELLO.size
            while n - pos >= _LEN.size:
                (size,) = _LEN.unpack_from(buf, pos)
                if size > MAX_MESSAGE:
                    raise ProtocolError(f"a message of {size} bytes from worker {self.peer}")
                if n - pos - _LEN.size < size:
                    break
                start = pos + _LEN.size
                frame = bytes(buf[start:start + size])
                pos = start + size
                self.bus._on_frame(self.peer, frame)
        except ProtocolError as exc:
            logger.error("closing a bus connection: %s", exc)
            if self.transport is not None:
                self.transport.abort()
            return
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if self.peer is not None:
            self.bus._lost_in(self.peer)


class LocalBus:
    """The Unix-socket mesh between the workers of one primary (one per worker process).

    Args:
        index: this worker's index.
        count: how many workers there are.
        directory: the primary's private directory.
    """

    def __init__(self, index: int, count: int, directory: str) -> None:
        self.index = index
        self.count = count
        self.directory = directory
        self.adapters: dict[str, "LocalAdapter"] = {}
        # adapter uid -> the worker it lives on (responses go there only)
        self.uid_worker: dict[str, int] = {}
        self._out: dict[int, _Out] = {}
        self._pending: dict[int, list[bytes]] = {}
        self._flush_scheduled = False
        self._queued: dict[int, deque[bytes]] = {i: deque() for i in range(count) if i != index}
        self._connecting: set[int] = set()
        self._retry: dict[int, float] = {}
        self._server: Optional[asyncio.AbstractServer] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False
        self._tasks: set["asyncio.Future[Any]"] = set()

    def path_of(self, index: int) -> str:
        return os.path.join(self.directory, f"b{index}.sock")

    async def start(self) -> None:
        """Listen for the other workers and start connecting to them."""
        self._loop = asyncio.get_running_loop()
        path = self.path_of(self.index)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._server = await self._loop.create_unix_server(lambda: _In(self), path)
        for i in self._queued:
            self._connect(i)

    async def close(self) -> None:
        """Close every connection (after what is queued on them has been written)."""
        self._flush()
        self._closed = True
        if self._server is not None:
            self._server.close()
        for out in list(self._out.values()):
            if out.transport is not None:
                out.transport.close()
        self._out.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- sending -------------------------------------------------------------------

    def publish(self, message: ClusterMessage) -> None:
        """Encode ``message`` once and send the same bytes to every other worker."""
        frame = _frame(_wire.encode(message))
        for i in self._queued:
            self._send(i, frame)

    def send_to(self, uid: str, message: ClusterMessage) -> None:
        """Send ``message`` to the worker of adapter ``uid`` (to all when it is not known)."""
        worker = self.uid_worker.get(uid)
        if worker is None or worker == self.index:
            self.publish(message)
            return
        self._send(worker, _frame(_wire.encode(message)))

    def _send(self, index: int, frame: bytes) -> None:
        out = self._out.get(index)
        if out is not None and out.transport is not None:
            # coalesced: what one loop iteration publishes leaves in one write per worker,
            # so the receiver applies it in one iteration and writes to its clients once
            pending = self._pending.get(index)
            if pending is None:
                self._pending[index] = [frame]
                if not self._flush_scheduled and self._loop is not None:
                    self._flush_scheduled = True
                    self._loop.call_soon(self._flush)
            else:
                pending.append(frame)
            return
        queue = self._queued[index]
        if len(queue) >= MAX_QUEUED:
            queue.popleft()
        queue.append(frame)
        self._connect(index)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for index, frames in pending.items():
            out = self._out.get(index)
            if out is not None and out.transport is not None:
                out.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            else:
                for frame in frames:
                    self._send(index, frame)

    def _connect(self, index: int) -> None:
        if self._closed or index in self._connecting or index in self._out or self._loop is None:
            return
        self._connecting.add(index)
        task = asyncio.ensure_future(self._open(index))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, index: int) -> None:
        assert self._loop is not None
        delay = self._retry.get(index, 0.0)
        try:
            if delay:
                await asyncio.sleep(delay)
            try:
                transport, proto = await asyncio.wait_for(
                    self._loop.create_unix_connection(lambda: _Out(self, index), self.path_of(index)), 2)
            except (OSError, asyncio.TimeoutError):
                # not listening yet (starting) or gone (restarting): try again a little later
                self._retry[index] = min(_RETRY_MAX, max(_RETRY_MIN, delay * 2))
                self._connecting.discard(index)
                if not self._closed:
                    self._connect(index)
                return
        except asyncio.CancelledError:
            self._connecting.discard(index)
            raise
        self._connecting.discard(index)
        if self._closed:
            transport.close()
            return
        self._retry.pop(index, None)
        self._out[index] = proto
        queued = self._queued[index]
        transport.write(_HELLO.pack(_MAGIC, self.index) + b"".join(queued))
        queued.clear()

    def _lost_out(self, index: int, proto: _Out) -> None:
        if self._out.get(index) is proto:
            del self._out[index]
        if not self._closed:
            self._retry[index] = _RETRY_MIN
            self._connect(index)

    # -- receiving ----------------------------------------------------------------------

    def _on_frame(self, peer: int, frame: bytes) -> None:
        try:
            message = _wire.decode(frame)
        except ProtocolError as exc:
            logger.warning("dropped a malformed message from worker %d: %s", peer, exc)
            return
        if not isinstance(message, dict):
            logger.warning("dropped a message from worker %d that is not a map", peer)
            return
        uid = message.get("uid")
        if isinstance(uid, str) and len(self.uid_worker) < 100_000:
            self.uid_worker[uid] = peer
        adapter = self.adapters.get(message.get("nsp"))  # type: ignore[arg-type]
        if adapter is not None:
            adapter._on_message(message)

    def _lost_in(self, peer: int) -> None:
        # that worker is gone (or restarting): its adapters no longer count
        gone = [uid for uid, w in self.uid_worker.items() if w == peer]
        for uid in gone:
            del self.uid_worker[uid]
            for adapter in list(self.adapters.values()):
                if uid in adapter.nodes:
                    adapter._remove_node(uid)


def _frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


class LocalAdapter(ClusterAdapterWithHeartbeat):
    """The adapter of one namespace on the local bus (made by ``install_bus``).

    Args:
        nsp: the namespace.
        bus: this worker's ``LocalBus``.
        heartbeat_interval, heartbeat_timeout, requests_timeout: as for
            ``ClusterAdapterWithHeartbeat`` (Node's cluster adapter: 5, 10, 5).
    """

    def __init__(self, nsp: "Namespace", *, bus: LocalBus, heartbeat_interval: float = 5.0,
                 heartbeat_timeout: float = 10.0, requests_timeout: float = 5.0) -> None:
        super().__init__(nsp, heartbeat_interval=heartbeat_interval, heartbeat_timeout=heartbeat_timeout,
                         requests_timeout=requests_timeout)
        self.bus = bus
        bus.adapters[nsp.name] = self

    def _do_publish(self, message: ClusterMessage) -> None:
        self.bus.publish(message)

    def _do_publish_response(self, requester_uid: str, response: ClusterMessage) -> None:
        self.bus.send_to(requester_uid, response)

    def close(self) -> Any:
        result = super().close()
        if self.bus.adapters.get(self.nsp.name) is self:
            del self.bus.adapters[self.nsp.name]
        return result


async def install_bus(server: Any, index: int, count: int, directory: str) -> Optional[LocalBus]:
    """Join this worker's namespaces to the other workers over a ``LocalBus``.

    Only when the server uses the default in-memory adapter: with a Redis
    adapter (or any other), the workers are members of that cluster already
    and no local bus is made (None is returned).
    """
    from ..adapter import InMemoryAdapter, SessionAwareAdapter

    if server.adapter() not in (InMemoryAdapter, SessionAwareAdapter):
        return None
    if server.adapter() is SessionAwareAdapter:
        logger.warning("connection state recovery is not available over the local bus between workers "
                       "(clients that come back get a new session); the Redis Streams adapter carries it")
    bus = LocalBus(index, count, directory)
    await bus.start()

    def factory(nsp: "Namespace") -> LocalAdapter:
        return LocalAdapter(nsp, bus=bus)

    server.adapter(factory)
    return bus
