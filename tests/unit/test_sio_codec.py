"""Socket.IO v5 packet codec, run against both implementations.

Vectors come from socket.io-protocol's README (v5), "Sample session" and
"Packet encoding"; error cases follow Node's socket.io-parser 4.2.x.
"""
from __future__ import annotations

from typing import Any

import pytest

from fastsio.exceptions import ProtocolError


@pytest.fixture
def sio(impl: Any) -> Any:
    return impl("sio_codec")


def decode_all(sio: Any, frames: list[Any], **kw: Any) -> Any:
    """Feeds frames; returns the packet produced by the last one."""
    d = sio.Decoder(**kw)
    for f in frames[:-1]:
        assert d.feed(f) is None
        assert d.pending
    p = d.feed(frames[-1])
    assert p is not None
    assert not d.pending
    return p


# ---------------------------------------------------------------------------
# constants


def test_packet_types(sio: Any) -> None:
    names = ["CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"]
    for value, name in enumerate(names):
        assert getattr(sio, name) == value
        assert sio.PacketType[name] == value
        assert isinstance(getattr(sio, name), int)
    assert [int(m) for m in sio.PacketType] == list(range(7))


def test_constants(sio: Any) -> None:
    assert sio.MAX_SAFE_INTEGER == 2**53 - 1
    assert sio.RESERVED_EVENTS == frozenset(
        {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
    )
    assert isinstance(sio.RESERVED_EVENTS, frozenset)
    assert set(sio.__all__) >= {"Packet", "Decoder", "encode", "encode_event", "PacketType"}


# ---------------------------------------------------------------------------
# Packet


def test_packet_eq_repr(sio: Any) -> None:
    p = sio.Packet(sio.EVENT, "/a", ["x", 1], 3)
    assert (p.type, p.nsp, p.data, p.id) == (2, "/a", ["x", 1], 3)
    assert p == sio.Packet(2, "/a", ["x", 1], 3)
    assert p != sio.Packet(2, "/a", ["x", 1], 4)
    assert p != sio.Packet(2, "/b", ["x", 1], 3)
    assert p != sio.Packet(3, "/a", ["x", 1], 3)
    assert p != sio.Packet(2, "/a", ["x", 2], 3)
    assert p != "not a packet"
    assert repr(p) == "Packet(type=2, nsp='/a', data=['x', 1], id=3)"
    assert repr(sio.Packet(0)) == "Packet(type=0, nsp='/', data=None, id=None)"
    with pytest.raises(TypeError, match="Expected str, got int"):
        sio.Packet(0, 1)
    p.data = {"k": 1}
    p.id = None
    assert p == sio.Packet(2, "/a", {"k": 1})
    with pytest.raises(TypeError):
        hash(p)


def test_packet_type_argument(sio: Any) -> None:
    assert sio.Packet(sio.PacketType.ACK).type == 3
    assert type(sio.Packet(sio.PacketType.ACK).type) is int
    with pytest.raises(TypeError, match="'float' object cannot be interpreted as an integer"):
        sio.Packet(1.5)
    with pytest.raises(OverflowError, match="value too large to convert to int"):
        sio.Packet(2**40)


def test_decoder_options(sio: Any) -> None:
    with pytest.raises(TypeError):
        sio.Decoder(max_attachments="1")
    with pytest.raises(OverflowError):
        sio.Decoder(max_depth=2**80)


# ---------------------------------------------------------------------------
# encoding: README vectors


@pytest.mark.parametrize(
    "args, expected",
    [
        ((0,), "0"),
        ((0, "/", {"token": "123"}), '0{"token":"123"}'),
        ((0, "/admin", {"token": "123"}), '0/admin,{"token":"123"}'),
        ((0, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}), '0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'),
        ((1, "/admin"), "1/admin,"),
        ((2, "/", ["hello", 1]), '2["hello",1]'),
        ((2, "/admin", ["project:delete", 123], 456), '2/admin,456["project:delete",123]'),
        ((3, "/admin", [], 456), "3/admin,456[]"),
        ((3, "/", ["ok"], 0), '30["ok"]'),
        ((4, "/", {"message": "Not authorized"}), '4{"message":"Not authorized"}'),
        ((4, "/admin", "nope"), '4/admin,"nope"'),
        ((2, "/", ["é", "日本", "\U0001f600"]), '2["é","日本","\U0001f600"]'),
        ((2, "/ñs", ["a"], 7), '2/ñs,7["a"]'),
        ((2, "/", ["a"], 2**53 - 1), '29007199254740991["a"]'),
    ],
)
def test_encode_vectors(sio: Any, args: tuple[Any, ...], expected: str) -> None:
    assert sio.encode(*args) == [expected]


