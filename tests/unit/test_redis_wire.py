"""fastsio.adapters._wire against Node's own notepack.io (run as a real peer)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsio.adapter import BroadcastOptions
from fastsio.adapters import _wire
from fastsio.exceptions import ProtocolError

PEERS = Path(__file__).resolve().parent.parent / "peers"


def _node(jobs: list[dict[str, Any]], tz: str = "UTC") -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (run `bash ci/test.sh`)")
    env = dict(os.environ, TZ=tz, NODE_PATH=str(PEERS / "node_modules"))
    env.pop("NODE_OPTIONS", None)
    proc = subprocess.run(
        [node, str(PEERS / "redis_wire_codec.mjs")], input=json.dumps(jobs).encode(), cwd=PEERS,
        env=env, capture_output=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    assert len(lines) == len(jobs), lines
    return lines


def _tag(value: Any) -> Any:
    """Python value -> the tagged JSON the driver reads ({"$bin": hex})."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [_tag(v) for v in value]
    if isinstance(value, dict):
        return {k: _tag(v) for k, v in value.items()}
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: _untag(v) for k, v in value.items()}
    return value


# Values a socket.io packet holds, in every size class msgpack distinguishes.
ENCODE_CASES: list[Any] = [
    None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**53) + 1,
    0.5, -2.25, 1e-300, 3.141592653589793,
    "", "a", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "x" * 65536, "é€😀", "日本語" * 20,
    b"", b"\x00\x01\xff", bytes(range(256)) * 2, b"z" * 70000,
    [], list(range(15)), list(range(16)), list(range(70000)),
    {}, {f"k{i}": i for i in range(15)}, {f"k{i}": i for i in range(16)}, {f"k{i}": i for i in range(70000)},
    [1, [2, [3, {"a": b"\x01", "b": [None, "s", -7.5]}]]],
    {"type": 2, "data": ["ev", {"nested": [b"\x00" * 3, 1.5]}, None], "nsp": "/"},
]


@pytest.fixture(scope="module")
def node_encoded() -> list[str]:
    return [line["hex"] for line in _node([{"op": "encode", "value": _tag(v)} for v in ENCODE_CASES])]


def test_encode_matches_notepack_byte_for_byte(node_encoded: list[str]) -> None:
    for value, hex_ in zip(ENCODE_CASES, node_encoded):
        assert _wire.encode(value).hex() == hex_, repr(value)[:80]


def test_decode_reads_notepack_output(node_encoded: list[str]) -> None:
    for value, hex_ in zip(ENCODE_CASES, node_encoded):
        assert _wire.decode(bytes.fromhex(hex_)) == value, repr(value)[:80]


def test_every_binary_type_is_msgpack_bin() -> None:
    assert _wire.encode([b"ab", bytearray(b"ab"), memoryview(b"ab")]) == bytes.fromhex("93" + "c4026162" * 3)
    import array

    assert _wire.encode(array.array("B", b"ab")) == bytes.fromhex("c4026162")
    assert _wire.encode((1, 2)) == _wire.encode([1, 2])


def test_values_without_msgpack_form_take_their_json_form() -> None:
    import datetime
    import uuid

    u = uuid.UUID(int=1)
    assert _wire.decode(_wire.encode([u])) == [str(u)]
    d = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert _wire.decode(_wire.encode(d)) == "2026-01-02T03:04:05+00:00"
    with pytest.raises(TypeError):
        _wire.encode({1, 2})
    with pytest.raises(TypeError):
        _wire.encode(object())
    with pytest.raises(TypeError):
        _wire.encode(2**64)
    # the module packer is still usable after an error
    assert _wire.encode([1]) == b"\x91\x01"


