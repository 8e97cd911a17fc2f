"""The msgpack Socket.IO codec, on both implementations (``impl`` fixture).

The hex frames marked "notepack 2.2" were written by the npm
socket.io-msgpack-parser 3.0.2 Encoder (see also the live check in
test_notepack_agrees_live).
"""
from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fastsio.exceptions import ProtocolError

PEERS = Path(__file__).resolve().parents[1] / "peers"

# notepack 2.2: {type:2, data:["hi", Buffer[1,2], 1.5, null, {a:[1,{b:true}]}], nsp:"/", id:7}
NP_EVENT = "84a47479706502a46461746195a26869c4020102cb3ff8000000000000c081a161920181a162c3a36e7370a12fa2696407"
# notepack 2.2: {type:0, data:undefined, nsp:"/admin", id:undefined}
NP_CONNECT_UNDEFINED = "84a47479706500a464617461d40000a36e7370a62f61646d696ea26964d40000"
# notepack 2.2: {type:2, data:["ab", ArrayBuffer[9,8], new Date(1234567)], nsp:"/"}
NP_ARRAYBUFFER_DATE = "83a47479706502a46461746193a26162c702000908d700000000000012d687a36e7370a12f"


def packet_map(**fields: object) -> bytes:
    import msgpack

    return msgpack.packb(fields, use_bin_type=True)


@pytest.fixture
def codec(impl):  # type: ignore[no-untyped-def]
    return impl("msgpack_codec")


def test_decodes_what_notepack_writes(codec) -> None:  # type: ignore[no-untyped-def]
    p = codec.Decoder().feed(bytes.fromhex(NP_EVENT))
    assert (p.type, p.nsp, p.id) == (2, "/", 7)
    assert p.data == ["hi", b"\x01\x02", 1.5, None, {"a": [1, {"b": True}]}]
    p = codec.Decoder().feed(bytes.fromhex(NP_CONNECT_UNDEFINED))
    assert (p.type, p.nsp, p.data, p.id) == (0, "/admin", None, None)
    p = codec.Decoder().feed(bytes.fromhex(NP_ARRAYBUFFER_DATE))
    assert p.data == ["ab", b"\x09\x08", datetime.datetime(1970, 1, 1, 0, 20, 34, 567000, tzinfo=datetime.timezone.utc)]


def test_encodes_the_bytes_notepack_writes(codec) -> None:  # type: ignore[no-untyped-def]
    (frame,) = codec.encode(2, "/", ["hi", b"\x01\x02", 1.5, None, {"a": [1, {"b": True}]}], 7)
    assert frame.hex() == NP_EVENT


def test_binary_types_collapse_to_event_and_ack(codec) -> None:  # type: ignore[no-untyped-def]
    (frame,) = codec.encode(5, "/", ["up", bytearray(b"\x01"), memoryview(b"\x02")])
    p = codec.Decoder().feed(frame)
    assert p.type == 2 and p.data == ["up", b"\x01", b"\x02"]
    (frame,) = codec.encode(6, "/", [b"\x03"], 1)
    assert codec.Decoder().feed(frame).type == 3


def test_datetime_is_written_as_a_notepack_date(codec) -> None:  # type: ignore[no-untyped-def]
    when = datetime.datetime(1970, 1, 1, 0, 20, 34, 567000, tzinfo=datetime.timezone.utc)
    (frame,) = codec.encode(2, "/", ["ab", b"\x09\x08", when])
    assert frame.hex() == NP_ARRAYBUFFER_DATE.replace("c7020009", "c40209")  # bin, not ArrayBuffer
    assert codec.Decoder().feed(frame).data[2] == when


def test_undefined_is_absent_only_at_the_top(codec) -> None:  # type: ignore[no-untyped-def]
    # d4 00 00 inside data is None; as the id it means "no id"
    frame = bytes.fromhex("83a474797065 02 a464617461 93 a178 d40000 91d40000 a36e7370 a12f".replace(" ", ""))
    p = codec.Decoder().feed(frame)
    assert p.data == ["x", None, [None]] and p.id is None
    # a one-byte ArrayBuffer holding 0x00 (c7 01 00 00) is data, not undefined
    frame = bytes.fromhex("83a47479706502a46461746192a178c7010000a36e7370a12f")
    assert codec.Decoder().feed(frame).data == ["x", b"\x00"]


