"""Property tests for the msgpack Socket.IO codec (socket.io-msgpack-parser 3.x).

* the pure and compiled implementations agree on every input: same frame, the
  same packet with the same field types, or the same exception type and message;
* decode(encode(x)) == x for every valid packet, binary included;
* arbitrary and mutated frames either decode or raise ProtocolError.
"""
from __future__ import annotations

import math
import os
from typing import Any, Callable

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsio._pure import msgpack_codec as pure
from fastsio.exceptions import ProtocolError

if os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0"):
    speedups = None
else:
    from fastsio._speedups import msgpack_codec as speedups

IMPLS = [pure] if speedups is None else [pure, speedups]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
needs_speedups = pytest.mark.skipif(speedups is None, reason="pure-Python run")

text = st.text(max_size=12)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | text
    | st.binary(max_size=16)
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
event_names = text.filter(lambda e: e not in pure.RESERVED_EVENTS)
namespaces = st.just("/") | text.map(lambda s: "/" + s)
ids = st.none() | st.integers(0, pure.MAX_SAFE_INTEGER)


def _binaries(value: Any) -> int:
    if isinstance(value, bytes):
        return 1
    if isinstance(value, list):
        return sum(_binaries(v) for v in value)
    if isinstance(value, dict):
        return sum(_binaries(v) for v in value.values())
    return 0


@st.composite
def packets(draw: Any) -> tuple[int, str, Any, Any]:
    t = draw(st.sampled_from([0, 1, 2, 3, 4]))
    nsp = draw(namespaces)
    if t == 0:
        data = draw(st.none() | st.dictionaries(text, values, max_size=3))
    elif t == 1:
        data = None
    elif t == 4:
        data = draw(text | st.dictionaries(text, values, max_size=3))
    elif t == 2:
        data = [draw(event_names)] + draw(st.lists(values, max_size=4))
    else:
        data = draw(st.lists(values, max_size=4))
    pid = draw(ids) if t in (2, 3) else None
    return t, nsp, data, pid


def _types(value: Any) -> Any:
    if isinstance(value, list):
        return [_types(v) for v in value]
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    return type(value)


def _comparable(value: Any) -> Any:
    # NaN != NaN: compare floats by their bits
    if isinstance(value, float) and math.isnan(value):
        return ("nan", repr(value))
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    try:
        result = fn(*args)
    except Exception as exc:  # compared across implementations, not swallowed
        return ("err", type(exc), str(exc))
    if isinstance(result, list):
        return ("ok", [(type(f), f) for f in result])
    return ("packet", result.type, result.nsp, _comparable(result.data), result.id, _types(result.data))


@pytest.mark.parametrize("codec", IMPLS, ids=lambda m: m.__name__.split(".")[1])
@SETTINGS
@given(packets())
def test_round_trip(codec: Any, packet: tuple[int, str, Any, Any]) -> None:
    t, nsp, data, pid = packet
    (frame,) = codec.encode(t, nsp, data, pid)
    assert type(frame) is bytes
    decoder = codec.Decoder(max_attachments=1000)
    got = decoder.feed(frame)
    assert (got.type, got.nsp, got.id) == (t, nsp, pid)
    assert got.data == data
    # what the standard msgpack library reads back is the same packet map
    mapping = msgpack.unpackb(frame, raw=False)
    assert mapping["type"] == t and mapping["nsp"] == nsp


@needs_speedups
@SETTINGS
@given(packets())
def test_twins_encode_the_same_bytes(packet: tuple[int, str, Any, Any]) -> None:
    assert outcome(pure.encode, *packet) == outcome(speedups.encode, *packet)


@needs_speedups
@SETTINGS
@given(st.binary(max_size=64), st.integers(0, 4), st.integers(0, 6))
def test_twins_agree_on_arbitrary_bytes(data: bytes, max_attachments: int, max_depth: int) -> None:
    a = outcome(pure.Decoder(max_attachments, max_depth).feed, data)
    b = outcome(speedups.Decoder(max_attachments, max_depth).feed, data)
    assert a == b


@SETTINGS
@given(packets(), st.data())
def test_mutated_frames_decode_or_raise_protocol_error(packet: tuple[int, str, Any, Any], data: Any) -> None:
    (frame,) = pure.encode(*packet)
    raw = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        if not raw:
            break
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=5))
    results = []
    for codec in IMPLS:
        try:
            got = codec.Decoder().feed(bytes(raw))
        except ProtocolError as exc:
            results.append(("err", str(exc)))
        else:
            assert got.type in (0, 1, 2, 3, 4)
            results.append(("packet", got.type, got.nsp, _comparable(got.data), got.id))
    assert all(r == results[0] for r in results)
