# cython: language_level=3, embedsignature=True
"""Socket.IO v5 packet codec (compiled).

Wire format: socket.io-protocol v5, section "Packet encoding"::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

followed, for BINARY_EVENT / BINARY_ACK, by one binary frame per attachment.
Binary values in the payload are replaced by ``{"_placeholder":true,"num":i}``
(depth-first order) and sent as those frames.

Decoding is as strict as Node's socket.io-parser 4.2.x: every malformed packet
raises :class:`~fastsio.exceptions.ProtocolError` with a short message that is
identical in the pure-Python twin ``fastsio._pure.sio_codec``.
"""

cimport cython
from cpython.bool cimport PyBool_Check
from cpython.bytearray cimport PyByteArray_Check
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Check, PyDict_CheckExact, PyDict_GetItem
from cpython.float cimport PyFloat_CheckExact
from cpython.list cimport PyList_Check, PyList_CheckExact, PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_Check, PyLong_CheckExact
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_Check, PyTuple_CheckExact
from cpython.unicode cimport (
    PyUnicode_1BYTE_DATA,
    PyUnicode_Check,
    PyUnicode_CheckExact,
    PyUnicode_Count,
    PyUnicode_DATA,
    PyUnicode_FindChar,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_New,
    PyUnicode_READ,
    PyUnicode_Substring,
)
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    bint PyMemoryView_Check(object o)
    # Borrowed-pointer forms of the type checks, for the binary walk.
    PyObject* c_none "Py_None"
    bint c_str_exact "PyUnicode_CheckExact" (PyObject* o)
    bint c_long_exact "PyLong_CheckExact" (PyObject* o)
    bint c_float_exact "PyFloat_CheckExact" (PyObject* o)
    bint c_bool "PyBool_Check" (PyObject* o)
    bint c_bytes "PyBytes_Check" (PyObject* o)
    bint c_bytearray "PyByteArray_Check" (PyObject* o)
    bint c_memview "PyMemoryView_Check" (PyObject* o)
    bint c_list "PyList_Check" (PyObject* o)
    bint c_tuple "PyTuple_Check" (PyObject* o)
    bint c_dict "PyDict_Check" (PyObject* o)
    Py_ssize_t c_list_size "PyList_GET_SIZE" (PyObject* o)
    Py_ssize_t c_tuple_size "PyTuple_GET_SIZE" (PyObject* o)
    PyObject* c_list_item "PyList_GET_ITEM" (PyObject* o, Py_ssize_t i)
    PyObject* c_tuple_item "PyTuple_GET_ITEM" (PyObject* o, Py_ssize_t i)
    int c_dict_next "PyDict_Next" (PyObject* d, Py_ssize_t* pos, PyObject** key, PyObject** value)

import operator

import orjson

from fastsio.exceptions import ProtocolError

__all__ = [
    "PacketType",
    "CONNECT",
    "DISCONNECT",
    "EVENT",
    "ACK",
    "CONNECT_ERROR",
    "BINARY_EVENT",
    "BINARY_ACK",
    "RESERVED_EVENTS",
    "MAX_SAFE_INTEGER",
    "Packet",
    "encode",
    "encode_event",
    "Decoder",
]

# The cpdef enum's members are C names at module level; expose them to Python
# as module ints too, like the pure twin's ``CONNECT = PacketType.CONNECT``.
for _member in PacketType:
    globals()[_member.name] = _member
del _member

#: Event names a peer may not send: they mean something to the library itself.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
cdef frozenset _RESERVED = RESERVED_EVENTS

#: Largest ack id: JavaScript numbers above it lose precision (Node gives Infinity).
MAX_SAFE_INTEGER = 2**53 - 1
cdef long long _MAX_SAFE = 9007199254740991LL

cdef object _dumps = orjson.dumps
cdef object _loads = orjson.loads
cdef object _JSONDecodeError = orjson.JSONDecodeError
cdef object _index = operator.index