def test_encode_binary_event(sio: Any) -> None:
    out = sio.encode(sio.EVENT, "/", ["hello", b"\x01\x02\x03"])
    assert out == ['51-["hello",{"_placeholder":true,"num":0}]', b"\x01\x02\x03"]


def test_encode_binary_ack(sio: Any) -> None:
    out = sio.encode(sio.ACK, "/admin", [b"\x00"], 456)
    assert out == ['61-/admin,456[{"_placeholder":true,"num":0}]', b"\x00"]


def test_encode_binary_depth_first_order(sio: Any) -> None:
    data = ["ev", {"a": [b"0", (bytearray(b"1"), {"b": memoryview(b"2")})], "c": b"3"}, b"4"]
    out = sio.encode(sio.EVENT, "/", data)
    ph = '{"_placeholder":true,"num":%d}'
    assert out[0] == '55-["ev",{"a":[%s,[%s,{"b":%s}]],"c":%s},%s]' % (
        ph % 0, ph % 1, ph % 2, ph % 3, ph % 4
    )
    assert out[1:] == [b"0", b"1", b"2", b"3", b"4"]
    assert all(type(b) is bytes for b in out[1:])
    # the caller's data is left untouched
    assert data[1]["c"] == b"3"


def test_encode_binary_type_follows_content(sio: Any) -> None:
    assert sio.encode(sio.BINARY_EVENT, "/", ["a", 1]) == ['2["a",1]']
    assert sio.encode(sio.BINARY_ACK, "/", [1], 3) == ["33[1]"]
    assert sio.encode(sio.BINARY_EVENT, "/", ["a", b"x"])[0].startswith("51-")
    # only events and acks carry attachments
    with pytest.raises(TypeError):
        sio.encode(sio.CONNECT, "/", {"a": b"x"})


def test_encode_event_matches_encode(sio: Any) -> None:
    cases: list[tuple[Any, ...]] = [
        ("/", "hello", (1, "a")),
        ("/", "hello", []),
        ("/admin", "ev", [{"k": [1, 2]}, None, True, 1.5], 9),
        ("/", "bin", (b"x", [bytearray(b"y")], {"z": memoryview(b"z")}), 1),
        ("/ä", "ünï", ("ç",)),
    ]
    for case in cases:
        nsp, event, args = case[:3]
        id = case[3] if len(case) > 3 else None
        assert sio.encode_event(nsp, event, args, id) == sio.encode(sio.EVENT, nsp, [event, *args], id)
    assert sio.encode_event("/", "hello", (1, "a")) == ['2["hello",1,"a"]']


@pytest.mark.parametrize(
    "args, exc, msg",
    [
        ((7,), ValueError, "invalid packet type"),
        ((-1,), ValueError, "invalid packet type"),
        (("2",), ValueError, "invalid packet type"),
        ((True,), ValueError, "invalid packet type"),
        ((2, "admin", ["a"]), ValueError, "invalid namespace"),
        ((2, "", ["a"]), ValueError, "invalid namespace"),
        ((2, "/a,b", ["a"]), ValueError, "invalid namespace"),
        ((2, b"/", ["a"]), TypeError, "nsp must be a str"),
        ((2, "/", ["a"], -1), ValueError, "invalid ack id"),
        ((2, "/", ["a"], 2**53), ValueError, "invalid ack id"),
        ((2, "/", ["a"], True), TypeError, "id must be an int or None"),
        ((2, "/", ["a"], "1"), TypeError, "id must be an int or None"),
    ],
)
def test_encode_errors(sio: Any, args: tuple[Any, ...], exc: type, msg: str) -> None:
    with pytest.raises(exc, match=msg):
        sio.encode(*args)


