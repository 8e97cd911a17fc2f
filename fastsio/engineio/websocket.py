"""The WebSocket transport: Engine.IO packets as WebSocket messages on an upgraded connection."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from .._impl import eio_codec
from ..exceptions import ProtocolError
from ..http import WebSocketHandler
from .transport import Packet, PreparedMessage, Transport, frame_packets

if TYPE_CHECKING:
    from ..http import HttpConnection

__all__ = ["WebSocketTransport"]


class WebSocketTransport(Transport, WebSocketHandler):
    """Engine.IO over one WebSocket; always writable (the kernel buffer is bounded below it)."""

    __slots__ = ("conn", "max_message_size", "deflate", "deflate_threshold", "takes_messages")

    name = "websocket"

    def __init__(self, protocol: int, max_message_size: int, deflate_threshold: int = 1024) -> None:
        super().__init__(protocol)
        self.conn: "HttpConnection | None" = None
        self.max_message_size = max_message_size
        self.writable = True
        self.deflate = False
        self.deflate_threshold = deflate_threshold
        self.takes_messages = False

    def attach(self, conn: "HttpConnection") -> None:
        self.conn = conn
        self.deflate = bool(getattr(conn, "deflate", False))
        # a connection whose server frames the messages itself (the ASGI bridge) takes
        # packets and prepared messages, never frames
        self.takes_messages = bool(getattr(conn, "takes_messages", False))

    def can_write_now(self) -> bool:
        return self.conn is not None and self.conn.writable

    # -- WebSocketHandler ---------------------------------------------------------

    def on_ws_message(self, data: Union[str, bytes]) -> None:
        try:
            ptype, payload = eio_codec.decode_ws(data, self.protocol == 3)
        except ProtocolError:
            sock = self.socket
            if sock is not None and sock.transport is self:
                sock._on_close("parse error")
            else:
                self.close()
            return
        self._on_packet(ptype, payload)

    def on_ws_close(self, reason: str, description: Any = None) -> None:
        self.conn = None
        self.writable = False
        if self.closed:
            return
        if reason == "transport error":
            self._on_error("websocket error", description)
        else:
            self._on_close()

    # -- output -------------------------------------------------------------------------

    def send(self, packets: list[Packet], compress: bool = True) -> None:
        if self.conn is not None:
            if self.takes_messages:
                self.conn.write_packets(packets, self.protocol)  # type: ignore[attr-defined]
                return
            self.conn.write(frame_packets(packets, self.protocol == 3, self.deflate and compress,
                                          self.deflate_threshold))

    def send_prepared(self, message: PreparedMessage) -> None:
        if self.conn is not None:
            if self.takes_messages:
                self.conn.write_prepared(message, self.protocol)  # type: ignore[attr-defined]
            elif self.deflate:
                self.conn.write(message.ws_bytes_deflate(self.protocol, self.deflate_threshold))
            else:
                self.conn.write(message.ws_bytes(self.protocol))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.writable = False
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.ws_close(1000, "", "forced close")