@cython.freelist(64)
@cython.auto_pickle(False)
cdef class Packet:
    """One Socket.IO packet.

    Args:
        type: the packet type, 0..6 (see :class:`PacketType`).
        nsp: the namespace, as sent on the wire (may carry a ``?query``).
        data: the decoded JSON payload, ``None`` when absent.
        id: the ack id, ``None`` when absent.
    """

    def __init__(self, type, nsp="/", data=None, id=None):
        if not PyUnicode_Check(nsp):
            raise TypeError(f"Expected str, got {nsp.__class__.__name__}")
        self.type = _index(type)
        self.nsp = nsp
        self.data = data
        self.id = id

    @staticmethod
    cdef Packet new(int type, str nsp, object data, object id):
        cdef Packet p = Packet.__new__(Packet)
        p.type = type
        p.nsp = nsp
        p.data = data
        p.id = id
        return p

    def __eq__(self, other):
        if not isinstance(other, Packet):
            return NotImplemented
        cdef Packet o = <Packet>other
        return (
            self.type == o.type
            and self.nsp == o.nsp
            and self.id == o.id
            and self.data == o.data
        )

    __hash__ = None

    def __repr__(self):
        return f"Packet(type={self.type!r}, nsp={self.nsp!r}, data={self.data!r}, id={self.id!r})"


# ---------------------------------------------------------------------------
# encoding


cdef inline bint _is_buffer(object o):
    return PyBytes_Check(o) or PyByteArray_Check(o) or PyMemoryView_Check(o)


cdef inline bint _is_plain_scalar(object o):
    # The common argument types, ruled out before any container/buffer test.
    return (
        PyUnicode_CheckExact(o)
        or PyLong_CheckExact(o)
        or o is None
        or PyFloat_CheckExact(o)
        or PyBool_Check(o)
    )


cdef inline bint _c_is_scalar(PyObject* o) noexcept:
    return c_str_exact(o) or c_long_exact(o) or o == c_none or c_float_exact(o) or c_bool(o)


cdef inline bint _c_is_buffer(PyObject* o) noexcept:
    return c_bytes(o) or c_bytearray(o) or c_memview(o)


cdef inline bint _c_is_container(PyObject* o) noexcept:
    return c_list(o) or c_tuple(o) or c_dict(o)


cdef bint _has_binary(object obj) except -1:
    # Explicit stack, so arbitrarily deep data cannot exhaust the C stack. It
    # holds borrowed pointers: the walk runs no Python code (type checks,
    # GET_ITEM, PyDict_Next only), so nothing can drop a container under it,
    # and the caller's reference keeps the whole tree alive.
    cdef PyObject* small[32]
    cdef PyObject** stack = small
    cdef PyObject** grown
    cdef Py_ssize_t cap = 32
    cdef Py_ssize_t top = 0
    cdef Py_ssize_t i, n, pos
    cdef PyObject* c
    cdef PyObject* v
    cdef PyObject* key
    cdef bint found = False
    if _c_is_scalar(<PyObject*>obj):
        return False
    if _c_is_buffer(<PyObject*>obj):
        return True
    if not _c_is_container(<PyObject*>obj):
        return False
    stack[0] = <PyObject*>obj
    top = 1
    try:
        while top and not found:
            top -= 1
            c = stack[top]
            pos = 0
            i = 0
            if c_dict(c):
                n = -1
            elif c_list(c):
                n = c_list_size(c)
            else:
                n = c_tuple_size(c)
            while True:
                if n < 0:
                    if not c_dict_next(c, &pos, &key, &v):
                        break
                elif i < n:
                    # bounds: i < n, the size read just above; no code runs in between
                    v = c_list_item(c, i) if c_list(c) else c_tuple_item(c, i)
                    i += 1
                else:
                    break
                if _c_is_scalar(v):
                    continue
                if _c_is_buffer(v):
                    found = True
                    break
                if _c_is_container(v):
                    if top == cap:
                        cap *= 2
                        if stack == small:
                            grown = <PyObject**>PyMem_Malloc(cap * sizeof(PyObject*))
                            if grown != NULL:
                                memcpy(grown, small, top * sizeof(PyObject*))
                        else:
                            grown = <PyObject**>PyMem_Realloc(stack, cap * sizeof(PyObject*))
                        if grown == NULL:
                            raise MemoryError()
                        stack = grown
                    stack[top] = v
                    top += 1
    finally:
        if stack != small:
            PyMem_Free(stack)
    return found


cdef inline bytes _as_bytes(object o):
    if PyBytes_CheckExact(o):
        return <bytes>o
    return bytes(o)


