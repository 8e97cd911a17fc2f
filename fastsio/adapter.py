"""Adapters: who is in which room, and how a broadcast reaches them.

``InMemoryAdapter`` (alias ``Adapter``) is the default, for one process. It
also defines the cluster interface that a multi-node adapter (Redis)
overrides: ``broadcast``, ``broadcast_with_ack``, ``fetch_sockets``,
``add_sockets``, ``del_sockets``, ``disconnect_sockets``,
``server_side_emit``, ``server_count``, ``persist_session`` and
``restore_session``. Methods documented as "may return an awaitable" are
awaited by their callers when they do, so a cluster adapter can be async
where the in-memory one answers at once.

``SessionAwareAdapter`` adds connection state recovery: every broadcast gets
an offset and is kept for ``max_disconnection_duration`` seconds so a client
that comes back in time gets what it missed.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Union

from ._impl import fanout, sio_codec
from .emitter import EventEmitter

if TYPE_CHECKING:
    from .namespace import Namespace
    from .socket import Socket

__all__ = ["Adapter", "InMemoryAdapter", "SessionAwareAdapter", "BroadcastOptions"]

logger = logging.getLogger(__name__)

_EMPTY: frozenset[str] = frozenset()


def _prepared(parts: list[Union[str, bytes]], flags: Optional[dict[str, Any]] = None) -> Any:
    # Imported late: the adapter sits above the engine, and importing at call
    # time keeps this module importable on its own in unit tests.
    from .engineio import PreparedMessage

    return PreparedMessage(parts, not flags or flags.get("compress", True) is not False)


class BroadcastOptions:
    """Where a broadcast goes: ``rooms`` (empty: everybody), minus ``except_``.

    Args:
        rooms: the rooms to reach; empty means every socket of the namespace.
        except_: rooms whose sockets are left out (a socket id is a room).
        flags: ``volatile``, ``compress``, ``local``, ``timeout``.
    """

    __slots__ = ("rooms", "except_", "flags")

    def __init__(
        self,
        rooms: Iterable[str] = _EMPTY,
        except_: Iterable[str] = _EMPTY,
        flags: Optional[dict[str, Any]] = None,
    ) -> None:
        self.rooms: frozenset[str] = rooms if isinstance(rooms, frozenset) else frozenset(rooms)
        self.except_: frozenset[str] = except_ if isinstance(except_, frozenset) else frozenset(except_)
        self.flags: dict[str, Any] = flags or {}

    def __repr__(self) -> str:
        return f"BroadcastOptions(rooms={set(self.rooms)!r}, except_={set(self.except_)!r}, flags={self.flags!r})"


class InMemoryAdapter(EventEmitter):
    """Rooms of one namespace in one process.

    Attributes:
        nsp: the namespace this adapter serves.
        rooms: room name -> ids of the sockets in it.
        sids: socket id -> rooms of that socket.

    Events: ``create-room`` (room), ``delete-room`` (room), ``join-room``
    (room, id), ``leave-room`` (room, id).
    """

    __slots__ = ("nsp", "rooms", "sids")

    def __init__(self, nsp: "Namespace") -> None:
        super().__init__()
        self.nsp = nsp
        self.rooms: dict[str, set[str]] = {}
        self.sids: dict[str, set[str]] = {}

    # -- life cycle -------------------------------------------------------

    def init(self) -> Any:
        """Called once by the namespace; may return an awaitable."""
        return None

    def close(self) -> Any:
        """Called when the server closes; may return an awaitable."""
        return None

    def server_count(self) -> Any:
        """How many servers share this namespace (1 here); may return an awaitable."""
        return 1

    # -- rooms ------------------------------------------------------------

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        """Put socket ``sid`` into every room of ``rooms``."""
        mine = self.sids.get(sid)
        if mine is None:
            mine = self.sids[sid] = set()
        # Events only cost when somebody listens: skip the calls otherwise.
        notify = self._listeners is not None
        for room in rooms:
            mine.add(room)
            members = self.rooms.get(room)
            if members is None:
                members = self.rooms[room] = set()
                if notify:
                    self._emit_local("create-room", room)
            if sid not in members:
                members.add(sid)
                if notify:
                    self._emit_local("join-room", room, sid)

    def del_(self, sid: str, room: str) -> None:
        """Take socket ``sid`` out of ``room``."""
        mine = self.sids.get(sid)
        if mine is not None:
            mine.discard(room)
        self._del(room, sid)

    def _del(self, room: str, sid: str) -> None:
        members = self.rooms.get(room)
        if members is None:
            return
        notify = self._listeners is not None
        if sid in members:
            members.discard(sid)
            if notify:
                self._emit_local("leave-room", room, sid)
        if not members:
            del self.rooms[room]
            if notify:
                self._emit_local("delete-room", room)

    def del_all(self, sid: str) -> None:
        """Take socket ``sid`` out of every room."""
        mine = self.sids.pop(sid, None)
        if mine is None:
            return
        for room in mine:
            self._del(room, sid)

    def socket_rooms(self, sid: str) -> Optional[set[str]]:
        """The rooms of socket ``sid`` (the live set), or None if unknown."""
        return self.sids.get(sid)

    def sockets(self, rooms: Iterable[str] = _EMPTY) -> Any:
        """Ids of the connected sockets in ``rooms`` (every one if empty); may return an awaitable.

        A socket still in the namespace's middlewares may already be in rooms;
        as in Node it is not counted until it is connected.
        """
        live = self.nsp.sockets
        return {sid for sid in self._target_ids(BroadcastOptions(rooms)) if sid in live}

    # -- broadcast --------------------------------------------------------

    def _target_ids(self, opts: BroadcastOptions) -> list[str]:
        return fanout.target_ids(self.rooms, self.sids, opts.rooms, opts.except_, _EMPTY)  # type: ignore[no-any-return]

    def _apply(self, opts: BroadcastOptions) -> list["Socket"]:
        sockets = self.nsp.sockets
        result = []
        for sid in self._target_ids(opts):
            sock = sockets.get(sid)
            if sock is not None:
                result.append(sock)
        return result

    def _notify_outgoing(self, ids: Iterable[str], data: list[Any]) -> None:
        watchers = self.nsp._outgoing_sids
        sockets = self.nsp.sockets
        for sid in ids:
            if sid in watchers:
                sock = sockets.get(sid)
                if sock is not None:
                    sock._notify_outgoing(data)

    def broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        """Send ``packet`` (an ``sio_codec.Packet``) to the sockets ``opts`` selects.

        The packet is encoded once and the same prepared message is handed to
        every target connection.
        """
        packet.nsp = self.nsp.name
        parts = self.nsp._encode(packet.type, packet.nsp, packet.data, packet.id)
        ids = self._target_ids(opts)
        count = 0
        if ids:
            if self.nsp._outgoing_sids:
                self._notify_outgoing(ids, packet.data)
            count = fanout.deliver(self.nsp.sockets, ids, _prepared(parts, opts.flags),
                                   bool(opts.flags.get("volatile")), self.nsp._directs)
        probes = self.nsp.server._probes
        if probes:
            for probe in probes:
                probe.on_broadcast(self.nsp, packet, parts, count)

    def broadcast_with_ack(
        self,
        packet: Any,
        opts: BroadcastOptions,
        client_count_callback: Callable[[int], Any],
        ack: Callable[..., Any],
    ) -> None:
        """Broadcast ``packet`` asking each client for an acknowledgement.

        ``client_count_callback(n)`` is called once with how many clients were
        asked; ``ack(*args)`` is called for each client's answer.
        """
        packet.nsp = self.nsp.name
        # One id serves every target: the counter is shared by the namespace.
        packet.id = self.nsp._next_ack_id()
        parts = self.nsp._encode(packet.type, packet.nsp, packet.data, packet.id)
        ids = self._target_ids(opts)
        sockets = self.nsp.sockets
        volatile = bool(opts.flags.get("volatile"))
        directs = self.nsp._directs
        targets = []
        for sid in ids:
            sock = sockets.get(sid)
            # an ack is entered only for a socket the packet is handed to: a volatile
            # packet skips the connections that cannot write now (fanout.deliver's rule)
            if sock is not None and (not volatile or sock._conn.writable):
                sock._add_ack(packet.id, ack)
                targets.append(sid)
        count = 0
        if targets:
            if self.nsp._outgoing_sids:
                self._notify_outgoing(targets, packet.data)
            count = fanout.deliver(sockets, targets, _prepared(parts, opts.flags), False, directs)
        probes = self.nsp.server._probes
        if probes:
            for probe in probes:
                probe.on_broadcast(self.nsp, packet, parts, count)
        client_count_callback(count)

    # -- cluster operations (local here) ----------------------------------

    def fetch_sockets(self, opts: BroadcastOptions) -> Any:
        """The sockets ``opts`` selects; may return an awaitable."""
        return self._apply(opts)

    def add_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        """Make the sockets ``opts`` selects join ``rooms``."""
        for sock in self._apply(opts):
            sock.join(rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        """Make the sockets ``opts`` selects leave ``rooms``."""
        for sock in self._apply(opts):
            for room in rooms:
                sock.leave(room)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the sockets ``opts`` selects."""
        for sock in self._apply(opts):
            sock.disconnect(close)

    def server_side_emit(self, packet: list[Any]) -> None:
        """Emit to the other servers of the cluster: there are none here.

        A trailing callable is an acknowledgement callback; with no other
        server it gets ``(None, [])`` at once.
        """
        if packet and callable(packet[-1]):
            packet[-1](None, [])

    # -- connection state recovery ----------------------------------------

    def persist_session(self, session: dict[str, Any]) -> Any:
        """Keep a disconnected socket's state (no-op here); may return an awaitable."""
        return None

    def restore_session(self, pid: str, offset: str) -> Any:
        """The session of ``pid`` plus missed packets, or None; may return an awaitable."""
        return None

    def _restore_refused(self, session: dict[str, Any]) -> Any:
        """Take back a session ``restore_session`` gave for a reconnect that did not happen.

        Called when a middleware refused the socket or the client left before
        it connected, so the session can still be restored later; may return
        an awaitable.
        """
        return None


