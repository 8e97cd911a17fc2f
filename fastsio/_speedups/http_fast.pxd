# cython: language_level=3
# Limits and C helpers of fastsio._speedups.http_fast (bodies in the .pyx).

cdef enum:
    # a header name or value longer than this is not kept in the process-wide caches
    MAX_SHARED_LEN = 256
    # the caches' sizes: names (raw bytes -> lower-case str) and shared values
    MAX_NAMES = 512
    MAX_VALUES = 4096


cdef inline bint _ows(unsigned char c) noexcept:
    # optional whitespace (RFC 9110 5.6.3)
    return c == 0x20 or c == 0x09

cdef void _init_classes() noexcept
