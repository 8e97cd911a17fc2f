"""Unit tests for the Engine.IO codec, run against both implementations.

Vectors come from the engine.io-protocol README and the engine.io-parser
test suites (5.x for protocol v4, 2.x for protocol v3).
"""
from __future__ import annotations

import importlib

import pytest

from fastsio.exceptions import ProtocolError


@pytest.fixture
def eio(impl):
    return impl("eio_codec")


# -- names -------------------------------------------------------------------


def test_packet_types(eio):
    names = ["OPEN", "CLOSE", "PING", "PONG", "MESSAGE", "UPGRADE", "NOOP"]
    for value, name in enumerate(names):
        assert getattr(eio, name) == value
        assert eio.PacketType[name] == value
        assert int(getattr(eio.PacketType, name)) == value
    assert len(list(eio.PacketType)) == 7


def test_same_public_names(impl):
    pure = importlib.import_module("fastsio._pure.eio_codec")
    speedups = impl("eio_codec")

    assert pure.__all__ == speedups.__all__
    for name in pure.__all__:
        assert hasattr(speedups, name), name


# -- single packets (v4) -------------------------------------------------------


@pytest.mark.parametrize(
    "ptype, data, wire",
    [
        (4, "test", "4test"),
        (4, "HelloWorld", "4HelloWorld"),
        (2, "probe", "2probe"),
        (3, "probe", "3probe"),
        (0, '{"sid":"x"}', '0{"sid":"x"}'),
        (1, "", "1"),
        (6, "", "6"),
        (4, "€€€", "4€€€"),
        (4, "😀", "4😀"),
    ],
)
def test_encode_decode_text_packet(eio, ptype, data, wire):
    assert eio.encode_packet(ptype, data) == wire
    assert eio.encode_ws(ptype, data) == wire
    assert eio.decode_ws(wire) == (ptype, data)
    assert eio.decode_ws(wire, eio3=True) == (ptype, data)


def test_encode_defaults(eio):
    assert eio.encode_packet(eio.PING) == "2"
    assert eio.encode_ws(eio.PONG) == "3"
    assert eio.encode_ws(eio.UPGRADE, None) == "5"
    assert eio.encode_packet(eio.PacketType.MESSAGE, "x") == "4x"
    assert eio.encode_packet(ptype=4, data="kw") == "4kw"


def test_encode_ws_binary_v4(eio):
    data = b"\x01\x02\x03\x04"
    out = eio.encode_ws(eio.MESSAGE, data)
    assert out == data and type(out) is bytes
    assert eio.encode_ws(4, bytearray(b"ab")) == b"ab"
    assert eio.encode_ws(4, memoryview(b"ab")) == b"ab"
    assert eio.encode_ws(4, b"") == b""


def test_encode_ws_binary_v3(eio):
    # engine.io-protocol v3 README: "4|0|1|2|3|4|5"
    assert eio.encode_ws(4, bytes(range(6)), eio3=True) == b"\x04" + bytes(range(6))
    assert eio.encode_ws(4, b"", eio3=True) == b"\x04"
    assert eio.encode_ws(2, bytearray(b"x"), eio3=True) == b"\x02x"


def test_decode_ws_binary(eio):
    assert eio.decode_ws(b"\x02\x03") == (4, b"\x02\x03")
    assert eio.decode_ws(b"") == (4, b"")
    assert eio.decode_ws(bytearray(b"ab")) == (4, b"ab")
    assert eio.decode_ws(memoryview(b"ab")) == (4, b"ab")
    assert eio.decode_ws(b"\x04" + bytes(range(6)), eio3=True) == (4, bytes(range(6)))
    assert eio.decode_ws(b"\x04", eio3=True) == (4, b"")
    ptype, data = eio.decode_ws(b"\x06zz", eio3=True)
    assert (ptype, data) == (6, b"zz") and type(data) is bytes


def test_decode_ws_base64_text(eio):
    # v4 engine.io-parser decodes "b<base64>" as a binary MESSAGE anywhere
    assert eio.decode_ws("bAQIDBA==") == (4, b"\x01\x02\x03\x04")
    assert eio.decode_ws("b") == (4, b"")
    # v3 keeps the type after the "b"
    assert eio.decode_ws("b4AQIDBA==", eio3=True) == (4, b"\x01\x02\x03\x04")
    assert eio.decode_ws("b2AQ==", eio3=True) == (2, b"\x01")


