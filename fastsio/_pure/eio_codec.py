"""Engine.IO packet and payload codec (pure-Python twin of ``_speedups.eio_codec``).

Wire formats:

* Engine.IO protocol v4, engine.io-protocol README, "Protocol" > "Packet
  encoding": a packet is ``<type digit><data>``; binary data travels as a
  binary WebSocket frame (no type byte) or, inside an HTTP long-polling
  payload, as ``b<base64>``. Payload packets are joined by the record
  separator U+001E.
* Engine.IO protocol v3 (engine.io-parser 2.x, for socket.io v2 clients with
  ``allow_eio3``): polling payloads are ``<length>:<packet>`` repeated, the
  length counted in UTF-16 code units; binary packets in a text payload are
  ``b<type digit><base64>``; the binary payload form frames each packet as
  ``<0|1><decimal digits as bytes 0..9><255><packet>``. Binary WebSocket
  frames start with the type as a raw byte.

Sans-I/O: str/bytes in, packets out; packets in, str/bytes out. Malformed
input raises :class:`~fastsio.exceptions.ProtocolError`; misuse of the
encoders (a bad packet type or data type) raises ``ValueError``/``TypeError``.
"""
from __future__ import annotations

import binascii
import enum
import re
from typing import Sequence, Union

from ..exceptions import ProtocolError

__all__ = [
    "PacketType",
    "OPEN",
    "CLOSE",
    "PING",
    "PONG",
    "MESSAGE",
    "UPGRADE",
    "NOOP",
    "encode_packet",
    "encode_ws",
    "decode_ws",
    "encode_payload",
    "decode_payload",
    "encode_payload_v3",
    "decode_payload_v3",
]

Data = Union[str, bytes]


