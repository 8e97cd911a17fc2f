"""Codec micro-benchmarks: fastsio._pure against fastsio._speedups.

Each benchmark sets a group named after the operation, so pytest-benchmark
prints the pure and compiled figures of one operation next to each other.
"""
from __future__ import annotations

import json
from types import ModuleType
from typing import Any, Callable

import pytest

Codec = Callable[[str], ModuleType]

PAYLOAD: dict[str, Any] = {"id": 123456, "user": "bench-user", "room": "all", "ts": 1700000000000, "text": "x" * 24}
BLOB = bytes(range(256)) * 40  # 10,240 bytes
MASK = b"\x37\xfa\x21\x3d"


def _group(benchmark: Any, name: str) -> None:
    benchmark.group = name


# ---------------------------------------------------------------- Engine.IO


def test_eio_encode_payload(benchmark: Any, codec: Codec) -> None:
    eio = codec("eio_codec")
    _group(benchmark, "eio_codec.encode_payload (10 text + 1 binary)")
    text = "2" + json.dumps(["msg", PAYLOAD], separators=(",", ":"))
    packets = [(4, text)] * 10 + [(4, BLOB[:1024])]
    out = benchmark(eio.encode_payload, packets)
    assert out.startswith("4")


def test_eio_decode_payload(benchmark: Any, codec: Codec) -> None:
    eio = codec("eio_codec")
    _group(benchmark, "eio_codec.decode_payload (10 text + 1 binary)")
    text = "2" + json.dumps(["msg", PAYLOAD], separators=(",", ":"))
    body = eio.encode_payload([(4, text)] * 10 + [(4, BLOB[:1024])]).encode()
    out = benchmark(eio.decode_payload, body)
    assert len(out) == 11


# ---------------------------------------------------------------- WebSocket frames


@pytest.mark.parametrize("size", [100, 10240])
def test_ws_build_frame(benchmark: Any, codec: Codec, size: int) -> None:
    ws = codec("ws_frames")
    _group(benchmark, f"ws_frames.build_frame ({size} B, unmasked)")
    data = BLOB[:size]
    out = benchmark(ws.build_frame, ws.OP_BINARY, data)
    assert len(out) > size


@pytest.mark.parametrize("size", [100, 10240])
def test_ws_frame_parser_feed(benchmark: Any, codec: Codec, size: int) -> None:
    ws = codec("ws_frames")
    count = 100 if size <= 100 else 10
    _group(benchmark, f"ws_frames.FrameParser.feed ({count} masked frames of {size} B)")
    text = ("4" + "y" * (size - 1)).encode()
    chunk = ws.build_frame(ws.OP_TEXT, text, mask=MASK) * count
    parser = ws.FrameParser(max_message_size=1 << 20)
    out = benchmark(parser.feed, chunk)
    assert len(out) == count


def test_ws_frame_parser_feed_split(benchmark: Any, codec: Codec) -> None:
    ws = codec("ws_frames")
    _group(benchmark, "ws_frames.FrameParser.feed (10 kB frame in 1460 B pieces)")
    frame = ws.build_frame(ws.OP_BINARY, BLOB, mask=MASK)
    pieces = [frame[i : i + 1460] for i in range(0, len(frame), 1460)]
    parser = ws.FrameParser(max_message_size=1 << 20)

    def feed_all() -> int:
        n = 0
        for p in pieces:
            n += len(parser.feed(p))
        return n

    assert benchmark(feed_all) == 1


# ---------------------------------------------------------------- Socket.IO


def test_sio_encode_event(benchmark: Any, codec: Codec) -> None:
    sio = codec("sio_codec")
    _group(benchmark, "sio_codec.encode (EVENT, ~100 B JSON)")
    out = benchmark(sio.encode, sio.EVENT, "/", ["msg", PAYLOAD])
    assert len(out) == 1


def test_sio_encode_binary(benchmark: Any, codec: Codec) -> None:
    sio = codec("sio_codec")
    _group(benchmark, "sio_codec.encode (EVENT with a 10 kB attachment)")
    out = benchmark(sio.encode, sio.EVENT, "/", ["msg", {"meta": PAYLOAD, "blob": BLOB}])
    assert len(out) == 2 and out[0].startswith("51-")


def test_sio_decoder_feed_event(benchmark: Any, codec: Codec) -> None:
    sio = codec("sio_codec")
    _group(benchmark, "sio_codec.Decoder.feed (EVENT with ack id, ~100 B JSON)")
    text = sio.encode(sio.EVENT, "/", ["echo", PAYLOAD], 17)[0]
    dec = sio.Decoder()
    out = benchmark(dec.feed, text)
    assert out is not None and out.id == 17


def test_sio_decoder_feed_binary(benchmark: Any, codec: Codec) -> None:
    sio = codec("sio_codec")
    _group(benchmark, "sio_codec.Decoder.feed (BINARY_EVENT + 10 kB attachment)")
    frames = sio.encode(sio.EVENT, "/", ["bcast", 200, {"_": 1, "blob": BLOB}], 3)
    dec = sio.Decoder()

    def feed_all() -> Any:
        packet = None
        for f in frames:
            packet = dec.feed(f)
        return packet

    out = benchmark(feed_all)
    assert out is not None and out.data[2]["blob"] == BLOB


# ---------------------------------------------------------------- fan-out


def test_fanout_target_ids(benchmark: Any, codec: Codec) -> None:
    fanout = codec("fanout")
    _group(benchmark, "fanout.target_ids (one room of 5,000, except the sender)")
    ids = [f"sid{i:05d}" for i in range(5000)]
    rooms_map = {"all": set(ids)}
    out = benchmark(fanout.target_ids, rooms_map, ids, ["all"], [], ["sid00000"])
    assert len(out) == 4999


# ---------------------------------------------------------------- msgpack parser


def test_msgpack_encode_event(benchmark: Any, codec: Codec) -> None:
    mp = codec("msgpack_codec")
    _group(benchmark, "msgpack_codec.encode (event, JSON-like payload)")
    out = benchmark(mp.encode, 2, "/", ["msg", PAYLOAD])
    assert isinstance(out[0], bytes)


def test_msgpack_decode_event(benchmark: Any, codec: Codec) -> None:
    mp = codec("msgpack_codec")
    _group(benchmark, "msgpack_codec.Decoder.feed (event, JSON-like payload)")
    frame = mp.encode(2, "/", ["msg", PAYLOAD], 7)[0]
    decoder = mp.Decoder()
    out = benchmark(decoder.feed, frame)
    assert out.id == 7


def test_msgpack_decode_binary(benchmark: Any, codec: Codec) -> None:
    mp = codec("msgpack_codec")
    _group(benchmark, "msgpack_codec.Decoder.feed (10 kB binary inline)")
    frame = mp.encode(2, "/", ["up", BLOB], 7)[0]
    decoder = mp.Decoder()
    out = benchmark(decoder.feed, frame)
    assert out.data[1] == BLOB
