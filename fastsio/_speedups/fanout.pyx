# cython: language_level=3, embedsignature=True
"""Room fan-out: the target set of a broadcast and the write loop (compiled).

Same contract as ``fastsio._pure.fanout``: the target set is the union of the
sockets in ``rooms`` (every socket of the namespace when ``rooms`` is empty),
minus the sockets of ``except_rooms`` and the ids in ``except_ids``; the
write loop hands one prepared message object to every target.
"""

cimport cython
from cpython.pyport cimport PY_SSIZE_T_MAX

__all__ = ["target_ids", "deliver", "WriteBuffer", "FlushQueue", "DirectWriter", "KIND_EIO3", "KIND_DEFLATE"]


cpdef list target_ids(object rooms_map, object all_ids, object rooms, object except_rooms, object except_ids):
    """The ids a broadcast reaches, each once, in a stable order."""
    cdef set excluded = set(except_ids)
    cdef set seen
    cdef list result = []
    cdef object room, members, sid
    cdef bint many
    for room in except_rooms:
        members = rooms_map.get(room)
        if members:
            excluded.update(members)
    if not rooms:
        if not excluded:
            return list(all_ids)
        for sid in all_ids:
            if sid not in excluded:
                result.append(sid)
        return result
    many = len(rooms) > 1
    if not many and not excluded:
        # the common case, one room and nobody left out: its members, copied at C speed
        for room in rooms:
            members = rooms_map.get(room)
            return list(members) if members else []
    seen = set(excluded) if many else excluded
    for room in rooms:
        members = rooms_map.get(room)
        if not members:
            continue
        for sid in members:
            if sid not in seen:
                if many:
                    seen.add(sid)
                result.append(sid)
    return result


@cython.auto_pickle(False)
cdef class WriteBuffer:
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

    def __init__(self, object conn, FlushQueue queue, Py_ssize_t max_bytes=PY_SSIZE_T_MAX,
                 Py_ssize_t drop_above=PY_SSIZE_T_MAX):
        self.conn = conn
        self.queue = queue
        self.transport = None
        self.paused = False
        self.chunks = []
        self.buffered = 0
        self.max_bytes = max_bytes
        self.drop_above = drop_above

    cpdef push(self, bytes data):
        """Queue ``data`` behind what is already queued (or call ``conn._overflow()``, see above)."""
        cdef Py_ssize_t n = len(data)
        if self.buffered + n > self.max_bytes:
            self.conn._overflow()
            return
        if not self.chunks:
            self.queue.add(self)
        self.chunks.append(data)
        self.buffered += n

    cpdef object take(self):
        """Everything queued, as one bytes object (None when empty); the buffer is emptied."""
        cdef list chunks = self.chunks
        if not chunks:
            return None
        self.chunks = []
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    cpdef clear(self):
        """Drop what is queued (``buffered`` forgets it too)."""
        cdef bytes chunk
        for chunk in self.chunks:
            self.buffered -= len(chunk)
        if self.buffered < 0:
            self.buffered = 0
        self.chunks = []

    @property
    def pending(self):
        """True when something is queued."""
        return bool(self.chunks)


@cython.auto_pickle(False)
cdef class FlushQueue:
    """Write buffers with pending output, flushed once per loop iteration.

    One ``call_soon`` on ``loop`` serves every buffer written to in an
    iteration, so a broadcast to N connections costs one loop handle, not N.
    ``volatile_dropped`` counts the volatile broadcasts ``deliver`` skipped
    for buffers of this queue that were past their ``drop_above``.
    """

    def __init__(self, object loop):
        self.loop = loop
        self.pending = []
        self.scheduled = False
        self.volatile_dropped = 0

    cpdef add(self, WriteBuffer buf):
        """Register ``buf`` for the next flush."""
        self.pending.append(buf)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    cpdef flush(self):
        """Write every registered buffer.

        A buffer with a ``transport`` is written here: its chunks in one
        ``transport.write`` (joined when there are several: on uvloop one
        write of the joined bytes costs less than ``writelines``), dropped
        when the transport is closing; then ``buffered`` is what the transport
        still holds while paused, else 0. Any other buffer is flushed by its
        connection (``buf.conn._flush()``).
        """
        cdef WriteBuffer buf
        cdef list pending = self.pending
        cdef list chunks
        cdef object transport
        self.scheduled = False
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


@cython.auto_pickle(False)
cdef class DirectWriter:
    """An engine session's door to the broadcast fast path.

    ``target`` is the WriteBuffer of the session's WebSocket connection while
    a broadcast may put its shared frames there directly, else None. ``kind``
    says which frames it takes: ``KIND_EIO3`` (Engine.IO v3 framing) and
    ``KIND_DEFLATE`` (permessage-deflate, parts of ``threshold`` bytes or more
    compressed) or'ed together, 0 for plain v4 frames.
    """

    def __init__(self, WriteBuffer target=None, int kind=0, Py_ssize_t threshold=1024):
        if kind < 0 or kind > 3:
            raise ValueError(f"DirectWriter kind must be 0-3, not {kind}")
        self.target = target
        self.kind = kind
        self.threshold = threshold


#: DirectWriter.kind bits
KIND_EIO3 = 1
KIND_DEFLATE = 2


cpdef Py_ssize_t deliver(object sockets, object ids, object message, bint volatile=False,
                         object directs=None) except -1:
    """Hand ``message`` (a prepared engine message) to the connection of each id.

    A session with an open fast path (``directs[id].target``) gets the shared
    WebSocket frames of its kind (``message.ws_bytes(4 or 3)``, or
    ``message.ws_bytes_deflate(4 or 3, threshold)``, each asked for once per
    call) pushed straight into its write buffer at C speed, under the
    buffer's limits (``WriteBuffer.push``); every other one goes through
    ``sockets[id]._conn.send_prepared``. Returns how many connections took
    it; with ``volatile``, a connection past its ``drop_above`` (or whose
    ``writable`` is False) is skipped, and counted (``FlushQueue.volatile_dropped``,
    or ``conn._on_volatile_dropped()`` when it has one).
    """
    cdef Py_ssize_t count = 0
    cdef Py_ssize_t flen
    cdef object sid, sock, conn, found, hook
    cdef bytes frames
    # the frames of each kind, built on first use; the deflate ones for threshold z2 / z3
    cdef bytes f0 = None
    cdef bytes f1 = None
    cdef bytes f2 = None
    cdef bytes f3 = None
    cdef Py_ssize_t z2 = -1
    cdef Py_ssize_t z3 = -1
    cdef int kind
    cdef DirectWriter direct
    cdef WriteBuffer target
    cdef dict d = sockets if type(sockets) is dict else dict(sockets)
    cdef dict dd = {} if directs is None else (directs if type(directs) is dict else dict(directs))
    for sid in ids:
        found = dd.get(sid)
        if found is not None and (<DirectWriter>found).target is not None:
            direct = <DirectWriter>found
            target = direct.target
            # the slow-consumer policy, per target: integer compares only
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
            sock = d.get(sid)
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