LEGACY_CASES = [
    "d40000",  # undefined
    "92d40000a178",  # [undefined, "x"]
    "c70300616263",  # ext8 type 0 -> ArrayBuffer
    "c8000300616263",  # ext16 type 0
    "c900000003" + "00616263",  # ext32 type 0
    "d6ff00000001",  # timestamp 32
    "d6ff7fffffff",
    "d7ff" + format((123_000_000 << 34) | 5, "016x"),  # timestamp 64 with ns
    "c70cff" + "00000000" + "ffffffffffffffff",  # timestamp 96, -1 s
    "c70cff" + "1dcd6500" + "fffffffffffffffe",  # -2 s + 0.5 s
    "c70cff" + "3b9ac9ff" + "fffffffffffffffe",  # -2 s + 0.999999999 s
    "c70cff" + "00000000" + "0000e8d4a5100000",  # beyond year 9999 (seconds 256e9)
    "c70cff" + "00000000" + "ffff0001ffffffff",  # outside a Date's range -> null
    "92d5070102a178",  # fixext2 of another type -> [type, Buffer]
    "81a161d6ff00000002",  # timestamp inside a map
]


def test_legacy_and_ext_forms_decode_as_a_node_client_sees_them() -> None:
    lines = _node([{"op": "decode", "hex": h} for h in LEGACY_CASES])
    for hex_, line in zip(LEGACY_CASES, lines):
        assert line["event"] == "decoded", line
        got = _wire.decode(bytes.fromhex(hex_))
        # what a Node client finally sees is the JSON form: compare that.
        if isinstance(got, (bytes, bytearray)):
            got_view: Any = {"$bin": bytes(got).hex()}
        else:
            got_view = _tag(got)
        want = line["value"]
        if hex_ == "92d5070102a178":
            # notepack gives [7, Buffer]: a nested array; its JSON form is the same.
            assert got == [[7, b"\x01\x02"], "x"]
            continue
        assert got_view == want, (hex_, got, want)


def test_iso_strings_match_javascript() -> None:
    samples = [0, 1, -1, 999, -999, 1_700_000_000_123, -62_198_755_200_000, -62_198_755_200_001,
               253_402_300_799_999, 253_402_300_800_000, 8_640_000_000_000_000, -8_640_000_000_000_000,
               -1_000_000_000_000_000]
    jobs = [{"op": "encode", "value": {"$date": ms}} for ms in samples]
    hexes = [line["hex"] for line in _node(jobs)]
    decoded = _node([{"op": "decode", "hex": h} for h in hexes])
    for ms, h, line in zip(samples, hexes, decoded):
        assert _wire.iso_from_ms(ms) == line["value"], ms
        assert _wire.decode(bytes.fromhex(h)) == line["value"], ms
    assert _wire.iso_from_ms(8_640_000_000_000_001) is None


MALFORMED = [b"", b"\x92\x01", b"\xc4\x05ab", b"\x91\x01\x02", b"\xa2\xff\xfe", b"\xc1", b"\x81\x90\x01",
             b"\xdd\xff\xff\xff\xff", b"\x91" * 5000 + b"\xc0"]


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_msgpack_raises_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        _wire.decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    try:
        _wire.decode_any(data)
    except ProtocolError:
        pass


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=40) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(_values)
def test_round_trip(value: Any) -> None:
    assert _wire.decode(_wire.encode(value)) == value


