"""RFC 6455 frame codec: both implementations, through the ``impl`` fixture."""
from __future__ import annotations

import struct

import pytest

from fastsio.exceptions import ProtocolError, WebSocketError

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


@pytest.fixture
def ws(impl):
    return impl("ws_frames")


def raw(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = KEY,
    length: int | None = None,
    form: int | None = None,
) -> bytes:
    """Any frame, valid or not: ``form`` forces the 7/16/64-bit length encoding."""
    n = len(payload) if length is None else length
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
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


def feed_bytewise(parser, data: bytes) -> list:
    out = []
    for i in range(len(data)):
        out += parser.feed(data[i : i + 1])
    return out


def error_of(parser, data: bytes) -> tuple[int, str]:
    with pytest.raises(WebSocketError) as info:
        parser.feed(data)
    return info.value.code, info.value.reason


# --- RFC 6455 section 5.7 examples ------------------------------------------

def test_rfc_unmasked_hello_client_side(ws):
    p = ws.FrameParser(client_side=True)
    assert p.feed(bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])) == [(ws.OP_TEXT, "Hello", False)]


def test_rfc_masked_hello(ws):
    data = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    assert ws.FrameParser().feed(data) == [(1, "Hello", False)]
    assert ws.build_frame(ws.OP_TEXT, "Hello", mask=KEY) == data
    assert feed_bytewise(ws.FrameParser(), data) == [(1, "Hello", False)]


def test_rfc_fragmented_unmasked(ws):
    data = bytes([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F])
    assert ws.FrameParser(client_side=True).feed(data) == [(1, "Hello", False)]
    built = ws.build_frame(ws.OP_TEXT, b"Hel", fin=False) + ws.build_frame(ws.OP_CONT, b"lo")
    assert built == data


def test_rfc_ping_and_masked_pong(ws):
    ping = bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
    pong = bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    assert ws.FrameParser(client_side=True).feed(ping) == [(ws.OP_PING, b"Hello", False)]
    assert ws.FrameParser().feed(pong) == [(ws.OP_PONG, b"Hello", False)]
    assert ws.build_frame(ws.OP_PING, b"Hello") == ping
    assert ws.build_frame(ws.OP_PONG, b"Hello", mask=KEY) == pong