@pytest.mark.parametrize(
    "msg, eio3, message",
    [
        ("", False, "empty packet"),
        ("", True, "empty packet"),
        ("7", False, "unknown packet type"),
        ("94103", False, "unknown packet type"),
        ("x", False, "unknown packet type"),
        ("é4", False, "unknown packet type"),
        ("\U0001F600", False, "unknown packet type"),
        ("b", True, "unknown packet type"),
        ("b9AA==", True, "unknown packet type"),
        ("bA", False, "invalid base64"),
        ("b4AQI", True, "invalid base64"),
        ("bAQ=", False, "invalid base64"),
        ("bA===", False, "invalid base64"),
        ("bAQ==AQ==", False, "invalid base64"),
        ("bAQ\n=", False, "invalid base64"),
        ("bAé==", False, "invalid base64"),
        ("bA€==", False, "invalid base64"),
        (b"", True, "empty packet"),
        (b"\x07", True, "unknown packet type"),
        (b"4", True, "unknown packet type"),
    ],
)
def test_decode_ws_errors(eio, msg, eio3, message):
    with pytest.raises(ProtocolError, match=f"^{message}$"):
        eio.decode_ws(msg, eio3=eio3)


def test_encoder_misuse(eio):
    for bad in (-1, 7, 10):
        with pytest.raises(ValueError, match="invalid packet type"):
            eio.encode_packet(bad, "x")
        with pytest.raises(ValueError, match="invalid packet type"):
            eio.encode_ws(bad, "x")
        with pytest.raises(ValueError, match="invalid packet type"):
            eio.encode_payload([(bad, "x")])
        with pytest.raises(ValueError, match="invalid packet type"):
            eio.encode_payload_v3([(bad, "x")])
    with pytest.raises(ValueError, match="binary data only in MESSAGE packets"):
        eio.encode_ws(2, b"x")
    with pytest.raises(ValueError, match="binary data only in MESSAGE packets"):
        eio.encode_payload([(2, b"x")])
    with pytest.raises(TypeError, match="data must be str"):
        eio.encode_packet(4, b"x")
    with pytest.raises(TypeError, match="data must be str, bytes or None"):
        eio.encode_ws(4, 12)
    with pytest.raises(TypeError, match="data must be str or bytes"):
        eio.encode_payload([(4, None)])
    with pytest.raises(TypeError, match="data must be str or bytes"):
        eio.encode_payload_v3([(4, 1.5)])
    with pytest.raises(TypeError, match="msg must be str or bytes"):
        eio.decode_ws(None)
    with pytest.raises(TypeError, match="body must be str or bytes"):
        eio.decode_payload(None)
    with pytest.raises(TypeError, match="body must be bytes"):
        eio.decode_payload_v3("1:4")


# -- v4 payloads ----------------------------------------------------------------


V4_PAYLOADS = [
    (
        [(0, ""), (1, ""), (2, "probe"), (3, "probe"), (4, "test")],
        "0\x1e1\x1e2probe\x1e3probe\x1e4test",
    ),
    ([(4, "test"), (4, b"\x01\x02\x03\x04")], "4test\x1ebAQIDBA=="),
    ([(4, "hello")], "4hello"),
    ([(4, b"")], "b"),
    ([(4, b"\xff")], "b/w=="),
    ([(4, b"\xfb\xff")], "b+/8="),
    ([(4, "€"), (4, "😀"), (6, "")], "4€\x1e4😀\x1e6"),
]


@pytest.mark.parametrize("packets, wire", V4_PAYLOADS)
def test_payload_v4(eio, packets, wire):
    assert eio.encode_payload(packets) == wire
    assert eio.decode_payload(wire.encode("utf-8")) == packets
    assert eio.decode_payload(wire) == packets
    assert eio.decode_payload(bytearray(wire.encode("utf-8"))) == packets
    assert eio.decode_payload(memoryview(wire.encode("utf-8"))) == packets