Adapter = InMemoryAdapter


class SessionAwareAdapter(InMemoryAdapter):
    """In-memory adapter that keeps sessions and packets for connection state recovery.

    Every event broadcast without acknowledgement and not volatile gets an
    offset, appended as its last argument (as Node does, so the client learns
    the offset of the last packet it processed). Expiry is lazy: old packets
    and sessions are dropped when the adapter is used, no timer runs. Both
    expire in arrival order, so each use pays only for what expired, not
    for what is stored.

    A session is handed out once by ``restore_session``; if the reconnect is
    then refused (a middleware with ``skip_middlewares=False``, or the client
    left meanwhile) the namespace gives it back with ``_restore_refused`` and
    it stays restorable until its original expiry.
    """

    __slots__ = ("max_disconnection_duration", "_sessions", "_session_order", "_packets", "_prefix", "_seq",
                 "_first_seq")

    def __init__(self, nsp: "Namespace") -> None:
        super().__init__(nsp)
        opts = nsp.server._recovery or {}
        self.max_disconnection_duration: float = float(opts.get("max_disconnection_duration", 120))
        self._sessions: dict[str, dict[str, Any]] = {}
        # (disconnected_at, pid, stored) in persist order. A pid persisted again
        # leaves its old entry behind; pruning drops an entry's session only if
        # the dict still holds that very object.
        self._session_order: deque[tuple[float, str, dict[str, Any]]] = deque()
        # (emitted_at, data, opts) in offset order; offsets are prefix + seq.
        self._packets: deque[tuple[float, list[Any], BroadcastOptions]] = deque()
        # A random prefix per adapter so an offset from another process (or an
        # earlier run) never matches a sequence number of this one.
        self._prefix = secrets.token_hex(4) + "-"
        self._seq = 0
        self._first_seq = 0

    def _prune(self, now: float) -> None:
        threshold = now - self.max_disconnection_duration
        packets = self._packets
        while packets and packets[0][0] < threshold:
            packets.popleft()
            self._first_seq += 1
        order = self._session_order
        while order and order[0][0] < threshold:
            _, pid, stored = order.popleft()
            if self._sessions.get(pid) is stored:
                del self._sessions[pid]

    def broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        if packet.type == sio_codec.EVENT and packet.id is None and "volatile" not in opts.flags:
            now = time.monotonic()
            self._prune(now)
            offset = self._prefix + format(self._seq, "x")
            self._seq += 1
            packet.data = list(packet.data)
            packet.data.append(offset)
            self._packets.append((now, packet.data, opts))
        super().broadcast(packet, opts)

    def _store(self, session: dict[str, Any], disconnected_at: float) -> None:
        stored = {"sid": session["sid"], "pid": session["pid"], "rooms": session["rooms"],
                  "data": session["data"], "disconnected_at": disconnected_at}
        self._sessions[session["pid"]] = stored
        self._session_order.append((disconnected_at, session["pid"], stored))

    def persist_session(self, session: dict[str, Any]) -> None:
        now = time.monotonic()
        self._prune(now)
        self._store(session, now)

    def restore_session(self, pid: str, offset: str) -> Optional[dict[str, Any]]:
        now = time.monotonic()
        self._prune(now)
        session = self._sessions.get(pid)
        if session is None:
            return None
        if session["disconnected_at"] < now - self.max_disconnection_duration:
            # given back after a refused reconnect, now past its expiry
            del self._sessions[pid]
            return None
        if not offset.startswith(self._prefix):
            return None
        try:
            seq = int(offset[len(self._prefix):], 16)
        except ValueError:
            return None
        index = seq - self._first_seq
        if index < 0 or seq >= self._seq:
            # the offset is too old (its packet expired) or unknown
            return None
        del self._sessions[pid]
        rooms = set(session["rooms"])
        missed: list[list[Any]] = []
        for i in range(index + 1, len(self._packets)):
            _, data, opts = self._packets[i]
            if _should_include(rooms, opts):
                missed.append(data)
        return {
            "sid": session["sid"],
            "pid": session["pid"],
            "rooms": list(session["rooms"]),
            "data": session["data"],
            "missed_packets": missed,
            "disconnected_at": session["disconnected_at"],
        }

    def _restore_refused(self, session: dict[str, Any]) -> None:
        """Keep a session that ``restore_session`` handed out for a reconnect that failed."""
        now = time.monotonic()
        self._prune(now)
        disconnected_at = session.get("disconnected_at", now)
        if disconnected_at >= now - self.max_disconnection_duration and session["pid"] not in self._sessions:
            self._store(session, disconnected_at)


def _should_include(rooms: set[str], opts: BroadcastOptions) -> bool:
    included = not opts.rooms or not rooms.isdisjoint(opts.rooms)
    return included and rooms.isdisjoint(opts.except_)
