cdef class FlushQueue

cdef class WriteBuffer:
    cdef public object conn
    cdef public FlushQueue queue
    cdef public bint paused
    cdef public list chunks
    cpdef push(self, bytes data)
    cpdef object take(self)
    cpdef clear(self)

cdef class FlushQueue:
    cdef public object loop
    cdef public list pending
    cdef public bint scheduled
    cpdef add(self, WriteBuffer buf)
    cpdef flush(self)

cdef class DirectWriter:
    cdef public WriteBuffer target

cpdef list target_ids(object rooms_map, object all_ids, object rooms, object except_rooms, object except_ids)
cpdef Py_ssize_t deliver(object sockets, object ids, object message, bint volatile=*, object directs=*) except -1