def test_encode_event_errors(sio: Any) -> None:
    with pytest.raises(TypeError, match="event must be a str"):
        sio.encode_event("/", 1, ())
    with pytest.raises(TypeError, match="args must be a tuple or list"):
        sio.encode_event("/", "a", "xy")
    with pytest.raises(ValueError, match="invalid namespace"):
        sio.encode_event("/a,", "a", ())
    with pytest.raises(ValueError, match="invalid ack id"):
        sio.encode_event("/", "a", (), -5)
    with pytest.raises(TypeError):  # orjson cannot serialise a set
        sio.encode_event("/", "a", ({1},))


# ---------------------------------------------------------------------------
# decoding: README vectors


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0", (0, "/", None, None)),
        ('0{"token":"123"}', (0, "/", {"token": "123"}, None)),
        ('0/admin,{"token":"123"}', (0, "/admin", {"token": "123"}, None)),
        ("0/admin", (0, "/admin", None, None)),
        ("0/admin?token=x,", (0, "/admin?token=x", None, None)),
        ('0/admin?token=x,{"a":1}', (0, "/admin?token=x", {"a": 1}, None)),
        ("1", (1, "/", None, None)),
        ("1/admin,", (1, "/admin", None, None)),
        ('2["hello",1]', (2, "/", ["hello", 1], None)),
        ('2/admin,456["project:delete",123]', (2, "/admin", ["project:delete", 123], 456)),
        ("3/admin,456[]", (3, "/admin", [], 456)),
        ('312["ok"]', (3, "/", ["ok"], 12)),
        ('30["ok"]', (3, "/", ["ok"], 0)),
        ('3007["ok"]', (3, "/", ["ok"], 7)),
        ('4{"message":"Not authorized"}', (4, "/", {"message": "Not authorized"}, None)),
        ('4"plain message"', (4, "/", "plain message", None)),
        ("2[1]", (2, "/", [1], None)),
        ("2[1.5]", (2, "/", [1.5], None)),
        ("2", (2, "/", None, None)),
        ("3", (3, "/", None, None)),
        ('2 ["a"] ', (2, "/", ["a"], None)),
        ('2["é","日本","\U0001f600"]', (2, "/", ["é", "日本", "\U0001f600"], None)),
        ('2/ñ,["a"]', (2, "/ñ", ["a"], None)),
        ('29007199254740991["a"]', (2, "/", ["a"], 2**53 - 1)),
        ('2/a["x"]', (2, '/a["x"]', None, None)),  # no comma: all of it is the namespace
        ('2["connection"]', (2, "/", ["connection"], None)),
    ],
)
def test_decode_vectors(sio: Any, text: str, expected: tuple[Any, ...]) -> None:
    p = sio.Decoder().feed(text)
    assert (p.type, p.nsp, p.data, p.id) == expected
    assert type(p.type) is int
    if expected[3] is not None:
        assert type(p.id) is int


def test_decode_binary_event(sio: Any) -> None:
    d = sio.Decoder()
    assert d.feed('51-["hello",{"_placeholder":true,"num":0}]') is None
    assert d.pending
    p = d.feed(b"\x01\x02\x03")
    assert not d.pending
    assert p == sio.Packet(sio.BINARY_EVENT, "/", ["hello", b"\x01\x02\x03"])
    assert type(p.data[1]) is bytes


