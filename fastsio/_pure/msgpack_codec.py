"""Socket.IO msgpack packet codec, pure-Python twin of ``fastsio._speedups.msgpack_codec``.

Wire format: ``socket.io-msgpack-parser`` 3.x (protocol 5). One Socket.IO
packet is one MessagePack map ``{type, data, nsp, id?}`` carried in one binary
Engine.IO message; binary values sit inline as msgpack ``bin``, so there are no
attachments and no BINARY_* packet types (types 0-4 only).

The JavaScript side is notepack.io 2.2, which this decoder reads exactly:
ext type 0 (``c7``/``c8``/``c9``) is an ArrayBuffer (``bytes`` here), fixext-1
type 0 (``d4 00 00``) is ``undefined`` (a missing field, ``None`` inside data),
fixext-8 type 0 (``d7 00``) is a Date (an aware UTC ``datetime`` here), any
other ext ``[type, bytes]``. Trailing bytes are an error, as in notepack.

Decoding is as strict as Node's parser (``type`` 0-4, ``nsp`` a string, the
data shape per type, ``id`` an integer) and bounded like the default codec:
nesting depth, the number of binary values (``max_attachments``), ack ids up
to ``MAX_SAFE_INTEGER``, and no length field can make it allocate more than
the message holds. Every malformed packet raises
:class:`~fastsio.exceptions.ProtocolError` with the same message in both
implementations. Two deliberate differences from Node: map keys must be
strings, and an EVENT's first element must be an event name (a string that is
not reserved, or a number), as the default parser requires.

Encoding goes through the ``msgpack`` library (its C packer in the compiled
module, its pure-Python fallback here), so a broadcast costs one encode.
"""
from __future__ import annotations

import datetime
import operator
import struct
import sys
from typing import Any

from msgpack import ExtType
from msgpack.fallback import Packer

from ..exceptions import ProtocolError
from .sio_codec import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    MAX_SAFE_INTEGER,
    RESERVED_EVENTS,
    Packet,
    PacketType,
)

__all__ = [
    "PacketType",
    "CONNECT",
    "DISCONNECT",
    "EVENT",
    "ACK",
    "CONNECT_ERROR",
    "MAX_SAFE_INTEGER",
    "Packet",
    "encode",
    "encode_event",
    "Decoder",
]

_BINARY_TYPES = (bytes, bytearray, memoryview)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_UNDEFINED: Any = object()  # a field notepack wrote as ``undefined``: absent


# ---------------------------------------------------------------------------
# encoding


def _default(obj: Any) -> Any:
    # notepack's Date: fixext 8, type 0, milliseconds since the epoch as a
    # signed 64-bit big-endian integer (hi word signed, lo word unsigned).
    if isinstance(obj, datetime.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=datetime.timezone.utc)
        ms = (obj - _EPOCH) // datetime.timedelta(milliseconds=1)
        if not -(2**63) <= ms < 2**63:
            raise OverflowError("datetime out of range")
        return ExtType(0, struct.pack(">q", ms))
    raise TypeError(f"Type is not msgpack serializable: {type(obj).__name__}")


def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> list[bytes]:
    """Encodes one packet as one binary frame.

    BINARY_EVENT and BINARY_ACK are written as EVENT and ACK: binary travels
    inline in msgpack.

    Args:
        type: packet type 0..6.
        nsp: namespace; starts with ``/``.
        data: the payload (``bytes``, ``bytearray`` and ``memoryview`` become
            msgpack ``bin``; ``datetime`` a notepack Date), ``None`` for none.
        id: ack id, ``0 <= id <= MAX_SAFE_INTEGER``, or ``None``.

    Returns:
        A list holding one ``bytes`` frame.

    Raises:
        ValueError: bad type, namespace or id.
        TypeError: a wrong argument type, or data msgpack cannot serialise.

    Example:
        >>> encode(EVENT, "/", ["hi", b"\\x01"])
        [b'\\x83\\xa4type\\x02\\xa4data\\x92\\xa2hi\\xc4\\x01\\x01\\xa3nsp\\xa1/']
    """
    if not isinstance(type, int) or isinstance(type, bool) or not 0 <= type <= 6:
        raise ValueError("invalid packet type")
    if not isinstance(nsp, str):
        raise TypeError("nsp must be a str")
    if not nsp.startswith("/"):
        raise ValueError("invalid namespace")
    t = int(type)
    if t == BINARY_EVENT:
        t = EVENT
    elif t == BINARY_ACK:
        t = ACK
    packet: dict[str, Any] = {"type": t}
    if data is not None:
        packet["data"] = data
    packet["nsp"] = nsp
    if id is not None:
        if not isinstance(id, int) or isinstance(id, bool):
            raise TypeError("id must be an int or None")
        if not 0 <= id <= MAX_SAFE_INTEGER:
            raise ValueError("invalid ack id")
        packet["id"] = int(id)
    try:
        frame = Packer(use_bin_type=True, default=_default, datetime=False).pack(packet)
    except (OverflowError, ValueError) as exc:
        raise TypeError(f"data cannot be serialised: {exc}") from None
    return [frame]


