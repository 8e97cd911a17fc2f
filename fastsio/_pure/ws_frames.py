"""RFC 6455 WebSocket frames: an incremental parser and a frame builder (pure-Python twin).

Wire format: RFC 6455 section 5.2 (base framing), 5.3 (masking), 5.4
(fragmentation), 5.5 (control frames), 5.6 (data frames) and 7.4 (close
codes). RSV1 on the first frame of a message marks it compressed by
permessage-deflate (RFC 7692 section 6); inflating is the caller's job.

Sans-I/O: bytes in, messages out. Same names, signatures, errors and error
messages as ``fastsio._speedups.ws_frames``; both raise the same
``WebSocketError`` at the same byte of the same stream.
"""
from __future__ import annotations

import enum
from typing import Union

from ..exceptions import WebSocketError

__all__ = [
    "Opcode",
    "OP_CONT",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "FrameParser",
    "build_frame",
    "build_close",
    "parse_close",
    "apply_mask",
]

Buffer = Union[bytes, bytearray, memoryview]


class Opcode(enum.IntEnum):
    """Frame opcodes, RFC 6455 5.2."""

    OP_CONT = 0
    OP_TEXT = 1
    OP_BINARY = 2
    OP_CLOSE = 8
    OP_PING = 9
    OP_PONG = 10


OP_CONT = 0
OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10

_MAX_HEADER = 14  # 2 fixed bytes + 8 for a 64-bit length + 4 for the mask key
_MAX_CONTROL = 125  # RFC 6455 5.5


def _valid_close_code(code: int) -> bool:
    # RFC 6455 7.4.1/7.4.2: 1004-1006 and 1015 are reserved and never sent on
    # the wire, 1016-2999 are unassigned, 3000-4999 are for libraries and apps.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _xor(data: Buffer, mask: bytes, offset: int) -> bytes:
    """``data`` XOR the key ``mask`` started at key byte ``offset``."""
    n = len(data)
    if n == 0:
        return b""
    shift = offset & 3
    if shift:
        mask = mask[shift:] + mask[:shift]
    # One big-int XOR is far faster in CPython than a per-byte loop.
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _close_fields(payload: Buffer) -> tuple[int, str]:
    n = len(payload)
    if n == 0:
        return (1005, "")
    if n == 1:
        raise WebSocketError(1002, "close payload of 1 byte")
    code = (payload[0] << 8) | payload[1]
    if not _valid_close_code(code):
        raise WebSocketError(1002, f"invalid close code {code}")
    try:
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError(1007, "invalid UTF-8 in close reason") from None
    return (code, reason)


