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
    bufs["2"].drop_above = 10
    bufs["2"].buffered = 11  # past drop_above: volatile broadcasts skip it
    msg = Prepared()
    # 3 has a DirectWriter without a target (polling, watched...), 4 none at all: slow path
    assert f.deliver(socks, ["1", "2", "3", "4"], msg, True, directs) == 3
    assert msg.calls == 1
    assert bufs["1"].chunks == [b"frames-v4"] and bufs["2"].chunks == []
    assert socks["3"]._conn.got == [msg] and socks["4"]._conn.got == [msg]
    assert socks["1"]._conn.got == []
    assert f.deliver(socks, ["1", "2"], msg, False, directs) == 2
    assert bufs["2"].chunks == [b"frames-v4"]


class Capped:
    """A connection behind a capped write buffer: records overflows and volatile drops."""

    def __init__(self) -> None:
        self.overflows = 0
        self.buf: Any = None

    def _overflow(self) -> None:
        self.overflows += 1

    def _flush(self) -> None:
        self.buf.take()


def test_write_buffer_caps(impl: Any) -> None:
    f = impl("fanout")
    queue = f.FlushQueue(Loop())
    c = Capped()
    c.buf = f.WriteBuffer(c, queue, 10, 4)
    c.buf.push(b"abcd")
    assert c.buf.buffered == 4 and c.overflows == 0
    c.buf.push(b"efghijk")  # 4 + 7 > 10: not queued
    assert c.buf.chunks == [b"abcd"] and c.overflows == 1 and c.buf.buffered == 4
    c.buf.push(b"efghij")  # exactly 10: queued
    assert c.buf.buffered == 10 and c.overflows == 1
    c.buf.clear()
    assert c.buf.buffered == 0 and c.buf.chunks == []


def test_deliver_applies_caps_on_the_fast_path(impl: Any) -> None:
    f = impl("fanout")
    queue = f.FlushQueue(Loop())
    socks = {"1": Sock(), "2": Sock(), "3": Sock()}
    directs = {sid: f.DirectWriter() for sid in socks}
    conns = {}
    for sid in socks:
        c = conns[sid] = Capped()
        c.buf = f.WriteBuffer(c, queue, 30, 15)
        directs[sid].target = c.buf
    conns["2"].buf.buffered = 16  # past drop_above
    conns["3"].buf.buffered = 25  # a 9-byte frame takes it past max_bytes
    msg = Prepared()
    assert f.deliver(socks, ["1", "2", "3"], msg, True, directs) == 1
    assert queue.volatile_dropped == 2 and conns["3"].overflows == 0
    assert f.deliver(socks, ["1", "2", "3"], msg, False, directs) == 2
    assert conns["3"].overflows == 1 and conns["3"].buf.chunks == []
    assert conns["2"].buf.buffered == 16 + 9 and conns["1"].buf.buffered == 18


class Dropping(Conn):
    def __init__(self, writable: bool) -> None:
        super().__init__(writable)
        self.dropped = 0

    def _on_volatile_dropped(self) -> None:
        self.dropped += 1


def test_deliver_counts_volatile_drops_on_the_slow_path(impl: Any) -> None:
    f = impl("fanout")
    s = Sock()
    s._conn = Dropping(False)
    assert f.deliver({"1": s}, ["1"], Prepared(), True) == 0
    assert s._conn.dropped == 1


# one step of a scenario: (target, volatile, preset buffered or None)
_steps = st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.one_of(st.none(), st.integers(0, 80))),
                  max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=4, max_size=4), _steps,
       st.integers(1, 20))
def test_caps_pure_equals_speedups(caps: list[tuple[int, int]], steps: list[tuple[int, bool, Any]],
                                   size: int) -> None:
    import os

    if os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0"):
        return
    from fastsio._pure import fanout as pure
    from fastsio._speedups import fanout as fast

    def run(f: Any) -> Any:
        queue = f.FlushQueue(Loop())
        socks = {str(i): Sock() for i in range(4)}
        directs = {}
        conns = []
        for i, (max_bytes, drop_above) in enumerate(caps):
            c = Capped()
            c.buf = f.WriteBuffer(c, queue, max_bytes, drop_above)
            conns.append(c)
            directs[str(i)] = f.DirectWriter(c.buf)

        class Msg:
            def ws_bytes(self, protocol: int) -> bytes:
                return b"m" * size

        trace = []
        for target, volatile, preset in steps:
            if preset is not None:
                conns[target].buf.buffered = preset
            n = f.deliver(socks, [str(i) for i in range(target + 1)], Msg(), volatile, directs)
            conns[target].buf.push(b"p" * size)
            trace.append((n, queue.volatile_dropped, [(c.overflows, c.buf.buffered, list(c.buf.chunks))
                                                      for c in conns]))
        return trace

    assert run(pure) == run(fast)
