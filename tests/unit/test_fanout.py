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
    _ws_writer = None
    protocol = 4

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


class Writer:
    def __init__(self, writable: bool = True) -> None:
        self.writable = writable
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)


class Prepared:
    def __init__(self) -> None:
        self.calls = 0

    def ws_bytes(self, protocol: int) -> bytes:
        self.calls += 1
        return b"frames-v%d" % protocol


def test_deliver_writes_shared_frames_to_websocket_writers(impl: Any) -> None:
    socks = {"1": Sock(), "2": Sock(), "3": Sock(), "4": Sock()}
    socks["1"]._conn._ws_writer = Writer()
    socks["2"]._conn._ws_writer = Writer(writable=False)
    msg = Prepared()
    assert impl("fanout").deliver(socks, ["1", "2", "3", "4"], msg, True) == 3
    assert msg.calls == 1
    assert socks["1"]._conn._ws_writer.out == [b"frames-v4"]
    assert socks["2"]._conn._ws_writer.out == []
    assert socks["3"]._conn.got == [msg] and socks["4"]._conn.got == [msg]
