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


# -- deliver: every WebSocket kind from the C loop ------------------------------------------


class Loop:
    def __init__(self) -> None:
        self.soon: list[Any] = []

    def call_soon(self, fn: Any) -> None:
        self.soon.append(fn)


class Counting:
    """A PreparedMessage that counts how often each kind of frames is asked for."""

    def __init__(self, parts: list[Any], compress: bool = True) -> None:
        self.msg = PreparedMessage(parts, compress)
        self.calls: list[tuple[Any, ...]] = []

    def ws_bytes(self, protocol: int) -> bytes:
        self.calls.append(("plain", protocol))
        return self.msg.ws_bytes(protocol)

    def ws_bytes_deflate(self, protocol: int, threshold: int = 1024) -> bytes:
        self.calls.append(("deflate", protocol, threshold))
        return self.msg.ws_bytes_deflate(protocol, threshold)


class Holder:
    def __init__(self) -> None:
        self.overflows = 0

    def _overflow(self) -> None:
        self.overflows += 1


class SlowConn:
    writable = True

    def __init__(self) -> None:
        self.got: list[Any] = []

    def send_prepared(self, msg: Any) -> None:
        self.got.append(msg)


class Sock:
    def __init__(self) -> None:
        self._conn = SlowConn()


def _targets(f: Any, kinds: list[int], threshold: int = 0) -> tuple[dict[str, Any], dict[str, Any], Any]:
    queue = f.FlushQueue(Loop())
    socks = {str(i): Sock() for i in range(len(kinds))}
    directs = {}
    for i, kind in enumerate(kinds):
        directs[str(i)] = f.DirectWriter(f.WriteBuffer(Holder(), queue), kind, threshold)
    return socks, directs, queue


def test_every_kind_gets_its_frames_built_once(impl: Any) -> None:
    f = impl("fanout")
    kinds = [0, 1, 2, 3] * 3
    socks, directs, _ = _targets(f, kinds, 0)
    msg = Counting(['2["msg","hello"]'])
    assert f.deliver(socks, list(socks), msg, False, directs) == len(kinds)
    assert sorted(msg.calls) == [("deflate", 3, 0), ("deflate", 4, 0), ("plain", 3), ("plain", 4)]
    expected = {0: msg.msg.ws_bytes(4), 1: msg.msg.ws_bytes(3), 2: msg.msg.ws_bytes_deflate(4, 0),
                3: msg.msg.ws_bytes_deflate(3, 0)}
    for sid, kind in zip(socks, kinds):
        assert directs[sid].target.chunks == [expected[kind]]
        assert directs[sid].target.chunks[0] is expected[kind]
        assert socks[sid]._conn.got == []
    assert _inflate_frames(expected[3]) == [(1, b'42["msg","hello"]')]
    assert _inflate_frames(expected[1]) == [(1, b'42["msg","hello"]')]


def test_compress_false_gives_deflate_sessions_the_plain_frames(impl: Any) -> None:
    f = impl("fanout")
    socks, directs, _ = _targets(f, [0, 2, 1, 3], 0)
    msg = PreparedMessage(["2" + "x" * 3000], compress=False)
    f.deliver(socks, list(socks), msg, False, directs)
    assert directs["1"].target.chunks[0] is directs["0"].target.chunks[0] is msg.ws_bytes(4)
    assert directs["3"].target.chunks[0] is directs["2"].target.chunks[0] is msg.ws_bytes(3)


def test_direct_writer_rejects_unknown_kinds(impl: Any) -> None:
    import pytest

    f = impl("fanout")
    with pytest.raises(ValueError):
        f.DirectWriter(None, 4)
    assert f.KIND_EIO3 == 1 and f.KIND_DEFLATE == 2