def test_decode_binary_ack(sio: Any) -> None:
    p = decode_all(sio, ['61-/admin,456[{"_placeholder":true,"num":0}]', bytearray(b"\x03")])
    assert p == sio.Packet(sio.BINARY_ACK, "/admin", [b"\x03"], 456)
    assert type(p.data[0]) is bytes


def test_decode_binary_nested_and_repeated(sio: Any) -> None:
    text = (
        '53-["ev",{"a":[{"_placeholder":true,"num":2},{"_placeholder":true,"num":0}],'
        '"b":{"c":{"_placeholder":true,"num":1,"extra":"ignored"}}},{"_placeholder":true,"num":0}]'
    )
    p = decode_all(sio, [text, b"zero", memoryview(b"one"), b"two"])
    assert p.data == ["ev", {"a": [b"two", b"zero"], "b": {"c": b"one"}}, b"zero"]
    assert all(type(x) is bytes for x in (p.data[1]["b"]["c"], p.data[2]))


def test_decode_binary_placeholder_like_dicts(sio: Any) -> None:
    # "_placeholder" must be exactly true; other dicts are left alone
    text = '51-["ev",{"_placeholder":1,"num":0},{"_placeholder":"true"},{"_placeholder":true,"num":0}]'
    p = decode_all(sio, [text, b"x"])
    assert p.data == ["ev", {"_placeholder": 1, "num": 0}, {"_placeholder": "true"}, b"x"]
    # a non-binary event keeps placeholder-shaped dicts as they are
    p = sio.Decoder().feed('2["ev",{"_placeholder":true,"num":0}]')
    assert p.data == ["ev", {"_placeholder": True, "num": 0}]


def test_decode_many_attachments(sio: Any) -> None:
    n = 10
    body = ",".join('{"_placeholder":true,"num":%d}' % i for i in range(n))
    frames: list[Any] = [f'5{n}-["ev",{body}]'] + [bytes([i]) for i in range(n)]
    p = decode_all(sio, frames)
    assert p.data == ["ev"] + [bytes([i]) for i in range(n)]
    frames[0] = f'5{n:03d}-["ev",{body}]'  # leading zeros are still plain digits
    assert decode_all(sio, frames) == p


def test_decoder_reusable(sio: Any) -> None:
    d = sio.Decoder()
    for _ in range(3):
        assert d.feed('61-[{"_placeholder":true,"num":0}]') is None
        assert d.feed(b"a").data == [b"a"]
        assert d.feed('2["x"]').data == ["x"]


def test_roundtrip_vectors(sio: Any) -> None:
    cases: list[tuple[Any, ...]] = [
        (0, "/", None, None),
        (0, "/admin?x=1", {"a": [1, {"b": None}]}, None),
        (1, "/chat", None, None),
        (2, "/", ["ev", 1, "two", [3], {"4": 5.5}, True, None], 12),
        (3, "/", [], 99),
        (4, "/", {"message": "m", "data": [1]}, None),
    ]
    for t, nsp, data, id in cases:
        assert decode_all(sio, sio.encode(t, nsp, data, id)) == sio.Packet(t, nsp, data, id)
    data = ["ev", {"k": [b"\x00" * 100, bytearray(b"\xff")]}, memoryview(b"mv")]
    p = decode_all(sio, sio.encode(sio.EVENT, "/x", data, 5))
    assert p == sio.Packet(sio.BINARY_EVENT, "/x", ["ev", {"k": [b"\x00" * 100, b"\xff"]}, b"mv"], 5)


# ---------------------------------------------------------------------------
# decoding errors


