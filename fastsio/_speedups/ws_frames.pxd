# cython: language_level=3
# Layout and C entry points of fastsio._speedups.ws_frames (bodies in the .pyx).

cpdef enum Opcode:
    OP_CONT = 0
    OP_TEXT = 1
    OP_BINARY = 2
    OP_CLOSE = 8
    OP_PING = 9
    OP_PONG = 10


cdef enum:
    # RFC 6455 5.2: 2 fixed bytes + 8 for a 64-bit length + 4 for the mask key.
    WS_MAX_HEADER = 14
    # RFC 6455 5.5: every control frame payload fits in a 7-bit length.
    WS_MAX_CONTROL = 125
    # A message buffer larger than this is freed once its message is out, so
    # an idle connection keeps no big allocation from an earlier burst.
    WS_KEEP_BUFFER = 65536


cdef void unmask_into(unsigned char* dst, const unsigned char* src, Py_ssize_t n,
                      const unsigned char* mask, Py_ssize_t offset) noexcept nogil

cdef bytes build_frame_c(int opcode, const unsigned char* payload, Py_ssize_t n,
                         bint fin, bint rsv1, const unsigned char* mask)


cdef class FrameParser:
    cdef:
        # configuration
        Py_ssize_t _max_size
        Py_ssize_t _max_fragments
        bint _client_side
        bint _allow_rsv1

        # a header split across feed() calls (always shorter than 14 bytes)
        unsigned char _hdr[WS_MAX_HEADER]
        Py_ssize_t _hdr_len

        # the frame whose payload is arriving (valid while _in_payload)
        bint _in_payload
        int _opcode
        bint _fin
        bint _masked
        unsigned char _mask[4]
        Py_ssize_t _remaining
        Py_ssize_t _offset

        # the data message being assembled; _msg_opcode 0 = none
        int _msg_opcode
        bint _msg_compressed
        Py_ssize_t _msg_size
        Py_ssize_t _msg_frames
        unsigned char* _msg
        Py_ssize_t _msg_len
        Py_ssize_t _msg_cap

        # payload of the control frame being read
        unsigned char _ctl[WS_MAX_CONTROL]
        Py_ssize_t _ctl_len

        object _error

    cdef int _run(self, const unsigned char* p, Py_ssize_t n, list out) except -1
    cdef Py_ssize_t _header(self, const unsigned char* p, Py_ssize_t n) except -1
    cdef int _whole_message(self, const unsigned char* p, list out) except -1
    cdef int _finish_frame(self, list out) except -1
    cdef object _make_payload(self, const unsigned char* p, Py_ssize_t n)
    cdef int _grow(self, Py_ssize_t needed) except -1
    cdef void _reset_message(self) noexcept
