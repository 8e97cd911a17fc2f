"""``AsyncNamespace``: python-socketio's class-based namespaces (``on_<event>`` methods)."""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._arity import VARIADIC, required_positional

if TYPE_CHECKING:
    from .server import AsyncServer, _SessionContext

__all__ = ["AsyncNamespace"]


def _fits(fn: Callable[..., Any], n: int) -> bool:
    need = required_positional(fn)
    if need == VARIADIC:
        return True
    if n < need:
        return False
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return n <= sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


class AsyncNamespace:
    """A class whose ``on_<event>`` methods handle the events of one namespace.

    Register it with ``sio.register_namespace(MyNamespace("/chat"))``. The
    methods get the sid first, like function handlers; ``on_connect(sid,
    environ[, auth])`` may return False or raise ``ConnectionRefusedError``,
    ``on_disconnect(sid[, reason])``. The helpers (``emit``, ``send``,
    ``call``, ``enter_room``, ``leave_room``, ``close_room``, ``rooms``,
    ``get_session``, ``save_session``, ``session``, ``disconnect``) default
    to this namespace.

    Example:
        >>> class Chat(socketio.AsyncNamespace):
        ...     async def on_message(self, sid, data):
        ...         await self.emit("message", data, skip_sid=sid)
        >>> sio.register_namespace(Chat("/chat"))
    """

    def __init__(self, namespace: Optional[str] = None) -> None:
        self.namespace = namespace or "/"
        self.server: Optional["AsyncServer"] = None

    def _set_server(self, server: "AsyncServer") -> None:
        self.server = server

    def is_asyncio_based(self) -> bool:
        """Always True (python-socketio's interface)."""
        return True

    def _srv(self) -> "AsyncServer":
        if self.server is None:
            raise RuntimeError("register the namespace with sio.register_namespace() first")
        return self.server

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Call ``on_<event>`` with ``args`` (override it to route events yourself)."""
        handler = getattr(self, "on_" + (event or ""), None)
        if handler is None:
            return None
        if event in ("connect", "disconnect") and not _fits(handler, len(args)):
            args = args[:-1]
        result = handler(*args)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None,
                   ignore_queue: bool = False) -> None:
        """``AsyncServer.emit`` in this namespace."""
        await self._srv().emit(event, data, to=to, room=room, skip_sid=skip_sid,
                               namespace=namespace or self.namespace, callback=callback, ignore_queue=ignore_queue)

    async def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None,
                   ignore_queue: bool = False) -> None:
        """``AsyncServer.send`` in this namespace."""
        await self._srv().send(data, to=to, room=room, skip_sid=skip_sid, namespace=namespace or self.namespace,
                               callback=callback, ignore_queue=ignore_queue)

    async def call(self, event: str, data: Any = None, to: Optional[str] = None, sid: Optional[str] = None,
                   namespace: Optional[str] = None, timeout: Optional[float] = None,
                   ignore_queue: bool = False) -> Any:
        """``AsyncServer.call`` in this namespace."""
        return await self._srv().call(event, data, to=to, sid=sid, namespace=namespace or self.namespace,
                                      timeout=timeout, ignore_queue=ignore_queue)

    async def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """``AsyncServer.enter_room`` in this namespace."""
        await self._srv().enter_room(sid, room, namespace=namespace or self.namespace)

    async def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """``AsyncServer.leave_room`` in this namespace."""
        await self._srv().leave_room(sid, room, namespace=namespace or self.namespace)

    async def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        """``AsyncServer.close_room`` in this namespace."""
        await self._srv().close_room(room, namespace=namespace or self.namespace)

    def rooms(self, sid: str, namespace: Optional[str] = None) -> list[str]:
        """``AsyncServer.rooms`` in this namespace."""
        return self._srv().rooms(sid, namespace=namespace or self.namespace)

    async def get_session(self, sid: str, namespace: Optional[str] = None) -> dict[str, Any]:
        """``AsyncServer.get_session`` in this namespace."""
        return await self._srv().get_session(sid, namespace=namespace or self.namespace)

    async def save_session(self, sid: str, session: dict[str, Any], namespace: Optional[str] = None) -> None:
        """``AsyncServer.save_session`` in this namespace."""
        await self._srv().save_session(sid, session, namespace=namespace or self.namespace)

    def session(self, sid: str, namespace: Optional[str] = None) -> "_SessionContext":
        """``AsyncServer.session`` in this namespace."""
        return self._srv().session(sid, namespace=namespace or self.namespace)

    async def disconnect(self, sid: str, namespace: Optional[str] = None, ignore_queue: bool = False) -> None:
        """``AsyncServer.disconnect`` in this namespace."""
        await self._srv().disconnect(sid, namespace=namespace or self.namespace, ignore_queue=ignore_queue)
