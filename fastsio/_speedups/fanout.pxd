cpdef list target_ids(object rooms_map, object all_ids, object rooms, object except_rooms, object except_ids)
cpdef Py_ssize_t deliver(object sockets, object ids, object message, bint volatile=*) except -1
