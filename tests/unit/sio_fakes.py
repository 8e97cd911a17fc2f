"""In-test fakes for the Socket.IO layer: an Engine.IO connection without I/O.

``FakeConn`` follows the engine contract the Socket.IO layer uses (``id``,
``protocol``, ``request``, ``transport.name``, ``ready_state``, ``writable``,
``send``, ``send_prepared``, ``close`` and the ``message``/``close`` events)
and records what the server wrote, decoded back into packets.
"""
from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any, Optional

from fastsio._impl import sio_codec
from fastsio.emitter import EventEmitter

_ids = itertools.count()


class FakeRequest:
    def __init__(self, url: str, headers: dict[str, str], secure: bool = False) -> None:
        self.method = "GET"
        self.url = url
        self.path, _, qs = url.partition("?")
        self.query = dict(p.split("=", 1) for p in qs.split("&") if "=" in p)
        self.headers = headers
        self.remote_address = "10.0.0.1"
        self.secure = secure


class FakeConn(EventEmitter):
    def __init__(self, protocol: int = 4, url: str = "/socket.io/?EIO=4&transport=websocket&foo=bar",
                 headers: Optional[dict[str, str]] = None) -> None:
        super().__init__()
        self.id = f"eio{next(_ids):04d}"
        self.protocol = protocol
        self.request = FakeRequest(url, headers if headers is not None else {"origin": "http://x"})
        self.transport = SimpleNamespace(name="websocket")
        self.ready_state = "open"
        self.writable = True
        self.sent: list[Any] = []
        self.close_calls = 0
        self._decoder = sio_codec.Decoder()

    def send(self, data: Any, options: Any = None) -> None:
        self.sent.append(data)

    def send_prepared(self, message: Any) -> None:
        self.sent.extend(message.parts)

    def close(self, discard: bool = False) -> None:
        self.close_calls += 1
        if self.ready_state == "open":
            self.ready_state = "closed"
            self.emit("close", "forced close", None)

    # -- test helpers --------------------------------------------------------

    def packets(self) -> list[Any]:
        """Everything sent since the last call, decoded into packets."""
        out = []
        for part in self.sent:
            p = self._decoder.feed(part)
            if p is not None:
                out.append(p)
        self.sent.clear()
        return out

    def recv(self, type_: int, nsp: str = "/", data: Any = None, id_: Optional[int] = None) -> None:
        """The client sends a packet."""
        for part in sio_codec.encode(type_, nsp, data, id_):
            self.emit("message", part)

    def recv_raw(self, data: Any) -> None:
        self.emit("message", data)

    def drop(self, reason: str = "transport close") -> None:
        """The transport goes away."""
        self.ready_state = "closed"
        self.emit("close", reason, None)


def connect(io: Any, nsp: str = "/", auth: Any = None, **conn_kw: Any) -> FakeConn:
    """A new connection to ``io`` that joins ``nsp``; CONNECT reply left in ``conn.sent``."""
    conn = FakeConn(**conn_kw)
    io.onconnection(conn)
    conn.recv(sio_codec.CONNECT, nsp, auth)
    return conn


def the_socket(io: Any, conn: FakeConn, nsp: str = "/") -> Any:
    for s in io.of(nsp).sockets.values():
        if s.conn is conn:
            return s
    raise AssertionError("no socket for this connection")
