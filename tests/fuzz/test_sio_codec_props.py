"""Property tests for the Socket.IO packet codec.

* the pure and compiled implementations agree on every input: same frames,
  same packets, or the same exception type and message;
* decode(encode(x)) == x for every valid packet, binary ones included;
* arbitrary (and nearly valid) frames either decode or raise ProtocolError.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsio._pure import sio_codec as pure
from fastsio.exceptions import ProtocolError

if os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0"):
    speedups = None
else:
    from fastsio._speedups import sio_codec as speedups

IMPLS = [pure] if speedups is None else [pure, speedups]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
needs_speedups = pytest.mark.skipif(speedups is None, reason="pure-Python run")

# Text without lone surrogates (orjson refuses them).
chars = st.characters(exclude_categories=("Cs",))
text = st.text(chars, max_size=12)
keys = text.filter(lambda k: k != "_placeholder")
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
blobs = st.binary(max_size=16)
buffers = blobs | blobs.map(bytearray) | blobs.map(memoryview)
# Values that may hold buffers, in lists, tuples and dicts.
bin_values = st.recursive(
    leaves | buffers,
    lambda inner: st.lists(inner, max_size=4)
    | st.lists(inner, max_size=4).map(tuple)
    | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
event_names = text.filter(lambda e: e not in pure.RESERVED_EVENTS)
namespaces = st.just("/") | st.text(chars.filter(lambda c: c != ","), max_size=10).map(lambda s: "/" + s)
ids = st.none() | st.integers(0, pure.MAX_SAFE_INTEGER)


def outcome(fn: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """Runs fn; the result in comparable form, or the exception's type and message."""
    try:
        result = fn(*args)
    except Exception as exc:  # compared across implementations, not swallowed
        return ("err", type(exc), str(exc))
    if result is None:
        return ("none",)
    if isinstance(result, list):
        return ("ok", [(type(f), f) for f in result])
    return ("packet", result.type, result.nsp, result.data, result.id, _types(result.data))


def _types(value: Any) -> Any:
    if isinstance(value, list):
        return [_types(v) for v in value]
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    return type(value)


def normalize(value: Any) -> Any:
    """What decoding gives back: tuples become lists, buffers become bytes."""
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def feed_all(mod: Any, frames: list[Any], **kw: Any) -> list[tuple[Any, ...]]:
    """Feeds frames to one decoder; the outcome of every step."""
    d = mod.Decoder(**kw)
    return [outcome(d.feed, f) for f in frames]


def check_frames(frames: list[Any], **kw: Any) -> list[tuple[Any, ...]]:
    """Pure == speedups step by step; only ProtocolError is ever raised."""
    expected = feed_all(pure, frames, **kw)
    for step in expected:
        if step[0] == "err":
            assert issubclass(step[1], ProtocolError), step
    if speedups is not None:
        assert feed_all(speedups, frames, **kw) == expected, frames
    return expected


# ---------------------------------------------------------------------------
# encoding


@SETTINGS
@given(
    st.integers(-1, 7) | st.booleans() | st.none(),
    namespaces | st.text(max_size=6) | st.none(),
    bin_values,
    ids | st.integers(-3, 3) | st.just(2**53) | st.booleans(),
)
def test_encode_pure_equals_speedups(type: Any, nsp: Any, data: Any, id: Any) -> None:
    expected = outcome(pure.encode, type, nsp, data, id)
    if expected[0] == "err":
        assert expected[1] in (ValueError, TypeError, orjson.JSONEncodeError)
    if speedups is not None:
        assert outcome(speedups.encode, type, nsp, data, id) == expected


@SETTINGS
@given(namespaces, event_names, st.lists(bin_values, max_size=5), st.booleans(), ids)
def test_encode_event_equals_encode(nsp: str, event: str, args: list[Any], as_tuple: bool, id: Any) -> None:
    a: Any = tuple(args) if as_tuple else args
    for mod in IMPLS:
        assert outcome(mod.encode_event, nsp, event, a, id) == outcome(mod.encode, mod.EVENT, nsp, [event, *args], id)
    if speedups is not None:
        assert outcome(speedups.encode_event, nsp, event, a, id) == outcome(pure.encode_event, nsp, event, a, id)


# ---------------------------------------------------------------------------
# round trips


