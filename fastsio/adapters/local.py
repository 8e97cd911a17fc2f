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

Connection state recovery across workers
----------------------------------------
Node's cluster adapter has none; these two message types are fastsio's own
(only fastsio workers are on this bus). With ``connection_state_recovery``
on, each event broadcast without an ack and not volatile gets the offset
``<8 hex: the sending adapter>-<hex sequence number>`` as its last argument
(the client sends back the last one it got), and every worker keeps every
such packet it applies, in its order, for ``max_disconnection_duration``.
Since each worker's messages reach every other worker in order, "the last
sequence number applied per sender" (``seen``) tells exactly which packets
a worker had at a given moment. A disconnected socket's session stays on
its worker. A worker that gets a CONNECT with ``pid`` and ``offset`` for a
session it does not hold asks the others:

- ``100`` RESTORE_SESSION ``{requestId, pid, offset}``, to every worker;
- ``101`` RESTORE_SESSION_RESPONSE, to the asker: ``{requestId}`` (not
  here, offset no longer kept) or ``{requestId, session: {sid, pid, rooms,
  data, disconnected_at, missed_packets}, seen}`` from the worker that had
  it (it hands it out once; the asker stops waiting at this answer).

The asker appends the packets it applied that the owner's ``seen`` did not
cover (in its own order), and those it applies until the socket is in its
rooms; then the socket is live. No answer from every live worker within
``requests_timeout``, or a worker's bus connection closing, ends the wait:
a fresh session, as for an unknown one.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Optional

from .._impl import sio_codec
from ..adapter import BroadcastOptions, _should_include
from ..exceptions import ProtocolError
from . import _wire
from .cluster import ClusterAdapterWithHeartbeat, ClusterMessage, _check_request_id

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
        """Encode ``message`` once and send the same bytes to every other worker.

        Raises:
            ValueError: the message encodes to more than ``MAX_MESSAGE`` bytes
                (the others would refuse it and drop the connection).
        """
        frame = _frame(_wire.encode(message))
        for i in self._queued:
            self._send(i, frame)

    def send_to(self, uid: str, message: ClusterMessage) -> None:
        """Send ``message`` to the worker of adapter ``uid`` (to all when it is not known).

        Raises:
            ValueError: as ``publish``.
        """
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
    if len(payload) > MAX_MESSAGE:
        raise ValueError(f"a bus message of {len(payload)} bytes (at most {MAX_MESSAGE})")
    return _LEN.pack(len(payload)) + payload


