"""RedisStreamsAdapter without a network: entry encoding, hostile entries, options."""
from __future__ import annotations

import base64
from typing import Any

import msgpack
import pytest

import fastsio
from fastsio.adapters import redis_streams as rs
from fastsio.exceptions import ProtocolError


def fields(entry: dict[str, Any]) -> dict[bytes, bytes]:
    return {k.encode(): (v if isinstance(v, bytes) else str(v).encode()) for k, v in entry.items()}


def test_entry_layout_is_nodes() -> None:
    # As sniffed from Node's adapter (XRANGE of a two-server Node cluster).
    data = {"packet": {"type": 2, "data": ["hello2", 1, "a"]},
            "opts": {"rooms": ["r1"], "except": ["x"], "flags": {}}}
    entry = rs.encode_entry("3b5001603b880dae", "/", 3, data)
    assert entry == {
        "uid": "3b5001603b880dae", "nsp": "/", "type": "3",
        "data": b'{"packet":{"type":2,"data":["hello2",1,"a"]},"opts":{"rooms":["r1"],"except":["x"],"flags":{}}}',
    }
    assert rs.decode_entry(fields(entry)) == {"uid": "3b5001603b880dae", "nsp": "/", "type": 3, "data": data}


def test_binary_goes_as_base64_msgpack_and_back() -> None:
    data = {"packet": {"type": 2, "data": ["hello", 1, "a", b"\x01\x02"]},
            "opts": {"rooms": ["r1"], "except": [], "flags": {}}}
    entry = rs.encode_entry("u", "/", 3, data)
    # Node's own entry for the same broadcast, seen on the wire:
    node = b"gqZwYWNrZXSCpHR5cGUCpGRhdGGUpWhlbGxvAaFhxAIBAqRvcHRzg6Vyb29tc5GicjGmZXhjZXB0kKVmbGFnc4A="
    assert msgpack.unpackb(base64.b64decode(entry["data"])) == msgpack.unpackb(base64.b64decode(node))
    assert rs.decode_entry(fields({**entry, "data": node}))["data"] == data
    # only some types may carry binary; a join never does (JSON, as Node)
    join = rs.encode_entry("u", "/", 4, {"opts": {"rooms": [], "except": [], "flags": {}}, "rooms": ["r"]})
    assert join["data"].startswith(b"{")
    assert rs.encode_entry("u", "/", 3, data, only_plaintext=True)["data"].startswith(b"{")


@pytest.mark.parametrize("bad", [
    {},
    {b"uid": b"u", b"nsp": b"/"},
    {b"uid": b"u", b"nsp": b"/", b"type": b"x"},
    {b"uid": b"\xff", b"nsp": b"/", b"type": b"3"},
    {b"uid": b"u", b"nsp": b"/", b"type": b"3", b"data": b"{not json"},
    {b"uid": b"u", b"nsp": b"/", b"type": b"3", b"data": b"!!!notbase64"},
    {b"uid": b"u", b"nsp": b"/", b"type": b"3", b"data": base64.b64encode(b"\xc1")},
])
def test_hostile_entries_raise_protocol_error(bad: dict[bytes, bytes]) -> None:
    with pytest.raises(ProtocolError):
        rs.decode_entry(bad)


@pytest.mark.parametrize("entry", [
    {b"type": b"4"},
    {b"type": b"3", b"uid": b"u", b"nsp": b"/", b"data": b'{"packet":{"type":2,"data":["e"],"id":1},"opts":{}}'},
    {b"type": b"3", b"uid": b"u", b"nsp": b"/", b"data": b'{"packet":{"type":2,"data":["e"]},'
                                                          b'"opts":{"rooms":[],"except":[],"flags":{"volatile":true}}}'},
    {b"type": b"3", b"uid": b"u", b"nsp": b"/", b"data": b'{"packet":"x","opts":{}}'},
    {b"type": b"3", b"uid": b"u", b"nsp": b"/", b"data": b'{"packet":{"data":["e"]},"opts":{"rooms":{}}}'},
])
def test_entries_never_replayed(entry: dict[bytes, bytes]) -> None:
    assert rs._replayable(entry) is False


def test_replayable_entry() -> None:
    entry = fields(rs.encode_entry("u", "/chat", 3, {"packet": {"type": 2, "data": ["e", 1]},
                                                     "opts": {"rooms": [1, "r"], "except": ["x"], "flags": {}}}))
    nsp, args, opts = rs._replayable(entry)
    assert (nsp, args) == ("/chat", ["e", 1]) and opts.rooms == {"1", "r"} and opts.except_ == {"x"}


def test_offsets() -> None:
    assert rs._valid_offset("1796115273530-0")
    for bad in ("", "1", "-1", "1-", "a-1", "1-1-1", "１-1", "$", "+"):
        assert not rs._valid_offset(bad), bad
    assert rs._id_key("10-2") < rs._id_key("10-10") < rs._id_key("11-0")


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="nope"):
        rs.RedisStreamsAdapter.from_url("redis://127.0.0.1:1/0", nope=1)
    with pytest.raises(TypeError):
        rs.create_adapter(object(), streamName="x")
    for bad in ({"max_len": 0}, {"read_count": 1.5}, {"stream_name": ""}, {"heartbeat_timeout": -1},
                {"block_time": True}):
        with pytest.raises(ValueError):
            rs.create_adapter(object(), **bad)
    factory = rs.RedisStreamsAdapter.from_url("redis://127.0.0.1:1/0", stream_name="s", max_len=50,
                                              read_count=10, session_key_prefix="p:", heartbeat_interval=1,
                                              heartbeat_timeout=2)
    assert callable(factory)


async def test_restore_rejects_bad_input_without_redis() -> None:
    io = fastsio.Server(adapter=rs.create_adapter(object()), connection_state_recovery={})
    adapter = io.of("/").adapter
    assert isinstance(adapter, rs.RedisStreamsAdapter)
    for pid, offset in (("p", "bogus"), ("", "1-0"), ("p", "1-0 "), (1, "1-0")):
        assert adapter.restore_session(pid, offset) is None  # type: ignore[arg-type]
