"""Room fan-out: the target set of a broadcast and the write loop (pure-Python twin).

The target set is the union of the sockets in ``rooms`` (every socket of
the namespace when ``rooms`` is empty), minus the sockets in
``except_rooms`` and the ids in ``except_ids``. The write loop hands the same
prepared message object to every target so it is encoded once.
"""
from __future__ import annotations

from typing import Any, Collection, Mapping

__all__ = ["target_ids", "deliver"]


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


def deliver(sockets: Mapping[str, Any], ids: Collection[str], message: Any, volatile: bool = False) -> int:
    """Hand ``message`` (a prepared engine message) to the connection of each id.

    ``sockets`` maps id -> object with a ``_conn`` attribute (the engine
    socket). A v4 WebSocket connection nobody watches packet by packet
    (``_ws_writer`` set) gets the shared frame bytes written straight to its
    HTTP connection; every other one goes through ``send_prepared``. Returns
    how many connections took it; with ``volatile``, a connection that cannot
    write right now is skipped.
    """
    count = 0
    frames = None
    for sid in ids:
        sock = sockets.get(sid)
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
