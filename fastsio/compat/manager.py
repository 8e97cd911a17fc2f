"""python-socketio's client manager interface over fastsio's namespaces and adapters.

``AsyncServer.manager`` is an :class:`AsyncManager` unless the app passes
``client_manager=AsyncRedisManager(...)``. The manager answers
``get_participants`` / ``get_rooms`` from fastsio's own adapters (there is
no second room table), and is where ``emit`` / ``enter_room`` /
``leave_room`` / ``close_room`` / ``disconnect`` go, so a pub/sub manager
can add the other servers of a cluster.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Union

if TYPE_CHECKING:
    from .server import AsyncServer

__all__ = ["AsyncManager"]

Room = Union[None, str, list[str]]


class AsyncManager:
    """The in-memory manager (python-socketio's ``AsyncManager``)."""

    name = "asyncio"

    def __init__(self) -> None:
        self.server: Optional["AsyncServer"] = None

    def set_server(self, server: "AsyncServer") -> None:
        """Attach the manager to its server (the server calls it)."""
        self.server = server

    def initialize(self) -> None:
        """Called once, on the first connection (a pub/sub manager starts listening here)."""

    def _srv(self) -> "AsyncServer":
        if self.server is None:
            raise RuntimeError("this manager is not attached to a server")
        return self.server

    # -- queries ------------------------------------------------------------------

    def get_namespaces(self) -> list[str]:
        """The namespaces with at least one connected socket."""
        return [name for name, nsp in self._srv().fastsio_server._nsps.items() if nsp.sockets]

    def get_participants(self, namespace: str, room: Optional[str]) -> Iterator[tuple[str, str]]:
        """``(sid, eio_sid)`` of every socket of ``namespace`` in ``room`` (every one if None)."""
        nsp = self._srv().fastsio_server._nsps.get(namespace or "/")
        if nsp is None:
            return
        if room is None:
            ids = list(nsp.sockets)
        else:
            ids = list(nsp.adapter.rooms.get(room, ()))
        for sid in ids:
            sock = nsp.sockets.get(sid)
            if sock is not None:
                yield sid, sock.conn.id

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        """The rooms of ``sid`` (its own room included)."""
        sock = self._srv()._socket(sid, namespace)
        return list(sock.rooms) if sock is not None else []

    def is_connected(self, sid: str, namespace: str) -> bool:
        """Whether ``sid`` is connected to ``namespace`` on this server."""
        nsp = self._srv().fastsio_server._nsps.get(namespace or "/")
        return nsp is not None and sid in nsp.sockets

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> Optional[str]:
        """The socket id of the Engine.IO session ``eio_sid`` in ``namespace``."""
        nsp = self._srv().fastsio_server._nsps.get(namespace or "/")
        if nsp is not None:
            for sid, sock in nsp.sockets.items():
                if sock.conn.id == eio_sid:
                    return sid
        return None

    def eio_sid_from_sid(self, sid: str, namespace: str) -> Optional[str]:
        """The Engine.IO session id of socket ``sid``."""
        sock = self._srv()._socket(sid, namespace)
        return sock.conn.id if sock is not None else None

    # -- operations (a pub/sub manager adds the other servers) -----------------------

    async def emit(self, event: str, data: Any, namespace: str, room: Room = None, skip_sid: Any = None,
                   callback: Optional[Callable[..., Any]] = None, to: Room = None, **kwargs: Any) -> None:
        """Emit on this server."""
        self._srv()._emit_local(event, data, namespace or "/", to or room, skip_sid, callback)

    async def enter_room(self, sid: str, namespace: str, room: str, eio_sid: Optional[str] = None) -> None:
        """Put ``sid`` in ``room``."""
        sock = self._srv()._socket(sid, namespace)
        if sock is not None:
            sock.join(room)

    async def leave_room(self, sid: str, namespace: str, room: str) -> None:
        """Take ``sid`` out of ``room``."""
        sock = self._srv()._socket(sid, namespace)
        if sock is not None:
            sock.leave(room)

    async def close_room(self, room: str, namespace: Optional[str]) -> None:
        """Take every socket out of ``room``."""
        nsp = self._srv().fastsio_server._nsps.get(namespace or "/")
        if nsp is not None:
            for sid in list(nsp.adapter.rooms.get(room, ())):
                sock = nsp.sockets.get(sid)
                if sock is not None:
                    sock.leave(room)

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        """Whether ``sid`` is here to be disconnected."""
        return self._srv()._socket(sid, namespace) is not None

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Disconnect ``sid`` on this server."""
        await self._srv()._disconnect_local(sid, namespace or "/")

    async def trigger_callback(self, sid: str, id: int, data: Any) -> None:  # noqa: A002 - python-socketio's name
        """Kept for python-socketio's interface: acks are routed by fastsio itself."""
