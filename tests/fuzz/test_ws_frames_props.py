"""Properties of the WebSocket frame codec.

- pure == speedups: same messages, same error (type, code, reason) at the same
  feed() call, on random frame streams split at random points and on random bytes;
- parse(build(x)) == x;
- arbitrary bytes either parse or raise WebSocketError, never anything else.
"""
from __future__ import annotations

import importlib
import os
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsio.exceptions import WebSocketError

pure = importlib.import_module("fastsio._pure.ws_frames")

NO_EXT = os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0")
IMPLS: list[Any] = [pure]
if not NO_EXT:
    # A compiled run without the compiled module must fail, not skip.
    IMPLS.append(importlib.import_module("fastsio._speedups.ws_frames"))
needs_speedups = pytest.mark.skipif(NO_EXT, reason="pure-Python run")

SETTINGS = settings(max_examples=200, deadline=None)

parser_options = st.fixed_dictionaries(
    {
        "max_message_size": st.sampled_from([0, 5, 64, 1000, 1_000_000]),
        "max_fragments": st.sampled_from([1, 2, 5, 1000]),
        "client_side": st.booleans(),
        "allow_rsv1": st.booleans(),
    }
)


def raw_frame(opcode: int, payload: bytes, fin: bool, rsv: int, mask: bytes | None, form: int) -> bytes:
    n = len(payload)
    if n >= 65536:
        form = 64
    elif n >= 126 and form == 7:
        form = 16
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    maskbit = 0x80 if mask is not None else 0
    if form == 7:
        head += bytes([maskbit | n])
    elif form == 16:
        head += bytes([maskbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([maskbit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


payloads = st.one_of(
    st.binary(max_size=20),
    st.text(max_size=20).map(lambda s: s.encode("utf-8")),
    st.binary(min_size=120, max_size=300),
)


@st.composite
def frames(draw: Any, mostly_valid_for: dict[str, Any] | None = None) -> bytes:
    """One frame, usually well formed; sometimes any header bits at all."""
    opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10]) | st.integers(0, 15))
    payload = draw(payloads)
    if opcode == 8 and draw(st.booleans()):
        payload = struct.pack("!H", draw(st.sampled_from([1000, 1001, 1005, 1011, 2000, 3000, 4999]))) + payload[:10]
    fin = draw(st.booleans())
    rsv = draw(st.sampled_from([0, 0, 0, 4]) | st.integers(0, 7))
    mask = draw(st.none() | st.binary(min_size=4, max_size=4))
    form = draw(st.sampled_from([7, 7, 16, 64]))
    return raw_frame(opcode, payload, fin, rsv, mask, form)


@st.composite
def valid_streams(draw: Any, client_side: bool, allow_rsv1: bool) -> bytes:
    """A well-formed stream: fragmented messages with control frames between fragments."""
    out = b""
    for _ in range(draw(st.integers(0, 5))):
        opcode = draw(st.sampled_from([1, 2]))
        rsv = 4 if allow_rsv1 and draw(st.booleans()) else 0
        body = draw(payloads)
        if opcode == 1 and not rsv:
            body = draw(st.text(max_size=40)).encode("utf-8")
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
        pieces = [body[a:b] for a, b in zip([0] + cuts, cuts + [len(body)])]
        for i, piece in enumerate(pieces):
            mask = None if client_side else draw(st.binary(min_size=4, max_size=4))
            op = opcode if i == 0 else 0
            out += raw_frame(op, piece, i == len(pieces) - 1, rsv if i == 0 else 0, mask, draw(st.sampled_from([7, 16, 64])))
            if draw(st.integers(0, 3)) == 0:
                ctl = draw(st.sampled_from([9, 10, 8]))
                ctl_body = draw(st.binary(max_size=125)) if ctl != 8 else b"\x03\xe8" + draw(st.text(max_size=20)).encode()[:100]
                cmask = None if client_side else draw(st.binary(min_size=4, max_size=4))
                out += raw_frame(ctl, ctl_body, True, 0, cmask, 7)
    return out


@st.composite
def mutated_streams(draw: Any) -> tuple[dict[str, Any], bytes]:
    opts = draw(parser_options)
    data = bytearray(draw(valid_streams(opts["client_side"], opts["allow_rsv1"])))
    for _ in range(draw(st.integers(0, 2))):
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    return opts, bytes(data)


def run(mod: Any, opts: dict[str, Any], chunks: list[bytes]) -> list[Any]:
    """The result of each feed() call: a list of messages, or the error; stops at the first error."""
    parser = mod.FrameParser(**opts)
    results: list[Any] = []
    for chunk in chunks:
        try:
            results.append(parser.feed(chunk))
        except WebSocketError as exc:
            results.append(("error", type(exc), exc.code, exc.reason))
            assert parser.closed
            break
        except Exception as exc:  # pragma: no cover - a property failure
            raise AssertionError(f"feed raised {exc!r}, not WebSocketError") from exc
    return results


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, prev = [], 0
    for point in points + [len(data)]:
        chunks.append(data[prev:point])
        prev = point
    return chunks


@needs_speedups
@SETTINGS
@given(opts=parser_options, stream=st.lists(frames(), max_size=12), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_frame_streams_pure_equals_speedups(opts: dict[str, Any], stream: list[bytes], cuts: list[int]) -> None:
    data = b"".join(stream)
    chunks = split(data, cuts)
    results = [run(mod, opts, chunks) for mod in IMPLS]
    assert results[0] == results[1]


@needs_speedups
@SETTINGS
@given(case=mutated_streams(), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_mutated_streams_pure_equals_speedups(case: tuple[dict[str, Any], bytes], cuts: list[int]) -> None:
    opts, data = case
    chunks = split(data, cuts)
    results = [run(mod, opts, chunks) for mod in IMPLS]
    assert results[0] == results[1]
    # Same outcome as one chunk: same messages, or the same error.
    whole = run(IMPLS[0], opts, [data])
    if isinstance(whole[-1], tuple):
        assert results[0][-1] == whole[-1]
    else:
        assert [m for r in results[0] for m in r] == whole[0]


@SETTINGS
@given(client_side=st.booleans(), allow_rsv1=st.booleans(), data=st.data())
def test_valid_streams_parse(client_side: bool, allow_rsv1: bool, data: Any) -> None:
    stream = data.draw(valid_streams(client_side, allow_rsv1))
    opts = {"client_side": client_side, "allow_rsv1": allow_rsv1}
    for mod in IMPLS:
        (messages,) = run(mod, opts, [stream])
        assert not isinstance(messages, tuple)
        assert all(len(m) == 3 for m in messages)


@needs_speedups
@SETTINGS
@given(opts=parser_options, data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 10_000), max_size=4))
def test_random_bytes_pure_equals_speedups(opts: dict[str, Any], data: bytes, cuts: list[int]) -> None:
    chunks = split(data, cuts)
    results = [run(mod, opts, chunks) for mod in IMPLS]
    assert results[0] == results[1]


@SETTINGS
@given(opts=parser_options, stream=st.lists(frames(), max_size=8), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_split_does_not_change_the_outcome(opts: dict[str, Any], stream: list[bytes], cuts: list[int]) -> None:
    data = b"".join(stream)
    for mod in IMPLS:
        whole = run(mod, opts, [data])
        pieces = run(mod, opts, split(data, cuts))
        if whole and isinstance(whole[-1], tuple):
            # Same error wherever the stream was cut.
            assert pieces[-1] == whole[-1]
        else:
            assert [m for r in pieces for m in r] == whole[0]


@SETTINGS
@given(data=st.binary(max_size=300), opts=parser_options)
def test_random_bytes_parse_or_protocol_error(data: bytes, opts: dict[str, Any]) -> None:
    for mod in IMPLS:
        run(mod, opts, [data])
        run(mod, opts, [data[i : i + 1] for i in range(len(data))])


message = st.one_of(
    st.tuples(st.just(1), st.text(max_size=300)),
    st.tuples(st.just(2), st.binary(max_size=300)),
    st.tuples(st.sampled_from([9, 10]), st.binary(max_size=125)),
)


@SETTINGS
@given(
    msgs=st.lists(st.tuples(message, st.integers(1, 4), st.booleans(), st.binary(min_size=4, max_size=4)), max_size=8),
    client_side=st.booleans(),
)
def test_build_then_parse(msgs: list[Any], client_side: bool) -> None:
    for mod in IMPLS:
        stream = b""
        want = []
        for (opcode, body), parts, _compress, key in msgs:
            mask = None if client_side else key
            raw_body = body.encode("utf-8") if isinstance(body, str) else body
            if opcode >= 8:
                parts = 1
            step = -(-len(raw_body) // parts) or 1
            pieces = [raw_body[i : i + step] for i in range(0, len(raw_body), step)] or [b""]
            for i, piece in enumerate(pieces):
                op = opcode if i == 0 else mod.OP_CONT
                stream += mod.build_frame(op, piece, fin=i == len(pieces) - 1, mask=mask)
            want.append((opcode, body, False))
        parser = mod.FrameParser(client_side=client_side)
        assert parser.feed(stream) == want


@SETTINGS
@given(body=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4), opcode=st.sampled_from([1, 2]))
def test_compressed_round_trip(body: bytes, key: bytes, opcode: int) -> None:
    for mod in IMPLS:
        frame = mod.build_frame(opcode, body, rsv1=True, mask=key)
        assert mod.FrameParser(allow_rsv1=True).feed(frame) == [(opcode, body, True)]


@SETTINGS
@given(data=st.binary(max_size=64), key=st.binary(min_size=4, max_size=4))
def test_apply_mask(data: bytes, key: bytes) -> None:
    outs = [mod.apply_mask(data, key) for mod in IMPLS]
    assert all(o == outs[0] for o in outs)
    assert outs[0] == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    for mod in IMPLS:
        assert mod.apply_mask(outs[0], key) == data


@SETTINGS
@given(payload=st.binary(max_size=20) | st.integers(0, 70000).map(lambda c: struct.pack("!H", c & 0xFFFF) + b"ok"))
def test_parse_close_pure_equals_speedups(payload: bytes) -> None:
    results = []
    for mod in IMPLS:
        try:
            results.append(mod.parse_close(payload))
        except WebSocketError as exc:
            results.append((type(exc), exc.code, exc.reason))
    assert all(r == results[0] for r in results)


@SETTINGS
@given(code=st.sampled_from([1000, 1001, 1003, 1007, 1014]) | st.integers(3000, 4999), reason=st.text(max_size=30))
def test_close_round_trip(code: int, reason: str) -> None:
    if len(reason.encode("utf-8")) > 123:
        return
    frames_ = [mod.build_close(code, reason) for mod in IMPLS]
    assert all(f == frames_[0] for f in frames_)
    for mod in IMPLS:
        ((op, payload, _),) = mod.FrameParser(client_side=True).feed(frames_[0])
        assert op == mod.OP_CLOSE
        assert mod.parse_close(payload) == (code, reason)


@SETTINGS
@given(
    opcode=st.integers(-1, 16),
    payload=st.binary(max_size=200),
    fin=st.booleans(),
    rsv1=st.booleans(),
    mask=st.none() | st.binary(min_size=3, max_size=5),
)
def test_build_frame_pure_equals_speedups(opcode: int, payload: bytes, fin: bool, rsv1: bool, mask: bytes | None) -> None:
    results = []
    for mod in IMPLS:
        try:
            results.append(mod.build_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask))
        except ValueError as exc:
            results.append((ValueError, str(exc)))
    assert all(r == results[0] for r in results)
