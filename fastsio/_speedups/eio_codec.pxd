# Engine.IO packet/payload codec: the C-level interface other modules cimport.

cpdef enum PacketType:
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6

cpdef str encode_packet(int ptype, object data=*)
cpdef object encode_ws(int ptype, object data=*, bint eio3=*)
cpdef tuple decode_ws(object msg, bint eio3=*)
cpdef str encode_payload(object packets)
cpdef list decode_payload(object body, Py_ssize_t max_packets=*)
cpdef object encode_payload_v3(object packets, bint supports_binary=*)
cpdef list decode_payload_v3(object body, Py_ssize_t max_packets=*)
