# cython: language_level=3
"""C-level layout and signatures of fastsio._speedups.msgpack_codec."""

from libc.stdint cimport int64_t, uint64_t


cdef class _Reader:
    cdef bytes buf
    cdef const unsigned char* p
    cdef Py_ssize_t pos
    cdef Py_ssize_t end
    cdef Py_ssize_t max_depth
    cdef Py_ssize_t binaries
    cdef Py_ssize_t max_binaries
    cdef int kind
    cdef Py_ssize_t count

    cdef inline int need(self, Py_ssize_t n) except -1
    cdef inline uint64_t uint(self, int n) except? 0xFFFFFFFFFFFFFFFF
    cdef inline int64_t sint(self, int n) except? -1
    cdef bytes take(self, Py_ssize_t n)
    cdef bytes binary(self, Py_ssize_t n)
    cdef str string(self, Py_ssize_t n)
    cdef object ext(self, Py_ssize_t n, bint fixed)
    cdef inline int container(self, int kind, uint64_t n, Py_ssize_t per_item) except -1
    cdef object item(self, unsigned char b)


cdef class _Frame:
    cdef object container
    cdef Py_ssize_t left
    cdef object key
    cdef bint is_map


cdef class Decoder:
    cdef Py_ssize_t _max_attachments
    cdef Py_ssize_t _max_depth


cpdef list encode(object type, object nsp=*, object data=*, object id=*)
cpdef list encode_event(object nsp, object event, object args, object id=*)