@settings(max_examples=50, deadline=None)
@given(_values)
def test_truncated_encoding_raises_protocol_error(value: Any) -> None:
    data = _wire.encode(value)
    for cut in {0, len(data) // 2, len(data) - 1}:
        if cut < len(data):
            with pytest.raises(ProtocolError):
                _wire.decode(data[:cut])


def test_json_renders_binary_as_node_buffer() -> None:
    assert json.loads(_wire.encode_json({"data": ["ev", b"\x01\x02"]})) == {
        "data": ["ev", {"type": "Buffer", "data": [1, 2]}]}
    assert _wire.decode_any(b'{"a":1}') == {"a": 1}
    assert _wire.decode_any(_wire.encode({"a": 1})) == {"a": 1}
    for bad in (b"", b"{", b'{"a":', b"{\xff}"):
        with pytest.raises(ProtocolError):
            _wire.decode_any(bad)


def test_uid_has_node_uid2_shape() -> None:
    ids = {_wire.uid() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{6}", i) for i in ids)


def test_broadcast_options_to_and_from_the_wire() -> None:
    opts = BroadcastOptions(["r1"], ["x"], {"volatile": True, "timeout": 2.5, "compress": False, "private": 1})
    wire = _wire.opts_to_wire(opts)
    assert wire == {"rooms": ["r1"], "except": ["x"], "flags": {"volatile": True, "timeout": 2500, "compress": False}}
    assert _wire.opts_to_wire(opts, flags=False) == {"rooms": ["r1"], "except": ["x"]}
    assert _wire.opts_to_wire(BroadcastOptions(flags={"timeout": 5}))["flags"] == {"timeout": 5000}
    back = _wire.opts_from_wire(wire)
    assert back.rooms == {"r1"} and back.except_ == {"x"}
    assert back.flags == {"volatile": True, "timeout": 2.5, "compress": False}
    node = _wire.opts_from_wire({"rooms": [5, 1.5, "a"], "except": [], "flags": {"expectSingleResponse": True,
                                                                                "unknown": 1}})
    assert node.rooms == {"5", "1.5", "a"} and node.flags == {"expect_single_response": True}
    assert _wire.opts_from_wire({}).rooms == frozenset()


@pytest.mark.parametrize("bad", [None, [], {"rooms": "r"}, {"rooms": [None]}, {"except": [[1]]},
                                 {"flags": []}, {"flags": {"timeout": "5"}}, {"rooms": [True]}])
def test_malformed_broadcast_options_raise_protocol_error(bad: Any) -> None:
    with pytest.raises(ProtocolError):
        _wire.opts_from_wire(bad)


def test_node_date_string_matches_node() -> None:
    samples = [0, 1_764_105_877_000, 1_764_105_877_999, 951_782_400_000]
    script = "for (const ms of %s) console.log(new Date(ms).toString())" % json.dumps(samples)
    env = dict(os.environ, TZ="UTC")
    env.pop("NODE_OPTIONS", None)
    out = subprocess.run([shutil.which("node") or "node", "-e", script], env=env, capture_output=True,
                         timeout=30, check=True).stdout.decode().splitlines()
    assert [_wire.node_date_string(ms) for ms in samples] == out


def _fake_socket() -> Any:
    from fastsio.socket import Handshake

    hs = Handshake(headers={"host": "x"}, address="127.0.0.1", xdomain=False, secure=False,
                   issued=1_764_105_877_000, url="/socket.io/?EIO=4", query={"EIO": "4"}, auth={"t": 1})
    return SimpleNamespace(id="abc", handshake=hs, rooms={"abc", "r1"}, data={"n": 1})


def test_socket_to_wire_and_back() -> None:
    wire = _wire.socket_to_wire(_fake_socket())
    assert list(wire) == ["id", "handshake", "rooms", "data"]
    assert list(wire["handshake"]) == ["headers", "time", "address", "xdomain", "secure", "issued", "url",
                                       "query", "auth"]
    assert wire["handshake"]["time"] == "Tue Nov 25 2025 21:24:37 GMT+0000 (Coordinated Universal Time)"
    assert sorted(wire["rooms"]) == ["abc", "r1"]
    back = _wire.socket_from_wire(json.loads(_wire.encode_json(wire)))
    assert back["id"] == "abc" and back["handshake"]["issued"] == 1_764_105_877_000
    assert back["handshake"]["auth"] == {"t": 1} and back["data"] == {"n": 1}
    from fastsio.broadcast import RemoteSocket

    remote = RemoteSocket(SimpleNamespace(), back)  # type: ignore[arg-type]
    assert remote.id == "abc" and remote.rooms == {"abc", "r1"} and remote.handshake.query == {"EIO": "4"}


@pytest.mark.parametrize("bad", [None, 1, {}, {"id": 1}, {"id": "a", "rooms": "r"}, {"id": "a", "handshake": 3},
                                 {"id": "a", "handshake": {"headers": []}}])
def test_malformed_fetched_socket_raises_protocol_error(bad: Any) -> None:
    with pytest.raises(ProtocolError):
        _wire.socket_from_wire(bad)


def test_fetched_socket_tolerates_odd_handshake_values() -> None:
    got = _wire.socket_from_wire({"id": "a", "handshake": {"issued": "x", "address": 5, "url": None}})
    assert got["handshake"]["issued"] == 0 and got["handshake"]["address"] == "" and got["data"] == {}


def test_msgpack_library_is_the_c_one() -> None:
    from msgpack import _cmsgpack  # noqa: F401  (a C-backed msgpack is a requirement)

    assert msgpack.Packer is _cmsgpack.Packer
