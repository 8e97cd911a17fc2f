cdef class FlushQueue

cdef class WriteBuffer:
    cdef public object conn
    cdef public FlushQueue queue
    cdef public object transport
    cdef public bint paused
    cdef public list chunks
    cdef public Py_ssize_t buffered
    cdef public Py_ssize_t max_bytes
    cdef public Py_ssize_t drop_above
    cpdef push(self, bytes data)
    cpdef object take(self)
    cpdef clear(self)

cdef class FlushQueue:
    cdef public object loop
    cdef public list pending
    cdef public bint scheduled
    cdef public Py_ssize_t volatile_dropped
    cpdef add(self, WriteBuffer buf)
    cpdef flush(self)

cdef class DirectWriter:
    cdef public WriteBuffer target
    cdef public int kind
    cdef public Py_ssize_t threshold

cpdef list target_ids(object rooms_map, object all_ids, object rooms, object except_rooms, object except_ids)
cpdef Py_ssize_t deliver(object sockets, object ids, object message, bint volatile=*, object directs=*) except -1
