"""Broadcast to 300+ clients of a live fastsio.Server.

300 raw Engine.IO v4 WebSocket clients (cheap: one reader task each, all in the
test's loop), one python-socketio AsyncClient over WebSocket and one over
long-polling join the room "all". Every client must receive every broadcast,
in order, exactly once; ``socket.broadcast`` excludes its sender,
``except_()`` excludes a room, and a volatile broadcast does not break anything.

"Exactly once" is checked with an end marker: after the emits under test,
``io.emit("end", k)`` goes to everyone, and since a connection delivers in
order, whatever a client holds when the marker arrives is all it will get.
No timing is asserted: every wait is an upper bound.
"""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Optional

import engineio.payload
import orjson
import pytest
import socketio

import fastsio

from raw import RawWebSocket, close_all, wait_for, ws_open

HOST = "127.0.0.1"
N_RAW = 300
WAIT = 60.0


class RawPeer:
    """A raw WebSocket Socket.IO client on "/" that records every event it gets."""

    def __init__(self, index: int, ws: RawWebSocket) -> None:
        self.index = index
        self.ws = ws
        self.events: list[tuple[str, list[Any]]] = []
        self.other: list[Any] = []
        self.task: Optional["asyncio.Task[None]"] = None

    @classmethod
    async def join(cls, port: int, index: int) -> "RawPeer":
        ws = await ws_open(port, "/socket.io/?EIO=4&transport=websocket")
        ptype, data = await ws.recv_eio(WAIT)
        assert ptype == 0, (ptype, data)
        await ws.send_text("40" + orjson.dumps({"i": index}).decode())
        ptype, data = await ws.recv_eio(WAIT)
        assert ptype == 4 and isinstance(data, str) and data.startswith('0{"sid":'), (ptype, data)
        peer = cls(index, ws)
        peer.task = asyncio.ensure_future(peer._read())
        return peer

    async def _read(self) -> None:
        while True:
            try:
                ptype, data = await self.ws.recv_eio(3600)
            except (EOFError, asyncio.TimeoutError):
                return
            if ptype == 4 and isinstance(data, str) and data.startswith("2["):
                ev, *args = orjson.loads(data[1:])
                self.events.append((ev, args))
            else:
                self.other.append((ptype, data))

    async def send(self, text: str) -> None:
        await self.ws.send_text(text)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        await self.ws.close()


class PyPeer:
    """A python-socketio AsyncClient that records every event it gets."""

    def __init__(self, index: int, transport: str) -> None:
        self.index = index
        self.transport = transport
        self.events: list[tuple[str, list[Any]]] = []
        self.client = socketio.AsyncClient(reconnection=False)

        async def catch_all(event: str, *args: Any) -> None:
            self.events.append((event, list(args)))

        self.client.on("*", catch_all)

    async def join(self, port: int) -> "PyPeer":
        await self.client.connect(f"http://{HOST}:{port}", transports=[self.transport],
                                  auth={"i": self.index}, wait_timeout=WAIT)
        return self

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.disconnect(), 5)
        except Exception:
            pass


@dataclass
class Fanout:
    io: Any
    port: int
    peers: list[Any] = field(default_factory=list)
    end_counter: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def raw(self) -> list[RawPeer]:
        return [p for p in self.peers if isinstance(p, RawPeer)]

    async def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        await wait_for(predicate, timeout, what)

    async def end(self) -> int:
        """Emits an end marker to everyone and waits until every peer has it."""
        k = next(self.end_counter)
        self.io.emit("end", k)

        def all_ended() -> bool:
            return all(("end", [k]) in p.events for p in self.peers)

        try:
            await self.wait(all_ended, f"end marker {k}")
        except AssertionError:
            missing = [p.index for p in self.peers if ("end", [k]) not in p.events]
            sample = [(p.index, p.events[-5:]) for p in self.peers if p.index in missing[:3]]
            raise AssertionError(f"end marker {k} missing at {len(missing)} peers: {missing[:20]}; "
                                 f"their last events: {sample}") from None
        return k


def named(peer: Any, event: str) -> list[list[Any]]:
    return [args for ev, args in peer.events if ev == event]


