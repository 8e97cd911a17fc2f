# cython: language_level=3
"""C-level layout and signatures of fastsio._speedups.sio_codec."""

cpdef enum PacketType:
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


cdef class Packet:
    cdef public int type
    cdef public str nsp
    cdef public object data
    cdef public object id

    @staticmethod
    cdef Packet new(int type, str nsp, object data, object id)


cdef class Decoder:
    cdef Py_ssize_t _max_attachments
    cdef Py_ssize_t _max_depth
    cdef Packet _pending
    cdef Py_ssize_t _expected
    cdef list _buffers
    cdef list _locs

    cdef _clear(self)
    cdef Packet _decode_str(self, str s)


cpdef list encode(object type, object nsp=*, object data=*, object id=*)
cpdef list encode_event(object nsp, object event, object args, object id=*)
