"""BroadcastOperator (to/in_/except_/... then emit) and RemoteSocket.

A ``BroadcastOperator`` is immutable: every modifier returns a new one, so
``room = io.to("room")`` can be kept and reused.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Union

from ._impl import sio_codec
from .adapter import BroadcastOptions
from .exceptions import AckTimeout
from .socket import RESERVED_EVENTS as _RESERVED
from .socket import _log_task_error, _spawn

if TYPE_CHECKING:
    from .adapter import InMemoryAdapter
    from .socket import Socket

__all__ = ["BroadcastOperator", "RemoteSocket"]

logger = logging.getLogger(__name__)


Rooms = Union[str, Iterable[str]]
_EMPTY: frozenset[str] = frozenset()


def _as_set(room: Rooms) -> frozenset[str]:
    return frozenset((room,)) if isinstance(room, str) else frozenset(room)


class BroadcastOperator:
    """A set of target sockets plus flags; ``emit`` sends to all of them.

    Example:
        >>> io.to("room1").except_("room2").emit("news", {"x": 1})
        >>> answers = await io.timeout(5).emit_with_ack("ping")
    """

    __slots__ = ("adapter", "rooms", "except_rooms", "flags")

    def __init__(
        self,
        adapter: "InMemoryAdapter",
        rooms: Iterable[str] = _EMPTY,
        except_rooms: Iterable[str] = _EMPTY,
        flags: Optional[dict[str, Any]] = None,
    ) -> None:
        self.adapter = adapter
        self.rooms: frozenset[str] = rooms if isinstance(rooms, frozenset) else frozenset(rooms)
        self.except_rooms: frozenset[str] = (
            except_rooms if isinstance(except_rooms, frozenset) else frozenset(except_rooms)
        )
        self.flags: dict[str, Any] = flags if flags is not None else {}

    def __repr__(self) -> str:
        return (
            f"BroadcastOperator(rooms={set(self.rooms)!r}, except_rooms={set(self.except_rooms)!r}, "
            f"flags={self.flags!r})"
        )

    # -- modifiers: each returns a new operator -----------------------------

    def _with_flag(self, name: str, value: Any) -> "BroadcastOperator":
        flags = dict(self.flags)
        flags[name] = value
        return BroadcastOperator(self.adapter, self.rooms, self.except_rooms, flags)

    def to(self, room: Rooms) -> "BroadcastOperator":
        """Also target ``room`` (a name or several)."""
        return BroadcastOperator(self.adapter, self.rooms | _as_set(room), self.except_rooms, self.flags)

    in_ = to

    def except_(self, room: Rooms) -> "BroadcastOperator":
        """Leave out the sockets of ``room`` (a name or several)."""
        return BroadcastOperator(self.adapter, self.rooms, self.except_rooms | _as_set(room), self.flags)

    def compress(self, compress: bool) -> "BroadcastOperator":
        """Set the compress flag."""
        return self._with_flag("compress", compress)

    @property
    def volatile(self) -> "BroadcastOperator":
        """Drop the packet for clients that cannot take it right now."""
        return self._with_flag("volatile", True)

    @property
    def local(self) -> "BroadcastOperator":
        """Reach the sockets of this server only (not the rest of a cluster)."""
        return self._with_flag("local", True)

    def timeout(self, seconds: float) -> "BroadcastOperator":
        """Wait at most ``seconds`` for the acknowledgements."""
        return self._with_flag("timeout", seconds)

    def _opts(self) -> BroadcastOptions:
        return BroadcastOptions(self.rooms, self.except_rooms, self.flags)

    # -- emitting ---------------------------------------------------------

    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to every target.

        A callable last argument collects acknowledgements: it is called once
        with ``(err, responses)`` when every client answered or the timeout
        set with ``timeout()`` expired (``err`` is then an ``AckTimeout`` and
        ``responses`` what arrived).

        Raises:
            ValueError: reserved event name, or an ack callback without ``timeout()``.
        """
        if event in _RESERVED:
            raise ValueError(f'"{event}" is a reserved event name')
        if not (args and callable(args[-1])):
            self.adapter.broadcast(sio_codec.Packet(sio_codec.EVENT, "/", [event, *args]), self._opts())
            return True
        ack: Callable[..., Any] = args[-1]
        self._emit_with_callback(event, list(args[:-1]), ack)
        return True

    def _emit_with_callback(self, event: str, args: list[Any], ack: Callable[..., Any]) -> None:
        timeout = self.flags.get("timeout")
        if timeout is None:
            raise ValueError("a broadcast with an acknowledgement needs timeout() first")
        single = bool(self.flags.get("expect_single_response"))
        packet = sio_codec.Packet(sio_codec.EVENT, "/", [event, *args])
        responses: list[Any] = []
        state = {"expected_servers": -1, "servers": 0, "clients": 0, "finished": False}
        loop = asyncio.get_running_loop()
        adapter = self.adapter
        owner = _server_tasks(adapter)

        def finish(err: Optional[BaseException]) -> None:
            state["finished"] = True
            if err is None:
                result: Any = responses[0] if single and responses else (None if single else responses)
            else:
                result = None if single else responses
            try:
                ret = ack(err, result)
                if inspect.isawaitable(ret):
                    _spawn(ret, _log_task_error, owner)
            except Exception:
                logger.exception("broadcast ack callback failed")

        def on_timeout() -> None:
            if state["finished"]:
                return
            if packet.id is not None:
                for sock in adapter.nsp.sockets.values():
                    if sock._acks:
                        sock._acks.pop(packet.id, None)
            finish(AckTimeout("operation has timed out"))

        timer = loop.call_later(timeout, on_timeout)

        def check() -> None:
            if (
                not state["finished"]
                and state["expected_servers"] == state["servers"]
                and len(responses) == state["clients"]
            ):
                timer.cancel()
                finish(None)

        def on_client_count(count: int) -> None:
            state["clients"] += count
            state["servers"] += 1
            check()

        def on_response(*answer: Any) -> None:
            if state["finished"]:
                return
            # Each client's answer counts as its first argument, as Node.
            responses.append(answer[0] if answer else None)
            check()

        adapter.broadcast_with_ack(packet, self._opts(), on_client_count, on_response)

        def set_servers(count: int) -> None:
            state["expected_servers"] = count
            check()

        count = adapter.server_count()
        if inspect.isawaitable(count):
            def counted(f: "asyncio.Future[Any]") -> None:
                if not f.cancelled() and f.exception() is None:
                    set_servers(f.result())
                else:
                    _log_task_error(f)
            _spawn(count, counted, owner)
        else:
            set_servers(count)

    def emit_with_ack(self, event: str, *args: Any) -> "asyncio.Future[Any]":
        """Broadcast and return an awaitable of the list of answers.

        The event goes out at once. Needs ``timeout()`` first.

        Raises:
            AckTimeout: (a ``TimeoutError``) some client did not answer in
                time; its ``responses`` attribute holds the answers that came.
        """
        fut: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()

        def callback(err: Optional[BaseException], responses: Any) -> None:
            if fut.done():
                return
            if err is not None:
                err.responses = responses  # type: ignore[attr-defined]
                fut.set_exception(err)
            else:
                fut.set_result(responses)

        self.emit(event, *args, callback)
        return fut

    def send(self, *args: Any) -> bool:
        """Emit a ``message`` event."""
        return self.emit("message", *args)

    write = send

    # -- cluster operations -------------------------------------------------

    async def all_sockets(self) -> set[str]:
        """Ids of the target sockets."""
        result = self.adapter.sockets(self.rooms)
        if inspect.isawaitable(result):
            result = await result
        return set(result)

    async def fetch_sockets(self) -> list[Union["Socket", "RemoteSocket"]]:
        """The target sockets: local ``Socket`` objects, ``RemoteSocket`` for other servers."""
        result = self.adapter.fetch_sockets(self._opts())
        if inspect.isawaitable(result):
            result = await result
        out: list[Union["Socket", RemoteSocket]] = []
        for item in result:
            if isinstance(item, dict):
                out.append(RemoteSocket(self.adapter, item))
            else:
                out.append(item)
        return out

    def sockets_join(self, rooms: Rooms) -> None:
        """Make the target sockets join ``rooms``."""
        self.adapter.add_sockets(self._opts(), [rooms] if isinstance(rooms, str) else list(rooms))

    def sockets_leave(self, rooms: Rooms) -> None:
        """Make the target sockets leave ``rooms``."""
        self.adapter.del_sockets(self._opts(), [rooms] if isinstance(rooms, str) else list(rooms))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the target sockets (and close their connections if ``close``)."""
        self.adapter.disconnect_sockets(self._opts(), close)


class RemoteSocket:
    """A socket of another server of the cluster, as ``fetch_sockets`` returns it.

    Attributes:
        id, handshake, rooms, data: copies taken when it was fetched.
    """

    __slots__ = ("id", "handshake", "rooms", "data", "_operator")

    def __init__(self, adapter: "InMemoryAdapter", details: dict[str, Any]) -> None:
        from .socket import Handshake

        self.id: str = details["id"]
        hs = details.get("handshake") or {}
        self.handshake: Any = (
            hs
            if not isinstance(hs, dict)
            else Handshake(
                headers=hs.get("headers", {}),
                address=hs.get("address", ""),
                xdomain=bool(hs.get("xdomain")),
                secure=bool(hs.get("secure")),
                issued=int(hs.get("issued", 0)),
                url=hs.get("url", ""),
                query=hs.get("query", {}),
                auth=hs.get("auth", {}),
            )
        )
        self.rooms: set[str] = set(details.get("rooms", ()))
        self.data: Any = details.get("data", {})
        self._operator = BroadcastOperator(adapter, (self.id,), (), {"expect_single_response": True})

    def __repr__(self) -> str:
        return f"<RemoteSocket id={self.id!r}>"

    def timeout(self, seconds: float) -> BroadcastOperator:
        """An operator targeting this socket with an ack deadline."""
        return self._operator.timeout(seconds)

    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to this socket (through its server)."""
        return self._operator.emit(event, *args)

    def join(self, rooms: Rooms) -> None:
        """Make this socket join ``rooms``."""
        self._operator.sockets_join(rooms)

    def leave(self, room: Rooms) -> None:
        """Make this socket leave ``room``."""
        self._operator.sockets_leave(room)

    def disconnect(self, close: bool = False) -> "RemoteSocket":
        """Disconnect this socket."""
        self._operator.disconnect_sockets(close)
        return self


def _server_tasks(adapter: Any) -> Optional[set["asyncio.Future[Any]"]]:
    """The task set of the server behind ``adapter`` (None for an adapter without one)."""
    nsp = getattr(adapter, "nsp", None)
    server = getattr(nsp, "server", None)
    return getattr(server, "_tasks", None)