class PacketType(enum.IntEnum):
    """Engine.IO packet types (same values in protocol v3 and v4)."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


OPEN = PacketType.OPEN
CLOSE = PacketType.CLOSE
PING = PacketType.PING
PONG = PacketType.PONG
MESSAGE = PacketType.MESSAGE
UPGRADE = PacketType.UPGRADE
NOOP = PacketType.NOOP

_SEP = "\x1e"
_SEP_B = b"\x1e"
# int -> its digit; a dict lookup doubles as the range check (no negative
# indexing surprises) and works for IntEnum members and bools alike.
_CHAR_OF = {i: str(i) for i in range(7)}
_TYPE_OF_CHAR = {str(i): i for i in range(7)}
_BYTES_LIKE = (bytes, bytearray, memoryview)
# Canonical padded base64 as Node's Buffer#toString("base64") writes it.
# Trailing bits of the last quantum are not checked (CPython's strict_mode
# does not either).
_B64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_B64_RE_B = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# v3 text payload header, matched on the UTF-16-LE form of the body.
_V3_HEADER_16 = re.compile(rb"((?:[0-9]\x00){1,10}):\x00")
# v3 binary payload header after the 0/1 flag byte.
_V3_HEADER_BIN = re.compile(rb"([\x00-\x09]{1,10})\xff")
_TO_DIGIT_BYTES = bytes.maketrans(b"0123456789", bytes(range(10)))
_FROM_DIGIT_BYTES = bytes.maketrans(bytes(range(10)), b"0123456789")


def _type_char(ptype: int) -> str:
    c = _CHAR_OF.get(ptype)
    if c is None:
        raise ValueError("invalid packet type")
    return c


def _b64decode(s: str | bytes) -> bytes:
    if isinstance(s, str):
        ok = _B64_RE.fullmatch(s) is not None
    else:
        ok = _B64_RE_B.fullmatch(s) is not None
    if not ok:
        raise ProtocolError("invalid base64")
    return binascii.a2b_base64(s)


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _decode_text(s: str, eio3: bool) -> tuple[int, Data]:
    if not s:
        raise ProtocolError("empty packet")
    t = _TYPE_OF_CHAR.get(s[0])
    if t is not None:
        return t, s[1:]
    if s[0] == "b":
        # v4: "b<base64>" is always a MESSAGE; v3 carries the type: "b<digit><base64>".
        if not eio3:
            return MESSAGE.value, _b64decode(s[1:])
        t = _TYPE_OF_CHAR.get(s[1:2])
        if t is None:
            raise ProtocolError("unknown packet type")
        return t, _b64decode(s[2:])
    raise ProtocolError("unknown packet type")


def _decode_utf8(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("invalid UTF-8") from None


def encode_packet(ptype: int, data: str = "") -> str:
    """Encodes one text packet as ``<type digit><data>``.

    Args:
        ptype: a packet type, 0..6.
        data: the packet data.

    Returns:
        The encoded packet, e.g. ``encode_packet(MESSAGE, "hi") == "4hi"``.

    Raises:
        ValueError: ``ptype`` is not 0..6.
        TypeError: ``data`` is not a ``str``.
    """
    c = _type_char(ptype)
    if not isinstance(data, str):
        raise TypeError("data must be str")
    return c + data


def encode_ws(ptype: int, data: str | bytes | None = None, eio3: bool = False) -> str | bytes:
    """Encodes one packet as the content of a WebSocket frame.

    Text data (or none) gives a ``str`` for a text frame. Bytes give a
    ``bytes`` for a binary frame: unchanged in v4 (MESSAGE only), prefixed by
    the type byte in v3.

    Args:
        ptype: a packet type, 0..6.
        data: ``str``, bytes-like or ``None``.
        eio3: use Engine.IO protocol v3 framing for binary data.

    Returns:
        ``str`` for a text frame, ``bytes`` for a binary frame.

    Raises:
        ValueError: bad ``ptype``, or binary data in a non-MESSAGE v4 packet.
        TypeError: ``data`` is of another type.

    Example:
        >>> encode_ws(PING, "probe")
        '2probe'
    """
    c = _type_char(ptype)
    if data is None:
        return c
    if isinstance(data, str):
        return c + data
    if isinstance(data, _BYTES_LIKE):
        if eio3:
            return bytes((ptype,)) + data
        if ptype != MESSAGE:
            raise ValueError("binary data only in MESSAGE packets")
        return data if type(data) is bytes else bytes(data)
    raise TypeError("data must be str, bytes or None")


def decode_ws(msg: str | bytes, eio3: bool = False) -> tuple[int, str | bytes]:
    """Decodes the content of one WebSocket frame into ``(type, data)``.

    Args:
        msg: ``str`` from a text frame, bytes-like from a binary frame.
        eio3: Engine.IO protocol v3 (binary frames start with the type byte,
            base64 text packets are ``b<digit><base64>``).

    Returns:
        ``(type, data)``; ``data`` is ``str`` for text packets, ``bytes``
        for binary ones (v4 binary frames are always MESSAGE).

    Raises:
        ProtocolError: empty text frame, unknown type, bad base64.
        TypeError: ``msg`` is neither text nor bytes-like.

    Example:
        >>> decode_ws("4hello")
        (4, 'hello')
    """
    if isinstance(msg, str):
        return _decode_text(msg, eio3)
    if isinstance(msg, _BYTES_LIKE):
        b = msg if type(msg) is bytes else bytes(msg)
        if not eio3:
            return MESSAGE.value, b
        if not b:
            raise ProtocolError("empty packet")
        t = b[0]
        if t > 6:
            raise ProtocolError("unknown packet type")
        return t, b[1:]
    raise TypeError("msg must be str or bytes")


def encode_payload(packets: Sequence[tuple[int, str | bytes]]) -> str:
    """Encodes packets as a v4 HTTP long-polling payload.

    Text packets are ``<digit><data>``; binary MESSAGE packets are
    ``b<base64>``; they are joined by U+001E. The data of a text packet must
    not contain U+001E (JSON never does: it escapes control characters).

    Args:
        packets: ``(type, data)`` pairs.

    Returns:
        The payload, e.g. ``"4hello\\x1e2"``.

    Raises:
        ValueError: bad type, or binary data in a non-MESSAGE packet.
        TypeError: data that is neither ``str`` nor bytes-like.
    """
    pieces = []
    for ptype, data in packets:
        c = _type_char(ptype)
        if isinstance(data, str):
            pieces.append(c + data)
        elif isinstance(data, _BYTES_LIKE):
            if ptype != MESSAGE:
                raise ValueError("binary data only in MESSAGE packets")
            pieces.append("b" + _b64encode(data))
        else:
            raise TypeError("data must be str or bytes")
    return _SEP.join(pieces)


def decode_payload(body: bytes | str, max_packets: int = 10000) -> list[tuple[int, str | bytes]]:
    """Decodes a v4 HTTP long-polling payload.

    Args:
        body: the request body, bytes-like (UTF-8) or ``str``.
        max_packets: the most packets accepted in one payload.

    Returns:
        ``(type, data)`` pairs; ``data`` is ``bytes`` for ``b<base64>``
        packets (always MESSAGE), ``str`` otherwise.

    Raises:
        ProtocolError: empty body or packet, too many packets, unknown type,
            invalid UTF-8, bad base64.

    Example:
        >>> decode_payload(b"4hello\\x1e2")
        [(4, 'hello'), (2, '')]
    """
    if isinstance(body, str):
        if not body:
            raise ProtocolError("empty payload")
        if body.count(_SEP) >= max_packets:
            raise ProtocolError("too many packets")
        return [_decode_text(piece, False) for piece in body.split(_SEP)]
    if not isinstance(body, _BYTES_LIKE):
        raise TypeError("body must be str or bytes")
    b = body if type(body) is bytes else bytes(body)
    if not b:
        raise ProtocolError("empty payload")
    if b.count(_SEP_B) >= max_packets:
        raise ProtocolError("too many packets")
    out: list[tuple[int, str | bytes]] = []
    # U+001E never occurs inside a multi-byte UTF-8 sequence, so splitting
    # the bytes first is the same as splitting the decoded text.
    for piece in b.split(_SEP_B):
        if not piece:
            raise ProtocolError("empty packet")
        first = piece[0]
        if 0x30 <= first <= 0x36:
            out.append((first - 0x30, _decode_utf8(piece[1:])))
        elif first == 0x62:  # "b"
            out.append((MESSAGE.value, _b64decode(piece[1:])))
        else:
            raise ProtocolError("unknown packet type")
    return out


def _utf16_len(s: str) -> int:
    # JavaScript string length: a character outside the BMP counts twice.
    if s.isascii() or max(s) <= "\uffff":
        return len(s)
    return len(s.encode("utf-16-le", "surrogatepass")) >> 1


def _v3_len_bytes(n: int) -> bytes:
    return str(n).encode("ascii").translate(_TO_DIGIT_BYTES)


def encode_payload_v3(
    packets: Sequence[tuple[int, str | bytes]], supports_binary: bool = False
) -> str | bytes:
    """Encodes packets as a v3 (engine.io-parser 2.x) long-polling payload.

    Text form (``str``): ``<length>:<packet>`` per packet, the length in
    UTF-16 code units; binary data as ``b<digit><base64>``. An empty list
    gives ``"0:"``, as engine.io-parser 2.x does.

    Binary form (``bytes``), chosen when ``supports_binary`` is true and a
    packet has binary data: ``<0|1><length digits as bytes 0..9><255>`` then
    the UTF-8 text packet (0) or the type byte and the data (1).

    Args:
        packets: ``(type, data)`` pairs.
        supports_binary: the client accepts the binary payload form.

    Returns:
        ``str`` (text form) or ``bytes`` (binary form).

    Raises:
        ValueError: bad packet type.
        TypeError: data that is neither ``str`` nor bytes-like.

    Example:
        >>> encode_payload_v3([(4, "hello"), (2, "")])
        '6:4hello1:2'
    """
    if supports_binary and any(isinstance(d, _BYTES_LIKE) for _, d in packets):
        parts = []
        for ptype, data in packets:
            c = _type_char(ptype)
            if isinstance(data, str):
                # surrogatepass: engine.io-parser's utf8 encoder is not strict
                # either, so a lone surrogate is written, not refused.
                enc = (c + data).encode("utf-8", "surrogatepass")
                parts.append(b"\x00" + _v3_len_bytes(len(enc)) + b"\xff")
                parts.append(enc)
            elif isinstance(data, _BYTES_LIKE):
                parts.append(b"\x01" + _v3_len_bytes(len(data) + 1) + b"\xff" + bytes((ptype,)))
                parts.append(data if type(data) is bytes else bytes(data))
            else:
                raise TypeError("data must be str or bytes")
        return b"".join(parts)
    if not packets:
        return "0:"
    pieces = []
    for ptype, data in packets:
        c = _type_char(ptype)
        if isinstance(data, str):
            p = c + data
            pieces.append(f"{_utf16_len(p)}:{p}")
        elif isinstance(data, _BYTES_LIKE):
            p = "b" + c + _b64encode(data)
            pieces.append(f"{len(p)}:{p}")
        else:
            raise TypeError("data must be str or bytes")
    return "".join(pieces)


def _decode_v3_binary(b: bytes, max_packets: int) -> list[tuple[int, str | bytes]]:
    out: list[tuple[int, str | bytes]] = []
    i = 0
    n = len(b)
    while i < n:
        flag = b[i]
        if flag > 1:
            raise ProtocolError("invalid binary flag")
        m = _V3_HEADER_BIN.match(b, i + 1)
        if m is None:
            raise ProtocolError("invalid length header")
        length = int(m.group(1).translate(_FROM_DIGIT_BYTES))
        i = m.end()
        if length == 0:
            raise ProtocolError("zero-length packet")
        if length > n - i:
            raise ProtocolError("length past end")
        if len(out) >= max_packets:
            raise ProtocolError("too many packets")
        piece = b[i : i + length]
        i += length
        if flag == 0:
            out.append(_decode_text(_decode_utf8(piece), True))
        else:
            t = piece[0]
            if t > 6:
                raise ProtocolError("unknown packet type")
            out.append((t, piece[1:]))
    return out


def _decode_v3_text(s: str, max_packets: int) -> list[tuple[int, str | bytes]]:
    # Lengths count UTF-16 code units, so walk the UTF-16 form: slicing it
    # by 2*length bytes is exact, and a slice ending inside a surrogate pair
    # fails to decode.
    u = s.encode("utf-16-le")
    out: list[tuple[int, str | bytes]] = []
    i = 0
    n = len(u)
    while i < n:
        m = _V3_HEADER_16.match(u, i)
        if m is None:
            raise ProtocolError("invalid length header")
        length = int(m.group(1)[::2])
        i = m.end()
        if length == 0:
            raise ProtocolError("zero-length packet")
        if 2 * length > n - i:
            raise ProtocolError("length past end")
        try:
            piece = u[i : i + 2 * length].decode("utf-16-le")
        except UnicodeDecodeError:
            raise ProtocolError("length splits a character") from None
        i += 2 * length
        if len(out) >= max_packets:
            raise ProtocolError("too many packets")
        out.append(_decode_text(piece, True))
    return out


def decode_payload_v3(body: bytes, max_packets: int = 10000) -> list[tuple[int, str | bytes]]:
    """Decodes a v3 (engine.io-parser 2.x) long-polling payload.

    A body starting with byte 0 or 1 is the binary form, anything else the
    UTF-8 text form (see :func:`encode_payload_v3`).

    Args:
        body: the request body, bytes-like.
        max_packets: the most packets accepted in one payload.

    Returns:
        ``(type, data)`` pairs; ``data`` is ``bytes`` for binary packets.

    Raises:
        ProtocolError: any malformed input, e.g. a bad or zero length, a
            length past the end or splitting a character, unknown type,
            invalid UTF-8, bad base64, too many packets.

    Example:
        >>> decode_payload_v3(b"6:4hello1:2")
        [(4, 'hello'), (2, '')]
    """
    if not isinstance(body, _BYTES_LIKE):
        raise TypeError("body must be bytes")
    b = body if type(body) is bytes else bytes(body)
    if not b:
        raise ProtocolError("empty payload")
    if b[0] <= 1:
        return _decode_v3_binary(b, max_packets)
    return _decode_v3_text(_decode_utf8(b), max_packets)