class FrameParser:
    """Incremental parser of the frames one peer sends.

    Feed it bytes as they arrive, split anywhere; it returns the complete
    messages. Only a header split across calls (under 14 bytes) and the
    payload of the message being assembled are kept between calls.

    Args:
        max_message_size: the largest message (sum of its fragments) accepted;
            larger ones fail with close code 1009 as soon as a header says so.
        max_fragments: the most frames one data message may span (1008).
        client_side: True when parsing what a server sends (frames must be
            unmasked); False, the default, parses a client's masked frames.
        allow_rsv1: True when permessage-deflate was negotiated.

    Example:
        >>> p = FrameParser()
        >>> p.feed(bytes.fromhex("818537fa213d7f9f4d5158"))
        [(1, 'Hello', False)]
    """

    __slots__ = (
        "_max_size",
        "_max_fragments",
        "_client_side",
        "_allow_rsv1",
        "_hdr",
        "_in_payload",
        "_opcode",
        "_fin",
        "_masked",
        "_mask",
        "_remaining",
        "_offset",
        "_msg_opcode",
        "_msg_compressed",
        "_msg_size",
        "_msg_frames",
        "_msg",
        "_ctl",
        "_error",
    )

    def __init__(
        self,
        max_message_size: int = 1_000_000,
        *,
        max_fragments: int = 1000,
        client_side: bool = False,
        allow_rsv1: bool = False,
    ) -> None:
        if max_message_size < 0:
            raise ValueError("max_message_size must be >= 0")
        if max_fragments < 1:
            raise ValueError("max_fragments must be >= 1")
        self._max_size = max_message_size
        self._max_fragments = max_fragments
        self._client_side = bool(client_side)
        self._allow_rsv1 = bool(allow_rsv1)
        self._hdr = bytearray()
        self._in_payload = False
        self._opcode = 0
        self._fin = False
        self._masked = False
        self._mask = b""
        self._remaining = 0
        self._offset = 0
        self._ctl = bytearray()
        self._error: WebSocketError | None = None
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_frames = 0
        self._msg = bytearray()

    @property
    def closed(self) -> bool:
        """True once feed() raised; every later feed() raises the same error."""
        return self._error is not None

    def feed(self, data: Buffer) -> list[tuple[int, str | bytes, bool]]:
        """Parse the next bytes of the stream.

        Args:
            data: bytes, bytearray or a contiguous memoryview, any length.

        Returns:
            The messages completed by these bytes, in order, as
            ``(opcode, payload, compressed)``: str for an uncompressed text
            message, bytes otherwise. Control frames come as soon as they
            end, also between the fragments of a data message.

        Raises:
            WebSocketError: the stream breaks RFC 6455 or a limit; ``code`` is
                the close code to answer with. Messages completed earlier in
                the same call are dropped with the failed connection.
        """
        if self._error is not None:
            raise self._error
        if type(data) is not bytes:
            data = memoryview(data).tobytes()
        out: list[tuple[int, str | bytes, bool]] = []
        try:
            self._run(data, out)
        except WebSocketError as exc:
            self._error = exc
            self._in_payload = False
            self._reset_message()
            self._msg = bytearray()
            raise
        return out

    def _run(self, p: bytes, out: list[tuple[int, str | bytes, bool]]) -> None:
        pos = 0
        n = len(p)
        while True:
            if not self._in_payload:
                if not self._hdr:
                    h = self._header(p, pos, n)
                    if h == 0:
                        self._hdr += p[pos:]
                        return
                    pos += h
                else:
                    old = len(self._hdr)
                    self._hdr += p[pos : pos + _MAX_HEADER - old]
                    h = self._header(self._hdr, 0, len(self._hdr))
                    if h == 0:
                        return
                    pos += h - old
                    self._hdr = bytearray()
                self._in_payload = True
                # The common case: a whole one-frame message in this chunk.
                if self._fin and self._opcode in (OP_TEXT, OP_BINARY) and self._remaining <= n - pos:
                    take = self._remaining
                    chunk = p[pos : pos + take]
                    if self._masked:
                        chunk = _xor(chunk, self._mask, 0)
                    out.append((self._msg_opcode, self._make_payload(chunk), self._msg_compressed))
                    pos += take
                    self._remaining = 0
                    self._in_payload = False
                    self._reset_message()
                    continue
            take = min(self._remaining, n - pos)
            if take > 0:
                chunk = p[pos : pos + take]
                if self._masked:
                    chunk = _xor(chunk, self._mask, self._offset)
                if self._opcode >= OP_CLOSE:
                    self._ctl += chunk
                else:
                    self._msg += chunk
                self._offset += take
                self._remaining -= take
                pos += take
            if self._remaining > 0:
                return
            self._in_payload = False
            self._finish_frame(out)

    def _header(self, p: Buffer, start: int, end: int) -> int:
        # Returns the header length, or 0 while incomplete. Each check runs as
        # soon as its bytes are there, in the same order as the Cython module,
        # so every split of a stream fails at the same byte with the same
        # error. State changes only once the whole header is there.
        n = end - start
        if n < 2:
            return 0
        b0 = p[start]
        b1 = p[start + 1]
        fin = (b0 & 0x80) != 0
        rsv1 = (b0 & 0x40) != 0
        opcode = b0 & 0x0F
        if b0 & 0x30:
            raise WebSocketError(1002, "reserved bits RSV2/RSV3 set")
        if 3 <= opcode <= 7 or opcode >= 11:
            raise WebSocketError(1002, f"unknown opcode {opcode:#x}")
        control = opcode >= OP_CLOSE
        if rsv1:
            if not self._allow_rsv1:
                raise WebSocketError(1002, "RSV1 set but no extension negotiated")
            # RFC 7692 6: RSV1 marks a message, so only its first frame.
            if control or opcode == OP_CONT:
                raise WebSocketError(1002, "RSV1 set on a control or continuation frame")
        if control:
            if not fin:
                raise WebSocketError(1002, "fragmented control frame")
            if (b1 & 0x7F) > _MAX_CONTROL:
                raise WebSocketError(1002, "control frame payload over 125 bytes")
        masked = (b1 & 0x80) != 0
        # RFC 6455 5.1: clients always mask, servers never do.
        if self._client_side:
            if masked:
                raise WebSocketError(1002, "masked frame from server")
        elif not masked:
            raise WebSocketError(1002, "unmasked frame from client")
        if opcode == OP_CONT:
            if self._msg_opcode == 0:
                raise WebSocketError(1002, "continuation frame without a message in progress")
        elif not control and self._msg_opcode != 0:
            raise WebSocketError(1002, "new data frame while a fragmented message is in progress")
        length = b1 & 0x7F
        h = 2
        if length == 126:
            if n < 4:
                return 0
            length = (p[start + 2] << 8) | p[start + 3]
            h = 4
        elif length == 127:
            if n < 10:
                return 0
            length = int.from_bytes(p[start + 2 : start + 10], "big")
            if length >> 63:
                raise WebSocketError(1002, "64-bit payload length with the top bit set")
            h = 10
        # Non-minimal length encodings pass: RFC 6455 5.2 says "must" for the
        # sender but a receiver loses nothing by accepting them.
        if not control:
            cur = self._msg_size if opcode == OP_CONT else 0
            # Decided on the header, before any payload is buffered.
            if length > self._max_size - cur:
                raise WebSocketError(1009, f"message over {self._max_size} bytes")
            frames = self._msg_frames if opcode == OP_CONT else 0
            if frames >= self._max_fragments:
                raise WebSocketError(1008, f"message over {self._max_fragments} fragments")
        if masked:
            if n < h + 4:
                return 0
            self._mask = bytes(p[start + h : start + h + 4])
            h += 4
        self._opcode = opcode
        self._fin = fin
        self._masked = masked
        self._remaining = length
        self._offset = 0
        if not control:
            if opcode != OP_CONT:
                self._msg_opcode = opcode
                self._msg_compressed = rsv1
                self._msg_size = 0
                self._msg_frames = 0
                self._msg = bytearray()
            self._msg_size += length
            self._msg_frames += 1
        return h

    def _make_payload(self, data: Buffer) -> str | bytes:
        if self._msg_opcode == OP_TEXT and not self._msg_compressed:
            try:
                return bytes(data).decode("utf-8")
            except UnicodeDecodeError:
                raise WebSocketError(1007, "invalid UTF-8 in text message") from None
        return bytes(data)

    def _finish_frame(self, out: list[tuple[int, str | bytes, bool]]) -> None:
        if self._opcode >= OP_CLOSE:
            payload = bytes(self._ctl)
            self._ctl = bytearray()
            if self._opcode == OP_CLOSE:
                _close_fields(payload)
            out.append((self._opcode, payload, False))
            return
        if not self._fin:
            return
        compressed = self._msg_compressed
        out.append((self._msg_opcode, self._make_payload(self._msg), compressed))
        self._reset_message()

    def _reset_message(self) -> None:
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_frames = 0
        self._msg = bytearray()