def test_rfc_256_and_64k_binary(ws):
    for n, head in ((256, b"\x82\x7e\x01\x00"), (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00")):
        body = bytes(range(256)) * (n // 256)
        frame = ws.build_frame(ws.OP_BINARY, body)
        assert frame[: len(head)] == head
        assert frame[len(head) :] == body
        assert ws.FrameParser(client_side=True).feed(frame) == [(2, body, False)]


# --- lengths, splitting, inputs ---------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001])
def test_lengths_round_trip(ws, n):
    body = bytes((i * 7 + 3) & 0xFF for i in range(n))
    masked = ws.build_frame(ws.OP_BINARY, body, mask=KEY)
    assert ws.FrameParser(100_000).feed(masked) == [(2, body, False)]
    assert ws.FrameParser(100_000, client_side=True).feed(ws.build_frame(ws.OP_BINARY, body)) == [
        (2, body, False)
    ]
    assert masked == raw(ws.OP_BINARY, body)


@pytest.mark.parametrize("form", [16, 64])
def test_non_minimal_length_accepted(ws, form):
    assert ws.FrameParser().feed(raw(1, b"hi", form=form)) == [(1, "hi", False)]


def test_split_at_every_point(ws):
    stream = (
        raw(1, "héllo wörld".encode())
        + raw(2, bytes(300))
        + raw(9, b"p")
        + raw(1, b"ab", fin=False)
        + raw(10, b"")
        + raw(0, b"cd", fin=False)
        + raw(0, b"ef")
        + raw(8, b"\x03\xe8bye")
    )
    want = [
        (1, "héllo wörld", False),
        (2, bytes(300), False),
        (9, b"p", False),
        (10, b"", False),
        (1, "abcdef", False),
        (8, b"\x03\xe8bye", False),
    ]
    assert ws.FrameParser().feed(stream) == want
    assert feed_bytewise(ws.FrameParser(), stream) == want
    for cut in range(1, len(stream)):
        p = ws.FrameParser()
        assert p.feed(stream[:cut]) + p.feed(stream[cut:]) == want


def test_many_small_frames_in_one_chunk(ws):
    stream = b"".join(raw(1, f"m{i}".encode(), mask=bytes([i & 0xFF, 1, 2, 3])) for i in range(500))
    assert ws.FrameParser().feed(stream) == [(1, f"m{i}", False) for i in range(500)]


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_input_types(ws, kind):
    assert ws.FrameParser().feed(kind(raw(2, b"xyz"))) == [(2, b"xyz", False)]


def test_empty_feed(ws):
    p = ws.FrameParser()
    assert p.feed(b"") == []
    assert p.feed(raw(1, b"a")[:1]) == []
    assert p.feed(b"") == []
    assert p.feed(raw(1, b"a")[1:]) == [(1, "a", False)]


def test_large_message_in_chunks(ws):
    body = bytes(range(256)) * 4000
    stream = raw(2, body[:500_000], fin=False) + raw(0, body[500_000:])
    p = ws.FrameParser(2_000_000)
    out = []
    for i in range(0, len(stream), 4093):
        out += p.feed(stream[i : i + 4093])
    assert out == [(2, body, False)]


# --- fragmentation and control frames ---------------------------------------

def test_interleaved_control_frames(ws):
    p = ws.FrameParser()
    assert p.feed(raw(2, b"one", fin=False)) == []
    assert p.feed(raw(9, b"ping")) == [(9, b"ping", False)]
    assert p.feed(raw(0, b"two", fin=False) + raw(10, b"pong")) == [(10, b"pong", False)]
    assert p.feed(raw(0, b"")) == [(2, b"onetwo", False)]
    assert p.feed(raw(1, b"next")) == [(1, "next", False)]


def test_utf8_split_across_fragments(ws):
    data = "€".encode()
    p = ws.FrameParser()
    assert p.feed(raw(1, data[:1], fin=False) + raw(0, data[1:2], fin=False) + raw(0, data[2:])) == [
        (1, "€", False)
    ]


def test_close_in_parser(ws):
    assert ws.FrameParser().feed(raw(8, b"")) == [(8, b"", False)]
    assert ws.FrameParser().feed(raw(8, b"\x0b\xb8")) == [(8, b"\x0b\xb8", False)]


# --- permessage-deflate flag ------------------------------------------------

def test_rsv1_compressed(ws):
    p = ws.FrameParser(allow_rsv1=True)
    bad_utf8 = b"\xff\xfe"
    assert p.feed(raw(1, bad_utf8, rsv=4)) == [(1, bad_utf8, True)]
    assert p.feed(raw(2, b"ab", rsv=4, fin=False) + raw(9, b"") + raw(0, b"cd")) == [
        (9, b"", False),
        (2, b"abcd", True),
    ]
    assert p.feed(raw(1, b"plain")) == [(1, "plain", False)]


def test_rsv1_build(ws):
    frame = ws.build_frame(ws.OP_TEXT, b"zz", rsv1=True)
    assert frame[0] == 0xC1
    assert ws.FrameParser(allow_rsv1=True, client_side=True).feed(frame) == [(1, b"zz", True)]


# --- errors -----------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, stream, code",
    [
        ({}, raw(1, b"x", rsv=2), 1002),
        ({}, raw(1, b"x", rsv=1), 1002),
        ({}, raw(1, b"x", rsv=4), 1002),
        ({"allow_rsv1": True}, raw(9, b"x", rsv=4), 1002),
        ({"allow_rsv1": True}, raw(1, b"x", rsv=4, fin=False) + raw(0, b"x", rsv=4), 1002),
        ({}, raw(3, b"x"), 1002),
        ({}, raw(7, b"x"), 1002),
        ({}, raw(11, b"x"), 1002),
        ({}, raw(15, b"x"), 1002),
        ({}, raw(9, b"x", fin=False), 1002),
        ({}, raw(9, bytes(126)), 1002),
        ({}, raw(8, bytes(126), form=16), 1002),
        ({}, raw(1, b"x", mask=None), 1002),
        ({"client_side": True}, raw(1, b"x"), 1002),
        ({}, raw(0, b"x"), 1002),
        ({}, raw(1, b"x", fin=False) + raw(2, b"y"), 1002),
        ({}, raw(1, b"x", fin=False) + raw(1, b"y", fin=False), 1002),
        ({}, raw(2, b"", length=1 << 63, form=64), 1002),
        ({}, raw(1, b"\xc3\x28"), 1007),
        ({}, raw(1, b"\xed\xa0\x80"), 1007),
        ({}, raw(1, b"a\xe2\x82", fin=False) + raw(0, b""), 1007),
        ({}, raw(8, b"\x03"), 1002),
        ({}, raw(8, b"\x03\xec"), 1002),
        ({}, raw(8, b"\x03\xe8\xff"), 1007),
        ({"max_message_size": 10}, raw(2, bytes(11)), 1009),
        ({"max_message_size": 10}, raw(2, bytes(6), fin=False) + raw(0, bytes(5)), 1009),
        ({"max_fragments": 3}, raw(2, b"", fin=False) * 1 + raw(0, b"", fin=False) * 2 + raw(0, b""), 1008),
    ],
)
def test_errors(ws, kwargs, stream, code):
    p = ws.FrameParser(**kwargs)
    got, reason = error_of(p, stream)
    assert got == code
    assert reason
    assert p.closed
    # Byte by byte fails the same way.
    q = ws.FrameParser(**kwargs)
    with pytest.raises(WebSocketError) as info:
        feed_bytewise(q, stream)
    assert (info.value.code, info.value.reason) == (code, reason)


def test_error_is_protocol_error_and_sticky(ws):
    p = ws.FrameParser()
    assert not p.closed
    with pytest.raises(ProtocolError) as first:
        p.feed(raw(3))
    assert p.closed
    with pytest.raises(WebSocketError) as second:
        p.feed(raw(1, b"fine"))
    assert second.value is first.value


@pytest.mark.parametrize("length", [1_000_001, 1 << 40, (1 << 63) - 1])
def test_size_limit_decided_on_header(ws, length):
    # Only the header is fed: the limit must fire before any payload arrives.
    frame = raw(2, b"", length=length, form=64)
    assert error_of(ws.FrameParser(), frame)[0] == 1009
    header_without_mask = frame[:10]
    assert error_of(ws.FrameParser(), header_without_mask)[0] == 1009


def test_fragment_sum_limit_decided_on_header(ws):
    p = ws.FrameParser(10)
    assert p.feed(raw(2, bytes(6), fin=False)) == []
    # The second header alone (2 bytes, 5 more declared) is enough to refuse.
    assert error_of(p, raw(0, bytes(5))[:2]) == (1009, "message over 10 bytes")


def test_size_limit_exact(ws):
    assert ws.FrameParser(5).feed(raw(2, bytes(5))) == [(2, bytes(5), False)]
    p = ws.FrameParser(5)
    assert p.feed(raw(2, bytes(2), fin=False) + raw(0, bytes(3))) == [(2, bytes(5), False)]
    assert ws.FrameParser(0).feed(raw(1, b"")) == [(1, "", False)]
    # Control frames are bounded by 125 bytes, not by the message limit.
    assert ws.FrameParser(0).feed(raw(9, b"abc")) == [(9, b"abc", False)]


def test_max_fragments_exact(ws):
    stream = raw(2, b"a", fin=False) + raw(0, b"", fin=False) + raw(0, b"b")
    assert ws.FrameParser(max_fragments=3).feed(stream) == [(2, b"ab", False)]
    assert error_of(ws.FrameParser(max_fragments=2), stream)[0] == 1008
    assert ws.FrameParser(max_fragments=1).feed(raw(2, b"one")) == [(2, b"one", False)]


def test_client_side_rejects_masked(ws):
    assert error_of(ws.FrameParser(client_side=True), raw(9, b""))[0] == 1002


def test_messages_before_error_in_earlier_feeds_are_kept(ws):
    p = ws.FrameParser()
    assert p.feed(raw(1, b"ok")) == [(1, "ok", False)]
    assert error_of(p, raw(4))[0] == 1002


def test_constructor_checks(ws):
    with pytest.raises(ValueError):
        ws.FrameParser(-1)
    with pytest.raises(ValueError):
        ws.FrameParser(max_fragments=0)


# --- close helpers ----------------------------------------------------------

@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 4999])
def test_close_round_trip(ws, code):
    frame = ws.build_close(code, "bye ✓")
    assert frame[0] == 0x88 and not frame[1] & 0x80
    (op, payload, _), = ws.FrameParser(client_side=True).feed(frame)
    assert op == ws.OP_CLOSE
    assert ws.parse_close(payload) == (code, "bye ✓")


