"""Room fan-out: the target set of a broadcast and the write loop (pure-Python twin).

The target set is the union of the sockets in ``rooms`` (every socket of
the namespace when ``rooms`` is empty), minus the sockets in
``except_rooms`` and the ids in ``except_ids``. The write loop hands the same
prepared message object to every target so it is encoded once.
"""
from __future__ import annotations

import sys
from typing import Any, Collection, Mapping, Optional

__all__ = ["target_ids", "deliver", "WriteBuffer", "FlushQueue", "DirectWriter", "KIND_EIO3", "KIND_DEFLATE"]


def target_ids(
    rooms_map: Mapping[str, Collection[str]],
    all_ids: Collection[str],
    rooms: Collection[str],
    except_rooms: Collection[str],
    except_ids: Collection[str],
) -> list[str]:
    """The ids a broadcast reaches, each once, in a stable order.

    Args:
        rooms_map: room name -> ids of the sockets in it.
        all_ids: every socket id of the namespace (used when ``rooms`` is empty).
        rooms: the rooms to reach; empty means everybody.
        except_rooms: rooms whose sockets are left out.
        except_ids: ids left out (the sender for ``socket.broadcast``).
    """
    excluded: set[str] = set(except_ids)
    for room in except_rooms:
        members = rooms_map.get(room)
        if members:
            excluded.update(members)
    result: list[str] = []
    if not rooms:
        if not excluded:
            return list(all_ids)
        for sid in all_ids:
            if sid not in excluded:
                result.append(sid)
        return result
    if len(rooms) == 1 and not excluded:
        # the common case, one room and nobody left out: its members
        for room in rooms:
            members = rooms_map.get(room)
            return list(members) if members else []
    seen = excluded
    if len(rooms) > 1:
        seen = set(excluded)
    for room in rooms:
        members = rooms_map.get(room)
        if not members:
            continue
        for sid in members:
            if sid not in seen:
                if len(rooms) > 1:
                    seen.add(sid)
                result.append(sid)
    return result


class WriteBuffer:
    """The bytes queued for one connection during the current loop iteration.

    ``conn`` is the connection (its ``_flush()`` writes what ``take()`` returns);
    ``paused`` mirrors the kernel's back-pressure. The first ``push`` of an
    iteration registers the buffer with ``queue``, which flushes every
    registered buffer once per iteration. While ``transport`` is set (an
    asyncio transport the connection owns and is not closing) the queue
    writes the buffer to it itself, without calling ``conn._flush()``.

    ``buffered`` is the output pending for the connection in bytes: what is
    queued here plus what its transport still held at the last flush (the
    connection keeps it up to date). Past ``drop_above`` volatile broadcasts
    skip the connection; a push that would take it past ``max_bytes`` is not
    queued and ``conn._overflow()`` is called instead (the slow-consumer policy).
    """

    __slots__ = ("conn", "queue", "transport", "paused", "chunks", "buffered", "max_bytes", "drop_above")

    def __init__(self, conn: Any, queue: "FlushQueue", max_bytes: int = sys.maxsize,
                 drop_above: int = sys.maxsize) -> None:
        self.conn = conn
        self.queue = queue
        self.transport: Any = None
        self.paused = False
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.max_bytes = max_bytes
        self.drop_above = drop_above

    def push(self, data: bytes) -> None:
        """Queue ``data`` behind what is already queued (or call ``conn._overflow()``, see above)."""
        n = len(data)
        if self.buffered + n > self.max_bytes:
            self.conn._overflow()
            return
        if not self.chunks:
            self.queue.add(self)
        self.chunks.append(data)
        self.buffered += n

    def take(self) -> Optional[bytes]:
        """Everything queued, as one bytes object (None when empty); the buffer is emptied."""
        chunks = self.chunks
        if not chunks:
            return None
        self.chunks = []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def clear(self) -> None:
        """Drop what is queued (``buffered`` forgets it too)."""
        for chunk in self.chunks:
            self.buffered -= len(chunk)
        if self.buffered < 0:
            self.buffered = 0
        self.chunks = []

    @property
    def pending(self) -> bool:
        """True when something is queued."""
        return bool(self.chunks)