@st.composite
def valid_packets(draw: Any) -> tuple[int, str, Any, Any]:
    t = draw(st.integers(0, 6))
    nsp = draw(namespaces)
    id = draw(ids)
    if t == 0:
        data = draw(st.none() | st.dictionaries(keys, json_values, max_size=4))
    elif t == 1:
        data = None
    elif t == 4:
        data = draw(st.none() | text | st.dictionaries(keys, json_values, max_size=4))
    elif t in (2, 5):
        first = draw(event_names | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False))
        data = draw(st.none() | st.lists(bin_values, max_size=5).map(lambda rest: [first, *rest]))
    else:
        data = draw(st.none() | st.lists(bin_values, max_size=5))
    return t, nsp, data, id


@SETTINGS
@given(valid_packets())
def test_roundtrip(packet: tuple[int, str, Any, Any]) -> None:
    t, nsp, data, id = packet
    for mod in IMPLS:
        frames = mod.encode(t, nsp, data, id)
        attachments = frames[1:]
        assert all(type(f) is bytes for f in attachments)
        assert type(frames[0]) is str
        d = mod.Decoder(max_attachments=1000)
        for f in frames[:-1]:
            assert d.feed(f) is None
        p = d.feed(frames[-1])
        expected_type = t
        if t in (2, 3, 5, 6):
            binary = t in (2, 5)
            if attachments:
                expected_type = 5 if binary else 6
            else:
                expected_type = 2 if binary else 3
        assert p == mod.Packet(expected_type, nsp, normalize(data), id)
        assert not d.pending


# ---------------------------------------------------------------------------
# arbitrary and nearly valid input


@SETTINGS
@given(st.text(max_size=60))
def test_arbitrary_text(s: str) -> None:
    check_frames([s])


@SETTINGS
@given(st.text(st.sampled_from('0123456789-/,[]{}":.e+ \\_aéx\ud800'), max_size=40))
def test_protocol_alphabet(s: str) -> None:
    check_frames([s])


@SETTINGS
@given(st.lists(st.text(max_size=20) | st.binary(max_size=8), max_size=6))
def test_arbitrary_frame_sequences(frames: list[Any]) -> None:
    check_frames(frames)


placeholder_like = st.fixed_dictionaries(
    {"_placeholder": st.sampled_from([True, False, 1, "true", None])},
    optional={"num": st.integers(-2, 5) | st.booleans() | st.floats(-1, 5) | text | st.none()},
)
payload_values = st.recursive(
    leaves | placeholder_like,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)


@st.composite
def near_valid(draw: Any) -> list[Any]:
    """Frames built from header pieces and JSON, right or slightly wrong."""
    t = draw(st.sampled_from("01234567x"))
    head = t
    if draw(st.booleans()):
        head += draw(st.sampled_from(["", "0", "1", "2", "3", "01", "11", "99", "x"])) + draw(
            st.sampled_from(["-", "-", ""])
        )
    if draw(st.booleans()):
        head += draw(namespaces) + draw(st.sampled_from([",", ",", ""]))
    if draw(st.booleans()):
        head += str(draw(st.integers(0, 2**54)))
    body = ""
    if draw(st.booleans()):
        name = draw(event_names)
        value = draw(payload_values | st.lists(payload_values, max_size=4).map(lambda v: [name, *v]))
        body = orjson.dumps(value).decode()
        if draw(st.integers(0, 9)) == 0:
            body += draw(st.sampled_from(["]", "x", " ", "[", "}"]))
    frames: list[Any] = [head + body]
    frames += draw(st.lists(st.binary(max_size=4) | text, max_size=4))
    return frames


@SETTINGS
@given(near_valid(), st.integers(0, 4), st.integers(0, 4))
def test_near_valid(frames: list[Any], max_attachments: int, max_depth: int) -> None:
    check_frames(frames)
    check_frames(frames, max_attachments=max_attachments, max_depth=max_depth)


@SETTINGS
@given(st.integers(0, 150), st.integers(0, 150), st.sampled_from(["[", '{"a":']))
def test_depth_agrees(depth: int, max_depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    s = '3[' + opener * depth + "1" + closer * depth + "]"
    steps = check_frames([s], max_depth=max_depth)
    too_deep = depth + 1 > max_depth
    assert (steps[0][0] == "err") == too_deep
    if too_deep:
        assert steps[0][2] == "nesting too deep"


@needs_speedups
@SETTINGS
@given(st.lists(payload_values, max_size=5), st.integers(1, 4), st.lists(st.binary(max_size=4), max_size=5))
def test_placeholders_agree(items: list[Any], n: int, attachments: list[bytes]) -> None:
    for t in ("5", "6"):
        s = f"{t}{n}-" + orjson.dumps(["ev", *items]).decode()
        check_frames([s, *attachments])