@pytest.mark.parametrize(
    "text, msg",
    [
        ("", "empty packet"),
        ("7", "unknown packet type"),
        ("9[]", "unknown packet type"),
        ("a", "unknown packet type"),
        ("-1", "unknown packet type"),
        (" 2", "unknown packet type"),
        ("٢[\"a\"]", "unknown packet type"),  # a non-ASCII digit is not a type
        # attachments
        ('5["a"]', "illegal attachments"),
        ('5-["a"]', "illegal attachments"),
        ('51["a"]', "illegal attachments"),
        ("51", "illegal attachments"),
        ("5", "illegal attachments"),
        ('5a-["a"]', "illegal attachments"),
        ('5 1-["a"]', "illegal attachments"),
        ('5+1-["a"]', "illegal attachments"),
        ('51.0-["a"]', "illegal attachments"),
        ('50-["a"]', "illegal attachments"),
        ('6000-["a"]', "illegal attachments"),
        ('5١-["a"]', "illegal attachments"),
        ('511-["a"]', "too many attachments"),
        ("5" + "9" * 5000 + '-["a"]', "too many attachments"),
        ("5" + "9" * 5000, "illegal attachments"),
        # ack id
        ('29007199254740992["a"]', "invalid ack id"),
        ('299999999999999999999["a"]', "invalid ack id"),
        ("2" + "9" * 5000 + '["a"]', "invalid ack id"),
        ("3" + "1" * 17, "invalid ack id"),
        # JSON
        ("2[", "invalid JSON"),
        ('2["a"]x', "invalid JSON"),
        ('2["a"]["b"]', "invalid JSON"),
        ("2NaN", "invalid JSON"),
        ("2[1e400]", "invalid JSON"),
        ("2,[\"a\"]", "invalid JSON"),
        ("2/a,,[\"a\"]", "invalid JSON"),
        ('2["\ud800"]', "invalid JSON"),
        ("2٣[\"a\"]", "invalid JSON"),  # non-ASCII digits are not an ack id
        ("0{'a':1}", "invalid JSON"),
        # payload validity
        ("0[]", "invalid payload"),
        ('0"x"', "invalid payload"),
        ("0null", "invalid payload"),
        ("1{}", "invalid payload"),
        ("1null", "invalid payload"),
        ('1/admin,""', "invalid payload"),
        ("2{}", "invalid payload"),
        ("2[]", "invalid payload"),
        ('2"ev"', "invalid payload"),
        ("2[true]", "invalid payload"),
        ("2[false]", "invalid payload"),
        ("2[null]", "invalid payload"),
        ("2[[\"a\"]]", "invalid payload"),
        ("2[{}]", "invalid payload"),
        ('2["connect"]', "invalid payload"),
        ('2["connect_error"]', "invalid payload"),
        ('2["disconnect",1]', "invalid payload"),
        ('2["disconnecting"]', "invalid payload"),
        ('2["newListener"]', "invalid payload"),
        ('2["removeListener"]', "invalid payload"),
        ("3{}", "invalid payload"),
        ("3null", "invalid payload"),
        ('3"a"', "invalid payload"),
        ("4[]", "invalid payload"),
        ("4null", "invalid payload"),
        ('51-{"_placeholder":true,"num":0}', "invalid payload"),
        ('51-[true,{"_placeholder":true,"num":0}]', "invalid payload"),
        ('51-["connect",{"_placeholder":true,"num":0}]', "invalid payload"),
        ('61-{"_placeholder":true,"num":0}', "invalid payload"),
        # placeholders
        ('51-["a",{"_placeholder":true,"num":1}]', "illegal attachments"),
        ('51-["a",{"_placeholder":true,"num":-1}]', "illegal attachments"),
        ('51-["a",{"_placeholder":true,"num":0.0}]', "illegal attachments"),
        ('51-["a",{"_placeholder":true,"num":true}]', "illegal attachments"),
        ('51-["a",{"_placeholder":true,"num":false}]', "illegal attachments"),
        ('51-["a",{"_placeholder":true,"num":"0"}]', "illegal attachments"),
        ('51-["a",{"_placeholder":true,"num":null}]', "illegal attachments"),
        ('51-["a",{"_placeholder":true}]', "illegal attachments"),
        ('51-["a",{"_placeholder":true,"num":99999999999999999999}]', "illegal attachments"),
        ('51-["a",{"b":[{"_placeholder":true,"num":3}]}]', "illegal attachments"),
        ('51-["a"]', "unreferenced attachment"),
        ("51-", "unreferenced attachment"),
        ("51-/admin,", "unreferenced attachment"),
        ('62-[{"_placeholder":true,"num":1},{"_placeholder":true,"num":1}]', "unreferenced attachment"),
        ('51-["a",{"_placeholder":1,"num":0}]', "unreferenced attachment"),
    ],
)
def test_decode_errors(sio: Any, text: str, msg: str) -> None:
    d = sio.Decoder()
    with pytest.raises(ProtocolError) as info:
        d.feed(text)
    assert str(info.value) == msg
    assert type(info.value) is ProtocolError
    assert not d.pending
    # the decoder is still usable
    assert d.feed('2["ok"]').data == ["ok"]