class LocalAdapter(ClusterAdapterWithHeartbeat):
    """The adapter of one namespace on the local bus (made by ``install_bus``).

    With ``connection_state_recovery`` on, it is also session-aware (see
    "Connection state recovery across workers" below): every event broadcast
    without an ack and not volatile gets an offset, every worker keeps every
    such packet it applies, and a client that comes back on any worker is
    restored from the worker that kept its session.

    Args:
        nsp: the namespace.
        bus: this worker's ``LocalBus``.
        heartbeat_interval, heartbeat_timeout, requests_timeout: as for
            ``ClusterAdapterWithHeartbeat`` (Node's cluster adapter: 5, 10, 5).
            ``requests_timeout`` also bounds how long a reconnecting client
            waits for a worker that does not answer a restore.
    """

    def __init__(self, nsp: "Namespace", *, bus: LocalBus, heartbeat_interval: float = 5.0,
                 heartbeat_timeout: float = 10.0, requests_timeout: float = 5.0) -> None:
        super().__init__(nsp, heartbeat_interval=heartbeat_interval, heartbeat_timeout=heartbeat_timeout,
                         requests_timeout=requests_timeout)
        self.bus = bus
        bus.adapters[nsp.name] = self
        recovery = nsp.server._recovery
        self._keeper: Optional[_Keeper] = (
            _Keeper(float(recovery.get("max_disconnection_duration", 120))) if recovery is not None else None)

    def _do_publish(self, message: ClusterMessage) -> None:
        self.bus.publish(message)

    def _do_publish_response(self, requester_uid: str, response: ClusterMessage) -> None:
        self.bus.send_to(requester_uid, response)

    def close(self) -> Any:
        result = super().close()
        if self.bus.adapters.get(self.nsp.name) is self:
            del self.bus.adapters[self.nsp.name]
        return result

    # -- connection state recovery -------------------------------------------------

    def broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        keeper = self._keeper
        if keeper is None or packet.type != _EVENT or packet.id is not None or "volatile" in opts.flags:
            super().broadcast(packet, opts)
            return
        # the offset names this adapter and a sequence number: every worker keeps the
        # packet under it, and can tell from it how far it has applied this worker's packets
        seq = keeper.next_seq
        keeper.next_seq += 1
        offset = keeper.prefix + format(seq, "x")
        packet.data = list(packet.data)
        packet.data.append(offset)
        super().broadcast(packet, opts)
        keeper.keep(keeper.prefix, seq, offset, packet.data, opts)

    def _on_broadcast(self, uid: str, data: dict[str, Any], offset: Optional[str]) -> None:
        super()._on_broadcast(uid, data, offset)
        keeper = self._keeper
        if keeper is None or data.get("requestId") is not None:
            return
        opts = _wire.opts_from_wire(data.get("opts"))
        args = data["packet"]["data"]
        if "volatile" in opts.flags or len(args) < 2:
            return
        parsed = _parse_offset(args[-1])
        if parsed is not None:
            keeper.keep(parsed[0], parsed[1], args[-1], args, opts)

    def add_all(self, sid: str, rooms: Any) -> None:
        keeper = self._keeper
        if keeper is not None and keeper.restoring:
            # the restored socket is in its rooms from now on: live packets reach it
            keeper.restoring.pop(sid, None)
        super().add_all(sid, rooms)

    def persist_session(self, session: dict[str, Any]) -> None:
        if self._keeper is not None:
            self._keeper.store(session, time.monotonic())

    def restore_session(self, pid: str, offset: str) -> Any:
        """The session of ``pid`` and what it missed after ``offset``: from this worker, or asked of the others.

        None (a fresh session) when no worker holds it, its offset is no
        longer kept, or no worker answers within ``requests_timeout``;
        otherwise (asking) an awaitable of the session.
        """
        keeper = self._keeper
        if keeper is None or not isinstance(pid, str) or not isinstance(offset, str) or len(offset) > 64:
            return None
        now = time.monotonic()
        if pid in keeper.sessions:
            return keeper.take(pid, offset, now)
        if not self.nodes or self._closed:
            return None
        return self._ask_restore(pid, offset)

    async def _ask_restore(self, pid: str, offset: str) -> Optional[dict[str, Any]]:
        fut: "asyncio.Future[Optional[dict[str, Any]]]" = asyncio.get_running_loop().create_future()

        def done(err: Optional[BaseException], responses: list[Any]) -> None:
            if fut.done():
                return
            found = next((r for r in responses if r is not None), None)
            if found is None:
                if err is not None:
                    logger.info("restoring a session: %s; the client gets a new session", err)
                fut.set_result(None)
                return
            session, seen = found
            assert self._keeper is not None
            fut.set_result(self._keeper.adopt(session, seen, time.monotonic()))

        self._start_request(_T_RESTORE, {"pid": pid, "offset": offset}, done, len(self.nodes), set(self.nodes),
                            [], self.requests_timeout, "restore_session")
        return await fut

    def _restore_refused(self, session: dict[str, Any]) -> None:
        keeper = self._keeper
        if keeper is None:
            return
        keeper.restoring.pop(session["sid"], None)
        now = time.monotonic()
        if session.get("disconnected_at", now) >= now - keeper.duration and session["pid"] not in keeper.sessions:
            keeper.store(session, session.get("disconnected_at", now))

    def _dispatch(self, message: ClusterMessage, type: int, uid: Any, offset: Optional[str]) -> None:
        if type != _T_RESTORE and type != _T_RESTORE_RESPONSE:
            super()._dispatch(message, type, uid, offset)
            return
        if not isinstance(uid, str):
            raise ProtocolError("message has no uid")
        if self._loop is not None:
            self.nodes[uid] = self._loop.time()
        data = message.get("data")
        request_id = _check_request_id(data)
        assert isinstance(data, dict)
        if type == _T_RESTORE:
            self._on_restore(uid, request_id, data)
            return
        request = self._requests.get(request_id)
        if request is None or request.type != _T_RESTORE:
            return
        session = data.get("session")
        if session is not None:
            seen = data.get("seen")
            if not isinstance(seen, dict):
                raise ProtocolError("a restore answer without seen offsets")
            request.responses.append((_session_from_wire(session), seen))
            # one worker holds a session: no need to wait for the others
            self._finish(request_id, request)
            return
        self._count_response(request_id, request, uid)

    def _on_restore(self, uid: str, request_id: str, data: dict[str, Any]) -> None:
        pid, offset = data.get("pid"), data.get("offset")
        answer: dict[str, Any] = {"requestId": request_id}
        keeper = self._keeper
        session = None
        if keeper is not None and isinstance(pid, str) and isinstance(offset, str) and pid in keeper.sessions:
            session = keeper.take(pid, offset, time.monotonic())
        response = {"uid": self.uid, "nsp": self.nsp.name, "type": _T_RESTORE_RESPONSE, "data": answer}
        if session is not None:
            assert keeper is not None
            answer["session"] = session
            # how far this worker had applied each worker's packets when it answered
            answer["seen"] = dict(keeper.seen)
            try:
                self.bus.send_to(uid, response)
                return
            except Exception as exc:  # too big for the bus (or not encodable): a fresh session
                logger.warning("session %s not handed to another worker: %s", pid, exc)
                del answer["session"], answer["seen"]
        self._publish_response(uid, response)


