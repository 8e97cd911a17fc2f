# cython: language_level=3, embedsignature=True
"""RFC 6455 WebSocket frames: an incremental parser and a frame builder.

Wire format: RFC 6455 section 5.2 (base framing), 5.3 (masking), 5.4
(fragmentation), 5.5 (control frames), 5.6 (data frames) and 7.4 (close
codes). RSV1 on the first frame of a message marks it compressed by
permessage-deflate (RFC 7692 section 6); inflating is the caller's job.

Sans-I/O: bytes in, messages out. The pure-Python twin is
``fastsio._pure.ws_frames``; both raise the same ``WebSocketError`` (code and
reason) at the same byte of the same stream.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from fastsio.exceptions import WebSocketError

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

# The cpdef enum gives the Opcode class; the module-level names are plain ints
# like the pure twin's.
globals().update({_op.name: int(_op) for _op in Opcode})


cdef inline bint _valid_close_code(long code) noexcept nogil:
    # RFC 6455 7.4.1/7.4.2: 1004-1006 and 1015 are reserved and never sent on
    # the wire, 1016-2999 are unassigned, 3000-4999 are for libraries and apps.
    return (1000 <= code <= 1003) or (1007 <= code <= 1014) or (3000 <= code <= 4999)


cdef void unmask_into(unsigned char* dst, const unsigned char* src, Py_ssize_t n,
                      const unsigned char* mask, Py_ssize_t offset) noexcept nogil:
    """XOR ``n`` bytes of ``src`` into ``dst`` with ``mask`` starting at key byte ``offset``.

    ``dst`` may equal ``src``. A NULL ``mask`` copies. The caller guarantees
    both regions hold ``n`` bytes.
    """
    cdef unsigned char key[8]
    cdef uint64_t word, key64
    cdef Py_ssize_t i = 0, k
    if mask == NULL:
        if dst != src:
            memcpy(dst, src, n)
        return
    for k in range(8):
        key[k] = mask[(offset + k) & 3]
    # memcpy keeps the word loads legal on unaligned pointers; compilers turn
    # it into plain moves.
    memcpy(&key64, key, 8)
    while i + 8 <= n:
        memcpy(&word, src + i, 8)
        word ^= key64
        memcpy(dst + i, &word, 8)
        i += 8
    while i < n:
        dst[i] = src[i] ^ key[i & 7]
        i += 1


cdef bytes build_frame_c(int opcode, const unsigned char* payload, Py_ssize_t n,
                         bint fin, bint rsv1, const unsigned char* mask):
    """One complete frame as one bytes object; arguments already validated."""
    cdef Py_ssize_t h = 2
    cdef bytes frame
    cdef unsigned char* out
    cdef int i
    if n > 65535:
        h = 10
    elif n > 125:
        h = 4
    if mask != NULL:
        h += 4
    frame = PyBytes_FromStringAndSize(NULL, h + n)
    out = <unsigned char*>PyBytes_AS_STRING(frame)
    out[0] = <unsigned char>((0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode)
    cdef unsigned char maskbit = 0x80 if mask != NULL else 0
    # RFC 6455 5.2: the shortest length encoding, network byte order.
    if n > 65535:
        out[1] = maskbit | 127
        for i in range(8):
            out[2 + i] = <unsigned char>((<uint64_t>n >> (56 - 8 * i)) & 0xFF)
    elif n > 125:
        out[1] = maskbit | 126
        out[2] = <unsigned char>(n >> 8)
        out[3] = <unsigned char>(n & 0xFF)
    else:
        out[1] = maskbit | <unsigned char>n
    if mask != NULL:
        memcpy(out + h - 4, mask, 4)
    unmask_into(out + h, payload, n, mask, 0)
    return frame


cdef tuple _close_fields(const unsigned char* p, Py_ssize_t n):
    cdef long code
    if n == 0:
        return (1005, "")
    if n == 1:
        raise WebSocketError(1002, "close payload of 1 byte")
    code = (<long>p[0] << 8) | p[1]
    if not _valid_close_code(code):
        raise WebSocketError(1002, f"invalid close code {code}")
    try:
        reason = (<const char*>p)[2:n].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError(1007, "invalid UTF-8 in close reason") from None
    return (code, reason)


cdef class FrameParser:
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

    def __cinit__(self):
        self._msg = NULL
        self._msg_cap = 0

    def __init__(self, Py_ssize_t max_message_size=1_000_000, *, Py_ssize_t max_fragments=1000,
                 bint client_side=False, bint allow_rsv1=False):
        if max_message_size < 0:
            raise ValueError("max_message_size must be >= 0")
        if max_fragments < 1:
            raise ValueError("max_fragments must be >= 1")
        self._max_size = max_message_size
        self._max_fragments = max_fragments
        self._client_side = client_side
        self._allow_rsv1 = allow_rsv1
        self._hdr_len = 0
        self._in_payload = False
        self._ctl_len = 0
        self._error = None
        self._reset_message()

    def __dealloc__(self):
        PyMem_Free(self._msg)
        self._msg = NULL

    @property
    def closed(self) -> bool:
        """True once feed() raised; every later feed() raises the same error."""
        return self._error is not None

    def feed(self, data) -> list:
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
        cdef Py_buffer view
        cdef list out = []
        if self._error is not None:
            raise self._error
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._run(<const unsigned char*>view.buf, view.len, out)
        except WebSocketError as exc:
            self._error = exc
            self._in_payload = False
            self._reset_message()
            PyMem_Free(self._msg)
            self._msg = NULL
            self._msg_cap = 0
            raise
        finally:
            PyBuffer_Release(&view)
        return out

    cdef int _run(self, const unsigned char* p, Py_ssize_t n, list out) except -1:
        cdef Py_ssize_t pos = 0, h, take, old
        cdef unsigned char* dst
        while True:
            if not self._in_payload:
                if self._hdr_len == 0:
                    h = self._header(p + pos, n - pos)
                    if h == 0:
                        # An incomplete header is shorter than WS_MAX_HEADER.
                        memcpy(self._hdr, p + pos, n - pos)
                        self._hdr_len = n - pos
                        return 0
                    pos += h
                else:
                    old = self._hdr_len
                    take = WS_MAX_HEADER - old
                    if take > n - pos:
                        take = n - pos
                    memcpy(self._hdr + old, p + pos, take)
                    h = self._header(self._hdr, old + take)
                    if h == 0:
                        # Still incomplete, so take was all the input.
                        self._hdr_len = old + take
                        return 0
                    pos += h - old
                    self._hdr_len = 0
                self._in_payload = True
                # The common case: a whole one-frame message in this chunk
                # goes straight from the input to its Python object.
                if (self._fin and (self._opcode == OP_TEXT or self._opcode == OP_BINARY)
                        and self._remaining <= n - pos):
                    take = self._remaining
                    self._whole_message(p + pos, out)
                    pos += take
                    self._in_payload = False
                    continue
            take = self._remaining
            if take > n - pos:
                take = n - pos
            if take > 0:
                if self._opcode >= OP_CLOSE:
                    # bounds: the header check kept _ctl_len + _remaining <= 125.
                    dst = self._ctl + self._ctl_len
                    self._ctl_len += take
                else:
                    self._grow(self._msg_len + take)
                    dst = self._msg + self._msg_len
                    self._msg_len += take
                unmask_into(dst, p + pos, take, self._mask if self._masked else NULL, self._offset)
                self._offset += take
                self._remaining -= take
                pos += take
            if self._remaining > 0:
                return 0
            self._in_payload = False
            self._finish_frame(out)

    cdef Py_ssize_t _header(self, const unsigned char* p, Py_ssize_t n) except -1:
        # Returns the header length, or 0 while incomplete. Each check runs as
        # soon as its bytes are there, always in the same order, so every
        # split of a stream fails at the same byte with the same error, and
        # the pure twin follows the same order. State changes only once the
        # whole header is there.
        cdef unsigned char b0, b1
        cdef int opcode, i
        cdef bint fin, rsv1, masked, control
        cdef uint64_t length
        cdef Py_ssize_t h = 2, cur, frames
        if n < 2:
            return 0
        b0 = p[0]
        b1 = p[1]
        fin = (b0 & 0x80) != 0
        rsv1 = (b0 & 0x40) != 0
        opcode = b0 & 0x0F
        if b0 & 0x30:
            raise WebSocketError(1002, "reserved bits RSV2/RSV3 set")
        if (3 <= opcode <= 7) or opcode >= 11:
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
            if (b1 & 0x7F) > WS_MAX_CONTROL:
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
        if length == 126:
            if n < 4:
                return 0
            length = (<uint64_t>p[2] << 8) | p[3]
            h = 4
        elif length == 127:
            if n < 10:
                return 0
            length = 0
            for i in range(2, 10):
                length = (length << 8) | p[i]
            if length >> 63:
                raise WebSocketError(1002, "64-bit payload length with the top bit set")
            h = 10
        # Non-minimal length encodings pass: RFC 6455 5.2 says "must" for the
        # sender but a receiver loses nothing by accepting them.
        if not control:
            cur = self._msg_size if opcode == OP_CONT else 0
            # Decided on the header, before any payload is buffered.
            if length > <uint64_t>(self._max_size - cur):
                raise WebSocketError(1009, f"message over {self._max_size} bytes")
            frames = self._msg_frames if opcode == OP_CONT else 0
            if frames >= self._max_fragments:
                raise WebSocketError(1008, f"message over {self._max_fragments} fragments")
        if masked:
            if n < h + 4:
                return 0
            memcpy(self._mask, p + h, 4)
            h += 4
        self._opcode = opcode
        self._fin = fin
        self._masked = masked
        self._remaining = <Py_ssize_t>length
        self._offset = 0
        if not control:
            if opcode != OP_CONT:
                self._msg_opcode = opcode
                self._msg_compressed = rsv1
                self._msg_size = 0
                self._msg_frames = 0
                self._msg_len = 0
            self._msg_size += <Py_ssize_t>length
            self._msg_frames += 1
        return h

    cdef object _make_payload(self, const unsigned char* p, Py_ssize_t n):
        if self._msg_opcode == OP_TEXT and not self._msg_compressed:
            try:
                return (<const char*>p)[:n].decode("utf-8")
            except UnicodeDecodeError:
                raise WebSocketError(1007, "invalid UTF-8 in text message") from None
        return PyBytes_FromStringAndSize(<const char*>p, n)

    cdef int _whole_message(self, const unsigned char* p, list out) except -1:
        cdef Py_ssize_t n = self._remaining
        cdef object payload
        cdef bint compressed = self._msg_compressed
        if not self._masked:
            payload = self._make_payload(p, n)
        elif self._msg_opcode == OP_TEXT and not compressed:
            # The decoder needs the clear bytes in one piece: unmask into the
            # (idle) message buffer, which _header sized to this frame.
            self._grow(n)
            unmask_into(self._msg, p, n, self._mask, 0)
            payload = self._make_payload(self._msg, n)
        else:
            payload = PyBytes_FromStringAndSize(NULL, n)
            unmask_into(<unsigned char*>PyBytes_AS_STRING(payload), p, n, self._mask, 0)
        out.append((self._msg_opcode, payload, compressed))
        self._remaining = 0
        self._reset_message()
        return 0

    cdef int _finish_frame(self, list out) except -1:
        cdef object payload
        cdef bint compressed
        if self._opcode >= OP_CLOSE:
            payload = PyBytes_FromStringAndSize(<const char*>self._ctl, self._ctl_len)
            self._ctl_len = 0
            if self._opcode == OP_CLOSE:
                _close_fields(self._ctl, len(payload))
            out.append((self._opcode, payload, False))
            return 0
        if not self._fin:
            return 0
        compressed = self._msg_compressed
        payload = self._make_payload(self._msg, self._msg_len)
        out.append((self._msg_opcode, payload, compressed))
        self._reset_message()
        return 0

    cdef int _grow(self, Py_ssize_t needed) except -1:
        # Grows geometrically but never past the message's declared size, so
        # memory follows the bytes that really arrived.
        cdef Py_ssize_t cap
        cdef unsigned char* mem
        if needed <= self._msg_cap:
            return 0
        cap = self._msg_cap * 2
        if cap < 256:
            cap = 256
        if cap > self._msg_size:
            cap = self._msg_size
        if cap < needed:
            cap = needed
        mem = <unsigned char*>PyMem_Realloc(self._msg, cap)
        if mem == NULL:
            raise MemoryError()
        self._msg = mem
        self._msg_cap = cap
        return 0

    cdef void _reset_message(self) noexcept:
        self._msg_opcode = 0
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_frames = 0
        self._msg_len = 0
        if self._msg_cap > WS_KEEP_BUFFER:
            PyMem_Free(self._msg)
            self._msg = NULL
            self._msg_cap = 0


cdef const unsigned char* _mask_key(object mask) except? NULL:
    if mask is None:
        return NULL
    if not isinstance(mask, bytes) or len(<bytes>mask) != 4:
        raise ValueError("mask must be 4 bytes")
    return <const unsigned char*>PyBytes_AS_STRING(mask)


def build_frame(int opcode, payload=b"", *, bint fin=True, bint rsv1=False, mask=None) -> bytes:
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
    cdef Py_buffer view
    cdef const unsigned char* key
    if not ((0 <= opcode <= 2) or (8 <= opcode <= 10)):
        raise ValueError(f"invalid opcode {opcode}")
    if isinstance(payload, str):
        payload = (<str>payload).encode("utf-8")
    key = _mask_key(mask)
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        if opcode >= OP_CLOSE:
            if not fin:
                raise ValueError("control frames cannot be fragmented")
            if view.len > WS_MAX_CONTROL:
                raise ValueError("control frame payload over 125 bytes")
        if rsv1 and (opcode >= OP_CLOSE or opcode == OP_CONT):
            raise ValueError("RSV1 only on the first frame of a data message")
        return build_frame_c(opcode, <const unsigned char*>view.buf, view.len, fin, rsv1, key)
    finally:
        PyBuffer_Release(&view)


def build_close(int code=1000, str reason="") -> bytes:
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
    cdef bytes body
    cdef unsigned char head[2]
    if code == 1005:
        return build_frame_c(OP_CLOSE, NULL, 0, True, False, NULL)
    if not _valid_close_code(code):
        raise ValueError(f"invalid close code {code}")
    body = reason.encode("utf-8")
    if len(body) > WS_MAX_CONTROL - 2:
        raise ValueError("close reason over 123 bytes")
    head[0] = <unsigned char>(code >> 8)
    head[1] = <unsigned char>(code & 0xFF)
    body = PyBytes_FromStringAndSize(<const char*>head, 2) + body
    return build_frame_c(OP_CLOSE, <const unsigned char*>PyBytes_AS_STRING(body), len(body),
                         True, False, NULL)


def parse_close(payload) -> tuple:
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
    cdef Py_buffer view
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        return _close_fields(<const unsigned char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


def apply_mask(data, mask) -> bytes:
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
    cdef Py_buffer view
    cdef bytes out
    cdef const unsigned char* key = _mask_key(mask)
    if key == NULL:
        raise ValueError("mask must be 4 bytes")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        out = PyBytes_FromStringAndSize(NULL, view.len)
        unmask_into(<unsigned char*>PyBytes_AS_STRING(out), <const unsigned char*>view.buf,
                    view.len, key, 0)
        return out
    finally:
        PyBuffer_Release(&view)
