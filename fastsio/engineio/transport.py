"""The transport base class and the message prepared once for many transports."""
from __future__ import annotations

import gzip
import zlib
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from .._impl import eio_codec, ws_frames
from ..http import deflate_message

if TYPE_CHECKING:
    from .socket import EngineSocket

__all__ = ["Transport", "PreparedMessage", "Packet", "TRANSPORTS"]

#: (packet type, data) as the eio codec takes and returns it.
Packet = tuple[int, Union[str, bytes]]

#: Transport names are looked up in this fixed allow-list, never as attributes
#: (``transport=__proto__`` must not reach an object lookup).
TRANSPORTS = ("polling", "websocket")

MESSAGE = 4


class PreparedMessage:
    """One Engine.IO message (a Socket.IO packet and its attachments), framed lazily, once.

    A broadcast builds one of these and hands it to every target: WebSocket
    clients of each protocol version (and each compression setting) get the
    same ``bytes`` object, polling clients the same packet tuples.

    Args:
        parts: the text part, then the binary attachments, as ``sio_codec.encode`` returns them.
    """

    __slots__ = ("parts", "packets", "compress", "_ws4", "_ws3", "_ws4z", "_ws3z",
                 "_poll", "_asgi4", "_asgi3")

    def __init__(self, parts: Sequence[Union[str, bytes]], compress: bool = True) -> None:
        self.parts = parts
        #: the emit's ``compress`` flag: False keeps it out of permessage-deflate and HTTP compression
        self.compress = compress
        self.packets: list[Packet] = [(MESSAGE, p) for p in parts]
        self._ws4: Optional[bytes] = None
        self._ws3: Optional[bytes] = None
        # (threshold, frames) of the permessage-deflate frames
        self._ws4z: Optional[tuple[int, bytes]] = None
        self._ws3z: Optional[tuple[int, bytes]] = None
        self._poll: Optional[list[Any]] = None
        self._asgi4: Optional[ASGIEvents] = None
        self._asgi3: Optional[ASGIEvents] = None

    def ws_bytes(self, protocol: int) -> bytes:
        """Every part as WebSocket frames, concatenated (one write per target)."""
        if protocol == 4:
            if self._ws4 is None:
                self._ws4 = frame_packets(self.packets, False)
            return self._ws4
        if self._ws3 is None:
            self._ws3 = frame_packets(self.packets, True)
        return self._ws3

    def ws_bytes_deflate(self, protocol: int, threshold: int = 1024) -> bytes:
        """Like ``ws_bytes``, for connections that negotiated permessage-deflate.

        Parts of ``threshold`` bytes or more are compressed. The frames are
        built once per protocol and threshold (one server has one threshold:
        another threshold replaces the cached frames); a message with no part
        to compress (or ``compress=False``) gets the very ``ws_bytes`` object.
        """
        if not self.compress:
            return self.ws_bytes(protocol)
        cached = self._ws4z if protocol == 4 else self._ws3z
        if cached is not None and cached[0] == threshold:
            return cached[1]
        eio3 = protocol != 4
        frames, compressed = _frame(self.packets, eio3, True, threshold)
        if not compressed:
            frames = self.ws_bytes(protocol)
        if eio3:
            self._ws3z = (threshold, frames)
        else:
            self._ws4z = (threshold, frames)
        return frames

    # -- long-polling: one response body per payload form, shared by every polling recipient --

    def poll_body(self, protocol: int, supports_binary: bool = False) -> tuple[bytes, str]:
        """This message alone as a long-polling response: the body and its Content-Type.

        Built once per payload form (v4; v3 text; v3 binary for clients that
        take binary payloads) and the same ``bytes`` handed to every
        recipient whose response carries nothing else.
        """
        cache = self._poll
        if protocol == 4 and cache is not None:
            hit = cache[_POLL_V4]
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        form = self._poll_form(protocol, supports_binary)
        if cache is None:
            cache = self._poll = [None] * _POLL_SLOTS
        hit = cache[form]
        if hit is None:
            hit = cache[form] = poll_payload(self.packets, protocol, supports_binary)
        return hit  # type: ignore[no-any-return]

    def poll_body_compressed(self, protocol: int, supports_binary: bool, encoding: str) -> bytes:
        """``poll_body`` compressed with ``encoding`` (``"gzip"`` or ``"deflate"``), once per form."""
        slot = self._poll_form(protocol, supports_binary) + (_POLL_GZIP if encoding == "gzip" else _POLL_DEFLATE)
        body = self.poll_body(protocol, supports_binary)[0]
        cache = self._poll
        assert cache is not None
        hit = cache[slot]
        if hit is None:
            hit = cache[slot] = http_compress(body, encoding)
        return hit  # type: ignore[no-any-return]

    def _poll_form(self, protocol: int, supports_binary: bool) -> int:
        if protocol == 4:
            return _POLL_V4
        parts = self.parts
        if supports_binary and not (len(parts) == 1 and isinstance(parts[0], str)):
            return _POLL_V3_BINARY
        # without attachments both v3 forms are the same text payload
        return _POLL_V3_TEXT

    # -- ASGI (fastsio.asgi): the websocket.send events, derived once per protocol version --

    def asgi_events(self, protocol: int) -> "ASGIEvents":
        """Every part as an ASGI ``websocket.send`` event, built once per protocol version.

        Returns ``(items, total)``: ``items`` pairs each event with its size in
        bytes, ``total`` is their sum. Every ASGI recipient of the broadcast is
        handed these same objects (the ASGI server must not mutate them).
        """
        if protocol == 4:
            if self._asgi4 is None:
                self._asgi4 = asgi_send_events(self.packets, False)
            return self._asgi4
        if self._asgi3 is None:
            self._asgi3 = asgi_send_events(self.packets, True)
        return self._asgi3