cdef object _deconstruct(object obj, list buffers):
    """Copies ``obj`` with every buffer replaced by a numbered placeholder."""
    cdef list stack, frame
    cdef object root, it, out, item, key, v, new, child_it
    cdef bint is_list, descended
    if _is_buffer(obj):
        buffers.append(_as_bytes(obj))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if PyList_Check(obj) or PyTuple_Check(obj):
        root = []
        stack = [[iter(obj), root, True]]
    elif PyDict_Check(obj):
        root = {}
        stack = [[iter((<dict>obj).items()), root, False]]
    else:
        return obj
    # A child container is attached to its parent before it is filled and the
    # walk descends at once, so placeholders are numbered in depth-first order.
    while stack:
        frame = <list>stack[-1]
        it = frame[0]
        out = frame[1]
        is_list = frame[2]
        descended = False
        for item in it:
            if is_list:
                v = item
            else:
                key, v = item
            if _is_buffer(v):
                new = {"_placeholder": True, "num": len(buffers)}
                buffers.append(_as_bytes(v))
            elif PyList_Check(v) or PyTuple_Check(v):
                new = []
                child_it = iter(v)
                descended = True
            elif PyDict_Check(v):
                new = {}
                child_it = iter((<dict>v).items())
                descended = True
            else:
                new = v
            if is_list:
                (<list>out).append(new)
            else:
                (<dict>out)[key] = new
            if descended:
                stack.append([child_it, new, PyList_CheckExact(new)])
                break
        if not descended:
            stack.pop()
    return root


cdef int _check_nsp(object nsp) except -1:
    cdef Py_ssize_t n
    if not PyUnicode_Check(nsp):
        raise TypeError("nsp must be a str")
    n = PyUnicode_GET_LENGTH(nsp)
    # A comma ends the namespace on the wire; one without a leading "/" is read
    # back as part of the payload.
    if n == 0 or PyUnicode_READ(PyUnicode_KIND(nsp), PyUnicode_DATA(nsp), 0) != u'/':
        raise ValueError("invalid namespace")
    if n > 1 and PyUnicode_FindChar(nsp, u',', 1, n, 1) >= 0:
        raise ValueError("invalid namespace")
    return 0


cdef int _check_id(object id) except -1:
    if id is None:
        return 0
    if not PyLong_Check(id) or PyBool_Check(id):
        raise TypeError("id must be an int or None")
    if not 0 <= id <= MAX_SAFE_INTEGER:
        raise ValueError("invalid ack id")
    return 0