def encode_event(nsp: str, event: str, args: tuple[Any, ...] | list[Any], id: int | None = None) -> list[bytes]:
    """Same as ``encode(EVENT, nsp, [event, *args], id)``.

    Raises:
        ValueError: bad namespace or id.
        TypeError: a wrong argument type, or data msgpack cannot serialise.
    """
    if not isinstance(event, str):
        raise TypeError("event must be a str")
    if not isinstance(args, (tuple, list)):
        raise TypeError("args must be a tuple or list")
    return encode(EVENT, nsp, [event, *args], id)


# ---------------------------------------------------------------------------
# decoding


class _Reader:
    """MessagePack reader over one message: every read checks the length first."""

    __slots__ = ("buf", "pos", "end", "max_depth", "binaries", "max_binaries")

    def __init__(self, buf: bytes, max_depth: int, max_binaries: int) -> None:
        self.buf = buf
        self.pos = 0
        self.end = len(buf)
        self.max_depth = max_depth
        self.binaries = 0
        self.max_binaries = max_binaries

    def take(self, n: int) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise ProtocolError("truncated msgpack")
        self.pos = pos + n
        return self.buf[pos:pos + n]

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def sint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big", signed=True)

    def binary(self, n: int) -> bytes:
        self.binaries += 1
        if self.binaries > self.max_binaries:
            raise ProtocolError("too many attachments")
        return self.take(n)

    def string(self, n: int) -> str:
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("invalid utf-8 string") from None

    def ext(self, n: int, fixed: bool) -> Any:
        kind = self.sint(1)
        if kind == 0:
            if fixed and n == 1:
                self.take(1)
                return _UNDEFINED
            if fixed and n == 8:
                ms = self.sint(8)
                try:
                    return _EPOCH + datetime.timedelta(milliseconds=ms)
                except OverflowError:
                    raise ProtocolError("invalid date") from None
            if not fixed:
                return self.binary(n)
        return [kind, self.take(n)]

    def container_size(self, n: int, per_item: int) -> int:
        # Every element takes at least one byte: a count the rest of the
        # message cannot hold is refused before anything is allocated.
        if n * per_item > self.end - self.pos:
            raise ProtocolError("truncated msgpack")
        return n


def _scalar(r: _Reader, b: int) -> tuple[int, Any]:
    """Decodes the item whose first byte is ``b``.

    Returns ``(0, value)`` for a complete value, ``(1, n)`` for an array of
    ``n`` items and ``(2, n)`` for a map of ``n`` pairs still to be read.
    """
    if b <= 0x7F:
        return 0, b
    if b >= 0xE0:
        return 0, b - 0x100
    if b <= 0x8F:
        return 2, r.container_size(b & 0x0F, 2)
    if b <= 0x9F:
        return 1, r.container_size(b & 0x0F, 1)
    if b <= 0xBF:
        return 0, r.string(b & 0x1F)
    if b == 0xC0:
        return 0, None
    if b == 0xC2:
        return 0, False
    if b == 0xC3:
        return 0, True
    if b == 0xC4:
        return 0, r.binary(r.uint(1))
    if b == 0xC5:
        return 0, r.binary(r.uint(2))
    if b == 0xC6:
        return 0, r.binary(r.uint(4))
    if b == 0xC7:
        return 0, r.ext(r.uint(1), False)
    if b == 0xC8:
        return 0, r.ext(r.uint(2), False)
    if b == 0xC9:
        return 0, r.ext(r.uint(4), False)
    if b == 0xCA:
        return 0, struct.unpack(">f", r.take(4))[0]
    if b == 0xCB:
        return 0, struct.unpack(">d", r.take(8))[0]
    if b == 0xCC:
        return 0, r.uint(1)
    if b == 0xCD:
        return 0, r.uint(2)
    if b == 0xCE:
        return 0, r.uint(4)
    if b == 0xCF:
        return 0, r.uint(8)
    if b == 0xD0:
        return 0, r.sint(1)
    if b == 0xD1:
        return 0, r.sint(2)
    if b == 0xD2:
        return 0, r.sint(4)
    if b == 0xD3:
        return 0, r.sint(8)
    if b == 0xD4:
        return 0, r.ext(1, True)
    if b == 0xD5:
        return 0, r.ext(2, True)
    if b == 0xD6:
        return 0, r.ext(4, True)
    if b == 0xD7:
        return 0, r.ext(8, True)
    if b == 0xD8:
        return 0, r.ext(16, True)
    if b == 0xD9:
        return 0, r.string(r.uint(1))
    if b == 0xDA:
        return 0, r.string(r.uint(2))
    if b == 0xDB:
        return 0, r.string(r.uint(4))
    if b == 0xDC:
        return 1, r.container_size(r.uint(2), 1)
    if b == 0xDD:
        return 1, r.container_size(r.uint(4), 1)
    if b == 0xDE:
        return 2, r.container_size(r.uint(2), 2)
    if b == 0xDF:
        return 2, r.container_size(r.uint(4), 2)
    raise ProtocolError("invalid msgpack")  # 0xc1, never used


