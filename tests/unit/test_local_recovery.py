"""The bookkeeping behind recovery across workers (fastsio.adapters.local._Keeper), step by step.

Two workers apply the same broadcasts in different orders; the one that
gets the reconnect completes what the owner handed over with what only it
had applied, so the client gets every packet once. The live version (npm
clients, two worker processes) is tests/interop/test_workers_recovery.py.
"""
from __future__ import annotations

import time
from typing import Any

from fastsio.adapter import BroadcastOptions
from fastsio.adapters.local import _Keeper, _parse_offset

R = BroadcastOptions(("r",))
OTHER = BroadcastOptions(("other",))


def packet(origin: _Keeper, seq: int) -> tuple[str, int, str, list[Any]]:
    offset = origin.prefix + format(seq, "x")
    return origin.prefix, seq, offset, ["t", origin.prefix, seq, offset]


def apply(keeper: _Keeper, p: tuple[str, int, str, list[Any]], opts: BroadcastOptions = R) -> None:
    keeper.keep(p[0], p[1], p[2], p[3], opts)


def test_the_new_worker_adds_what_only_it_had_applied_and_nothing_twice() -> None:
    a, b, c = _Keeper(60), _Keeper(60), _Keeper(60)  # c: a third worker that only publishes
    c0, c1, c2, c3 = (packet(c, i) for i in range(4))
    b0, b1, b2 = (packet(b, i) for i in range(3))
    for k in (a, b):
        apply(k, c0)
        apply(k, c1)
    # the client on a got c0, c1, then its connection was cut
    a.store({"sid": "S", "pid": "P", "rooms": ["S", "r"], "data": {"n": 1}}, time.monotonic())
    apply(a, c2)
    apply(b, c2)
    apply(b, b0)       # b's own broadcast: a has not received it when it answers
    apply(b, packet(b, 99), OTHER)  # not for the client's rooms
    apply(a, c3)       # reached a, not b yet
    session = a.take("P", c1[2], time.monotonic())
    assert session is not None and session["missed_packets"] == [c2[3], c3[3]]
    assert a.take("P", c1[2], time.monotonic()) is None  # handed out once
    restored = b.adopt(session, dict(a.seen), time.monotonic())
    assert restored["missed_packets"] == [c2[3], c3[3], b0[3]]
    # until the socket is in its rooms on b, what b applies joins the list (unless a had it)
    apply(b, c3)
    apply(b, b1)
    assert restored["missed_packets"] == [c2[3], c3[3], b0[3], b1[3]]
    b.restoring.pop("S")  # what LocalAdapter.add_all does when the socket joins its rooms
    apply(b, b2)
    assert restored["missed_packets"] == [c2[3], c3[3], b0[3], b1[3]]
    assert restored["sid"] == "S" and restored["rooms"] == ["S", "r"] and restored["data"] == {"n": 1}


def test_an_unknown_or_expired_offset_or_session_gives_none() -> None:
    a = _Keeper(60)
    p0 = packet(a, 0)
    apply(a, p0)
    a.store({"sid": "S", "pid": "P", "rooms": ["S"], "data": {}}, time.monotonic())
    assert a.take("P", "deadbeef-0", time.monotonic()) is None
    assert "P" in a.sessions  # kept: a later reconnect with a good offset still restores
    assert a.take("nope", p0[2], time.monotonic()) is None
    later = time.monotonic() + 61
    assert a.take("P", p0[2], later) is None and "P" not in a.sessions
    assert not a.packets and p0[2] not in a.index


def test_offsets_of_other_forms_are_not_taken_for_ours() -> None:
    k = _Keeper(1)
    assert _parse_offset(k.prefix + "1f") == (k.prefix, 31)
    for bad in (None, 3, "", "1-2", "deadbeefx1", "deadbeef-zz", "x" * 40, "1700000000000-0"):
        assert _parse_offset(bad) is None, bad


# -- two workers' adapters in one process, on a real local bus (Unix sockets) -----------------


async def _pair(tmp_path: Any) -> tuple[Any, Any, list[Any]]:
    import asyncio

    import fastsio
    from fastsio.adapters.local import install_bus

    adapters, buses = [], []
    for index in range(2):
        io = fastsio.Server(connection_state_recovery={"max_disconnection_duration": 60})
        buses.append(await install_bus(io, index, 2, str(tmp_path)))
        await io._init_adapters()
        adapters.append(io.of("/").adapter)
    a, b = adapters
    for _ in range(200):  # until each knows the other (initial heartbeats)
        if a.nodes and b.nodes:
            break
        await asyncio.sleep(0.01)
    assert a.nodes and b.nodes
    return a, b, buses


async def test_a_session_comes_from_the_worker_that_has_it_once(tmp_path: Any) -> None:
    import asyncio

    a, b, buses = await _pair(tmp_path)
    try:
        b.persist_session({"sid": "S", "pid": "P", "rooms": ["S", "r"], "data": {"n": 1}})
        p = b._keeper
        apply(p, packet(p, 0))
        apply(b._keeper, packet(p, 1))
        # a gets the reconnect: it asks, b hands the session over with what came after the offset
        pending = a.restore_session("P", p.prefix + "0")
        session = await asyncio.wait_for(pending, 5)
        assert session["sid"] == "S" and session["data"] == {"n": 1} and session["rooms"] == ["S", "r"]
        assert session["missed_packets"] == [packet(p, 1)[3]]
        assert await asyncio.wait_for(a.restore_session("P", p.prefix + "0"), 5) is None  # once
    finally:
        for adapter in (a, b):
            adapter.close()
        for bus in buses:
            await bus.close()


async def test_a_worker_that_does_not_answer_is_given_up_after_requests_timeout(tmp_path: Any) -> None:
    import asyncio

    a, b, buses = await _pair(tmp_path)
    try:
        b._on_restore = lambda *args: None  # alive (heartbeats) but never answers a restore
        a.requests_timeout = 0.3
        started = time.monotonic()
        assert await asyncio.wait_for(a.restore_session("P", "deadbeef-0"), 5) is None
        assert 0.25 <= time.monotonic() - started < 3
    finally:
        for adapter in (a, b):
            adapter.close()
        for bus in buses:
            await bus.close()


async def test_a_malformed_answer_is_dropped_and_gives_a_fresh_session(tmp_path: Any) -> None:
    import asyncio

    a, b, buses = await _pair(tmp_path)
    try:
        def bad(uid: str, request_id: str, data: dict[str, Any]) -> None:
            b.bus.send_to(uid, {"uid": b.uid, "nsp": "/", "type": 101,
                                "data": {"requestId": request_id, "session": {"sid": 3}, "seen": {}}})

        b._on_restore = bad
        a.requests_timeout = 0.3
        assert await asyncio.wait_for(a.restore_session("P", "deadbeef-0"), 5) is None
        assert a._bad_messages >= 1
    finally:
        for adapter in (a, b):
            adapter.close()
        for bus in buses:
            await bus.close()