#: fastsio-only message types of the local bus (Node's cluster adapter has no
#: recovery across processes): ``{requestId, pid, offset}`` asks every other
#: worker for a session; the answer is ``{requestId}`` (not here) or
#: ``{requestId, session: {sid, pid, rooms, data, disconnected_at,
#: missed_packets}, seen: {offset prefix: last sequence number applied}}``.
_T_RESTORE = 100
_T_RESTORE_RESPONSE = 101
_EVENT = int(sio_codec.EVENT)
#: per reconnect, how far back (seconds before the disconnection) the new worker
#: looks in its own buffer for packets the old one had not applied yet when it answered
_LOOKBACK = 10.0


def _parse_offset(value: Any) -> Optional[tuple[str, int]]:
    """``(prefix, seq)`` of an offset of this bus (``<8 hex>-<hex seq>``), or None."""
    if not isinstance(value, str) or len(value) > 32 or len(value) < 10 or value[8] != "-":
        return None
    try:
        return value[:9], int(value[9:], 16)
    except ValueError:
        return None


def _session_from_wire(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ProtocolError("a session is not a map")
    sid, pid, rooms, missed = obj.get("sid"), obj.get("pid"), obj.get("rooms"), obj.get("missed_packets")
    when = obj.get("disconnected_at")
    if not isinstance(sid, str) or not isinstance(pid, str) or not isinstance(rooms, list) \
            or not all(isinstance(r, str) for r in rooms) or not isinstance(missed, list) \
            or not all(isinstance(m, list) and m and isinstance(m[0], str) for m in missed) \
            or not isinstance(when, (int, float)):
        raise ProtocolError("a malformed session")
    data = obj.get("data")
    return {"sid": sid, "pid": pid, "rooms": rooms, "data": data if isinstance(data, dict) else {},
            "missed_packets": missed, "disconnected_at": float(when)}


class _Keeper:
    """What one worker keeps for connection state recovery (one namespace).

    ``packets``: every packet with an offset this worker applied, in the
    order it applied them (its clients got them in that order), for
    ``duration`` seconds; ``index``: offset -> position; ``seen``: per offset
    prefix (one per worker's adapter), the last sequence number applied.
    Each worker's packets reach every other worker in order, so ``seen``
    tells exactly which packets a worker had applied at a given moment.
    """

    __slots__ = ("duration", "prefix", "next_seq", "packets", "index", "first", "seen", "sessions", "order",
                 "restoring")

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.prefix = secrets.token_hex(4) + "-"
        self.next_seq = 0
        # (applied_at, prefix, seq, data, opts)
        self.packets: deque[tuple[float, str, int, list[Any], BroadcastOptions]] = deque()
        self.index: dict[str, int] = {}
        self.first = 0  # the position of packets[0]
        self.seen: dict[str, int] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.order: deque[tuple[float, str, dict[str, Any]]] = deque()
        # sid -> (rooms, seen, missed list) of a restored socket not in its rooms yet
        self.restoring: dict[str, tuple[set[str], dict[str, int], list[list[Any]], float]] = {}

    def prune(self, now: float) -> None:
        threshold = now - self.duration
        packets = self.packets
        while packets and packets[0][0] < threshold:
            _, prefix, seq, data, _ = packets.popleft()
            self.index.pop(data[-1], None)
            self.first += 1
        order = self.order
        while order and order[0][0] < threshold:
            _, pid, stored = order.popleft()
            if self.sessions.get(pid) is stored:
                del self.sessions[pid]
        if self.restoring:
            # a restore whose socket never came (the namespace gives refused ones back)
            for sid in [s for s, entry in self.restoring.items() if entry[3] < now - 60]:
                del self.restoring[sid]
        if len(self.seen) > 4096:
            # prefixes of adapters long gone (restarted workers): keep the newest half
            for key in list(self.seen)[:2048]:
                del self.seen[key]

    def keep(self, prefix: str, seq: int, offset: str, data: list[Any], opts: BroadcastOptions) -> None:
        now = time.monotonic()
        self.prune(now)
        self.index[offset] = self.first + len(self.packets)
        self.packets.append((now, prefix, seq, data, opts))
        self.seen[prefix] = seq
        if self.restoring:
            for rooms, seen, missed, _ in self.restoring.values():
                if seq > seen.get(prefix, -1) and _should_include(rooms, opts):
                    missed.append(data)

    def store(self, session: dict[str, Any], disconnected_at: float) -> None:
        self.prune(time.monotonic())
        stored = {"sid": session["sid"], "pid": session["pid"], "rooms": list(session["rooms"]),
                  "data": session["data"], "disconnected_at": disconnected_at}
        self.sessions[session["pid"]] = stored
        self.order.append((disconnected_at, session["pid"], stored))

    def take(self, pid: str, offset: str, now: float) -> Optional[dict[str, Any]]:
        """The session of ``pid`` (handed out once) with the packets after ``offset``, or None."""
        self.prune(now)
        session = self.sessions.get(pid)
        if session is None:
            return None
        if session["disconnected_at"] < now - self.duration:
            del self.sessions[pid]
            return None
        position = self.index.get(offset)
        if position is None:
            return None  # too old (expired) or unknown: a fresh session, as in one process
        del self.sessions[pid]
        rooms = set(session["rooms"])
        missed = []
        packets = self.packets
        for i in range(position - self.first + 1, len(packets)):
            _, _, _, data, opts = packets[i]
            if _should_include(rooms, opts):
                missed.append(data)
        return {"sid": session["sid"], "pid": pid, "rooms": list(session["rooms"]), "data": session["data"],
                "missed_packets": missed, "disconnected_at": session["disconnected_at"]}

    def adopt(self, session: dict[str, Any], seen: dict[str, Any], now: float) -> dict[str, Any]:
        """Complete a session another worker handed over with what only this worker has applied yet.

        ``seen`` is how far the other worker had applied each worker's
        packets when it answered. Packets this worker applied beyond that
        (recently) come after its ``missed_packets``, in this worker's
        order; so do the ones it applies until the socket is in its rooms.
        """
        rooms = set(session["rooms"])
        marks = {k: v for k, v in seen.items() if isinstance(k, str) and isinstance(v, int)}
        later: list[list[Any]] = []
        since = session["disconnected_at"] - _LOOKBACK
        for applied_at, prefix, seq, data, opts in reversed(self.packets):
            if applied_at < since:
                break
            if seq > marks.get(prefix, -1) and _should_include(rooms, opts):
                later.append(data)
        missed: list[list[Any]] = session["missed_packets"]
        missed.extend(reversed(later))
        self.restoring[session["sid"]] = (rooms, marks, missed, now)
        return session


async def install_bus(server: Any, index: int, count: int, directory: str) -> Optional[LocalBus]:
    """Join this worker's namespaces to the other workers over a ``LocalBus``.

    Only when the server uses the default in-memory adapter: with a Redis
    adapter (or any other), the workers are members of that cluster already
    and no local bus is made (None is returned).
    """
    from ..adapter import InMemoryAdapter, SessionAwareAdapter

    if server.adapter() not in (InMemoryAdapter, SessionAwareAdapter):
        return None
    bus = LocalBus(index, count, directory)
    await bus.start()

    def factory(nsp: "Namespace") -> LocalAdapter:
        return LocalAdapter(nsp, bus=bus)

    server.adapter(factory)
    return bus