def test_decode_error_41_is_ack_id(sio: Any) -> None:
    # a CONNECT_ERROR with an "id" and no payload is accepted, like Node
    assert sio.Decoder().feed("41") == sio.Packet(4, "/", None, 1)


def test_max_attachments_option(sio: Any) -> None:
    body = ",".join('{"_placeholder":true,"num":%d}' % i for i in range(3))
    text = f'53-["ev",{body}]'
    with pytest.raises(ProtocolError, match="too many attachments"):
        sio.Decoder(max_attachments=2).feed(text)
    d = sio.Decoder(max_attachments=3)
    assert d.feed(text) is None
    with pytest.raises(ProtocolError, match="too many attachments"):
        sio.Decoder(max_attachments=0).feed('61-[{"_placeholder":true,"num":0}]')


def test_too_many_checked_before_buffering(sio: Any) -> None:
    d = sio.Decoder()
    with pytest.raises(ProtocolError, match="too many attachments"):
        d.feed("5100-" + '["a"' + ',{"_placeholder":true,"num":0}' * 100 + "]")
    assert not d.pending
    with pytest.raises(ProtocolError, match="got binary data when not reconstructing a packet"):
        d.feed(b"x")


def test_binary_without_pending(sio: Any) -> None:
    d = sio.Decoder()
    for b in (b"x", bytearray(b"x"), memoryview(b"x"), b""):
        with pytest.raises(ProtocolError, match="^got binary data when not reconstructing a packet$"):
            d.feed(b)


def test_text_while_pending_drops_packet(sio: Any) -> None:
    d = sio.Decoder()
    assert d.feed('62-[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]') is None
    assert d.feed(b"a") is None
    with pytest.raises(ProtocolError, match="^got plaintext data when reconstructing a packet$"):
        d.feed('2["x"]')
    assert not d.pending
    with pytest.raises(ProtocolError, match="got binary data when not reconstructing a packet"):
        d.feed(b"b")
    assert d.feed('2["x"]').data == ["x"]


def test_reset(sio: Any) -> None:
    d = sio.Decoder()
    d.reset()
    assert d.feed('61-[{"_placeholder":true,"num":0}]') is None
    assert d.pending
    d.reset()
    assert not d.pending
    assert d.feed('2["x"]').data == ["x"]


def test_feed_type_error(sio: Any) -> None:
    d = sio.Decoder()
    for bad in (None, 1, ["2"], object()):
        with pytest.raises(TypeError, match="feed\\(\\) takes str or a bytes-like object"):
            d.feed(bad)


def test_empty_attachment_is_fine(sio: Any) -> None:
    assert decode_all(sio, ['61-[{"_placeholder":true,"num":0}]', b""]).data == [b""]


# ---------------------------------------------------------------------------
# depth


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def test_depth_limit_default(sio: Any) -> None:
    d = sio.Decoder()
    assert d.feed("3" + nested(100)).data is not None
    with pytest.raises(ProtocolError, match="^nesting too deep$"):
        d.feed("3" + nested(101))
    text = '2["ev",' + '{"a":' * 99 + "1" + "}" * 99 + "]"
    assert d.feed(text).data[0] == "ev"
    with pytest.raises(ProtocolError, match="^nesting too deep$"):
        d.feed('2["ev",' + '{"a":' * 100 + "1" + "}" * 100 + "]")