def test_other_ext_types_are_type_and_bytes(codec) -> None:  # type: ignore[no-untyped-def]
    frame = bytes.fromhex("83a47479706502a46461746192a178d505abcd a36e7370a12f".replace(" ", ""))
    assert codec.Decoder().feed(frame).data == ["x", [5, b"\xab\xcd"]]


def test_unknown_keys_are_ignored(codec) -> None:  # type: ignore[no-untyped-def]
    frame = packet_map(type=2, data=["ev"], options={"compress": True}, nsp="/")
    assert codec.Decoder().feed(frame).data == ["ev"]


@pytest.mark.parametrize(
    "frame, message",
    [
        (b"", "truncated msgpack"),
        (b"\xc1", "invalid msgpack"),
        (b"\x81", "truncated msgpack"),
        (b"\x80\x00", "trailing bytes"),
        (b"\x90", "invalid packet type"),
        (b"\xdd\xff\xff\xff\xff", "truncated msgpack"),  # 4 billion items in 5 bytes: refused before allocating
        (b"\xdf\xff\xff\xff\xff\x00", "truncated msgpack"),
        (b"\xc6\xff\xff\xff\xff\x00", "truncated msgpack"),
        (b"\xdb\x00\x00\x00\x05ab", "truncated msgpack"),
        (b"\x81\xa1a\xa2\xff\xfe", "invalid utf-8 string"),
        (b"\x81\x01\x02", "map key must be a string"),
        (b"\x81\x90\x02", "map key must be a string"),
    ],
)
def test_malformed_msgpack(codec, frame: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError, match=f"^{message}$"):
        codec.Decoder().feed(frame)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"nsp": "/", "data": ["x"]}, "invalid packet type"),
        ({"type": 5, "nsp": "/", "data": ["x"]}, "invalid packet type"),
        ({"type": -1, "nsp": "/", "data": ["x"]}, "invalid packet type"),
        ({"type": 2.0, "nsp": "/", "data": ["x"]}, "invalid packet type"),
        ({"type": True, "nsp": "/", "data": ["x"]}, "invalid packet type"),
        ({"type": 2, "data": ["x"]}, "invalid namespace"),
        ({"type": 2, "nsp": 1, "data": ["x"]}, "invalid namespace"),
        ({"type": 0, "nsp": "/", "data": None}, "invalid payload"),  # nil is not undefined
        ({"type": 0, "nsp": "/", "data": []}, "invalid payload"),
        ({"type": 1, "nsp": "/", "data": {}}, "invalid payload"),
        ({"type": 4, "nsp": "/", "data": 1}, "invalid payload"),
        ({"type": 2, "nsp": "/", "data": []}, "invalid payload"),
        ({"type": 2, "nsp": "/", "data": ["connect"]}, "invalid payload"),
        ({"type": 2, "nsp": "/", "data": [None]}, "invalid payload"),
        ({"type": 2, "nsp": "/", "data": {"a": 1}}, "invalid payload"),
        ({"type": 3, "nsp": "/", "data": "x"}, "invalid payload"),
        ({"type": 2, "nsp": "/", "data": ["x"], "id": "1"}, "invalid packet id"),
        ({"type": 2, "nsp": "/", "data": ["x"], "id": -1}, "invalid packet id"),
        ({"type": 2, "nsp": "/", "data": ["x"], "id": 2**53}, "invalid packet id"),
        ({"type": 2, "nsp": "/", "data": ["x"], "id": 1.5}, "invalid packet id"),
        ({"type": 2, "nsp": "/", "data": ["x"], "id": None}, "invalid packet id"),
    ],
)
def test_invalid_packets(codec, fields: dict[str, object], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError, match=f"^{message}$"):
        codec.Decoder().feed(packet_map(**fields))


def test_valid_packet_shapes(codec) -> None:  # type: ignore[no-untyped-def]
    d = codec.Decoder()
    assert d.feed(packet_map(type=0, nsp="/")).data is None
    assert d.feed(packet_map(type=0, nsp="/", data={"token": 1})).data == {"token": 1}
    assert d.feed(packet_map(type=1, nsp="/x")).type == 1
    assert d.feed(packet_map(type=4, nsp="/", data="nope")).data == "nope"
    assert d.feed(packet_map(type=3, nsp="/", data=[], id=0)).id == 0
    assert d.feed(packet_map(type=2, nsp="/", data=[42], id=2**53 - 1)).id == 2**53 - 1