def test_close_1005_and_empty(ws):
    assert ws.build_close(1005) == b"\x88\x00"
    assert ws.build_close(1000) == b"\x88\x02\x03\xe8"
    assert ws.build_close() == b"\x88\x02\x03\xe8"
    assert ws.parse_close(b"") == (1005, "")
    assert ws.parse_close(bytearray(b"\x0f\xa0x")) == (4000, "x")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_parse_close_invalid_code(ws, code):
    with pytest.raises(WebSocketError) as info:
        ws.parse_close(struct.pack("!H", code))
    assert info.value.code == 1002


def test_parse_close_errors(ws):
    with pytest.raises(WebSocketError) as info:
        ws.parse_close(b"\x03")
    assert info.value.code == 1002
    with pytest.raises(WebSocketError) as info:
        ws.parse_close(b"\x03\xe8\xc0\xaf")
    assert info.value.code == 1007


@pytest.mark.parametrize("code", [1004, 1006, 1015, 2000, 5000])
def test_build_close_rejects(ws, code):
    with pytest.raises(ValueError):
        ws.build_close(code)


def test_build_close_reason_limit(ws):
    assert len(ws.build_close(1000, "x" * 123)) == 2 + 125
    with pytest.raises(ValueError):
        ws.build_close(1000, "x" * 124)


