"""Dynamic namespaces: a parent that creates child namespaces on demand.

``io.of(re.compile(r"^/room-\\w+$"))`` or ``io.of(fn)`` returns a
``ParentNamespace``. When a client asks for a namespace that does not exist
and the parent accepts the name, a child ``Namespace`` is created with the
parent's middlewares and connection listeners; the server emits
``new_namespace`` for it. Emitting on the parent reaches every child.
"""
from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any

from .adapter import BroadcastOptions, InMemoryAdapter
from .namespace import Namespace

if TYPE_CHECKING:
    from .server import Server

__all__ = ["ParentNamespace"]

logger = logging.getLogger(__name__)

_counter = itertools.count()


class _ParentBroadcastAdapter(InMemoryAdapter):
    """Forwards broadcasts to every child namespace's adapter."""

    __slots__ = ()

    def broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        nsp: ParentNamespace = self.nsp  # type: ignore[assignment]
        for child in list(nsp.children):
            # A fresh packet per child: adapters set the namespace on it.
            child.adapter.broadcast(type(packet)(packet.type, child.name, list(packet.data), packet.id), opts)


class ParentNamespace(Namespace):
    """The parent of dynamically created namespaces.

    Attributes:
        children: the child namespaces created so far.
    """

    __slots__ = ("children",)

    def __init__(self, server: "Server") -> None:
        self.children: set[Namespace] = set()
        super().__init__(server, "/_" + str(next(_counter)))

    def _init_adapter(self) -> None:
        self.adapter = _ParentBroadcastAdapter(self)

    def emit(self, event: str, *args: Any) -> bool:
        """Send ``event`` to every socket of every child namespace."""
        for child in list(self.children):
            child.emit(event, *args)
        return True

    def _create_child(self, name: str) -> Namespace:
        logger.debug("creating child namespace %s", name)
        child = Namespace(self.server, name)
        for fn, takes_next in self._fns:
            child._fns.append((fn, takes_next))
        for event in ("connect", "connection"):
            for listener in self.listeners(event):
                child.on(event, listener)
        self.children.add(child)
        if self.server._cleanup_empty_child_namespaces:
            child._parent = self
        self.server._nsps[name] = child
        self.server.sockets._emit_local("new_namespace", child)
        return child

    def _on_child_empty(self, child: Namespace) -> None:
        logger.debug("closing empty child namespace %s", child.name)
        result = child.adapter.close()
        if result is not None and hasattr(result, "__await__"):
            from .socket import _log_task_error, _spawn

            _spawn(result, _log_task_error)
        if self.server._nsps.get(child.name) is child:
            del self.server._nsps[child.name]
        self.children.discard(child)

    async def fetch_sockets(self) -> list[Any]:
        """Not supported: a child may exist on one server of a cluster and not on another.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError("fetch_sockets() is not supported on parent namespaces")