@pytest.fixture
async def fanout(free_port: int, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fanout]:
    # python-engineio's client aborts ("Unexpected packet from server") on a
    # polling payload of more than 16 packets. Node's engine.io, like fastsio,
    # flushes its whole write buffer into one payload, so a burst of 20 emits
    # needs a larger client limit; that is the client's setting, not the server's.
    monkeypatch.setattr(engineio.payload.Payload, "max_decode_packets", 4096)
    io = fastsio.Server()
    fx = Fanout(io, free_port)

    def on_connection(socket: Any) -> None:
        i = socket.handshake.auth.get("i")
        socket.data["i"] = i
        socket.join("all")
        if isinstance(i, int) and i % 2:
            socket.join("odd")

        def bcast(x: Any) -> None:
            socket.broadcast.emit("b", x)

        socket.on("bcast", bcast)

    io.on("connection", on_connection)
    await io.listen(free_port, host=HOST)
    sem = asyncio.Semaphore(25)

    async def join_raw(i: int) -> RawPeer:
        async with sem:
            return await RawPeer.join(free_port, i)

    try:
        fx.peers.extend(await asyncio.wait_for(asyncio.gather(*(join_raw(i) for i in range(N_RAW))), 120))
        fx.peers.append(await PyPeer(N_RAW, "websocket").join(free_port))
        fx.peers.append(await PyPeer(N_RAW + 1, "polling").join(free_port))
        room = io.sockets.adapter.rooms.get("all", set())
        assert len(room) == N_RAW + 2
        yield fx
    finally:
        for p in fx.peers:
            await p.stop()
        await close_all()
        await asyncio.wait_for(io.close(), 20)


async def test_room_burst_reaches_everyone_in_order_once(fanout: Fanout) -> None:
    io = fanout.io
    for i in range(20):
        io.to("all").emit("msg", {"n": i})
    await asyncio.sleep(0)
    io.to("all").emit("msg", {"n": 20})
    await fanout.end()
    want = [[{"n": i}] for i in range(21)]
    bad = [(p.index, named(p, "msg")) for p in fanout.peers if named(p, "msg") != want]
    assert not bad, f"{len(bad)} peers got the wrong sequence, e.g. {bad[:3]}"
    # Nothing but those and the marker.
    for p in fanout.peers:
        assert {ev for ev, _ in p.events} == {"msg", "end"}, (p.index, p.events)


async def test_room_burst_with_binary_attachment(fanout: Fanout) -> None:
    # A binary broadcast: the raw peers see the text part then one binary frame.
    io = fanout.io
    io.to("all").emit("bin", b"\x00\x01\x02")
    await fanout.end()
    for p in fanout.peers:
        if isinstance(p, PyPeer):
            assert named(p, "bin") == [[b"\x00\x01\x02"]], (p.index, p.events)
    for p in fanout.raw:
        # Raw peers record the BINARY_EVENT header as "other" (type 4, "51-[...]")
        # followed by the attachment.
        assert (4, '51-["bin",{"_placeholder":true,"num":0}]') in p.other, (p.index, p.other)
        assert b"\x00\x01\x02" in [d for _, d in p.other], (p.index, p.other)


async def test_broadcast_excludes_sender(fanout: Fanout) -> None:
    sender = fanout.peers[0]
    await sender.send('42["bcast",7]')
    others = fanout.peers[1:]
    await fanout.wait(lambda: all(named(p, "b") == [[7]] for p in others), "the broadcast at every other peer")
    await fanout.end()
    assert named(sender, "b") == []
    for p in others:
        assert named(p, "b") == [[7]], (p.index, p.events)

    # The same from the polling client.
    poller = fanout.peers[-1]
    assert isinstance(poller, PyPeer) and poller.transport == "polling"
    await poller.client.emit("bcast", 8)
    rest = fanout.peers[:-1]
    await fanout.wait(lambda: all(named(p, "b")[-1:] == [[8]] for p in rest), "the polling peer's broadcast")
    await fanout.end()
    assert named(poller, "b") == [[7]]
    for p in rest:
        assert named(p, "b")[-1:] == [[8]] and len(named(p, "b")) == (1 if p is sender else 2), (p.index, p.events)


async def test_except_excludes_room(fanout: Fanout) -> None:
    io = fanout.io
    io.except_("odd").emit("e", 1)
    io.to("all").except_("odd").emit("e", 2)
    io.to("odd").emit("o", 3)
    await fanout.end()
    for p in fanout.peers:
        if p.index % 2:
            assert named(p, "e") == [] and named(p, "o") == [[3]], (p.index, p.events)
        else:
            assert named(p, "e") == [[1], [2]] and named(p, "o") == [], (p.index, p.events)


async def test_volatile_broadcast_does_not_crash(fanout: Fanout) -> None:
    io = fanout.io
    for i in range(5):
        io.volatile.emit("v", i)
        io.to("all").volatile.emit("v", i)
    await fanout.end()
    for p in fanout.peers:
        got = [a[0] for a in named(p, "v")]
        # Volatile packets may be dropped, never duplicated nor reordered.
        assert got == sorted(got) and len(got) <= 10, (p.index, got)
    # The server keeps serving everyone afterwards.
    io.to("all").emit("msg", {"n": 0})
    await fanout.end()
    for p in fanout.peers:
        assert named(p, "msg") == [[{"n": 0}]], (p.index, p.events)