# the slots of PreparedMessage._poll: payload form, plus an offset per HTTP content coding
_POLL_V4, _POLL_V3_TEXT, _POLL_V3_BINARY = 0, 1, 2
_POLL_GZIP, _POLL_DEFLATE = 3, 6
_POLL_SLOTS = 9
_TEXT_PLAIN = "text/plain; charset=UTF-8"
_OCTET_STREAM = "application/octet-stream"


def poll_payload(packets: Sequence[Packet], protocol: int, supports_binary: bool = False) -> tuple[bytes, str]:
    """Engine.IO packets -> a long-polling response body and its Content-Type (as Node's engine.io)."""
    if protocol == 4:
        return eio_codec.encode_payload(packets).encode("utf-8"), _TEXT_PLAIN
    body = eio_codec.encode_payload_v3(packets, supports_binary)
    if isinstance(body, bytes):
        return body, _OCTET_STREAM
    return body.encode("utf-8"), _TEXT_PLAIN


def http_compress(body: bytes, encoding: str) -> bytes:
    """A response body in HTTP content coding ``encoding`` (``"gzip"`` or ``"deflate"``), level 6."""
    if encoding == "gzip":
        return gzip.compress(body, 6)
    return zlib.compress(body, 6)


#: ``((event, size), ...), total size``: Engine.IO packets as ASGI ``websocket.send`` events
ASGIEvents = tuple[tuple[tuple[dict[str, Any], int], ...], int]


def asgi_send_events(packets: Sequence[Packet], eio3: bool) -> ASGIEvents:
    """Engine.IO packets -> one ASGI ``websocket.send`` event each (``text`` or ``bytes``) and the sizes.

    The size of a text event is its UTF-8 length (what the ASGI server will write).
    """
    items = []
    total = 0
    for ptype, data in packets:
        content = eio_codec.encode_ws(ptype, data, eio3)
        if isinstance(content, str):
            size = len(content) if content.isascii() else len(content.encode("utf-8"))
            items.append(({"type": "websocket.send", "text": content}, size))
        else:
            size = len(content)
            items.append(({"type": "websocket.send", "bytes": content}, size))
        total += size
    return tuple(items), total


#: messages shorter than this are sent uncompressed (Node's ws uses the same threshold)
DEFLATE_THRESHOLD = 1024


def frame_packets(packets: Sequence[Packet], eio3: bool, deflate: bool = False,
                  threshold: int = DEFLATE_THRESHOLD) -> bytes:
    """Engine.IO packets -> server-to-client WebSocket frames, joined."""
    return _frame(packets, eio3, deflate, threshold)[0]


def _frame(packets: Sequence[Packet], eio3: bool, deflate: bool, threshold: int) -> tuple[bytes, bool]:
    """``frame_packets``, and whether any part was compressed."""
    frames = []
    compressed = False
    for ptype, data in packets:
        content = eio_codec.encode_ws(ptype, data, eio3)
        opcode = 1 if isinstance(content, str) else 2
        if deflate and len(content) >= threshold:
            raw = content.encode("utf-8") if isinstance(content, str) else content
            frames.append(ws_frames.build_frame(opcode, deflate_message(raw), rsv1=True))
            compressed = True
        else:
            frames.append(ws_frames.build_frame(opcode, content))
    return (frames[0] if len(frames) == 1 else b"".join(frames)), compressed


class Transport:
    """What an Engine.IO socket writes through: polling or websocket."""

    __slots__ = ("socket", "protocol", "writable", "discarded", "closed")

    name = "base"

    def __init__(self, protocol: int) -> None:
        self.socket: Optional["EngineSocket"] = None
        self.protocol = protocol
        self.writable = False
        self.discarded = False
        self.closed = False

    def send(self, packets: list[Packet], compress: bool = True) -> None:
        raise NotImplementedError

    def can_write_now(self) -> bool:
        """Whether a packet written now leaves without waiting (volatile packets need it)."""
        return True

    def close(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        self.discarded = True

    def _on_packet(self, ptype: int, data: Any) -> None:
        if self.socket is not None:
            self.socket._on_packet(ptype, data, self)

    def _on_error(self, reason: str, description: Any = None) -> None:
        # the socket answers by calling close(), which still owes a pending poll its close packet
        if self.socket is not None:
            self.socket._on_transport_close(self, "transport error", description)

    def _on_close(self) -> None:
        if self.socket is not None:
            self.socket._on_transport_close(self, "transport close", None)