def _unpack(r: _Reader) -> Any:
    """One whole value, iteratively: hostile nesting cannot exhaust a stack.

    ``undefined`` stays the ``_UNDEFINED`` marker only as a direct value of the
    outermost map (where it means "field absent"); everywhere else it is None.
    """
    # Each frame: [container, items left, pending key or None, is_map]
    stack: list[list[Any]] = []
    key_next = False
    while True:
        if r.pos >= r.end:
            raise ProtocolError("truncated msgpack")
        b = r.buf[r.pos]
        r.pos += 1
        kind, value = _scalar(r, b)
        if kind:
            if len(stack) > r.max_depth:
                raise ProtocolError("nesting too deep")
            if key_next:
                raise ProtocolError("map key must be a string")
            if value:
                stack.append([[] if kind == 1 else {}, value, None, kind == 2])
                key_next = kind == 2
                continue
            value = [] if kind == 1 else {}
        # attach ``value`` to its parent, closing every container it completes
        while True:
            if not stack:
                return value
            frame = stack[-1]
            if frame[3]:
                if key_next:
                    if type(value) is not str:
                        raise ProtocolError("map key must be a string")
                    frame[2] = value
                    key_next = False
                    break
                if value is _UNDEFINED and len(stack) > 1:
                    value = None
                frame[0][frame[2]] = value
            else:
                if value is _UNDEFINED:
                    value = None
                frame[0].append(value)
            frame[1] -= 1
            if frame[1]:
                key_next = frame[3]
                break
            stack.pop()
            value = frame[0]


def _event_name_ok(data: Any) -> bool:
    if not data:
        return False
    first = data[0]
    tf = type(first)
    return tf is int or tf is float or (tf is str and first not in RESERVED_EVENTS)


class Decoder:
    """Decodes one msgpack Socket.IO packet per binary frame.

    Args:
        max_attachments: most binary values (``bin`` or ArrayBuffer) one packet may hold.
        max_depth: deepest nesting of arrays/maps accepted inside the packet map.

    Example:
        >>> Decoder().feed(encode(EVENT, "/", ["hi", 1], 3)[0])
        Packet(type=2, nsp='/', data=['hi', 1], id=3)
    """

    __slots__ = ("_max_attachments", "_max_depth")

    def __init__(self, max_attachments: int = 10, max_depth: int = 100) -> None:
        self._max_attachments = _ssize(max_attachments)
        self._max_depth = _ssize(max_depth)

    @property
    def pending(self) -> bool:
        """Always False: a msgpack packet never waits for attachments."""
        return False

    def reset(self) -> None:
        """Nothing to drop: every frame is a whole packet."""

    def feed(self, data: str | bytes | bytearray | memoryview) -> Packet | None:
        """Decodes one binary frame into a packet.

        Raises:
            ProtocolError: the frame is text, not msgpack, or not a valid packet.
            TypeError: ``data`` is neither str nor bytes-like.
        """
        if isinstance(data, str):
            raise ProtocolError("text frame: msgpack packets are binary")
        if not isinstance(data, _BINARY_TYPES):
            raise TypeError("feed() takes str or a bytes-like object")
        buf = data if type(data) is bytes else bytes(data)
        r = _Reader(buf, self._max_depth, self._max_attachments)
        value = _unpack(r)
        if r.pos != r.end:
            raise ProtocolError("trailing bytes")
        if type(value) is not dict:
            raise ProtocolError("invalid packet type")
        t = value.get("type", _UNDEFINED)
        if type(t) is not int or not CONNECT <= t <= CONNECT_ERROR:
            raise ProtocolError("invalid packet type")
        nsp = value.get("nsp", _UNDEFINED)
        if type(nsp) is not str:
            raise ProtocolError("invalid namespace")
        payload = value.get("data", _UNDEFINED)
        if t == CONNECT:
            ok = payload is _UNDEFINED or type(payload) is dict
        elif t == DISCONNECT:
            ok = payload is _UNDEFINED
        elif t == CONNECT_ERROR:
            ok = type(payload) is str or type(payload) is dict
        elif t == EVENT:
            ok = type(payload) is list and _event_name_ok(payload)
        else:
            ok = type(payload) is list
        if not ok:
            raise ProtocolError("invalid payload")
        id = value.get("id", _UNDEFINED)
        if id is _UNDEFINED:
            id = None
        elif type(id) is not int or not 0 <= id <= MAX_SAFE_INTEGER:
            raise ProtocolError("invalid packet id")
        return Packet(t, nsp, None if payload is _UNDEFINED else payload, id)


def _ssize(value: Any) -> int:
    v = operator.index(value)
    if not -sys.maxsize - 1 <= v <= sys.maxsize:  # the compiled twin keeps a Py_ssize_t
        raise OverflowError("Python int too large to convert to C ssize_t")
    return v