def _mask_key(mask: object) -> bytes | None:
    if mask is None:
        return None
    if not isinstance(mask, bytes) or len(mask) != 4:
        raise ValueError("mask must be 4 bytes")
    return mask


def _build(opcode: int, payload: Buffer, fin: bool, rsv1: bool, mask: bytes | None) -> bytes:
    n = len(payload)
    head = bytearray(((0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode,))
    maskbit = 0x80 if mask is not None else 0
    # RFC 6455 5.2: the shortest length encoding, network byte order.
    if n > 65535:
        head.append(maskbit | 127)
        head += n.to_bytes(8, "big")
    elif n > 125:
        head.append(maskbit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(maskbit | n)
    if mask is None:
        return bytes(head) + bytes(payload)
    return bytes(head) + mask + _xor(payload, mask, 0)


def build_frame(
    opcode: int,
    payload: bytes | str = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
) -> bytes:
    """Build one frame as one bytes object (a broadcast shares it).

    Args:
        opcode: one of the OP_* constants.
        payload: bytes-like, or str (sent as UTF-8).
        fin: False for all but the last fragment of a message.
        rsv1: mark the message compressed (permessage-deflate).
        mask: a 4-byte key to mask with (client frames); None for server frames.

    Raises:
        ValueError: an unknown opcode, a bad mask, a fragmented or oversized
            control frame, RSV1 on a control or continuation frame.

    Example:
        >>> build_frame(OP_TEXT, "Hello")
        b'\\x81\\x05Hello'
    """
    if not (0 <= opcode <= 2 or 8 <= opcode <= 10):
        raise ValueError(f"invalid opcode {opcode}")
    data: Buffer = payload.encode("utf-8") if isinstance(payload, str) else memoryview(payload).cast("B")
    key = _mask_key(mask)
    if opcode >= OP_CLOSE:
        if not fin:
            raise ValueError("control frames cannot be fragmented")
        if len(data) > _MAX_CONTROL:
            raise ValueError("control frame payload over 125 bytes")
    if rsv1 and (opcode >= OP_CLOSE or opcode == OP_CONT):
        raise ValueError("RSV1 only on the first frame of a data message")
    return _build(opcode, data, bool(fin), bool(rsv1), key)


def build_close(code: int = 1000, reason: str = "") -> bytes:
    """Build a server-to-client close frame (unmasked).

    Args:
        code: a close code that may be sent (RFC 6455 7.4); 1005 means "no
            status" and gives an empty payload.
        reason: at most 123 bytes once UTF-8 encoded.

    Raises:
        ValueError: a code that must not be sent, or a reason too long.

    Example:
        >>> build_close(1000)
        b'\\x88\\x02\\x03\\xe8'
    """
    if code == 1005:
        return _build(OP_CLOSE, b"", True, False, None)
    if not _valid_close_code(code):
        raise ValueError(f"invalid close code {code}")
    body = reason.encode("utf-8")
    if len(body) > _MAX_CONTROL - 2:
        raise ValueError("close reason over 123 bytes")
    return _build(OP_CLOSE, code.to_bytes(2, "big") + body, True, False, None)


def parse_close(payload: Buffer) -> tuple[int, str]:
    """Split a close frame payload into (code, reason).

    Args:
        payload: the (unmasked) payload of a close frame.

    Returns:
        ``(1005, "")`` for an empty payload, else the code and the reason.

    Raises:
        WebSocketError: 1002 for a 1-byte payload or a code that must not be
            sent, 1007 for a reason that is not UTF-8.

    Example:
        >>> parse_close(b"\\x03\\xe8bye")
        (1000, 'bye')
    """
    return _close_fields(memoryview(payload).cast("B"))


def apply_mask(data: Buffer, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` key (RFC 6455 5.3); masks and unmasks.

    Args:
        data: bytes-like.
        mask: the 4-byte masking key.

    Raises:
        ValueError: the mask is not 4 bytes.

    Example:
        >>> apply_mask(b"Hello", b"\\x37\\xfa\\x21\\x3d")
        b'\\x7f\\x9fMQX'
    """
    key = _mask_key(mask)
    if key is None:
        raise ValueError("mask must be 4 bytes")
    return _xor(memoryview(data).cast("B"), key, 0)
