# cython: language_level=3, embedsignature=True
"""Socket.IO msgpack packet codec (compiled).

Wire format: ``socket.io-msgpack-parser`` 3.x (protocol 5). One Socket.IO
packet is one MessagePack map ``{type, data, nsp, id?}`` carried in one binary
Engine.IO message; binary values sit inline as msgpack ``bin``, so there are no
attachments and no BINARY_* packet types (types 0-4 only).

The decoder reads notepack.io 2.2 (the JavaScript side) exactly: ext type 0 is
an ArrayBuffer (``bytes``), fixext-1 type 0 is ``undefined`` (a missing field,
``None`` inside data), fixext-8 type 0 is a Date (an aware UTC ``datetime``),
any other ext ``[type, bytes]``; trailing bytes are an error. It is as strict as
Node's parser and bounded like the default codec (depth, number of binary
values, ack ids up to ``MAX_SAFE_INTEGER``; no length field makes it allocate
more than the message holds). Every malformed packet raises
:class:`~fastsio.exceptions.ProtocolError` with the same message as the
pure-Python twin ``fastsio._pure.msgpack_codec``, whose docstring lists the two
deliberate differences from Node.

Encoding goes through the ``msgpack`` library's C packer.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from fastsio._speedups.sio_codec cimport Packet

import datetime
import operator
import struct

from msgpack import ExtType, packb

from fastsio.exceptions import ProtocolError
from fastsio._speedups.sio_codec import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    EVENT,
    MAX_SAFE_INTEGER,
    RESERVED_EVENTS,
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

cdef tuple _BINARY_TYPES = (bytes, bytearray, memoryview)
cdef object _EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
cdef object _UTC = datetime.timezone.utc
cdef object _timedelta = datetime.timedelta
cdef object _MS = datetime.timedelta(milliseconds=1)
cdef object _UNDEFINED = object()
cdef long long _MAX_SAFE = MAX_SAFE_INTEGER
cdef frozenset _RESERVED = RESERVED_EVENTS


# ---------------------------------------------------------------------------
# encoding


def _default(obj):
    # notepack's Date: fixext 8, type 0, milliseconds since the epoch as a
    # signed 64-bit big-endian integer.
    if isinstance(obj, datetime.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=_UTC)
        ms = (obj - _EPOCH) // _MS
        if not -(2**63) <= ms < 2**63:
            raise OverflowError("datetime out of range")
        return ExtType(0, struct.pack(">q", ms))
    raise TypeError(f"Type is not msgpack serializable: {type(obj).__name__}")


cpdef list encode(object type, object nsp="/", object data=None, object id=None):
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
    """
    if not isinstance(type, int) or isinstance(type, bool) or not 0 <= type <= 6:
        raise ValueError("invalid packet type")
    if not isinstance(nsp, str):
        raise TypeError("nsp must be a str")
    if not (<str>nsp).startswith("/"):
        raise ValueError("invalid namespace")
    cdef int t = type
    if t == BINARY_EVENT:
        t = EVENT
    elif t == BINARY_ACK:
        t = ACK
    cdef dict packet = {"type": t}
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
        frame = packb(packet, use_bin_type=True, default=_default, datetime=False)
    except (OverflowError, ValueError) as exc:
        raise TypeError(f"data cannot be serialised: {exc}") from None
    return [frame]


cpdef list encode_event(object nsp, object event, object args, object id=None):
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

cdef enum:
    _VALUE = 0
    _ARRAY = 1
    _MAP = 2


