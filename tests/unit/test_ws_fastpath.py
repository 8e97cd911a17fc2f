"""The WebSocket broadcast fast path: frames built once per broadcast per kind (issue 14 A)."""
from __future__ import annotations

import zlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fastsio.engineio import transport
from fastsio.engineio.transport import PreparedMessage, frame_packets


def _inflate_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Server frames -> [(opcode, payload)], RSV1 frames inflated."""
    out = []
    i = 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        n = b1 & 0x7F
        j = i + 2
        if n == 126:
            n = int.from_bytes(data[j:j + 2], "big")
            j += 2
        elif n == 127:
            n = int.from_bytes(data[j:j + 8], "big")
            j += 8
        payload = data[j:j + n]
        if b0 & 0x40:
            payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        out.append((b0 & 0x0F, payload))
        i = j + n
    return out


def test_deflate_frames_cached_for_any_threshold(monkeypatch: Any) -> None:
    calls = []
    real = transport.deflate_message

    def counting(data: bytes) -> bytes:
        calls.append(data)
        return real(data)

    monkeypatch.setattr(transport, "deflate_message", counting)
    msg = PreparedMessage(['2["msg","hello"]'])
    first = msg.ws_bytes_deflate(4, 0)
    assert msg.ws_bytes_deflate(4, 0) is first
    assert len(calls) == 1
    v3 = msg.ws_bytes_deflate(3, 0)
    assert msg.ws_bytes_deflate(3, 0) is v3 and len(calls) == 2
    assert _inflate_frames(first) == [(1, b'42["msg","hello"]')]
    # another threshold is built once too (it replaces the cached one)
    other = msg.ws_bytes_deflate(4, 5)
    assert msg.ws_bytes_deflate(4, 5) is other and len(calls) == 3
    assert other == first


def test_nothing_to_compress_shares_the_plain_frames() -> None:
    msg = PreparedMessage(['2["small",1]'])
    assert msg.ws_bytes_deflate(4, 1024) is msg.ws_bytes(4)
    assert msg.ws_bytes_deflate(3, 1024) is msg.ws_bytes(3)
    off = PreparedMessage(["2" + "x" * 5000], compress=False)
    assert off.ws_bytes_deflate(4, 0) is off.ws_bytes(4)


parts = st.lists(st.one_of(st.text(max_size=300).map(lambda s: "2" + s), st.binary(max_size=300)),
                 min_size=1, max_size=3)


@settings(max_examples=100, deadline=None)
@given(parts, st.sampled_from([3, 4]), st.integers(0, 200))
def test_cached_frames_equal_per_recipient_framing(ps: list[Any], protocol: int, threshold: int) -> None:
    msg = PreparedMessage(ps)
    expected = frame_packets(msg.packets, protocol == 3, True, threshold)
    assert msg.ws_bytes_deflate(protocol, threshold) == expected
    assert msg.ws_bytes(protocol) == frame_packets(msg.packets, protocol == 3)
