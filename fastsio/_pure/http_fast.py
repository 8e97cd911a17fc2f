"""The plain GET of a long-polling client, recognised without the general HTTP parser (pure-Python twin).

A long-polling client sends one small GET per delivery it receives
(``GET /socket.io/?EIO=4&transport=polling&sid=... HTTP/1.1`` with a handful
of headers, in one segment). ``parse_simple_get`` recognises such a request
when it is the whole of ``data`` and returns what the general parser
(httptools' llhttp, driven by ``fastsio.http.HttpConnection``) would have
produced for it; for anything else it returns None and the caller hands the
same bytes to the general parser, which keeps every error and limit.

What is recognised is a strict subset of what llhttp accepts, so that the two
agree on everything recognised (tests/unit/test_http_fast.py checks this
against httptools on generated and mutated input):

- ``GET``, one space, an origin-form target (``/`` then RFC 3986 characters:
  letters, digits and ``-._~!$&'()*+,;=:@/?%``), one space, ``HTTP/1.1``;
- header lines ``name: value``: a token name, optional spaces or tabs, then
  a value of visible ASCII with single inner spaces or tabs, not empty and not
  ending in whitespace;
- every line ending in CRLF, the empty line ending the head as the last
  bytes of ``data``, the whole head at most ``limit`` bytes, at most
  ``max_headers`` header lines;
- no Content-Length, Transfer-Encoding or Upgrade header, at most one Host
  and at most one Connection header, which must say ``keep-alive``.

Same names, signatures and results as ``fastsio._speedups.http_fast``.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["parse_simple_get", "split_query"]

_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TARGET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
# a header value: visible ASCII, spaces and tabs
_VALUE = bytes(range(0x21, 0x7F)) + b" \t"
_MAX_SHARED_LEN = 256
_MAX_NAMES = 512
_MAX_VALUES = 4096


def parse_simple_get(data: bytes, limit: int, max_headers: int, names: dict[bytes, str],
                     values: dict[str, str], shared: frozenset[str]) -> Optional[tuple[str, dict[str, str]]]:
    """``data`` as one complete plain GET -> (request target, headers), or None.

    Args:
        data: the bytes received (all of them: a request followed by anything
            is not recognised).
        limit: the head may be at most this many bytes long (``max_header_size``, as the
            general path: a complete head of that size passes, one byte more is refused).
        max_headers: at most this many header lines.
        names: raw header name -> its lower-case ``str``; looked up, and fed
            while it holds fewer than 512 names of at most 256 bytes.
        values: header values kept once for every connection; a value of a
            header named in ``shared`` of at most 256 characters is replaced by
            the one kept, or kept while the dict holds fewer than 4096.
        shared: the lower-case header names whose values go through ``values``.

    Returns:
        The target as ``str`` (latin-1) and the headers (lower-case name ->
        value, repeated names joined by ``", "``), or None when ``data`` is
        not such a request.
    """
    n = len(data)
    if n > limit or n < 18 or not data.startswith(b"GET /") or not data.endswith(b"\r\n\r\n"):
        return None
    # every check below is a C-level bytes operation (translate deletes the allowed
    # characters: anything left is not allowed), not a loop over the bytes in Python
    lines = data[:-4].split(b"\r\n")
    first = lines[0]
    if not first.endswith(b" HTTP/1.1"):
        return None
    target = first[4:-9]
    if target.translate(None, _TARGET):
        return None  # a character outside the target set (a space, CR, LF among them)
    headers: dict[str, str] = {}
    count = 0
    seen_host = False
    seen_conn = False
    for i in range(1, len(lines)):
        line = lines[i]
        colon = line.find(b":")
        if colon <= 0:
            return None  # no name (an empty line: the head ended before the end of data)
        raw_name = line[:colon]
        if raw_name.translate(None, _TOKEN):
            return None
        raw_value = line[colon + 1:].lstrip(b" \t")
        if not raw_value:
            return None  # an empty value
        if raw_value.translate(None, _VALUE):
            return None
        last = raw_value[-1]
        if last == 0x20 or last == 0x09:
            return None
        count += 1
        if count > max_headers:
            return None
        key = names.get(raw_name)
        if key is None:
            key = raw_name.decode("latin-1").lower()
            if len(names) < _MAX_NAMES and len(raw_name) <= _MAX_SHARED_LEN:
                names[raw_name] = key
        val = raw_value.decode("latin-1")
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
        if key in shared and len(val) <= _MAX_SHARED_LEN:
            kept = values.get(val)
            if kept is None:
                if len(values) < _MAX_VALUES:
                    values[val] = val
            else:
                val = kept
        old = headers.get(key)
        headers[key] = val if old is None else old + ", " + val
    return target.decode("latin-1"), headers


def split_query(qs: str) -> Optional[dict[str, str]]:
    """A query string with nothing to unquote -> its parameters (first value of each name), else None.

    The same as the first value per name of ``urllib.parse.parse_qsl(qs,
    keep_blank_values=True)`` for a query without ``%`` or ``+``: pairs split
    on ``&``, each on its first ``=``, empty pairs skipped. None for a query
    holding ``%`` or ``+`` (the caller unquotes those with ``parse_qsl``).
    """
    if "%" in qs or "+" in qs:
        return None
    q: dict[str, str] = {}
    for pair in qs.split("&"):
        if pair:
            k, _, v = pair.partition("=")
            if k not in q:
                q[k] = v
    return q
