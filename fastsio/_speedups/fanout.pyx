# cython: language_level=3, embedsignature=True
"""Room fan-out: the target set of a broadcast and the write loop (compiled).

Same contract as ``fastsio._pure.fanout``: the target set is the union of the
sockets in ``rooms`` (every socket of the namespace when ``rooms`` is empty),
minus the sockets of ``except_rooms`` and the ids in ``except_ids``; the
write loop hands one prepared message object to every target.
"""

__all__ = ["target_ids", "deliver"]


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


cpdef Py_ssize_t deliver(object sockets, object ids, object message, bint volatile=False) except -1:
    """Hand ``message`` to the engine connection (``_conn``) of each id; returns how many took it.

    A v4 WebSocket connection nobody watches packet by packet (``_ws_writer``
    set) gets the one shared frame ``bytes`` written straight to its HTTP
    connection; the rest go through ``send_prepared``.
    """
    cdef Py_ssize_t count = 0
    cdef object sid, sock, conn, writer
    cdef object frames = None
    cdef dict d = sockets if type(sockets) is dict else dict(sockets)
    for sid in ids:
        sock = d.get(sid)
        if sock is None:
            continue
        conn = sock._conn
        writer = conn._ws_writer
        if writer is not None:
            if volatile and not writer.writable:
                continue
            if frames is None:
                frames = message.ws_bytes(4)
            writer.write(frames)
        else:
            if volatile and not conn.writable:
                continue
            conn.send_prepared(message)
        count += 1
    return count