def test_binary_attachment_framed_once_per_broadcast(impl: Any, monkeypatch: Any) -> None:
    f = impl("fanout")
    framed = []
    real = transport.frame_packets

    def counting(packets: Any, *a: Any) -> bytes:
        framed.append(a)
        return real(packets, *a)

    monkeypatch.setattr(transport, "frame_packets", counting)
    deflated = []
    real_deflate = transport.deflate_message
    monkeypatch.setattr(transport, "deflate_message", lambda data: deflated.append(data) or real_deflate(data))
    kinds = [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    socks, directs, _ = _targets(f, kinds, 1024)
    attachment = bytes(range(256)) * 40  # 10 kB
    msg = PreparedMessage(['51-["msg",{"_placeholder":true,"num":0}]', attachment])
    assert f.deliver(socks, list(socks), msg, False, directs) == 20
    # ws_bytes(4) and ws_bytes(3), once each; the deflate kinds compress the attachment once each
    assert len(framed) == 2
    assert len(deflated) == 2 and len(deflated[0]) == len(attachment)
    for kind in range(4):
        chunks = [directs[sid].target.chunks for sid, k in zip(socks, kinds) if k == kind]
        assert all(len(c) == 1 and c[0] is chunks[0][0] for c in chunks)
        frames = _inflate_frames(chunks[0][0])
        assert frames[1] == (2, attachment if kind & 1 == 0 else b"\x04" + attachment)
    assert directs["0"].target.chunks[0] is msg.ws_bytes(4)


kinds_st = st.lists(st.integers(0, 3), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(parts, kinds_st, st.integers(0, 200), st.booleans())
def test_kinds_pure_equals_speedups(ps: list[Any], kinds: list[int], threshold: int, compress: bool) -> None:
    import os

    if os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0"):
        return
    from fastsio._pure import fanout as pure
    from fastsio._speedups import fanout as fast

    def run(f: Any) -> list[list[bytes]]:
        socks, directs, _ = _targets(f, kinds, threshold)
        msg = PreparedMessage(ps, compress)
        f.deliver(socks, list(socks), msg, False, directs)
        return [list(directs[sid].target.chunks) for sid in socks]

    got = run(pure)
    assert got == run(fast)
    for chunks, kind in zip(got, kinds):
        eio3 = bool(kind & 1)
        assert chunks == [frame_packets(PreparedMessage(ps).packets, eio3, bool(kind & 2) and compress, threshold)]


# -- the flush, from the queue straight to the transport -----------------------------------


class Transport:
    def __init__(self, closing: bool = False, backlog: int = 0) -> None:
        self.writes: list[bytes] = []
        self.closing = closing
        self.backlog = backlog

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def writelines(self, chunks: Any) -> None:  # pragma: no cover - must not be used
        raise AssertionError("writelines")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.backlog


class PyFlushed(Holder):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.buf: Any = None

    def _flush(self) -> None:
        self.flushes += 1
        self.buf.take()


def test_flush_writes_to_the_transport_without_the_connection(impl: Any) -> None:
    f = impl("fanout")
    loop = Loop()
    queue = f.FlushQueue(loop)
    conns = [PyFlushed() for _ in range(4)]
    bufs = []
    for c in conns:
        c.buf = f.WriteBuffer(c, queue)
        bufs.append(c.buf)
    one, many, closing, python = bufs
    one.transport, many.transport = Transport(), Transport(backlog=7)
    closing.transport = Transport(closing=True)
    one_chunk = b"x" * 10
    one.push(one_chunk)
    many.push(b"a")
    many.push(b"bc")
    many.paused = True
    closing.push(b"lost")
    python.push(b"py")
    assert len(loop.soon) == 1
    loop.soon.pop()()
    assert one.transport.writes == [one_chunk] and one.transport.writes[0] is one_chunk
    assert one.buffered == 0 and not one.pending
    assert many.transport.writes == [b"abc"] and many.buffered == 7
    assert closing.transport.writes == [] and not closing.pending
    assert [c.flushes for c in conns] == [0, 0, 0, 1]
    # the next iteration registers again
    one.push(b"again")
    assert len(loop.soon) == 1
    loop.soon.pop()()
    assert one.transport.writes == [one_chunk, b"again"]