# --- builder and mask -------------------------------------------------------

def test_build_frame_checks(ws):
    for bad in (3, 7, 11, 15, -1, 16):
        with pytest.raises(ValueError):
            ws.build_frame(bad)
    with pytest.raises(ValueError):
        ws.build_frame(ws.OP_PING, bytes(126))
    with pytest.raises(ValueError):
        ws.build_frame(ws.OP_PING, fin=False)
    with pytest.raises(ValueError):
        ws.build_frame(ws.OP_CONT, b"x", rsv1=True)
    with pytest.raises(ValueError):
        ws.build_frame(ws.OP_CLOSE, rsv1=True)
    for mask in (b"abc", b"abcde", "abcd"):
        with pytest.raises(ValueError):
            ws.build_frame(ws.OP_TEXT, b"x", mask=mask)


def test_build_frame_types(ws):
    assert ws.build_frame(ws.OP_TEXT, "é") == b"\x81\x02\xc3\xa9"
    assert ws.build_frame(ws.OP_BINARY, bytearray(b"ab")) == b"\x82\x02ab"
    assert ws.build_frame(ws.OP_BINARY, memoryview(b"ab")) == b"\x82\x02ab"
    assert ws.build_frame(ws.OP_BINARY) == b"\x82\x00"
    assert type(ws.build_frame(ws.OP_BINARY, b"x")) is bytes


@pytest.mark.parametrize("n", range(0, 21))
def test_apply_mask(ws, n):
    data = bytes((i * 31 + 5) & 0xFF for i in range(n))
    masked = ws.apply_mask(data, KEY)
    assert masked == bytes(b ^ KEY[i % 4] for i, b in enumerate(data))
    assert ws.apply_mask(masked, KEY) == data


def test_apply_mask_rejects_bad_key(ws):
    for key in (b"", b"abc", b"abcde", None):
        with pytest.raises(ValueError):
            ws.apply_mask(b"data", key)


def test_opcodes(ws):
    assert (ws.OP_CONT, ws.OP_TEXT, ws.OP_BINARY, ws.OP_CLOSE, ws.OP_PING, ws.OP_PONG) == (0, 1, 2, 8, 9, 10)
    assert [(m.name, int(m)) for m in ws.Opcode] == [
        ("OP_CONT", 0),
        ("OP_TEXT", 1),
        ("OP_BINARY", 2),
        ("OP_CLOSE", 8),
        ("OP_PING", 9),
        ("OP_PONG", 10),
    ]
    assert ws.Opcode.OP_TEXT == ws.OP_TEXT
    assert type(ws.OP_TEXT) is int
