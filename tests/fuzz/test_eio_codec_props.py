"""Property tests for the Engine.IO codec.

* the pure and compiled implementations agree on every input: same result,
  or the same exception type and message;
* decode(encode(x)) == x for v4 WebSocket frames and payloads, and both v3
  payload forms;
* arbitrary (and nearly valid) input either decodes or raises ProtocolError.
"""
from __future__ import annotations

import binascii
import os
import sys
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsio._pure import eio_codec as pure
from fastsio.exceptions import ProtocolError

if os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0"):
    speedups = None
else:
    from fastsio._speedups import eio_codec as speedups

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

needs_speedups = pytest.mark.skipif(speedups is None, reason="pure-Python run")

# Text without lone surrogates (they cannot be UTF-8 encoded).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
ptypes = st.integers(0, 6)
blobs = st.binary(max_size=40)


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """Runs fn; any exception other than ProtocolError fails the test."""
    try:
        return ("ok", fn(*args, **kwargs))
    except ProtocolError as exc:
        return ("err", type(exc), str(exc))


def both(name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    """The outcome of pure.<name>, checked equal to speedups.<name> when compiled."""
    expected = outcome(getattr(pure, name), *args, **kwargs)
    if speedups is not None:
        got = outcome(getattr(speedups, name), *args, **kwargs)
        assert got == expected, (name, args, kwargs)
        if got[0] == "ok":
            # same types too: str vs bytes data, plain int types
            assert _types(got[1]) == _types(expected[1])
    return expected


def _types(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_types(v) for v in value]
    return type(value)


# -- inputs ------------------------------------------------------------------------

v4_packet = st.one_of(
    st.tuples(ptypes, text.filter(lambda s: "\x1e" not in s)),
    st.tuples(st.just(4), blobs),
)
v3_packet = st.one_of(st.tuples(ptypes, text), st.tuples(ptypes, blobs))


def mutate(data: st.DataObject, raw: bytes) -> bytes:
    """Small random edits of a valid encoding, to reach deep error paths."""
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "insert" or not buf:
            pos = data.draw(st.integers(0, len(buf)))
            buf[pos:pos] = data.draw(
                st.sampled_from([b"\x1e", b":", b"\xff", b"\x00", b"\x01", b"b", b"=", b"9", b"\xf0"])
                | st.binary(min_size=1, max_size=2)
            )
        elif op == "flip":
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "delete":
            pos = data.draw(st.integers(0, len(buf) - 1))
            del buf[pos]
        else:
            del buf[data.draw(st.integers(0, len(buf))) :]
    return bytes(buf)


# -- round trips -------------------------------------------------------------------


@SETTINGS
@given(ptypes, text, st.booleans())
def test_ws_text_round_trip(ptype, data, eio3):
    frame = both("encode_ws", ptype, data, eio3)[1]
    assert frame == str(ptype) + data
    assert both("decode_ws", frame, eio3) == ("ok", (ptype, data))
    assert both("encode_packet", ptype, data) == ("ok", frame)


@SETTINGS
@given(ptypes, blobs)
def test_ws_binary_round_trip(ptype, data):
    frame = both("encode_ws", ptype, data, True)[1]
    assert both("decode_ws", frame, True) == ("ok", (ptype, data))
    frame = both("encode_ws", 4, data)[1]
    assert both("decode_ws", frame) == ("ok", (4, data))


@SETTINGS
@given(st.lists(v4_packet, min_size=1, max_size=8))
def test_payload_v4_round_trip(packets):
    wire = both("encode_payload", packets)[1]
    assert both("decode_payload", wire.encode("utf-8")) == ("ok", packets)
    assert both("decode_payload", wire) == ("ok", packets)


@SETTINGS
@given(st.lists(v3_packet, min_size=1, max_size=8))
def test_payload_v3_text_round_trip(packets):
    wire = both("encode_payload_v3", packets)[1]
    assert isinstance(wire, str)
    assert both("decode_payload_v3", wire.encode("utf-8")) == ("ok", packets)


@SETTINGS
@given(st.lists(v3_packet, min_size=1, max_size=8), st.booleans())
def test_payload_v3_binary_round_trip(packets, supports_binary):
    wire = both("encode_payload_v3", packets, supports_binary)[1]
    has_binary = any(isinstance(d, bytes) for _, d in packets)
    assert isinstance(wire, bytes if supports_binary and has_binary else str)
    raw = wire if isinstance(wire, bytes) else wire.encode("utf-8")
    assert both("decode_payload_v3", raw) == ("ok", packets)


# -- arbitrary and nearly valid input ----------------------------------------------


@SETTINGS
@given(st.one_of(text, st.text(max_size=20), blobs), st.booleans())
def test_decode_ws_arbitrary(msg, eio3):
    both("decode_ws", msg, eio3)


@SETTINGS
@given(st.one_of(blobs, st.text(max_size=40)), st.integers(1, 5))
def test_decode_payload_arbitrary(body, max_packets):
    both("decode_payload", body, max_packets)


@SETTINGS
@given(blobs, st.integers(1, 5))
def test_decode_payload_v3_arbitrary(body, max_packets):
    both("decode_payload_v3", body, max_packets)


@SETTINGS
@given(st.data(), st.lists(v4_packet, min_size=1, max_size=5))
def test_decode_payload_mutated(data, packets):
    raw = pure.encode_payload(packets).encode("utf-8")
    body = mutate(data, raw)
    both("decode_payload", body, 4)
    try:
        s = body.decode("utf-8")
    except UnicodeDecodeError:
        return
    both("decode_payload", s, 4)


@SETTINGS
@given(st.data(), st.lists(v3_packet, min_size=1, max_size=5), st.booleans())
def test_decode_payload_v3_mutated(data, packets, supports_binary):
    wire = pure.encode_payload_v3(packets, supports_binary)
    raw = wire if isinstance(wire, bytes) else wire.encode("utf-8")
    both("decode_payload_v3", mutate(data, raw), 4)


@SETTINGS
@given(st.data(), st.one_of(st.tuples(ptypes, text), st.tuples(ptypes, blobs)), st.booleans())
def test_decode_ws_mutated(data, packet, eio3):
    ptype, payload = packet
    if isinstance(payload, bytes):
        # the base64 text form of a binary packet
        b64 = binascii.b2a_base64(payload, newline=False)
        raw = b"b" + (str(ptype).encode() if eio3 else b"") + b64
    else:
        raw = (str(ptype) + payload).encode("utf-8")
    msg = mutate(data, raw)
    both("decode_ws", msg, eio3)
    try:
        both("decode_ws", msg.decode("utf-8"), eio3)
    except UnicodeDecodeError:
        pass


@pytest.mark.skipif(sys.version_info < (3, 11), reason="binascii strict_mode is 3.11+")
@SETTINGS
@given(st.one_of(st.text("AQb/+=\n", max_size=12), blobs.map(lambda b: binascii.b2a_base64(b, newline=False).decode())))
def test_base64_matches_strict_mode(s):
    # strict_mode also takes "=" after a complete quantum ("AAAA="), which
    # Node never writes; we want exactly the canonical length.
    try:
        expected: Any = binascii.a2b_base64(s, strict_mode=True)
    except binascii.Error:
        expected = None
    else:
        if len(binascii.b2a_base64(expected, newline=False)) != len(s):
            expected = None
    got = both("decode_ws", "b" + s)
    if expected is None:
        assert got == ("err", ProtocolError, "invalid base64")
    else:
        assert got == ("ok", (4, expected))


# -- encoders agree ----------------------------------------------------------------


@needs_speedups
@SETTINGS
@given(st.lists(v3_packet, max_size=6), st.booleans())
def test_encoders_agree(packets, supports_binary):
    assert speedups.encode_payload_v3(packets, supports_binary) == pure.encode_payload_v3(
        packets, supports_binary
    )
    v4 = [(t, d) for t, d in packets if isinstance(d, str) or t == 4]
    assert speedups.encode_payload(v4) == pure.encode_payload(v4)
    for t, d in packets:
        assert speedups.encode_ws(t, d, True) == pure.encode_ws(t, d, True)