def test_depth_brackets_in_strings_do_not_count(sio: Any) -> None:
    d = sio.Decoder(max_depth=3)
    s = '"' + "[{" * 500 + '\\"[' + '"'
    assert d.feed(f'2["ev",[[{s}]]]').data[0] == "ev"
    with pytest.raises(ProtocolError, match="nesting too deep"):
        d.feed(f'2["ev",[[[{s}]]]]')


def test_depth_long_flat_payload(sio: Any) -> None:
    d = sio.Decoder(max_depth=2)
    data = ["ev"] + [[i] for i in range(1000)]
    assert d.feed(sio.encode(2, "/", data)[0]).data == data
    with pytest.raises(ProtocolError, match="nesting too deep"):
        d.feed(sio.encode(2, "/", data + [[[1]]])[0])


def test_depth_custom_limit(sio: Any) -> None:
    d = sio.Decoder(max_depth=1)
    assert d.feed('2["a",1]').data == ["a", 1]
    with pytest.raises(ProtocolError, match="nesting too deep"):
        d.feed('2["a",[]]')
    with pytest.raises(ProtocolError, match="nesting too deep"):
        sio.Decoder(max_depth=0).feed('2["a"]')


def test_decode_very_deep_does_not_recurse(sio: Any) -> None:
    d = sio.Decoder()
    for depth in (1500, 100_000):
        with pytest.raises(ProtocolError):
            d.feed("3" + nested(depth))
        with pytest.raises(ProtocolError):
            d.feed('2["a",' + '{"a":' * depth + "1" + "}" * depth + "]")
    # beyond orjson's own limit the error is still a ProtocolError
    with pytest.raises(ProtocolError, match="invalid JSON"):
        sio.Decoder(max_depth=10**6).feed("3" + nested(100_000))


def deep_list(depth: int, leaf: Any) -> Any:
    x = leaf
    for _ in range(depth):
        x = [x]
    return x


def deep_dict(depth: int, leaf: Any) -> Any:
    x = leaf
    for _ in range(depth):
        x = {"k": x}
    return x


@pytest.mark.parametrize("make", [deep_list, deep_dict])
@pytest.mark.parametrize("leaf", [1, b"bin"])
def test_encode_very_deep_does_not_recurse(sio: Any, make: Any, leaf: Any) -> None:
    data = make(100_000, leaf)
    # orjson refuses the depth with its TypeError; what matters is no RecursionError/crash
    with pytest.raises(TypeError):
        sio.encode(sio.EVENT, "/", ["ev", data])
    with pytest.raises(TypeError):
        sio.encode_event("/", "ev", (data,))
    with pytest.raises(TypeError):
        sio.encode(sio.ACK, "/", (data, tuple([data])))


def test_encode_moderately_deep_binary(sio: Any) -> None:
    data = deep_list(200, b"x")
    out = sio.encode_event("/", "ev", (data,))
    assert out[1:] == [b"x"]
    assert out[0] == '51-["ev",' + "[" * 200 + '{"_placeholder":true,"num":0}' + "]" * 200 + "]"


@pytest.mark.parametrize("text, max_depth", [
    ('2{"a":[[]],"a":1}', 1),
    ('2["a",{"x":[[[]]],"x":1}]', 2),
    ('2["e",{"k":' + "[" * 101 + "]" * 101 + ',"k":0}]', 100),
])
def test_depth_counts_what_was_sent_not_what_a_repeated_key_kept(impl: Any, text: str, max_depth: int) -> None:
    # found by the atheris harness: the twins disagreed when a deep value was
    # overwritten by a later value of the same key
    with pytest.raises(ProtocolError, match="nesting too deep"):
        impl("sio_codec").Decoder(max_depth=max_depth).feed(text)
