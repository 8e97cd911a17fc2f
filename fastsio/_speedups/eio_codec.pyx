# cython: language_level=3, embedsignature=True
"""Engine.IO packet and payload codec (compiled twin of ``_pure.eio_codec``).

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
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport (
    PyUnicode_1BYTE_KIND,
    PyUnicode_4BYTE_KIND,
    PyUnicode_DATA,
    PyUnicode_DecodeUTF8,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_New,
    PyUnicode_READ,
)
from libc.string cimport memchr, memcpy

from fastsio.exceptions import ProtocolError

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

# A cpdef enum exposes only the class; the pure twin also has the members as
# module-level names, so publish them here too.
for _member in PacketType:
    globals()[_member.name] = _member
del _member

cdef tuple _TYPE_STRS = ("0", "1", "2", "3", "4", "5", "6")
cdef str _SEP = "\x1e"
cdef tuple _BYTES_LIKE = (bytes, bytearray, memoryview)

cdef const char* _B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# 0..63 for alphabet bytes, 0xFF for everything else ('=' included).
cdef unsigned char _B64_VALUE[256]


cdef void _init_tables() noexcept:
    cdef int i
    for i in range(256):
        _B64_VALUE[i] = 0xFF
    for i in range(64):
        _B64_VALUE[<unsigned char>_B64_ALPHABET[i]] = <unsigned char>i


_init_tables()


cdef inline str _type_str(int ptype):
    if ptype < 0 or ptype > 6:
        raise ValueError("invalid packet type")
    return <str>_TYPE_STRS[ptype]


cdef inline bytes _as_bytes(object data):
    # Exact bytes pass through; subclasses, bytearray and memoryview are copied
    # so that callers always get (and we always read) a plain bytes object.
    if type(data) is bytes:
        return <bytes>data
    return bytes(data)


cdef bytes _b64decode(const unsigned char* p, Py_ssize_t n):
    # bounds: the caller owns p[0:n]; every index below is < n because n is a
    # multiple of 4 and the padded last quantum is handled separately.
    cdef Py_ssize_t pad = 0
    cdef Py_ssize_t full, i = 0, o = 0
    cdef unsigned int a, b, c, d
    cdef bytes out
    cdef unsigned char* dst
    if n & 3:
        raise ProtocolError("invalid base64")
    if n == 0:
        return b""
    if p[n - 1] == 61:  # '='
        pad = 2 if p[n - 2] == 61 else 1
    out = PyBytes_FromStringAndSize(NULL, (n >> 2) * 3 - pad)
    dst = <unsigned char*>PyBytes_AS_STRING(out)
    full = n - 4 if pad else n
    while i < full:
        a = _B64_VALUE[p[i]]
        b = _B64_VALUE[p[i + 1]]
        c = _B64_VALUE[p[i + 2]]
        d = _B64_VALUE[p[i + 3]]
        if (a | b | c | d) > 63:
            raise ProtocolError("invalid base64")
        dst[o] = <unsigned char>((a << 2) | (b >> 4))
        dst[o + 1] = <unsigned char>((b << 4) | (c >> 2))
        dst[o + 2] = <unsigned char>((c << 6) | d)
        i += 4
        o += 3
    if pad:
        a = _B64_VALUE[p[i]]
        b = _B64_VALUE[p[i + 1]]
        c = _B64_VALUE[p[i + 2]] if pad == 1 else 0
        if (a | b | c) > 63:
            raise ProtocolError("invalid base64")
        dst[o] = <unsigned char>((a << 2) | (b >> 4))
        if pad == 1:
            dst[o + 1] = <unsigned char>((b << 4) | (c >> 2))
    return out


cdef bytes _b64decode_str(str s, Py_ssize_t start):
    # A str holding a code point above U+00FF is not 1-byte kind, and such a
    # code point cannot be base64, so only the 1-byte kind needs decoding.
    if PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND:
        raise ProtocolError("invalid base64")
    return _b64decode(<const unsigned char*>PyUnicode_DATA(s) + start,
                      PyUnicode_GET_LENGTH(s) - start)


cdef str _b64encode_str(str prefix, bytes data):
    # bounds: dst has exactly len(prefix) + 4*ceil(n/3) slots, written in order;
    # src reads stay below n (full triples, then the 1- or 2-byte tail).
    cdef Py_ssize_t plen = PyUnicode_GET_LENGTH(prefix)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef const unsigned char* src = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef str out = PyUnicode_New(plen + (n + 2) // 3 * 4, 127)
    cdef unsigned char* dst = <unsigned char*>PyUnicode_DATA(out)
    cdef Py_ssize_t i = 0, o = 0
    cdef unsigned int v
    # prefix is ASCII ("b" or "b<digit>"), so it is 1-byte kind too
    memcpy(dst, PyUnicode_DATA(prefix), plen)
    o = plen
    while i + 3 <= n:
        v = (<unsigned int>src[i] << 16) | (<unsigned int>src[i + 1] << 8) | src[i + 2]
        dst[o] = _B64_ALPHABET[v >> 18]
        dst[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
        dst[o + 2] = _B64_ALPHABET[(v >> 6) & 63]
        dst[o + 3] = _B64_ALPHABET[v & 63]
        i += 3
        o += 4
    if n - i == 1:
        v = <unsigned int>src[i] << 16
        dst[o] = _B64_ALPHABET[v >> 18]
        dst[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
        dst[o + 2] = 61
        dst[o + 3] = 61
    elif n - i == 2:
        v = (<unsigned int>src[i] << 16) | (<unsigned int>src[i + 1] << 8)
        dst[o] = _B64_ALPHABET[v >> 18]
        dst[o + 1] = _B64_ALPHABET[(v >> 12) & 63]
        dst[o + 2] = _B64_ALPHABET[(v >> 6) & 63]
        dst[o + 3] = 61
    return out


cdef str _decode_utf8(const unsigned char* p, Py_ssize_t n):
    try:
        return PyUnicode_DecodeUTF8(<char*>p, n, NULL)
    except UnicodeDecodeError:
        raise ProtocolError("invalid UTF-8") from None


cdef tuple _decode_text(str s, bint eio3):
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    cdef Py_UCS4 c
    if n == 0:
        raise ProtocolError("empty packet")
    c = s[0]
    if 48 <= c <= 54:  # '0'..'6'
        return (<int>c - 48, s[1:])
    if c == 98:  # 'b'
        # v4: "b<base64>" is always a MESSAGE; v3 carries the type: "b<digit><base64>".
        if not eio3:
            return (4, _b64decode_str(s, 1))
        if n < 2:
            raise ProtocolError("unknown packet type")
        c = s[1]
        if not (48 <= c <= 54):
            raise ProtocolError("unknown packet type")
        return (<int>c - 48, _b64decode_str(s, 2))
    raise ProtocolError("unknown packet type")


cdef tuple _decode_piece(const unsigned char* p, Py_ssize_t n):
    # One v4 payload piece, straight from the body bytes: no intermediate str
    # for the whole body, no str at all for base64 pieces.
    cdef unsigned char c
    if n == 0:
        raise ProtocolError("empty packet")
    c = p[0]
    if 48 <= c <= 54:
        return (<int>c - 48, _decode_utf8(p + 1, n - 1))
    if c == 98:
        return (4, _b64decode(p + 1, n - 1))
    raise ProtocolError("unknown packet type")


cpdef str encode_packet(int ptype, object data=""):
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
    cdef str c = _type_str(ptype)
    if not isinstance(data, str):
        raise TypeError("data must be str")
    return c + <str>data


cpdef object encode_ws(int ptype, object data=None, bint eio3=False):
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
    cdef str c = _type_str(ptype)
    cdef bytes b, out
    cdef Py_ssize_t n
    cdef char* dst
    if data is None:
        return c
    if isinstance(data, str):
        return c + <str>data
    if isinstance(data, _BYTES_LIKE):
        b = _as_bytes(data)
        if not eio3:
            if ptype != MESSAGE:
                raise ValueError("binary data only in MESSAGE packets")
            return b
        n = PyBytes_GET_SIZE(b)
        out = PyBytes_FromStringAndSize(NULL, n + 1)
        dst = PyBytes_AS_STRING(out)
        dst[0] = <char>ptype
        memcpy(dst + 1, PyBytes_AS_STRING(b), n)
        return out
    raise TypeError("data must be str, bytes or None")


cpdef tuple decode_ws(object msg, bint eio3=False):
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
    cdef bytes b
    cdef Py_ssize_t n
    cdef unsigned char t
    if isinstance(msg, str):
        return _decode_text(<str>msg, eio3)
    if not isinstance(msg, _BYTES_LIKE):
        raise TypeError("msg must be str or bytes")
    b = _as_bytes(msg)
    if not eio3:
        return (4, b)
    n = PyBytes_GET_SIZE(b)
    if n == 0:
        raise ProtocolError("empty packet")
    t = <unsigned char>PyBytes_AS_STRING(b)[0]
    if t > 6:
        raise ProtocolError("unknown packet type")
    return (<int>t, PyBytes_FromStringAndSize(PyBytes_AS_STRING(b) + 1, n - 1))


cpdef str encode_payload(object packets):
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
    cdef list pieces = []
    cdef int ptype
    cdef object data
    cdef str c
    for ptype, data in packets:
        c = _type_str(ptype)
        if isinstance(data, str):
            pieces.append(c + <str>data)
        elif isinstance(data, _BYTES_LIKE):
            if ptype != MESSAGE:
                raise ValueError("binary data only in MESSAGE packets")
            pieces.append(_b64encode_str("b", _as_bytes(data)))
        else:
            raise TypeError("data must be str or bytes")
    return _SEP.join(pieces)


cpdef list decode_payload(object body, Py_ssize_t max_packets=10000):
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
    cdef str s
    cdef bytes b
    cdef const unsigned char* p
    cdef const unsigned char* sep
    cdef Py_ssize_t n, start, stop, seps = 0
    cdef list out
    if isinstance(body, str):
        s = <str>body
        if PyUnicode_GET_LENGTH(s) == 0:
            raise ProtocolError("empty payload")
        if s.count(_SEP) >= max_packets:
            raise ProtocolError("too many packets")
        return [_decode_text(piece, False) for piece in s.split(_SEP)]
    if not isinstance(body, _BYTES_LIKE):
        raise TypeError("body must be str or bytes")
    b = _as_bytes(body)
    n = PyBytes_GET_SIZE(b)
    if n == 0:
        raise ProtocolError("empty payload")
    p = <const unsigned char*>PyBytes_AS_STRING(b)
    # Count first so that an oversized payload is refused before any work.
    start = 0
    while True:
        sep = <const unsigned char*>memchr(p + start, 0x1e, n - start)
        if sep == NULL:
            break
        seps += 1
        start = (sep - p) + 1
    if seps >= max_packets:
        raise ProtocolError("too many packets")
    # U+001E never occurs inside a multi-byte UTF-8 sequence, so splitting
    # the bytes first is the same as splitting the decoded text.
    out = []
    start = 0
    while True:
        sep = <const unsigned char*>memchr(p + start, 0x1e, n - start)
        stop = n if sep == NULL else sep - p
        out.append(_decode_piece(p + start, stop - start))
        if sep == NULL:
            return out
        start = stop + 1


cdef Py_ssize_t _utf16_len(str s):
    # JavaScript string length: a character outside the BMP counts twice,
    # and only a 4-byte-kind str can hold one.
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s), i, extra = 0
    cdef const Py_UCS4* d
    if PyUnicode_KIND(s) != PyUnicode_4BYTE_KIND:
        return n
    d = <const Py_UCS4*>PyUnicode_DATA(s)
    for i in range(n):
        if d[i] >= 0x10000:
            extra += 1
    return n + extra


cdef bytes _v3_header(unsigned char flag, Py_ssize_t length, int type_byte):
    # <flag><length digits as byte values 0..9><255>[<type byte>]
    cdef unsigned char buf[32]
    cdef unsigned char digits[24]
    cdef int nd = 0, k = 0
    while True:
        digits[nd] = <unsigned char>(length % 10)
        nd += 1
        length //= 10
        if length == 0:
            break
    buf[k] = flag
    k += 1
    while nd:
        nd -= 1
        buf[k] = digits[nd]
        k += 1
    buf[k] = 255
    k += 1
    if type_byte >= 0:
        buf[k] = <unsigned char>type_byte
        k += 1
    return PyBytes_FromStringAndSize(<char*>buf, k)


cpdef object encode_payload_v3(object packets, bint supports_binary=False):
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
    cdef list parts = []
    cdef int ptype
    cdef object data
    cdef str c, p
    cdef bytes enc
    cdef bint binary = False
    if supports_binary:
        for _, data in packets:
            if isinstance(data, _BYTES_LIKE):
                binary = True
                break
    if binary:
        for ptype, data in packets:
            c = _type_str(ptype)
            if isinstance(data, str):
                # surrogatepass: engine.io-parser's utf8 encoder is not strict
                # either, so a lone surrogate is written, not refused.
                enc = (c + <str>data).encode("utf-8", "surrogatepass")
                parts.append(_v3_header(0, PyBytes_GET_SIZE(enc), -1))
                parts.append(enc)
            elif isinstance(data, _BYTES_LIKE):
                enc = _as_bytes(data)
                parts.append(_v3_header(1, PyBytes_GET_SIZE(enc) + 1, ptype))
                parts.append(enc)
            else:
                raise TypeError("data must be str or bytes")
        return b"".join(parts)
    for ptype, data in packets:
        c = _type_str(ptype)
        if isinstance(data, str):
            p = c + <str>data
            parts.append(f"{_utf16_len(p)}:{p}")
        elif isinstance(data, _BYTES_LIKE):
            p = _b64encode_str("b" + c, _as_bytes(data))
            parts.append(f"{PyUnicode_GET_LENGTH(p)}:{p}")
        else:
            raise TypeError("data must be str or bytes")
    if not parts:
        return "0:"
    return "".join(parts)


cdef list _decode_v3_binary(bytes b, Py_ssize_t max_packets):
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(b)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b), i = 0
    cdef unsigned long long length
    cdef int nd
    cdef unsigned char flag, c
    cdef list out = []
    while i < n:
        flag = p[i]
        i += 1
        if flag > 1:
            raise ProtocolError("invalid binary flag")
        length = 0
        nd = 0
        while True:
            if i >= n:
                raise ProtocolError("invalid length header")
            c = p[i]
            i += 1
            if c == 255:
                break
            # ten digits keep the value far below 2**64
            if c > 9 or nd == 10:
                raise ProtocolError("invalid length header")
            length = length * 10 + c
            nd += 1
        if nd == 0:
            raise ProtocolError("invalid length header")
        if length == 0:
            raise ProtocolError("zero-length packet")
        if length > <unsigned long long>(n - i):
            raise ProtocolError("length past end")
        if len(out) >= max_packets:
            raise ProtocolError("too many packets")
        if flag == 0:
            out.append(_decode_text(_decode_utf8(p + i, <Py_ssize_t>length), True))
        else:
            # 1 <= length <= n - i was checked above, so p[i] is in range
            if p[i] > 6:
                raise ProtocolError("unknown packet type")
            out.append((<int>p[i], PyBytes_FromStringAndSize(<char*>p + i + 1, <Py_ssize_t>length - 1)))
        i += <Py_ssize_t>length
    return out


cdef list _decode_v3_text(str s, Py_ssize_t max_packets):
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s), i = 0, j
    cdef int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    cdef unsigned long long length, units
    cdef int nd
    cdef Py_UCS4 c
    cdef list out = []
    while i < n:
        length = 0
        nd = 0
        while True:
            if i >= n:
                raise ProtocolError("invalid length header")
            c = PyUnicode_READ(kind, data, i)
            i += 1
            if c == 58:  # ':'
                break
            if c < 48 or c > 57 or nd == 10:
                raise ProtocolError("invalid length header")
            length = length * 10 + (<unsigned long long>c - 48)
            nd += 1
        if nd == 0:
            raise ProtocolError("invalid length header")
        if length == 0:
            raise ProtocolError("zero-length packet")
        if kind != PyUnicode_4BYTE_KIND:
            # no character outside the BMP: code units == code points
            if length > <unsigned long long>(n - i):
                raise ProtocolError("length past end")
            j = i + <Py_ssize_t>length
        else:
            j = i
            units = 0
            while units < length:
                if j >= n:
                    raise ProtocolError("length past end")
                units += 2 if PyUnicode_READ(kind, data, j) >= 0x10000 else 1
                j += 1
            if units != length:
                raise ProtocolError("length splits a character")
        if len(out) >= max_packets:
            raise ProtocolError("too many packets")
        out.append(_decode_text(s[i:j], True))
        i = j
    return out


cpdef list decode_payload_v3(object body, Py_ssize_t max_packets=10000):
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
    cdef bytes b
    cdef Py_ssize_t n
    cdef const unsigned char* p
    if not isinstance(body, _BYTES_LIKE):
        raise TypeError("body must be bytes")
    b = _as_bytes(body)
    n = PyBytes_GET_SIZE(b)
    if n == 0:
        raise ProtocolError("empty payload")
    p = <const unsigned char*>PyBytes_AS_STRING(b)
    if p[0] <= 1:
        return _decode_v3_binary(b, max_packets)
    return _decode_v3_text(_decode_utf8(p, n), max_packets)