def test_payload_v4_accepts_tuples_and_lists(eio):
    assert eio.encode_payload(((4, "a"), [4, bytearray(b"\x00")])) == "4a\x1ebAA=="
    assert eio.encode_payload([]) == ""


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "empty payload"),
        ("", "empty payload"),
        (b"\x1e", "empty packet"),
        (b"4a\x1e", "empty packet"),
        (b"\x1e4a", "empty packet"),
        (b"4a\x1e\x1e4b", "empty packet"),
        (b"9", "unknown packet type"),
        (b"4a\x1ex", "unknown packet type"),
        (b"\xc3\xa9", "unknown packet type"),
        (b"4\xff", "invalid UTF-8"),
        (b"4\xed\xa0\x80", "invalid UTF-8"),  # an encoded surrogate
        (b"4a\x1e4\xc3", "invalid UTF-8"),
        (b"bAQ", "invalid base64"),
        (b"bAQ\xc3\xa9=", "invalid base64"),
        ("bA€==", "invalid base64"),
        ("4a\x1e", "empty packet"),
        ("q", "unknown packet type"),
    ],
)
def test_decode_payload_errors(eio, body, message):
    with pytest.raises(ProtocolError, match=f"^{message}$"):
        eio.decode_payload(body)


def test_decode_payload_max_packets(eio):
    body = "\x1e".join(["2"] * 5)
    assert len(eio.decode_payload(body.encode(), max_packets=5)) == 5
    assert len(eio.decode_payload(body, max_packets=5)) == 5
    with pytest.raises(ProtocolError, match="^too many packets$"):
        eio.decode_payload(body.encode(), max_packets=4)
    with pytest.raises(ProtocolError, match="^too many packets$"):
        eio.decode_payload(body, max_packets=4)
    # the count is checked before any piece is looked at
    with pytest.raises(ProtocolError, match="^too many packets$"):
        eio.decode_payload(b"x\x1ex", max_packets=1)
    with pytest.raises(ProtocolError, match="^too many packets$"):
        eio.decode_payload(b"2\x1e2" * 10001)


# -- v3 payloads ----------------------------------------------------------------


V3_TEXT_PAYLOADS = [
    ([(4, "€€€"), (4, "α")], "4:4€€€2:4α"),
    ([(4, "hello"), (2, "")], "6:4hello1:2"),
    ([(2, "probe")], "6:2probe"),
    ([(4, b"\x01\x02\x03\x04")], "10:b4AQIDBA=="),
    ([(4, b"")], "2:b4"),
    ([(2, b"\x01")], "6:b2AQ=="),
    # a character outside the BMP is two UTF-16 code units
    ([(4, "😀")], "3:4😀"),
    ([(4, "a😀b"), (4, "😀😀")], "5:4a😀b5:4😀😀"),
    ([(0, '{"sid":"abc"}'), (4, "x")], '14:0{"sid":"abc"}2:4x'),
]


@pytest.mark.parametrize("packets, wire", V3_TEXT_PAYLOADS)
def test_payload_v3_text(eio, packets, wire):
    assert eio.encode_payload_v3(packets) == wire
    assert eio.decode_payload_v3(wire.encode("utf-8")) == packets
    assert eio.decode_payload_v3(bytearray(wire.encode("utf-8"))) == packets


def test_payload_v3_text_when_no_binary(eio):
    # supports_binary alone does not switch to the binary form
    assert eio.encode_payload_v3([(2, ""), (3, "")], supports_binary=True) == "1:21:3"


def test_payload_v3_empty(eio):
    # engine.io-parser 2.x encodes an empty packet list as "0:"
    assert eio.encode_payload_v3([]) == "0:"
    assert eio.encode_payload_v3([], supports_binary=True) == "0:"


V3_BINARY_PAYLOADS = [
    (
        [(4, b"\x01\x02\x03"), (4, "hello")],
        b"\x01\x04\xff\x04\x01\x02\x03" + b"\x00\x06\xff4hello",
    ),
    ([(4, b"")], b"\x01\x01\xff\x04"),
    ([(2, b"\x07")], b"\x01\x02\xff\x02\x07"),
    # string packets count UTF-8 bytes: "4€" is 4 bytes
    ([(4, "€"), (4, b"x")], b"\x00\x04\xff4\xe2\x82\xac" + b"\x01\x02\xff\x04x"),
    ([(4, b"\xaa" * 9)], b"\x01\x01\x00\xff\x04" + b"\xaa" * 9),
    ([(4, b"\xbb" * 122)], b"\x01\x01\x02\x03\xff\x04" + b"\xbb" * 122),
]