class FlushQueue:
    """Write buffers with pending output, flushed once per loop iteration.

    One ``call_soon`` on ``loop`` serves every buffer written to in an
    iteration, so a broadcast to N connections costs one loop handle, not N.
    ``volatile_dropped`` counts the volatile broadcasts ``deliver`` skipped
    for buffers of this queue that were past their ``drop_above``.
    """

    __slots__ = ("loop", "pending", "scheduled", "volatile_dropped")

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.pending: list[WriteBuffer] = []
        self.scheduled = False
        self.volatile_dropped = 0

    def add(self, buf: WriteBuffer) -> None:
        """Register ``buf`` for the next flush."""
        self.pending.append(buf)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every registered buffer.

        A buffer with a ``transport`` is written here: its chunks in one
        ``transport.write`` (joined when there are several: on uvloop one
        write of the joined bytes costs less than ``writelines``), dropped
        when the transport is closing; then ``buffered`` is what the transport
        still holds while paused, else 0. Any other buffer is flushed by its
        connection (``buf.conn._flush()``).
        """
        self.scheduled = False
        pending = self.pending
        self.pending = []
        for buf in pending:
            transport = buf.transport
            if transport is None:
                buf.conn._flush()
                continue
            chunks = buf.chunks
            if not chunks:
                continue
            buf.chunks = []
            if transport.is_closing():
                continue
            transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            buf.buffered = transport.get_write_buffer_size() if buf.paused else 0


class DirectWriter:
    """An engine session's door to the broadcast fast path.

    ``target`` is the WriteBuffer of the session's WebSocket connection while
    a broadcast may put its shared frames there directly, else None. ``kind``
    says which frames it takes: ``KIND_EIO3`` (Engine.IO v3 framing) and
    ``KIND_DEFLATE`` (permessage-deflate, parts of ``threshold`` bytes or more
    compressed) or'ed together, 0 for plain v4 frames.
    """

    __slots__ = ("target", "kind", "threshold")

    def __init__(self, target: Optional[WriteBuffer] = None, kind: int = 0, threshold: int = 1024) -> None:
        if kind < 0 or kind > 3:
            raise ValueError(f"DirectWriter kind must be 0-3, not {kind}")
        self.target: Optional[WriteBuffer] = target
        self.kind = kind
        self.threshold = threshold


#: DirectWriter.kind bits
KIND_EIO3 = 1
KIND_DEFLATE = 2


def deliver(sockets: Mapping[str, Any], ids: Collection[str], message: Any, volatile: bool = False,
            directs: Optional[Mapping[str, DirectWriter]] = None) -> int:
    """Hand ``message`` (a prepared engine message) to the connection of each id.

    A session with an open fast path (``directs[id].target``) gets the shared
    WebSocket frames of its kind (``message.ws_bytes(4 or 3)``, or
    ``message.ws_bytes_deflate(4 or 3, threshold)``, each asked for once per
    call) pushed straight into its write buffer, under the buffer's limits
    (``WriteBuffer.push``); every other one goes through
    ``sockets[id]._conn.send_prepared``. Returns how many connections took
    it; with ``volatile``, a connection past its ``drop_above`` (or whose
    ``writable`` is False) is skipped, and counted (``FlushQueue.volatile_dropped``,
    or ``conn._on_volatile_dropped()`` when it has one).
    """
    count = 0
    # the frames of each kind, built on first use; the deflate ones for threshold z2 / z3
    f0: Optional[bytes] = None
    f1: Optional[bytes] = None
    f2: Optional[bytes] = None
    f3: Optional[bytes] = None
    z2 = z3 = -1
    if directs is None:
        directs = {}
    for sid in ids:
        direct = directs.get(sid)
        if direct is not None and direct.target is not None:
            target = direct.target
            if volatile and target.buffered > target.drop_above:
                target.queue.volatile_dropped += 1
                continue
            kind = direct.kind
            if kind == 0:
                if f0 is None:
                    f0 = message.ws_bytes(4)
                frames = f0
            elif kind == 1:
                if f1 is None:
                    f1 = message.ws_bytes(3)
                frames = f1
            elif kind == 2:
                if f2 is None or z2 != direct.threshold:
                    z2 = direct.threshold
                    f2 = message.ws_bytes_deflate(4, z2)
                frames = f2
            else:
                if f3 is None or z3 != direct.threshold:
                    z3 = direct.threshold
                    f3 = message.ws_bytes_deflate(3, z3)
                frames = f3
            flen = len(frames)
            if target.buffered + flen > target.max_bytes:
                target.conn._overflow()
                continue
            if not target.chunks:
                target.queue.add(target)
            target.chunks.append(frames)
            target.buffered += flen
        else:
            sock = sockets.get(sid)
            if sock is None:
                continue
            conn = sock._conn
            if volatile and not conn.writable:
                hook = getattr(conn, "_on_volatile_dropped", None)
                if hook is not None:
                    hook()
                continue
            conn.send_prepared(message)
        count += 1
    return count
