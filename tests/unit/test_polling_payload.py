"""The polling bodies a PreparedMessage shares (issue 14) and the HTTP query parser.

* ``poll_body`` is the payload every polling recipient would have got on its
  own (``encode_payload`` / ``encode_payload_v3``), built once per form: the
  same object on every call; ``poll_body_compressed`` likewise, and it
  decompresses to ``poll_body``;
* the pure and compiled codecs give the same bytes for it;
* ``parse_query`` agrees with ``urllib.parse.parse_qsl`` (first value per name).
"""
from __future__ import annotations

import gzip
import importlib
import os
import zlib
from typing import Any, Callable, Union
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsio._impl import eio_codec
from fastsio.engineio import PreparedMessage
from fastsio.engineio import transport as eio_transport
from fastsio.http import parse_query

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                              HealthCheck.function_scoped_fixture])

# a Socket.IO text part (no U+001E, as JSON never has one) and binary attachments
texts = st.text(alphabet=st.characters(blacklist_characters="\x1e", blacklist_categories=("Cs",)), max_size=60)
parts = st.tuples(texts, st.lists(st.binary(max_size=40), max_size=3)).map(lambda t: [t[0], *t[1]])


def message_of(ps: list[Union[str, bytes]], compress: bool = True) -> PreparedMessage:
    return PreparedMessage(ps, compress)


@given(parts)
@SETTINGS
def test_poll_body_is_the_payload_each_recipient_would_get(ps: list[Union[str, bytes]]) -> None:
    m = message_of(ps)
    packets = [(4, p) for p in ps]
    body, ctype = m.poll_body(4)
    assert body == eio_codec.encode_payload(packets).encode() and ctype == "text/plain; charset=UTF-8"
    assert m.poll_body(4)[0] is body
    for binary in (False, True):
        v3 = eio_codec.encode_payload_v3(packets, binary)
        body3, ctype3 = m.poll_body(3, binary)
        assert body3 == (v3 if isinstance(v3, bytes) else v3.encode())
        assert ctype3 == ("application/octet-stream" if isinstance(v3, bytes) else "text/plain; charset=UTF-8")
        assert m.poll_body(3, binary)[0] is body3


@given(parts)
@SETTINGS
def test_compressed_body_is_built_once_per_coding(ps: list[Union[str, bytes]]) -> None:
    m = message_of(ps)
    for protocol, binary in ((4, False), (3, False), (3, True)):
        body = m.poll_body(protocol, binary)[0]
        gz = m.poll_body_compressed(protocol, binary, "gzip")
        df = m.poll_body_compressed(protocol, binary, "deflate")
        assert gzip.decompress(gz) == body and zlib.decompress(df) == body
        assert m.poll_body_compressed(protocol, binary, "gzip") is gz
        assert m.poll_body_compressed(protocol, binary, "deflate") is df


needs_speedups = pytest.mark.skipif(os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0"),
                                    reason="pure-Python run")


@needs_speedups
@given(parts)
@SETTINGS
def test_pure_and_compiled_give_the_same_bodies(ps: list[Union[str, bytes]]) -> None:
    bodies: dict[str, list[Any]] = {}
    for name in ("pure", "speedups"):
        codec = importlib.import_module(f"fastsio._{name}.eio_codec")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(eio_transport, "eio_codec", codec)
            m = message_of(ps)
            bodies[name] = [m.poll_body(4), m.poll_body(3, False), m.poll_body(3, True)]
    assert bodies["pure"] == bodies["speedups"]


queries = st.lists(st.tuples(st.text(alphabet="abcEIO=&_-.~% +sidt0123456789", max_size=8),
                             st.text(alphabet="abc=&%20+xyz0123456789é", max_size=8)), max_size=6)


@given(st.one_of(
    st.text(alphabet="ab=&%+;2F0", max_size=30),
    queries.map(lambda q: "&".join(f"{k}={v}" for k, v in q)),
    st.just("EIO=4&transport=polling&t=PxYz12&sid=abcDEF-_0123456789ab"),
))
@settings(max_examples=300, deadline=None)
def test_parse_query_is_parse_qsl_first_values(qs: str) -> None:
    expected: dict[str, str] = {}
    for k, v in parse_qsl(qs, keep_blank_values=True):
        expected.setdefault(k, v)
    assert parse_query(qs) == expected


def test_parse_query_examples() -> None:
    assert parse_query("EIO=4&transport=polling&sid=a&sid=b") == {"EIO": "4", "transport": "polling", "sid": "a"}
    assert parse_query("a&&b=&=c") == {"a": "", "b": "", "": "c"}
    assert parse_query("x=%41+b") == {"x": "A b"}
    assert parse_query("") == {}


def test_poll_body_is_computed_lazily_per_form(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    real: Callable[..., Any] = eio_transport.poll_payload

    def counting(*args: Any) -> Any:
        calls.append(args[1:])
        return real(*args)

    monkeypatch.setattr(eio_transport, "poll_payload", counting)
    m = PreparedMessage(['2["x"]', b"\x01"])
    for _ in range(3):
        m.poll_body(4)
        m.poll_body(3, True)
        m.poll_body(3, False)
        m.poll_body_compressed(4, False, "gzip")
    assert calls == [(4, False), (3, True), (3, False)]


def test_v3_forms_share_one_body_without_attachments() -> None:
    m = PreparedMessage(['2["x"]'])
    assert m.poll_body(3, True) is m.poll_body(3, False)
    assert m.poll_body_compressed(3, True, "gzip") is m.poll_body_compressed(3, False, "gzip")
    b = PreparedMessage(['51-["x",{"_placeholder":true,"num":0}]', b"\x01"])
    assert b.poll_body(3, True)[1] == "application/octet-stream"
    assert b.poll_body(3, False)[1] == "text/plain; charset=UTF-8"


@given(st.lists(parts, min_size=1, max_size=5))
@SETTINGS
def test_joined_bodies_are_the_payload_of_all_their_packets(messages: list[list[Union[str, bytes]]]) -> None:
    # what PollingTransport sends a recipient whose buffer holds only broadcasts (a burst)
    ms = [message_of(ps) for ps in messages]
    packets = [p for m in ms for p in m.packets]
    assert b"\x1e".join(m.poll_body(4)[0] for m in ms) == eio_codec.encode_payload(packets).encode()
    v3 = eio_codec.encode_payload_v3(packets, False)
    assert isinstance(v3, str)
    assert b"".join(m.poll_body(3)[0] for m in ms) == v3.encode()