@cython.auto_pickle(False)
cdef class _Reader:
    # ``buf`` keeps the bytes alive while ``p`` points into them; every read
    # goes through ``need``, which refuses to pass ``end``. ``item`` sets
    # ``kind`` and ``count`` for a container head.

    cdef inline int need(self, Py_ssize_t n) except -1:
        if n > self.end - self.pos:
            raise ProtocolError("truncated msgpack")
        return 0

    cdef inline uint64_t uint(self, int n) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t v = 0
        cdef int i
        self.need(n)
        for i in range(n):
            v = (v << 8) | self.p[self.pos + i]
        self.pos += n
        return v

    cdef inline int64_t sint(self, int n) except? -1:
        cdef uint64_t u = self.uint(n)
        # sign-extend the n-byte two's complement value
        if n < 8 and (u >> (8 * n - 1)) & 1:
            u |= (<uint64_t>0xFFFFFFFFFFFFFFFF) << (8 * n)
        return <int64_t>u

    cdef bytes take(self, Py_ssize_t n):
        self.need(n)
        cdef bytes out = PyBytes_FromStringAndSize(<const char*>self.p + self.pos, n)
        self.pos += n
        return out

    cdef bytes binary(self, Py_ssize_t n):
        self.binaries += 1
        if self.binaries > self.max_binaries:
            raise ProtocolError("too many attachments")
        return self.take(n)

    cdef str string(self, Py_ssize_t n):
        self.need(n)
        try:
            out = PyUnicode_DecodeUTF8(<const char*>self.p + self.pos, n, NULL)
        except UnicodeDecodeError:
            raise ProtocolError("invalid utf-8 string") from None
        self.pos += n
        return out

    cdef object ext(self, Py_ssize_t n, bint fixed):
        cdef int64_t kind = self.sint(1)
        cdef int64_t ms
        if kind == 0:
            if fixed and n == 1:
                self.need(1)
                self.pos += 1
                return _UNDEFINED
            if fixed and n == 8:
                ms = self.sint(8)
                try:
                    return _EPOCH + _timedelta(milliseconds=ms)
                except OverflowError:
                    raise ProtocolError("invalid date") from None
            if not fixed:
                return self.binary(n)
        return [kind, self.take(n)]

    cdef inline int container(self, int kind, uint64_t n, Py_ssize_t per_item) except -1:
        # Every element takes at least one byte: a count the rest of the
        # message cannot hold is refused before anything is allocated.
        if n > <uint64_t>((self.end - self.pos) // per_item):
            raise ProtocolError("truncated msgpack")
        self.kind = kind
        self.count = <Py_ssize_t>n
        return 0

    cdef object item(self, unsigned char b):
        """The item whose first byte is ``b``; a container head sets ``kind``."""
        cdef uint32_t f32
        cdef uint64_t u64
        cdef float f
        cdef double d
        self.kind = _VALUE
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return <int>b - 0x100
        if b <= 0x8F:
            self.container(_MAP, b & 0x0F, 2)
            return None
        if b <= 0x9F:
            self.container(_ARRAY, b & 0x0F, 1)
            return None
        if b <= 0xBF:
            return self.string(b & 0x1F)
        if b == 0xC0:
            return None
        if b == 0xC2:
            return False
        if b == 0xC3:
            return True
        if b == 0xC4:
            return self.binary(<Py_ssize_t>self.uint(1))
        if b == 0xC5:
            return self.binary(<Py_ssize_t>self.uint(2))
        if b == 0xC6:
            return self.binary(<Py_ssize_t>self.uint(4))
        if b == 0xC7:
            return self.ext(<Py_ssize_t>self.uint(1), False)
        if b == 0xC8:
            return self.ext(<Py_ssize_t>self.uint(2), False)
        if b == 0xC9:
            return self.ext(<Py_ssize_t>self.uint(4), False)
        if b == 0xCA:
            f32 = <uint32_t>self.uint(4)
            memcpy(&f, &f32, 4)
            return <double>f
        if b == 0xCB:
            u64 = self.uint(8)
            memcpy(&d, &u64, 8)
            return d
        if b == 0xCC:
            return self.uint(1)
        if b == 0xCD:
            return self.uint(2)
        if b == 0xCE:
            return self.uint(4)
        if b == 0xCF:
            return self.uint(8)
        if b == 0xD0:
            return self.sint(1)
        if b == 0xD1:
            return self.sint(2)
        if b == 0xD2:
            return self.sint(4)
        if b == 0xD3:
            return self.sint(8)
        if b == 0xD4:
            return self.ext(1, True)
        if b == 0xD5:
            return self.ext(2, True)
        if b == 0xD6:
            return self.ext(4, True)
        if b == 0xD7:
            return self.ext(8, True)
        if b == 0xD8:
            return self.ext(16, True)
        if b == 0xD9:
            return self.string(<Py_ssize_t>self.uint(1))
        if b == 0xDA:
            return self.string(<Py_ssize_t>self.uint(2))
        if b == 0xDB:
            return self.string(<Py_ssize_t>self.uint(4))
        if b == 0xDC:
            self.container(_ARRAY, self.uint(2), 1)
            return None
        if b == 0xDD:
            self.container(_ARRAY, self.uint(4), 1)
            return None
        if b == 0xDE:
            self.container(_MAP, self.uint(2), 2)
            return None
        if b == 0xDF:
            self.container(_MAP, self.uint(4), 2)
            return None
        raise ProtocolError("invalid msgpack")  # 0xc1, never used


@cython.freelist(32)
@cython.auto_pickle(False)
cdef class _Frame:
    """One open array or map of ``_unpack``."""


cdef object _unpack(_Reader r):
    """One whole value, iteratively: hostile nesting cannot exhaust a stack.

    ``undefined`` stays the ``_UNDEFINED`` marker only as a direct value of the
    outermost map (where it means "field absent"); everywhere else it is None.
    """
    cdef list stack = []
    cdef bint key_next = False
    cdef _Frame frame
    cdef unsigned char b
    cdef object value
    while True:
        r.need(1)
        b = r.p[r.pos]
        r.pos += 1
        value = r.item(b)
        if r.kind != _VALUE:
            if len(stack) > r.max_depth:
                raise ProtocolError("nesting too deep")
            if key_next:
                raise ProtocolError("map key must be a string")
            if r.count:
                frame = _Frame.__new__(_Frame)
                frame.is_map = r.kind == _MAP
                frame.container = {} if frame.is_map else []
                frame.left = r.count
                frame.key = None
                stack.append(frame)
                key_next = frame.is_map
                continue
            value = {} if r.kind == _MAP else []
        # attach ``value`` to its parent, closing every container it completes
        while True:
            if not stack:
                return value
            frame = <_Frame>stack[len(stack) - 1]
            if frame.is_map:
                if key_next:
                    if type(value) is not str:
                        raise ProtocolError("map key must be a string")
                    frame.key = value
                    key_next = False
                    break
                if value is _UNDEFINED and len(stack) > 1:
                    value = None
                (<dict>frame.container)[frame.key] = value
            else:
                if value is _UNDEFINED:
                    value = None
                (<list>frame.container).append(value)
            frame.left -= 1
            if frame.left:
                key_next = frame.is_map
                break
            stack.pop()
            value = frame.container


cdef bint _event_name_ok(list data):
    if not data:
        return False
    first = data[0]
    tf = type(first)
    return tf is int or tf is float or (tf is str and first not in _RESERVED)


@cython.auto_pickle(False)
cdef class Decoder:
    """Decodes one msgpack Socket.IO packet per binary frame.

    Args:
        max_attachments: most binary values (``bin`` or ArrayBuffer) one packet may hold.
        max_depth: deepest nesting of arrays/maps accepted inside the packet map.
    """

    def __init__(self, max_attachments=10, max_depth=100):
        self._max_attachments = operator.index(max_attachments)
        self._max_depth = operator.index(max_depth)

    @property
    def pending(self):
        """Always False: a msgpack packet never waits for attachments."""
        return False

    def reset(self):
        """Nothing to drop: every frame is a whole packet."""

    def feed(self, data):
        """Decodes one binary frame into a packet.

        Raises:
            ProtocolError: the frame is text, not msgpack, or not a valid packet.
            TypeError: ``data`` is neither str nor bytes-like.
        """
        if isinstance(data, str):
            raise ProtocolError("text frame: msgpack packets are binary")
        if not isinstance(data, _BINARY_TYPES):
            raise TypeError("feed() takes str or a bytes-like object")
        cdef bytes buf = data if PyBytes_CheckExact(data) else bytes(data)
        cdef _Reader r = _Reader.__new__(_Reader)
        r.buf = buf
        r.p = <const unsigned char*>PyBytes_AS_STRING(buf)
        r.pos = 0
        r.end = PyBytes_GET_SIZE(buf)
        r.max_depth = self._max_depth
        r.binaries = 0
        r.max_binaries = self._max_attachments
        value = _unpack(r)
        if r.pos != r.end:
            raise ProtocolError("trailing bytes")
        if type(value) is not dict:
            raise ProtocolError("invalid packet type")
        cdef dict packet = <dict>value
        t = packet.get("type", _UNDEFINED)
        if type(t) is not int or not CONNECT <= t <= CONNECT_ERROR:
            raise ProtocolError("invalid packet type")
        nsp = packet.get("nsp", _UNDEFINED)
        if type(nsp) is not str:
            raise ProtocolError("invalid namespace")
        payload = packet.get("data", _UNDEFINED)
        cdef int ti = t
        cdef bint ok
        if ti == CONNECT:
            ok = payload is _UNDEFINED or type(payload) is dict
        elif ti == DISCONNECT:
            ok = payload is _UNDEFINED
        elif ti == CONNECT_ERROR:
            ok = type(payload) is str or type(payload) is dict
        elif ti == EVENT:
            ok = type(payload) is list and _event_name_ok(<list>payload)
        else:
            ok = type(payload) is list
        if not ok:
            raise ProtocolError("invalid payload")
        id = packet.get("id", _UNDEFINED)
        if id is _UNDEFINED:
            id = None
        elif type(id) is not int or not 0 <= id <= _MAX_SAFE:
            raise ProtocolError("invalid packet id")
        return Packet.new(ti, nsp, None if payload is _UNDEFINED else payload, id)