@pytest.mark.parametrize("packets, wire", V3_BINARY_PAYLOADS)
def test_payload_v3_binary(eio, packets, wire):
    assert eio.encode_payload_v3(packets, supports_binary=True) == wire
    assert eio.decode_payload_v3(wire) == packets
    assert eio.decode_payload_v3(memoryview(wire)) == packets


def test_payload_v3_binary_data_without_binary_support(eio):
    packets = [(4, b"\x01\x02\x03"), (4, "hello")]
    assert eio.encode_payload_v3(packets) == "6:b4AQID6:4hello"


@pytest.mark.parametrize(
    "body, message",
    [
        # engine.io-parser 2.x error vectors
        (b"", "empty payload"),
        (b"1!", "invalid length header"),
        (b"))", "invalid length header"),
        (b":::", "invalid length header"),
        (b"1:", "length past end"),
        (b"3:99:", "unknown packet type"),
        (b"1:aa", "unknown packet type"),
        (b"1:a2:b", "unknown packet type"),
        (b"@", "invalid length header"),
        # ours
        (b"0:", "zero-length packet"),
        (b"1:21", "invalid length header"),
        (b"1:2:", "invalid length header"),
        (b"12345678901:2", "invalid length header"),
        (b"\xd9\xa1:2", "invalid length header"),  # ARABIC-INDIC DIGIT ONE
        (b"1 :2", "invalid length header"),
        (b"+1:2", "invalid length header"),
        (b"9999999999:2", "length past end"),
        (b"2:4\xff", "invalid UTF-8"),
        (b"2:4\xf0\x9f\x98\x80", "length splits a character"),
        (b"1:\xf0\x9f\x98\x80", "length splits a character"),
        (b"4:b4AQ", "invalid base64"),
        (b"2:b9", "unknown packet type"),
        (b"1:b", "unknown packet type"),
        # binary form
        (b"\x02", "invalid length header"),  # not 0/1: the text form
        (b"\x01\x01\xff\x04\x05", "invalid binary flag"),
        (b"\x00", "invalid length header"),
        (b"\x00\xff", "invalid length header"),
        (b"\x00\x01", "invalid length header"),
        (b"\x00\x0a\xff4", "invalid length header"),
        (b"\x00" + b"\x01" * 11 + b"\xff", "invalid length header"),
        (b"\x00\x00\xff", "zero-length packet"),
        (b"\x00\x03\xff4a", "length past end"),
        (b"\x00\x09" * 1 + b"\x09" * 9 + b"\xff", "length past end"),
        (b"\x00\x02\xff4\xff", "invalid UTF-8"),
        (b"\x00\x02\xff9a", "unknown packet type"),
        (b"\x00\x01\xffb", "unknown packet type"),
        (b"\x01\x02\xff\x07a", "unknown packet type"),
    ],
)
def test_decode_payload_v3_errors(eio, body, message):
    with pytest.raises(ProtocolError, match=f"^{message}$"):
        eio.decode_payload_v3(body)


def test_decode_payload_v3_leading_zeros(eio):
    # engine.io-parser compares the length loosely, so "01" means 1
    assert eio.decode_payload_v3(b"01:2") == [(2, "")]
    assert eio.decode_payload_v3(b"\x00\x00\x01\xff2") == [(2, "")]


def test_decode_payload_v3_base64_in_binary_form(eio):
    # a text packet inside the binary form may itself be "b<digit><base64>"
    with pytest.raises(ProtocolError, match="^invalid base64$"):
        eio.decode_payload_v3(b"\x00\x04\xffb4AA")
    assert eio.decode_payload_v3(b"\x00\x06\xffb4AA==") == [(4, b"\x00")]


def test_decode_payload_v3_max_packets(eio):
    text = b"1:2" * 5
    binary = b"\x00\x01\xff2" * 5
    for body in (text, binary):
        assert len(eio.decode_payload_v3(body, max_packets=5)) == 5
        with pytest.raises(ProtocolError, match="^too many packets$"):
            eio.decode_payload_v3(body, max_packets=4)


def test_encode_payload_v3_lone_surrogate(eio):
    # not refused: engine.io-parser's UTF-8 encoder is lenient too
    out = eio.encode_payload_v3([(4, "\ud800"), (4, b"")], supports_binary=True)
    assert out == b"\x00\x04\xff4\xed\xa0\x80\x01\x01\xff\x04"
    assert eio.encode_payload_v3([(4, "\ud800")]) == "2:4\ud800"