cdef inline bint _is_ascii(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t acc = 0
    cdef uint64_t w
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        memcpy(&w, p + i, 8)
        acc |= w
        i += 8
    while i < n:
        acc |= p[i]
        i += 1
    return (acc & 0x8080808080808080ULL) == 0


cdef Py_ssize_t _write_uint(char* buf, unsigned long long v) noexcept nogil:
    """Writes ``v`` in decimal to ``buf`` (room for 20 digits); returns the length."""
    cdef char tmp[24]
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t i
    while True:
        tmp[n] = <char>(48 + v % 10)
        n += 1
        v //= 10
        if v == 0:
            break
    for i in range(n):
        buf[i] = tmp[n - 1 - i]
    return n


cdef str _build_text(int t, Py_ssize_t attachments, str nsp, object id, object data):
    # The header is at most: type digit, 20-digit count, "-", then the id's
    # 16 digits; 48 bytes hold it. The namespace is copied separately.
    cdef char head[48]
    cdef char idbuf[24]
    cdef Py_ssize_t hlen = 1
    cdef Py_ssize_t idlen = 0
    cdef Py_ssize_t nlen = 0
    cdef Py_ssize_t jlen = 0
    cdef Py_ssize_t total
    cdef bint with_nsp
    cdef bytes js = None
    cdef const unsigned char* jp = NULL
    cdef str out
    cdef unsigned char* op
    head[0] = <char>(48 + t)
    if attachments:
        hlen += _write_uint(head + 1, <unsigned long long>attachments)
        head[hlen] = b'-'
        hlen += 1
    if id is not None:
        idlen = _write_uint(idbuf, <unsigned long long>id)
    with_nsp = PyUnicode_GET_LENGTH(nsp) != 1
    if data is not None:
        js = _dumps(data)
        jp = <const unsigned char*>PyBytes_AS_STRING(js)
        jlen = PyBytes_GET_SIZE(js)
    if (not with_nsp or PyUnicode_IS_ASCII(nsp)) and _is_ascii(jp, jlen):
        # One allocation: the ASCII str is filled in place before anyone sees it.
        if with_nsp:
            nlen = PyUnicode_GET_LENGTH(nsp)
        total = hlen + (nlen + 1 if with_nsp else 0) + idlen + jlen
        out = PyUnicode_New(total, 127)
        op = <unsigned char*>PyUnicode_1BYTE_DATA(out)
        memcpy(op, head, hlen)
        op += hlen
        if with_nsp:
            memcpy(op, PyUnicode_1BYTE_DATA(nsp), nlen)
            op += nlen
            op[0] = 44  # ","
            op += 1
        if idlen:
            memcpy(op, idbuf, idlen)
            op += idlen
        if jlen:
            memcpy(op, jp, jlen)
        return out
    parts = [head[:hlen].decode("ascii")]
    if with_nsp:
        parts.append(nsp)
        parts.append(",")
    if idlen:
        parts.append(idbuf[:idlen].decode("ascii"))
    if js is not None:
        parts.append(js.decode("utf-8"))
    return "".join(parts)


cdef list _encode_checked(int t, str nsp, object data, object id):
    cdef bint is_event
    cdef list buffers, frames
    if EVENT <= t <= ACK or t >= BINARY_EVENT:
        is_event = t == EVENT or t == BINARY_EVENT
        if data is not None and _has_binary(data):
            buffers = []
            data = _deconstruct(data, buffers)
            t = BINARY_EVENT if is_event else BINARY_ACK
            frames = [_build_text(t, len(buffers), nsp, id, data)]
            frames.extend(buffers)
            return frames
        t = EVENT if is_event else ACK
    return [_build_text(t, 0, nsp, id, data)]


cpdef list encode(object type, object nsp="/", object data=None, object id=None):
    """Encodes one packet as wire frames.

    EVENT and ACK packets whose data holds ``bytes``, ``bytearray`` or
    ``memoryview`` values anywhere become BINARY_EVENT / BINARY_ACK: each buffer
    is replaced by a placeholder and sent as its own frame. Conversely a
    BINARY_* type with no buffer in its data is sent as plain EVENT / ACK.

    Args:
        type: packet type 0..6.
        nsp: namespace; starts with ``/`` and has no comma.
        data: JSON-serialisable payload (orjson), ``None`` for none.
        id: ack id, ``0 <= id <= MAX_SAFE_INTEGER``, or ``None``.

    Returns:
        The text frame, then the binary attachments as ``bytes``.

    Raises:
        ValueError: bad type, namespace or id.
        TypeError: a wrong argument type, or data orjson cannot serialise.

    Example:
        >>> encode(EVENT, "/admin", ["hello", 1], 12)
        ['2/admin,12["hello",1]']
    """
    if not PyLong_Check(type) or PyBool_Check(type) or not 0 <= type <= 6:
        raise ValueError("invalid packet type")
    _check_nsp(nsp)
    _check_id(id)
    return _encode_checked(<int>type, <str>nsp, data, id)


cpdef list encode_event(object nsp, object event, object args, object id=None):
    """Encodes an event; the hot path of ``emit`` and broadcasts.

    Same output as ``encode(EVENT, nsp, [event, *args], id)``.

    Args:
        nsp: namespace; starts with ``/`` and has no comma.
        event: the event name.
        args: the event arguments.
        id: ack id or ``None``.

    Returns:
        The text frame, then the binary attachments as ``bytes``.

    Raises:
        ValueError: bad namespace or id.
        TypeError: a wrong argument type, or data orjson cannot serialise.

    Example:
        >>> encode_event("/", "hello", (1, "a"))
        ['2["hello",1,"a"]']
    """
    cdef Py_ssize_t n, i
    cdef list data
    cdef object v
    cdef bint binary = False
    if not PyUnicode_Check(event):
        raise TypeError("event must be a str")
    if not (PyTuple_Check(args) or PyList_Check(args)):
        raise TypeError("args must be a tuple or list")
    _check_nsp(nsp)
    _check_id(id)
    n = len(args)
    data = PyList_New(n + 1)
    Py_INCREF(event)
    PyList_SET_ITEM(data, 0, event)
    for i in range(n):
        v = args[i]
        Py_INCREF(v)
        PyList_SET_ITEM(data, i + 1, v)
        if not binary and not _is_plain_scalar(v):
            binary = _has_binary(v)
    if binary:
        return _encode_checked(EVENT, <str>nsp, data, id)
    return [_build_text(EVENT, 0, <str>nsp, id, data)]


# ---------------------------------------------------------------------------
# decoding


cdef bint _too_deep(str s, Py_ssize_t start, Py_ssize_t max_depth) except -1:
    """Nesting depth of the (already validated) JSON text s[start:] > max_depth?"""
    cdef int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    cdef Py_ssize_t length = PyUnicode_GET_LENGTH(s)
    cdef Py_ssize_t k = start
    cdef Py_ssize_t depth = 0
    cdef bint in_str = False
    cdef Py_UCS4 c
    # Runs on text orjson accepted, so every string literal is terminated and
    # brackets are balanced: counting brackets outside strings gives the depth.
    while k < length:
        c = PyUnicode_READ(kind, data, k)
        if in_str:
            if c == u'\\':
                k += 1
            elif c == u'"':
                in_str = False
        elif c == u'"':
            in_str = True
        elif c == u'[' or c == u'{':
            depth += 1
            if depth > max_depth:
                return True
        elif c == u']' or c == u'}':
            depth -= 1
        k += 1
    return False


cdef bint _payload_valid(int t, object data):
    cdef object first
    if t == CONNECT:
        return PyDict_CheckExact(data)
    if t == CONNECT_ERROR:
        return PyUnicode_CheckExact(data) or PyDict_CheckExact(data)
    if t == EVENT or t == BINARY_EVENT:
        if not PyList_CheckExact(data) or len(<list>data) == 0:
            return False
        first = (<list>data)[0]
        return (
            PyLong_CheckExact(first)
            or PyFloat_CheckExact(first)
            or (PyUnicode_CheckExact(first) and first not in _RESERVED)
        )
    if t == ACK or t == BINARY_ACK:
        return PyList_CheckExact(data)
    return False  # DISCONNECT carries no payload


cdef list _find_placeholders(object data, Py_ssize_t n):
    """Locates placeholders as (container, key, num); checks them against n."""
    cdef list locs = []
    cdef set seen = set()
    cdef list stack = [data]
    cdef object c, k, v, num
    cdef PyObject* flag
    cdef PyObject* pnum
    cdef Py_ssize_t i
    while stack:
        c = stack.pop()
        if PyList_CheckExact(c):
            for i in range(len(<list>c)):
                v = (<list>c)[i]
                if PyDict_CheckExact(v):
                    flag = PyDict_GetItem(v, "_placeholder")
                    if flag is not NULL and <object>flag is True:
                        pnum = PyDict_GetItem(v, "num")
                        if pnum is NULL or not PyLong_CheckExact(<object>pnum) or not 0 <= <object>pnum < n:
                            raise ProtocolError("illegal attachments")
                        num = <object>pnum
                        locs.append((c, i, num))
                        seen.add(num)
                    else:
                        stack.append(v)
                elif PyList_CheckExact(v):
                    stack.append(v)
        else:
            for k, v in (<dict>c).items():
                if PyDict_CheckExact(v):
                    flag = PyDict_GetItem(v, "_placeholder")
                    if flag is not NULL and <object>flag is True:
                        pnum = PyDict_GetItem(v, "num")
                        if pnum is NULL or not PyLong_CheckExact(<object>pnum) or not 0 <= <object>pnum < n:
                            raise ProtocolError("illegal attachments")
                        num = <object>pnum
                        locs.append((c, k, num))
                        seen.add(num)
                    else:
                        stack.append(v)
                elif PyList_CheckExact(v):
                    stack.append(v)
    if len(seen) != n:
        raise ProtocolError("unreferenced attachment")
    return locs


@cython.auto_pickle(False)
cdef class Decoder:
    """Incremental Socket.IO packet decoder with binary reassembly.

    Args:
        max_attachments: most binary attachments one packet may announce.
        max_depth: deepest nesting of lists/objects accepted in a payload.

    Example:
        >>> d = Decoder()
        >>> d.feed('51-["up",{"_placeholder":true,"num":0}]') is None
        True
        >>> d.feed(b"\\x01")
        Packet(type=5, nsp='/', data=['up', b'\\x01'], id=None)
    """

    def __init__(self, max_attachments=10, max_depth=100):
        self._max_attachments = _index(max_attachments)
        self._max_depth = _index(max_depth)
        self._pending = None
        self._expected = 0
        self._buffers = []
        self._locs = []

    @property
    def pending(self):
        """True while a binary packet waits for attachments."""
        return self._pending is not None

    cdef _clear(self):
        self._pending = None
        self._expected = 0
        self._buffers = []
        self._locs = []

    def reset(self):
        """Drops a pending binary packet and its attachments."""
        self._clear()

    def feed(self, data):
        """Feeds one frame: a text packet or one binary attachment.

        Args:
            data: a ``str`` packet, or a bytes-like attachment.

        Returns:
            The complete packet, or ``None`` while attachments are missing.

        Raises:
            ProtocolError: the frame is malformed or unexpected.
            TypeError: ``data`` is neither str nor bytes-like.
        """
        cdef Packet packet
        cdef list buffers
        cdef object container, key, num
        if PyUnicode_Check(data):
            if self._pending is not None:
                self._clear()
                raise ProtocolError("got plaintext data when reconstructing a packet")
            return self._decode_str(<str>data)
        if _is_buffer(data):
            if self._pending is None:
                raise ProtocolError("got binary data when not reconstructing a packet")
            self._buffers.append(_as_bytes(data))
            if len(self._buffers) < self._expected:
                return None
            packet = self._pending
            buffers = self._buffers
            for container, key, num in self._locs:
                container[key] = buffers[num]
            self._clear()
            return packet
        raise TypeError("feed() takes str or a bytes-like object")

    cdef Packet _decode_str(self, str s):
        cdef Py_ssize_t length = PyUnicode_GET_LENGTH(s)
        cdef int kind = PyUnicode_KIND(s)
        cdef void* sdata = PyUnicode_DATA(s)
        cdef Py_ssize_t i, j
        cdef Py_UCS4 c
        cdef int t
        cdef Py_ssize_t n = 0
        cdef Py_ssize_t sig
        cdef long long v
        cdef str nsp
        cdef object id = None
        cdef object data = None
        cdef list locs = None
        cdef Packet packet
        # Every PyUnicode_READ below is guarded by an index < length test.
        if length == 0:
            raise ProtocolError("empty packet")
        c = PyUnicode_READ(kind, sdata, 0)
        if c < u'0' or c > u'6':
            raise ProtocolError("unknown packet type")
        t = <int>c - 48
        i = 1
        if t == BINARY_EVENT or t == BINARY_ACK:
            v = 0
            sig = 0
            while i < length:
                c = PyUnicode_READ(kind, sdata, i)
                if c < u'0' or c > u'9':
                    break
                if sig or c != u'0':
                    sig += 1
                    # 18 digits always fit a long long; more means "too many".
                    if sig <= 18:
                        v = v * 10 + (<int>c - 48)
                i += 1
            if i == 1 or i >= length or PyUnicode_READ(kind, sdata, i) != u'-':
                raise ProtocolError("illegal attachments")
            if sig == 0:
                raise ProtocolError("illegal attachments")
            if sig > 18 or v > self._max_attachments:
                raise ProtocolError("too many attachments")
            n = <Py_ssize_t>v
            i += 1
        if i < length and PyUnicode_READ(kind, sdata, i) == u'/':
            j = PyUnicode_FindChar(s, u',', i, length, 1)
            if j < 0:
                nsp = PyUnicode_Substring(s, i, length)
                i = length
            else:
                nsp = PyUnicode_Substring(s, i, j)
                i = j + 1
        else:
            nsp = "/"
        if i < length:
            c = PyUnicode_READ(kind, sdata, i)
            if u'0' <= c <= u'9':
                v = 0
                while i < length:
                    c = PyUnicode_READ(kind, sdata, i)
                    if c < u'0' or c > u'9':
                        break
                    # Stops growing once past the limit, so it cannot overflow.
                    if v <= _MAX_SAFE:
                        v = v * 10 + (<int>c - 48)
                    i += 1
                if v > _MAX_SAFE:
                    raise ProtocolError("invalid ack id")
                id = v
        if i < length:
            try:
                data = _loads(PyUnicode_Substring(s, i, length))
            except _JSONDecodeError:
                raise ProtocolError("invalid JSON") from None
            # Depth never exceeds half the payload length nor the number of
            # opening brackets (counted at memchr speed): ordinary packets
            # skip the scan.
            if (
                length - i > 2 * self._max_depth
                and PyUnicode_Count(s, "[", i, length) + PyUnicode_Count(s, "{", i, length) > self._max_depth
                and _too_deep(s, i, self._max_depth)
            ):
                raise ProtocolError("nesting too deep")
            if not _payload_valid(t, data):
                raise ProtocolError("invalid payload")
            if n:
                locs = _find_placeholders(data, n)
        packet = Packet.new(t, nsp, data, id)
        if n:
            if locs is None:
                # Attachments announced but no payload to put them in.
                raise ProtocolError("unreferenced attachment")
            self._pending = packet
            self._expected = n
            self._buffers = []
            self._locs = locs
            return None
        return packet
