# cython: language_level=3, embedsignature=True
"""The plain GET of a long-polling client, recognised without the general HTTP parser (compiled).

Same contract as ``fastsio._pure.http_fast`` (the module docstring there says
what is recognised): a strict subset of what llhttp accepts, so that for every
request recognised the result is what the general parser path would build.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeLatin1

__all__ = ["parse_simple_get", "split_query"]

# 1: a token character (RFC 9110 5.6.2); 2: a target character (RFC 3986, without '#', '[' and ']')
cdef unsigned char _CLASS[256]


cdef void _init_classes() noexcept:
    cdef int i
    cdef bytes token = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    cdef bytes target = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
    for i in range(256):
        _CLASS[i] = 0
    for i in range(len(token)):
        _CLASS[<unsigned char>token[i]] |= 1
    for i in range(len(target)):
        _CLASS[<unsigned char>target[i]] |= 2


_init_classes()


@cython.boundscheck(False)
@cython.wraparound(False)
def parse_simple_get(bytes data not None, Py_ssize_t limit, Py_ssize_t max_headers, dict names not None,
                     dict values not None, frozenset shared not None):
    """``data`` as one complete plain GET -> (request target, headers), or None (see ``fastsio._pure.http_fast``)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t pos, sp, end, eol, colon, vstart, vend, i
    cdef Py_ssize_t count = 0
    cdef bint seen_host = False, seen_conn = False
    cdef unsigned char c
    cdef dict headers
    cdef bytes raw_name
    cdef object key, val, kept, old, target
    if n > limit or n < 18:
        return None
    if not (p[0] == b'G' and p[1] == b'E' and p[2] == b'T' and p[3] == b' ' and p[4] == b'/'):
        return None
    if not (p[n - 4] == b'\r' and p[n - 3] == b'\n' and p[n - 2] == b'\r' and p[n - 1] == b'\n'):
        return None
    # the target: from the '/' to the next space, target characters only
    sp = 4
    while sp < n and (_CLASS[p[sp]] & 2):
        sp += 1
    # " HTTP/1.1\r\n" must follow (11 bytes, and the final CRLF after them at least)
    if sp + 13 > n or p[sp] != b' ':
        return None
    if not (p[sp + 1] == b'H' and p[sp + 2] == b'T' and p[sp + 3] == b'T' and p[sp + 4] == b'P'
            and p[sp + 5] == b'/' and p[sp + 6] == b'1' and p[sp + 7] == b'.' and p[sp + 8] == b'1'
            and p[sp + 9] == b'\r' and p[sp + 10] == b'\n'):
        return None
    target = PyUnicode_DecodeLatin1(<const char*>p + 4, sp - 4, NULL)
    headers = {}
    pos = sp + 11
    end = n - 2  # the final CRLF
    while pos < end:
        # the name: token characters up to ':'
        colon = pos
        while colon < end and (_CLASS[p[colon]] & 1):
            colon += 1
        if colon == pos or colon >= end or p[colon] != b':':
            return None
        vstart = colon + 1
        while vstart < end and _ows(p[vstart]):
            vstart += 1
        # the value: visible ASCII, spaces and tabs, up to CR (which must be followed by LF)
        eol = vstart
        while eol < end:
            c = p[eol]
            if 0x21 <= c <= 0x7E or c == 0x20 or c == 0x09:
                eol += 1
            else:
                break
        if eol >= end or p[eol] != b'\r' or p[eol + 1] != b'\n':
            return None
        if eol == vstart or _ows(p[eol - 1]):
            return None  # an empty value, or one ending in whitespace
        count += 1
        if count > max_headers:
            return None
        raw_name = PyBytes_FromStringAndSize(<const char*>p + pos, colon - pos)
        key = names.get(raw_name)
        if key is None:
            key = raw_name.decode("latin-1").lower()
            if len(names) < MAX_NAMES and colon - pos <= MAX_SHARED_LEN:
                names[raw_name] = key
        val = PyUnicode_DecodeLatin1(<const char*>p + vstart, eol - vstart, NULL)
        if key == "content-length" or key == "transfer-encoding" or key == "upgrade":
            return None
        if key == "host":
            if seen_host:
                return None
            seen_host = True
        elif key == "connection":
            if seen_conn or val.lower() != "keep-alive":
                return None
            seen_conn = True
        if eol - vstart <= MAX_SHARED_LEN and key in shared:
            kept = values.get(val)
            if kept is None:
                if len(values) < MAX_VALUES:
                    values[val] = val
            else:
                val = kept
        old = headers.get(key)
        if old is None:
            headers[key] = val
        else:
            headers[key] = old + ", " + val
        pos = eol + 2
    if pos != end:
        return None
    return target, headers


def split_query(str qs not None):
    """A query string with nothing to unquote -> its parameters, else None (see ``fastsio._pure.http_fast``)."""
    cdef dict q
    cdef Py_ssize_t n = len(qs), start = 0, amp, eq
    cdef str k
    if qs.find("%") >= 0 or qs.find("+") >= 0:
        return None
    q = {}
    while start <= n:
        amp = qs.find("&", start)
        if amp < 0:
            amp = n
        if amp > start:
            eq = qs.find("=", start, amp)
            if eq < 0:
                k = qs[start:amp]
                if k not in q:
                    q[k] = ""
            else:
                k = qs[start:eq]
                if k not in q:
                    q[k] = qs[eq + 1:amp]
        start = amp + 1
    return q
