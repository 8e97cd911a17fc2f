"""Client: one Engine.IO connection, multiplexing its namespace sockets.

The client decodes the Socket.IO packets of its connection, routes CONNECT
packets to the namespaces and every other packet to the socket of its
namespace, and writes encoded packets back to the connection.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import parse_qsl, urlsplit

from ._impl import sio_codec
from .exceptions import ProtocolError

if TYPE_CHECKING:
    from .namespace import Namespace
    from .server import Server
    from .socket import Socket

__all__ = ["Client"]

logger = logging.getLogger(__name__)

_NO_COMPRESS = {"compress": False}


class Client:
    """The Socket.IO side of one Engine.IO connection.

    Attributes:
        server: the ``Server``.
        conn: the Engine.IO connection.
        id: the Engine.IO session id.
    """

    __slots__ = ("server", "conn", "id", "_decoder", "_sockets", "_nsps", "_connect_timer", "_closed", "__weakref__")

    def __init__(self, server: "Server", conn: Any) -> None:
        self.server = server
        self.conn = conn
        self.id: str = conn.id
        self._decoder = server._new_decoder()
        self._sockets: dict[str, "Socket"] = {}
        self._nsps: dict[str, "Socket"] = {}
        self._closed = False
        conn.on("message", self._ondata)
        conn.on("close", self._onclose)
        self._connect_timer: Optional[asyncio.TimerHandle] = None
        timeout = server._connect_timeout
        if timeout is not None and timeout > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self._connect_timer = loop.call_later(timeout, self._on_connect_timeout)

    def __repr__(self) -> str:
        return f"<Client id={self.id!r} namespaces={list(self._nsps)!r}>"

    @property
    def request(self) -> Any:
        """The first HTTP request of the connection."""
        return self.conn.request

    def _on_connect_timeout(self) -> None:
        self._connect_timer = None
        if not self._nsps:
            logger.debug("client %s joined no namespace in time, closing", self.id)
            self._close()

    # -- namespaces -------------------------------------------------------

    def _connect(self, name: str, auth: dict[str, Any]) -> None:
        server = self.server
        if name in server._nsps:
            self._do_connect(name, auth)
            return

        def on_checked(nsp: Optional["Namespace"]) -> None:
            if self._closed:
                return
            if nsp is not None:
                self._do_connect(name, auth)
            else:
                logger.debug("creation of namespace %s was denied", name)
                # An object for every protocol version, as Node sends it.
                payload = {"message": "Invalid namespace"}
                self._write(self.server._parser.encode(sio_codec.CONNECT_ERROR, name, payload), False)

        server._check_namespace(name, auth, on_checked)

    def _do_connect(self, name: str, auth: dict[str, Any]) -> None:
        nsp = self.server.of(name)
        nsp._add_client(self, auth, self._on_socket_connected)

    def _on_socket_connected(self, socket: "Socket") -> None:
        self._sockets[socket.id] = socket
        self._nsps[socket.nsp.name] = socket
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    def _remove(self, socket: "Socket") -> None:
        if self._sockets.pop(socket.id, None) is not None:
            if self._nsps.get(socket.nsp.name) is socket:
                del self._nsps[socket.nsp.name]

    def _disconnect(self) -> None:
        # Every namespace of this connection, then the connection itself.
        for socket in list(self._sockets.values()):
            socket.disconnect()
        self._sockets.clear()
        self._close()

    def _close(self) -> None:
        if self.conn.ready_state == "open":
            # The sockets first: the engine emits its own "close" (reason
            # "forced close") synchronously from conn.close().
            self._onclose("forced server close")
            self.conn.close()

    # -- writing ----------------------------------------------------------

    def _write(self, parts: list[Union[str, bytes]], volatile: bool, compress: bool = True) -> None:
        conn = self.conn
        if conn.ready_state != "open":
            return
        if volatile and not conn.writable:
            dropped = getattr(conn, "_on_volatile_dropped", None)
            if dropped is not None:
                dropped()
            return
        options = None if compress else _NO_COMPRESS
        for part in parts:
            conn.send(part, options)
        if self.server._probes:
            for probe in self.server._probes:
                probe.on_write(self, parts)

    # -- reading ----------------------------------------------------------

    def _ondata(self, data: Union[str, bytes]) -> None:
        if self._closed:
            return
        if self.server._probes:
            for probe in self.server._probes:
                probe.on_read(self, data)
        try:
            packet = self._decoder.feed(data)
        except ProtocolError as exc:
            logger.debug("invalid packet from %s: %s", self.id, exc)
            self._onerror(exc)
            return
        if packet is not None:
            self._ondecoded(packet)

    def _ondecoded(self, packet: Any) -> None:
        name: str = packet.nsp
        auth = packet.data
        if self.conn.protocol == 3 and "?" in name:
            # socket.io v2 clients put the auth query in the namespace.
            parts = urlsplit(name)
            name = parts.path or "/"
            auth = dict(parse_qsl(parts.query, keep_blank_values=True))
        socket = self._nsps.get(name)
        t = packet.type
        if socket is None and t == sio_codec.CONNECT:
            self._connect(name, auth if isinstance(auth, dict) else {})
        elif socket is not None and t != sio_codec.CONNECT and t != sio_codec.CONNECT_ERROR:
            socket._onpacket(packet)
        else:
            # As Node: a packet for a namespace the client has not joined
            # (or a second CONNECT) is a protocol violation.
            logger.debug("invalid state (packet type %s, namespace %s), closing", t, name)
            self._close()

    def _onerror(self, err: BaseException) -> None:
        for socket in list(self._sockets.values()):
            socket._onerror(err)
        # As Node: the connection is closed, so the sockets get the engine's
        # "forced close" (Node's client.onerror calls conn.close()).
        self.conn.close()

    def _onclose(self, reason: str, description: Any = None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        for socket in list(self._sockets.values()):
            socket._onclose(reason, description)
        self._sockets.clear()
        self._nsps.clear()
        # sockets still in their namespace middlewares (one that never calls next()) go too
        for nsp in list(self.server._nsps.values()):
            if nsp._pre_connect:
                for socket in [s for s in nsp._pre_connect.values() if s.client is self]:
                    socket._cleanup()
                    for task in list(socket._pending or ()):
                        task.cancel()
        reset = getattr(self._decoder, "reset", None)
        if reset is not None:
            reset()
        # as Node's client.destroy(): its listeners leave the connection (bound methods of this
        # client, the connection's back reference to it: freed without the cyclic GC)
        self.conn.off("message", self._ondata)
        self.conn.off("close", self._onclose)