def test_depth_is_bounded(codec) -> None:  # type: ignore[no-untyped-def]
    def nested(depth: int) -> bytes:
        # data = [ "x", [[[...]]] ] with ``depth`` levels counting the data list
        inner = b"\x90"
        for _ in range(depth - 2):
            inner = b"\x91" + inner
        data = b"\x92\xa1x" + inner
        return b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data" + data

    assert codec.Decoder(max_depth=5).feed(nested(5)).type == 2
    with pytest.raises(ProtocolError, match="^nesting too deep$"):
        codec.Decoder(max_depth=5).feed(nested(6))
    # a megabyte of nesting is refused without exhausting any stack
    with pytest.raises(ProtocolError, match="^nesting too deep$"):
        codec.Decoder().feed(b"\x91" * 1_000_000)


def test_binary_values_are_bounded(codec) -> None:  # type: ignore[no-untyped-def]
    frame = packet_map(type=2, nsp="/", data=["x"] + [b"a"] * 3)
    assert codec.Decoder(max_attachments=3).feed(frame).data[1:] == [b"a"] * 3
    with pytest.raises(ProtocolError, match="^too many attachments$"):
        codec.Decoder(max_attachments=2).feed(frame)


def test_text_frames_are_refused(codec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError, match="binary"):
        codec.Decoder().feed('2["x"]')
    with pytest.raises(TypeError):
        codec.Decoder().feed(12)


def test_decoder_interface(codec) -> None:  # type: ignore[no-untyped-def]
    d = codec.Decoder()
    assert d.pending is False
    d.reset()
    assert d.feed(bytearray(packet_map(type=2, nsp="/", data=["x"]))).data == ["x"]
    assert d.feed(memoryview(packet_map(type=2, nsp="/", data=["y"]))).data == ["y"]


@pytest.mark.parametrize(
    "args, error",
    [
        ((7, "/", None, None), ValueError),
        ((True, "/", None, None), ValueError),
        ((2, 1, ["x"], None), TypeError),
        ((2, "x", ["x"], None), ValueError),
        ((2, "/", ["x"], -1), ValueError),
        ((2, "/", ["x"], 2**53), ValueError),
        ((2, "/", ["x"], "1"), TypeError),
        ((2, "/", ["x", object()], None), TypeError),
        ((2, "/", ["x", 2**64], None), TypeError),
    ],
)
def test_encode_errors(codec, args: tuple[object, ...], error: type) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        codec.encode(*args)


def test_encode_event(codec) -> None:  # type: ignore[no-untyped-def]
    assert codec.encode_event("/", "ev", (1, b"\x00"), 3) == codec.encode(2, "/", ["ev", 1, b"\x00"], 3)
    with pytest.raises(TypeError):
        codec.encode_event("/", 1, ())


def test_notepack_agrees_live(codec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The npm parser decodes what fastsio encodes, and the other way round."""
    node = shutil.which("node")
    assert node is not None, "node is required (bash ci/test.sh installs the peers)"
    ours = codec.encode(2, "/chat", ["ev", b"\x00\x01", {"k": [1.25, None, True]}, -5, 2**40], 9)[0]
    script = tmp_path / "check.cjs"
    script.write_text(
        "const p = require('socket.io-msgpack-parser');\n"
        "const d = new p.Decoder();\n"
        "d.on('decoded', (x) => {\n"
        "  const b = x.data[1];\n"
        "  console.log(JSON.stringify({type: x.type, nsp: x.nsp, id: x.id, ev: x.data[0],\n"
        "    bin: Buffer.isBuffer(b) ? b.toString('hex') : null, rest: x.data.slice(2)}));\n"
        "  const e = new p.Encoder();\n"
        "  console.log(e.encode({type: 3, data: [Buffer.from([5]), 'ok'], nsp: '/chat', id: 4})[0].toString('hex'));\n"
        "});\n"
        f"d.add(Buffer.from('{ours.hex()}', 'hex'));\n"
    )
    out = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=30, cwd=PEERS,
                         env={"NODE_PATH": str(PEERS / "node_modules"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert json.loads(first) == {"type": 2, "nsp": "/chat", "id": 9, "ev": "ev", "bin": "0001",
                                 "rest": [{"k": [1.25, None, True]}, -5, 2**40]}
    p = codec.Decoder().feed(bytes.fromhex(second))
    assert (p.type, p.nsp, p.data, p.id) == (3, "/chat", [b"\x05", "ok"], 4)
