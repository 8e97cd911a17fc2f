"""fanout: target sets and the write loop, compiled and pure give the same result."""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

ROOMS = {"a": {"1", "2", "3"}, "b": {"3", "4"}, "c": set(), "1": {"1"}, "2": {"2"}, "3": {"3"}, "4": {"4"}}
ALL = ["1", "2", "3", "4"]


def test_everybody(impl: Any) -> None:
    assert impl("fanout").target_ids(ROOMS, ALL, [], [], []) == ALL


def test_union_each_once(impl: Any) -> None:
    got = impl("fanout").target_ids(ROOMS, ALL, ["a", "b"], [], [])
    assert sorted(got) == ["1", "2", "3", "4"]
    assert len(got) == 4


def test_except_rooms_and_sender(impl: Any) -> None:
    f = impl("fanout")
    assert sorted(f.target_ids(ROOMS, ALL, ["a"], ["b"], [])) == ["1", "2"]
    assert sorted(f.target_ids(ROOMS, ALL, [], ["b"], ["1"])) == ["2"]
    assert f.target_ids(ROOMS, ALL, ["missing", "c"], [], []) == []


class Conn:

    def __init__(self, writable: bool) -> None:
        self.writable = writable
        self.got: list[Any] = []

    def send_prepared(self, msg: Any) -> None:
        self.got.append(msg)


class Sock:
    def __init__(self, writable: bool = True) -> None:
        self._conn = Conn(writable)


def test_deliver_same_object_to_all(impl: Any) -> None:
    socks = {"1": Sock(), "2": Sock(False), "3": Sock()}
    msg = object()
    assert impl("fanout").deliver(socks, ["1", "2", "3", "gone"], msg) == 3
    assert all(s._conn.got == [msg] for s in socks.values())


def test_deliver_volatile_skips_unwritable(impl: Any) -> None:
    socks = {"1": Sock(), "2": Sock(False)}
    assert impl("fanout").deliver(socks, ["1", "2"], "m", True) == 1
    assert socks["2"]._conn.got == []


ids = st.sampled_from([str(i) for i in range(8)])
room_names = st.sampled_from(["r0", "r1", "r2", "r3"])


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(room_names, st.sets(ids)),
    st.lists(room_names, max_size=4),
    st.lists(room_names, max_size=3),
    st.sets(ids, max_size=3),
)
def test_pure_equals_speedups(rooms_map: dict[str, set[str]], rooms: list[str], except_rooms: list[str],
                              except_ids: set[str]) -> None:
    import os

    from fastsio._pure import fanout as pure
    all_ids = sorted({i for m in rooms_map.values() for i in m} | {"7"})
    expected = set(all_ids) if not rooms else {i for r in rooms for i in rooms_map.get(r, ())}
    expected -= {i for r in except_rooms for i in rooms_map.get(r, ())} | except_ids
    got = pure.target_ids(rooms_map, all_ids, rooms, except_rooms, except_ids)
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    if os.environ.get("FASTSIO_NO_EXTENSIONS", "") in ("", "0"):
        from fastsio._speedups import fanout as fast
        assert fast.target_ids(rooms_map, all_ids, rooms, except_rooms, except_ids) == got


class Loop:
    def __init__(self) -> None:
        self.soon: list[Any] = []

    def call_soon(self, fn: Any) -> None:
        self.soon.append(fn)


class Flushing:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buf: Any = None

    def _flush(self) -> None:
        data = self.buf.take()
        if data is not None:
            self.written.append(data)


class Prepared:
    def __init__(self) -> None:
        self.calls = 0

    def ws_bytes(self, protocol: int) -> bytes:
        self.calls += 1
        return b"frames-v%d" % protocol


def test_write_buffers_coalesce_and_flush_once_per_iteration(impl: Any) -> None:
    f = impl("fanout")
    loop = Loop()
    queue = f.FlushQueue(loop)
    a, b = Flushing(), Flushing()
    a.buf, b.buf = f.WriteBuffer(a, queue), f.WriteBuffer(b, queue)
    a.buf.push(b"1")
    a.buf.push(b"2")
    b.buf.push(b"x")
    assert a.buf.pending and len(loop.soon) == 1
    loop.soon.pop()()
    assert a.written == [b"12"] and b.written == [b"x"] and not a.buf.pending
    assert a.buf.take() is None
    a.buf.push(b"3")
    assert len(loop.soon) == 1
    a.buf.clear()
    assert not a.buf.pending


def test_deliver_pushes_shared_frames_through_direct_writers(impl: Any) -> None:
    f = impl("fanout")
    loop = Loop()
    queue = f.FlushQueue(loop)
    socks = {"1": Sock(), "2": Sock(), "3": Sock(), "4": Sock()}
    directs = {sid: f.DirectWriter() for sid in socks}
    bufs = {}
    for sid in ("1", "2"):
        holder = Flushing()
        holder.buf = bufs[sid] = f.WriteBuffer(holder, queue)
        directs[sid].target = holder.buf
    bufs["2"].paused = True
    msg = Prepared()
    # 3 has a DirectWriter without a target (polling, watched...), 4 none at all: slow path
    assert f.deliver(socks, ["1", "2", "3", "4"], msg, True, directs) == 3
    assert msg.calls == 1
    assert bufs["1"].chunks == [b"frames-v4"] and bufs["2"].chunks == []
    assert socks["3"]._conn.got == [msg] and socks["4"]._conn.got == [msg]
    assert socks["1"]._conn.got == []
    assert f.deliver(socks, ["1", "2"], msg, False, directs) == 2
    assert bufs["2"].chunks == [b"frames-v4"]
