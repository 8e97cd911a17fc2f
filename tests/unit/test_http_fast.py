"""The plain-GET recogniser (http_fast): both implementations, against httptools (llhttp) itself.

Whatever ``parse_simple_get`` recognises must be what the general parser
path makes of the same bytes (one complete keep-alive GET, the same target
and the same headers); anything it does not recognise goes to that parser, so
``None`` is always a safe answer. Generated requests and mutated copies of a
real poll check that, and that both twins give the same result.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Optional
from urllib.parse import parse_qsl

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsio.http import _SHARED_VALUE_HEADERS

COMPILED = os.environ.get("FASTSIO_NO_EXTENSIONS", "") in ("", "0")
PURE = importlib.import_module("fastsio._pure.http_fast")
FAST = importlib.import_module("fastsio._speedups.http_fast") if COMPILED else PURE

POLL = (b"GET /socket.io/?EIO=4&transport=polling&sid=AbC-_123 HTTP/1.1\r\n"
        b"Host: 127.0.0.1:3000\r\nConnection: keep-alive\r\n\r\n")
LIMIT = 16384


@pytest.fixture
def hf(impl: Any) -> Any:
    return impl("http_fast")


def parse(mod: Any, data: bytes, limit: int = LIMIT, max_headers: int = 100) -> Optional[tuple[str, dict[str, str]]]:
    result: Optional[tuple[str, dict[str, str]]] = mod.parse_simple_get(data, limit, max_headers, {}, {},
                                                                        _SHARED_VALUE_HEADERS)
    return result


class _Collect:
    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = 0
        self.keep_alive = False
        self.upgrade = False
        self.version = ""
        self.method = b""
        self.parser: Any = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete += 1
        p = self.parser
        self.keep_alive = p.should_keep_alive()
        self.upgrade = p.should_upgrade()
        self.version = p.get_http_version()
        self.method = p.get_method()


def llhttp(data: bytes) -> Optional[_Collect]:
    """What httptools makes of ``data`` fed at once, or None when it raises (an upgrade included)."""
    c = _Collect()
    c.parser = httptools.HttpRequestParser(c)
    try:
        c.parser.feed_data(data)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return None
    return c


def check_agrees(data: bytes) -> Optional[tuple[str, dict[str, str]]]:
    """Both twins agree; when they recognise ``data``, llhttp reads the same request from it."""
    got = parse(PURE, data)
    assert parse(FAST, data) == got
    if got is None:
        return None
    c = llhttp(data)
    assert c is not None, data
    assert c.complete == 1 and c.method == b"GET" and c.version == "1.1" and c.body == b""
    assert c.keep_alive and not c.upgrade
    url, headers = got
    assert url == c.url.decode("latin-1")
    joined: dict[str, str] = {}
    for name, value in c.headers:
        key = name.decode("latin-1").lower()
        val = value.decode("latin-1")
        joined[key] = joined[key] + ", " + val if key in joined else val
    assert headers == joined
    return got


def test_a_poll_is_recognised(hf: Any) -> None:
    assert parse(hf, POLL) == ("/socket.io/?EIO=4&transport=polling&sid=AbC-_123",
                               {"host": "127.0.0.1:3000", "connection": "keep-alive"})
    assert check_agrees(POLL) is not None


def test_repeated_headers_are_joined_and_names_lowered(hf: Any) -> None:
    data = b"GET /x?a=1 HTTP/1.1\r\nHOST: h\r\nAccept: a\r\nX-Y:\tb c\r\naccept: d\r\n\r\n"
    assert parse(hf, data) == ("/x?a=1", {"host": "h", "accept": "a, d", "x-y": "b c"})
    assert check_agrees(data) is not None


@pytest.mark.parametrize("data", [
    b"POST /x HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /x HTTP/1.0\r\nHost: h\r\n\r\n",
    b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET * HTTP/1.1\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: h\r\n",                               # head not complete
    b"GET /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\n\r\n",    # pipelined: more than one
    b"\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n",                       # CRLF before the request
    b"GET /x HTTP/1.1\nHost: h\r\n\r\n",                             # bare LF
    b"GET /x HTTP/1.1\r\nHost: h\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: h\r\r\n\r\n",
    b"GET /x#f HTTP/1.1\r\n\r\n",
    b"GET /x y HTTP/1.1\r\n\r\n",
    b"GET /\x80 HTTP/1.1\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost : h\r\n\r\n",
    b"GET /x HTTP/1.1\r\n Host: h\r\n\r\n",                          # obs-fold / leading space
    b"GET /x HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost:\r\n\r\n",                             # empty value
    b"GET /x HTTP/1.1\r\nHost: h \r\n\r\n",                          # trailing whitespace
    b"GET /x HTTP/1.1\r\nX: \x7f\r\n\r\n",
    b"GET /x HTTP/1.1\r\nX: caf\xe9\r\n\r\n",                        # obs-text: left to llhttp
    b"GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n",
    b"GET /x HTTP/1.1\r\nConnection: keep-alive\r\nConnection: keep-alive\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /x HTTP/1.1\r\n:v\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r",
    b"",
])
def test_not_recognised(hf: Any, data: bytes) -> None:
    assert parse(hf, data) is None


def test_keep_alive_in_any_case(hf: Any) -> None:
    data = b"GET /x HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n"
    assert parse(hf, data) == ("/x", {"connection": "Keep-Alive"})
    check_agrees(data)


def test_limits(hf: Any) -> None:
    # the head may be max_header_size bytes long, as through the general path (431 past it)
    assert parse(hf, POLL, limit=len(POLL) - 1) is None
    assert parse(hf, POLL, limit=len(POLL)) is not None
    data = b"GET / HTTP/1.1\r\n" + b"".join(b"X%d: v\r\n" % i for i in range(5)) + b"\r\n"
    assert parse(hf, data, max_headers=4) is None
    assert parse(hf, data, max_headers=5) is not None
    assert parse(hf, b"GET / HTTP/1.1\r\n\r\n", limit=0) is None
    assert parse(hf, b"GET / HTTP/1.1\r\n\r\n", limit=-1) is None


def test_caches_stay_bounded(hf: Any) -> None:
    names = {b"N%d" % i: "n%d" % i for i in range(512)}
    values = {"v%d" % i: "v%d" % i for i in range(4096)}
    long_name = b"X" * 300
    data = b"GET / HTTP/1.1\r\nHost: fresh-host\r\n" + long_name + b": 1\r\n\r\n"
    got = hf.parse_simple_get(data, LIMIT, 100, names, values, _SHARED_VALUE_HEADERS)
    assert got == ("/", {"host": "fresh-host", "x" * 300: "1"})
    assert len(names) == 512 and len(values) == 4096
    # with room: short names and shared values are kept, long ones are not
    names2: dict[bytes, str] = {}
    values2: dict[str, str] = {}
    big = "h" * 257
    data = (b"GET / HTTP/1.1\r\nHost: " + big.encode() + b"\r\nUser-Agent: ua\r\nX-Other: o\r\n"
            + long_name + b": 1\r\n\r\n")
    got = hf.parse_simple_get(data, LIMIT, 100, names2, values2, _SHARED_VALUE_HEADERS)
    assert got is not None and got[1]["host"] == big
    assert set(names2) == {b"Host", b"User-Agent", b"X-Other"}
    assert values2 == {"ua": "ua"}
    # a kept value is the one object handed out again
    got2 = hf.parse_simple_get(b"GET / HTTP/1.1\r\nUser-Agent: ua\r\n\r\n", LIMIT, 100, names2, values2,
                               _SHARED_VALUE_HEADERS)
    assert got2 is not None and got2[1]["user-agent"] is values2["ua"]


# -- generated and mutated input --------------------------------------------------------------------------

_VALID_TARGET = list(b"aZ09-._~!$&'()*+,;=:@/?%")
_VALID_NAME = list(b"aZ09-_!#$%&'*+.^`|~")
_VALID_VALUE = list(b"aZ09 \t!~\"#:;,=")
# mostly valid characters, so that many requests are recognised, with the odd invalid one
_TARGET_CHARS = st.sampled_from(_VALID_TARGET * 4 + list(b"#[] \"<>\\^`{|}\x00\x7f\x80\xff\t\r\n"))
_NAME_CHARS = st.sampled_from(_VALID_NAME * 4 + list(b" :\"(),/;<=>?@[\\]{}\t\x00\x80\r\n"))
_VALUE_CHARS = st.sampled_from(_VALID_VALUE * 4 + list(b"\x00\x01\x0b\x7f\x80\xfe\r\n"))
_NAMES = st.one_of(
    st.sampled_from([b"Host", b"Connection", b"Accept", b"User-Agent", b"Content-Length",
                     b"Transfer-Encoding", b"Upgrade", b"host", b"CONNECTION", b"Cookie", b"Origin"]),
    st.lists(_NAME_CHARS, min_size=0, max_size=8).map(bytes),
)
_VALUES = st.one_of(
    st.sampled_from([b"keep-alive", b"close", b"Keep-Alive", b"upgrade", b"127.0.0.1:3000", b"0", b"chunked",
                     b"*/*", b""]),
    st.lists(_VALUE_CHARS, min_size=0, max_size=12).map(bytes),
)


@st.composite
def requests(draw: Any) -> bytes:
    method = draw(st.sampled_from([b"GET"] * 6 + [b"POST", b"get", b"HEAD"]))
    target = b"/" + bytes(draw(st.lists(_TARGET_CHARS, max_size=24)))
    version = draw(st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"http/1.1"]))
    sep = draw(st.sampled_from([b": ", b": ", b":", b":\t", b":  ", b" : "]))
    eol = draw(st.sampled_from([b"\r\n"] * 6 + [b"\n"]))
    lines = [method + b" " + target + b" " + version]
    for _ in range(draw(st.integers(0, 6))):
        lines.append(draw(_NAMES) + sep + draw(_VALUES))
    data = b"\r\n".join(lines) + eol + b"\r\n"
    return data + draw(st.sampled_from([b""] * 6 + [b"\r\n", b"GET / HTTP/1.1\r\n\r\n", b"x"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_generated_requests_agree_with_llhttp(data: bytes) -> None:
    check_agrees(data)


_PLAIN_NAMES = st.one_of(st.sampled_from([b"Host", b"Accept", b"User-Agent", b"Cookie", b"Origin", b"accept"]),
                         st.lists(st.sampled_from(_VALID_NAME), min_size=1, max_size=8).map(bytes))
_PLAIN_VALUES = st.lists(st.sampled_from(_VALID_VALUE), min_size=1, max_size=12).map(
    lambda v: b"v" + bytes(v).strip(b" \t") + b"v")


@st.composite
def plain_gets(draw: Any) -> bytes:
    target = b"/" + bytes(draw(st.lists(st.sampled_from(_VALID_TARGET), max_size=40)))
    lines = [b"GET " + target + b" HTTP/1.1"]
    names: set[bytes] = set()
    for _ in range(draw(st.integers(0, 8))):
        name = draw(_PLAIN_NAMES)
        if name.lower() == b"host" and b"host" in names:
            continue
        names.add(name.lower())
        lines.append(name + draw(st.sampled_from([b":", b": ", b":\t", b":  "])) + draw(_PLAIN_VALUES))
    if draw(st.booleans()):
        lines.append(b"Connection: " + draw(st.sampled_from([b"keep-alive", b"Keep-Alive", b"KEEP-ALIVE"])))
    return b"\r\n".join(lines) + b"\r\n\r\n"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_gets())
def test_plain_gets_are_recognised_as_llhttp_reads_them(data: bytes) -> None:
    forbidden = any(line.split(b":")[0].lower() in (b"content-length", b"transfer-encoding", b"upgrade")
                    for line in data.split(b"\r\n")[1:])
    got = check_agrees(data)
    assert (got is None) == forbidden, data


@st.composite
def mutated_poll(draw: Any) -> bytes:
    data = bytearray(POLL)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        i = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[i:i] = bytes([draw(st.integers(0, 255))])
        elif kind == "delete" and data:
            del data[i]
        elif data:
            j = draw(st.integers(i, len(data)))
            data[j:j] = data[i:j]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_poll())
def test_mutated_polls_agree_with_llhttp(data: bytes) -> None:
    check_agrees(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_agree(data: bytes) -> None:
    check_agrees(b"GET /" + data)
    check_agrees(data)


# -- split_query ----------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab=&%+;2F é")), max_size=20))
def test_split_query_is_parse_qsl_first_values(qs: str) -> None:
    for mod in (PURE, FAST):
        got = mod.split_query(qs)
        if "%" in qs or "+" in qs:
            assert got is None
            continue
        expected: dict[str, str] = {}
        for k, v in parse_qsl(qs, keep_blank_values=True):
            expected.setdefault(k, v)
        assert got == expected
        assert list(got) == list(expected)


def test_split_query_poll(hf: Any) -> None:
    assert hf.split_query("EIO=4&transport=polling&t=x&sid=abc&EIO=3&&flag") == {
        "EIO": "4", "transport": "polling", "t": "x", "sid": "abc", "flag": ""}
    assert hf.split_query("") == {}
    assert hf.split_query("a%20=1") is None
