"""The Redis Streams adapter against Node's @socket.io/redis-streams-adapter 0.3 on a real redis-server.

Mixed clusters (a fastsio server and a Node socket.io 4.8 server) and
fastsio-only ones; npm socket.io-client with its connection state recovery.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Callable

import pytest
import redis.asyncio as redis_asyncio

import fastsio
from fastsio.adapters.redis_streams import RedisStreamsAdapter
from conftest import _another_port as _port
from streams_helpers import NodeProc

RECOVERY = {"max_disconnection_duration": 60, "skip_middlewares": True}


class Cluster:
    """Servers and client drivers of one test, all stopped at the end."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.fastsio: list[fastsio.Server] = []
        self.nodes: list[NodeProc] = []

    async def py_server(self, recovery: Any = RECOVERY, ping: float = 5, **adapter_opts: Any) -> tuple[fastsio.Server, int]:
        io = fastsio.Server(
            adapter=RedisStreamsAdapter.from_url(self.redis_url, **adapter_opts),
            connection_state_recovery=recovery,
            ping_interval=ping, ping_timeout=ping,
        )

        @io.on("connection")
        def on_connection(socket: Any) -> None:
            if not socket.recovered:
                rooms = socket.handshake.auth.get("rooms")
                if isinstance(rooms, list):
                    socket.join(rooms)
                data = socket.handshake.auth.get("data")
                if isinstance(data, dict):
                    socket.data.update(data)

            @socket.on("ping")
            def ping() -> str:
                return "pong"

        self.sse: list[Any] = getattr(self, "sse", [])

        @io.on("q")
        def on_q(*args: Any) -> None:
            self.sse.append(("q", args[:-1]))
            args[-1](["answer", io.of("/").adapter.uid])

        @io.on("noack")
        def on_noack(*args: Any) -> None:
            self.sse.append(("noack", args))

        port = _port()
        await io.listen(port, host="127.0.0.1")
        self.fastsio.append(io)
        return io, port

    async def node_server(self, recovery_ms: int = 60000, **extra: Any) -> tuple[NodeProc, int]:
        port = _port()
        args = [f"port={port}", f"redis={self.redis_url}", f"recovery_ms={recovery_ms}", "timeout_ms=120000"]
        args += [f"{k}={v}" for k, v in extra.items()]
        node = NodeProc("node_streams_server.mjs", *args)
        await node.start()
        self.nodes.append(node)
        return node, port

    async def clients(self, port: int, n: int = 1, rooms: str = "") -> NodeProc:
        args = [f"port={port}", f"n={n}", "timeout_ms=120000"]
        if rooms:
            args.append(f"rooms={rooms}")
        proc = NodeProc("node_streams_clients.mjs", *args)
        await proc.start("connected", timeout=60)
        self.nodes.append(proc)
        return proc

    async def emitter(self) -> fastsio.Server:
        """A third fastsio server, the one that broadcasts, once every server counts all three."""
        io, _ = await self.py_server()
        await until(lambda: count_is(io, 3), what="three servers")
        return io

    async def close(self) -> None:
        # the drivers exit on "quit" (closing their stdin alone left each to NodeProc.stop's 5 s kill)
        await asyncio.gather(*(_quit(node) for node in self.nodes))
        await asyncio.gather(*(asyncio.wait_for(io.close(), 10) for io in self.fastsio))


async def _quit(node: NodeProc) -> None:
    if node.proc is not None and node.proc.returncode is None:
        try:
            await node.cmd("quit", timeout=5)
        except Exception:
            pass  # a driver that has died already (a killed server) or does not answer: stop() kills it
    await node.stop()


@pytest.fixture
async def cluster(redis_server: Any) -> AsyncIterator[Cluster]:
    c = Cluster(redis_server.url)
    try:
        yield c
    finally:
        await c.close()


async def until(pred: Callable[[], Any], timeout: float = 30, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = pred()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def count_is(io: fastsio.Server, n: int) -> bool:
    try:
        return bool(await io.of("/").adapter.server_count() == n)
    except (ConnectionError, OSError, redis_asyncio.ConnectionError):
        return False  # Redis is restarting


# -- recovery across servers ------------------------------------------------------


async def _servers(cluster: Cluster, a_kind: str, b_kind: str) -> tuple[int, int]:
    ports = []
    for kind in (a_kind, b_kind):
        _, port = await (cluster.py_server() if kind == "py" else cluster.node_server())
        ports.append(port)
    return ports[0], ports[1]


@pytest.mark.parametrize("a_kind,b_kind", [("py", "node"), ("node", "py"), ("py", "py"), ("node", "node")])
async def test_cut_client_recovers_on_the_other_server(cluster: Cluster, a_kind: str, b_kind: str) -> None:
    """A client of A loses its TCP connection while broadcasts go on; it
    reconnects to B and gets every missed packet, in order, recovered true."""
    port_a, port_b = await _servers(cluster, a_kind, b_kind)
    clients = await cluster.clients(port_a, n=3, rooms="r1")
    # a third server broadcasts (a fastsio one)
    emitter = await cluster.emitter()

    sent = 0

    def burst(k: int, room: bool = True) -> None:
        nonlocal sent
        for _ in range(k):
            (emitter.to("r1") if room else emitter).emit("m", sent)
            sent += 1

    burst(20)
    await until(clients_got(clients, 20), what="first 20 messages")
    await clients.cmd("cut", port=port_b)
    burst(30)  # while the clients are away
    emitter.to("elsewhere").emit("m", -1)  # nobody's room: never delivered
    burst(5)
    assert await reconnected(clients)
    burst(10, room=False)
    await until(clients_got(clients, sent), what="every message")
    rep = await clients.cmd("report", full=True)
    for c in rep["clients"]:
        assert c["recovered"] == [False, True], c
        assert c["ids"][0] == c["ids"][1], c
        assert c["got"] == list(range(sent)), (c["got"], sent)
        assert all(isinstance(o, str) and "-" in o for o in c["offsets"]), c["offsets"]


@pytest.mark.parametrize("a_kind", ["py", "node"])
async def test_recovery_on_fastsio_is_exact_while_broadcasts_never_stop(cluster: Cluster, a_kind: str) -> None:
    """Broadcasts go on through the cut, the restore and after: a fastsio B
    stitches the replay to its live reader, nothing missed, nothing twice."""
    port_a, port_b = await _servers(cluster, a_kind, "py")
    clients = await cluster.clients(port_a, n=5, rooms="r1")
    emitter = await cluster.emitter()
    back, sent = await cut_while_broadcasting(clients, emitter, port_b, pause=0.001, before=0.2)
    assert back
    try:
        await until(clients_got(clients, sent), what="every message")
    finally:
        rep = await clients.cmd("report", full=True)
        for c in rep["clients"]:
            assert c["recovered"] == [False, True], c
            if c["got"] != list(range(sent)):
                bad = next((i for i, v in enumerate(c["got"]) if v != i), len(c["got"]))
                pytest.fail(f"gap at {bad}: got {c['got'][bad-3:bad+3]} offsets {c['offsets'][bad-3:bad+3]} "
                            f"ids {c['ids']} n={len(c['got'])} sent={sent} "
                            f"readers={[(io.of('/').adapter.bus.last_id, io.of('/').adapter.bus._holds) for io in cluster.fastsio]}")


async def reconnected(clients: NodeProc, ms: int = 40000) -> bool:
    """True once every client has connected a second time (after a cut), within ``ms``."""
    return bool((await clients.cmd("wait", connects=2, ms=ms, timeout=ms / 1000 + 10))["ok"])


async def cut_while_broadcasting(clients: NodeProc, emitter: fastsio.Server, port_b: int, pause: float,
                                 before: float, wait_ms: int = 40000) -> tuple[bool, int]:
    """``emitter`` sends "m" 0, 1, 2, ... to room r1 every ``pause`` seconds; ``before`` seconds in,
    the clients are cut and sent to ``port_b``; 0.3 s after they are all back (or gave up
    after ``wait_ms``) the broadcasts stop. Returns (all back, how many were sent)."""
    sent = 0
    stop = asyncio.Event()

    async def steady() -> None:
        nonlocal sent
        while not stop.is_set():
            emitter.to("r1").emit("m", sent)
            sent += 1
            await asyncio.sleep(pause)

    task = asyncio.ensure_future(steady())
    try:
        await asyncio.sleep(before)
        await clients.cmd("cut", port=port_b)
        back = await reconnected(clients, wait_ms)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await task
    return back, sent


async def clients_with_a_first_message(cluster: Cluster, port: int, n: int) -> tuple[NodeProc, fastsio.Server]:
    """``n`` clients of the server on ``port`` in room r1, the emitter (a third server), and
    "m" 0 sent to r1 and received by every client."""
    clients = await cluster.clients(port, n=n, rooms="r1")
    emitter = await cluster.emitter()
    emitter.to("r1").emit("m", 0)
    await until(clients_got(clients, 1), what="the first message")
    return clients, emitter


def clients_got(proc: NodeProc, k: int) -> Callable[[], Any]:
    async def check() -> bool:
        rep = await proc.cmd("report")
        return bool(rep["total_got"] >= k * rep["n"])

    return check


# -- every cluster operation, both directions -----------------------------------


async def test_cluster_operations_fastsio_and_node(cluster: Cluster) -> None:
    io, port_py = await cluster.py_server()
    node, port_node = await cluster.node_server()
    on_py = await cluster.clients(port_py, n=2, rooms="r1")
    on_node = await cluster.clients(port_node, n=3, rooms="r1")
    await until(lambda: count_is(io, 2), what="two servers")
    assert (await node.cmd("count"))["count"] == 2

    # fetch_sockets, both ways
    fetched = await io.fetch_sockets()
    assert len(fetched) == 5
    remote = [s for s in fetched if not isinstance(s, fastsio.Socket)]
    assert len(remote) == 3 and all("r1" in s.rooms for s in remote)
    assert sorted(s.data["i"] for s in remote) == [0, 1, 2]
    res = await node.cmd("fetch")
    assert len(res["sockets"]) == 5
    assert sorted(s["data"]["i"] for s in res["sockets"]) == [0, 0, 1, 1, 2]

    # sockets_join / sockets_leave, both ways
    io.in_("r1").sockets_join("r2")
    await until(lambda: _all_in(node, "r2", 3), what="node sockets joined r2")
    assert all("r2" in s.rooms for s in io.of("/").sockets.values())
    await node.cmd("leave", rooms=["r1"], leave=["r2"])
    await until(lambda: not any("r2" in s.rooms for s in io.of("/").sockets.values()), what="py sockets left r2")
    await node.cmd("join", rooms=[], join=["n1"])
    await until(lambda: all("n1" in s.rooms for s in io.of("/").sockets.values()), what="py sockets joined n1")

    # broadcast with acks, both ways
    answers = await io.timeout(3).emit_with_ack("ask", 7)
    assert sorted(a["i"] for a in answers) == [0, 0, 1, 1, 2] and all(a["v"] == 7 for a in answers)
    res = await node.cmd("emit_ack", ev="ask", args=[8], timeout_ms=3000)
    assert res["err"] is None and sorted(a["i"] for a in res["responses"]) == [0, 0, 1, 1, 2]

    # server_side_emit (with and without ack), both ways
    answers = await io.of("/").server_side_emit_with_ack("q", 1)
    assert answers == [["answer", (await node.wait_event("ready"))["uid"]]]
    res = await node.cmd("sse", ev="q", args=[2], ack=True)
    assert res["err"] is None and res["responses"] == [["answer", io.of("/").adapter.uid]]
    assert ("q", (2,)) in cluster.sse
    io.server_side_emit("noack", {"x": 1})
    await until(lambda: any(line.get("args") == [{"x": 1}] for line in node.events("sse")), what="sse at node")
    await node.cmd("sse", ev="noack", args=["y"])
    await until(lambda: ("noack", ("y",)) in cluster.sse, what="sse at fastsio")

    # broadcasts with rooms, except and binary, both ways, received by every client
    io.to("r1").except_("nobody").emit("m", 100)
    await node.cmd("emit", rooms=["r1"], ev="m", args=[101])
    await until(lambda: _got_everywhere([on_py, on_node], [100, 101]), what="broadcasts everywhere")

    # disconnect_sockets, both ways
    io.in_("n1").disconnect_sockets()
    await until(lambda: not io.of("/").sockets, what="py sockets disconnected")
    await until(lambda: len(node.events("disconnect")) >= 3, what="node sockets disconnected by fastsio")
    reasons = {line["reason"] for line in node.events("disconnect")}
    assert reasons == {"server namespace disconnect"}


async def _all_in(node: NodeProc, room: str, n: int) -> bool:
    res = await node.cmd("local_rooms")
    return len(res["sockets"]) == n and all(room in s["rooms"] for s in res["sockets"])


async def _got_everywhere(procs: list[NodeProc], values: list[int]) -> bool:
    for proc in procs:
        rep = await proc.cmd("report", full=True)
        for c in rep["clients"]:
            if sorted(c["got"][-len(values):]) != values:
                return False
    return True


# -- fresh sessions -----------------------------------------------------------------


@pytest.mark.parametrize("b_kind", ["py", "node"])
async def test_expired_session_gives_a_fresh_one(cluster: Cluster, b_kind: str) -> None:
    """A stored the session for 1 s; the client comes back to B after 2 s."""
    _, port_a = await cluster.py_server(recovery={"max_disconnection_duration": 1})
    _, port_b = await (cluster.py_server() if b_kind == "py" else cluster.node_server())
    clients, emitter = await clients_with_a_first_message(cluster, port_a, n=2)
    await clients.cmd("cut", port=port_b, dead_port=_port(), dead_ms=2000)
    emitter.to("r1").emit("m", 1)  # missed, and not replayed: the session is gone
    assert await reconnected(clients)
    rep = await clients.cmd("report", full=True)
    for c in rep["clients"]:
        assert c["recovered"] == [False, False], c
        assert c["ids"][0] != c["ids"][1]
        assert c["got"] == [0]


async def test_offset_trimmed_from_the_stream_gives_a_fresh_session(cluster: Cluster, redis_server: Any) -> None:
    _, port_a = await cluster.py_server()
    _, port_b = await cluster.py_server()
    clients, emitter = await clients_with_a_first_message(cluster, port_a, n=1)
    r = redis_asyncio.from_url(redis_server.url)
    await clients.cmd("cut", port=port_b, dead_port=_port(), dead_ms=500)
    emitter.to("r1").emit("m", 1)
    await asyncio.sleep(0.2)
    await r.xtrim("socket.io", maxlen=0)  # the client's offset is gone
    assert await reconnected(clients)
    rep = await clients.cmd("report", full=True)
    (c,) = rep["clients"]
    assert c["recovered"] == [False, False] and c["got"] == [0], c
    # restored once: the session key was consumed, not left behind
    assert await r.keys("sio:session:*") == []
    await r.aclose()


# -- faults -----------------------------------------------------------------------------


async def test_redis_restart_reader_resumes(cluster: Cluster, redis_server: Any,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """Redis goes away and comes back (empty): the reader reconnects and goes
    on from its last id, pub/sub and server_count come back, nothing twice."""
    caplog.set_level(logging.WARNING, "fastsio.adapters.redis_streams")
    a, port_a = await cluster.py_server()
    node, _ = await cluster.node_server()
    on_a = await cluster.clients(port_a, n=2, rooms="r1")
    b, _ = await cluster.py_server()
    await until(lambda: count_is(b, 3), what="three servers")
    for i in range(5):
        b.to("r1").emit("m", i)
    await until(clients_got(on_a, 5), what="before the restart")
    redis_server.stop()
    await until(lambda: "lost the connection to Redis" in caplog.text, what="the lost log line")
    await asyncio.sleep(0.5)
    redis_server.start()
    await until(lambda: "connection to Redis is back" in caplog.text, timeout=15, what="the back log line")
    await until(lambda: count_is(b, 3), timeout=15, what="the subscriptions back")
    sent = 5
    for _ in range(3):
        await asyncio.sleep(0.2)
        b.to("r1").emit("m", sent)
        await node.cmd("emit", rooms=["r1"], ev="m", args=[sent + 1])
        sent += 2
    await until(clients_got(on_a, sent), timeout=15, what="after the restart")
    await asyncio.sleep(0.3)
    rep = await on_a.cmd("report", full=True)
    for c in rep["clients"]:
        assert sorted(c["got"]) == list(range(sent)), c["got"]  # none lost, none twice
    answers = await a.of("/").server_side_emit_with_ack("q", 1)
    assert len(answers) == 2


async def test_a_dead_server_stops_counting(cluster: Cluster) -> None:
    io, _ = await cluster.py_server()
    node, _ = await cluster.node_server()
    other, _ = await cluster.py_server()
    await until(lambda: count_is(io, 3), what="three servers")
    node.kill()
    await until(lambda: count_is(io, 2), timeout=10, what="the killed Node server leaves the count")
    await asyncio.wait_for(other.close(), 10)
    cluster.fastsio.remove(other)
    await until(lambda: count_is(io, 1), timeout=10, what="the closed fastsio server leaves the count")
    assert (await io.fetch_sockets()) == []


# -- a thousand at once -----------------------------------------------------------


async def test_a_thousand_clients_cut_at_once_all_recover(cluster: Cluster) -> None:
    n = 1000
    _, port_a = await cluster.py_server(ping=25)
    _, port_b = await cluster.py_server(ping=25)
    clients = await cluster.clients(port_a, n=n, rooms="r1")
    emitter = await cluster.emitter()
    back, sent = await cut_while_broadcasting(clients, emitter, port_b, pause=0.02, before=0.3, wait_ms=60000)
    try:
        await until(clients_got(clients, sent), timeout=20, what="every message at every client")
    finally:
        rep = await clients.cmd("report")
        print("REPORT", {k: v for k, v in rep.items() if k != "first"}, sent, rep["first"]["got"][-5:])
        full = await clients.cmd("report", full=True)
        bad = [c for c in full["clients"] if c["got"] != list(range(sent))]
        for c in bad[:3]:
            missing = sorted(set(range(sent)) - set(c["got"]))
            print("BAD", c["recovered"], len(c["got"]), missing[:10], c["offsets"][-2:])
    assert back
    assert rep["recovered"] == n and rep["in_order"] == n
    assert rep["same_as_first"] == n and rep["first"]["got"] == list(range(sent))


# -- the broadcast cost with recovery on ---------------------------------------------


async def test_a_burst_of_own_broadcasts_is_delivered_in_one_loop_turn(cluster: Cluster) -> None:
    """With recovery on a server delivers its own broadcasts when its reader
    meets them; a burst emitted at once must reach the clients in one loop
    turn (one write per client), not in the pieces Redis answers the blocked
    XREAD in (the first piece is one entry: the recovery-on cost was 1.5x off)."""
    io, _ = await cluster.py_server()
    adapter = io.of("/").adapter
    turn = 0
    loop = asyncio.get_running_loop()
    ticking = True

    def tick() -> None:
        nonlocal turn
        turn += 1
        if ticking:
            loop.call_soon(tick)

    turns: list[int] = []
    original = adapter._deliver_own

    def deliver_own(packet: Any, opts: Any, entry_id: str) -> None:
        turns.append(turn)
        original(packet, opts, entry_id)

    adapter._deliver_own = deliver_own  # type: ignore[method-assign]
    for burst in range(3):
        await asyncio.sleep(0.2)  # the reader is blocked in XREAD again
        turns.clear()
        loop.call_soon(tick)
        for i in range(200):
            io.to("r1").emit("m", i)
        await until(lambda: len(turns) >= 200, timeout=20, what="the burst delivered")
        ticking = False
        await asyncio.sleep(0)
        ticking = True
        assert len(set(turns)) == 1, f"burst {burst}: delivered over {len(set(turns))} loop turns"


async def test_restores_in_one_batch_keep_each_sessions_own_room(cluster: Cluster) -> None:
    """Sessions cut together share one worked-out replay, except where a
    missed broadcast went to one session's own id room."""
    _, port_a = await cluster.py_server()
    _, port_b = await cluster.py_server()
    clients, emitter = await clients_with_a_first_message(cluster, port_a, n=4)
    first = (await clients.cmd("report", full=True))["clients"]
    ids = [c["ids"][0] for c in first]
    await clients.cmd("cut", port=port_b)
    emitter.to("r1").emit("m", 1)
    emitter.to(ids[2]).emit("m", 100)  # only the third one's
    emitter.to("r1").except_(ids[1]).emit("m", 2)  # all but the second one
    assert await reconnected(clients)
    emitter.to("r1").emit("m", 3)
    want = [[0, 1, 2, 3], [0, 1, 3], [0, 1, 100, 2, 3], [0, 1, 2, 3]]
    rep: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal rep
        rep = await clients.cmd("report", full=True)
        return [c["got"] for c in rep["clients"]] == want

    await until(done, what=f"each client's own replay (want {want})")
    assert all(c["recovered"] == [False, True] for c in rep["clients"]), rep["clients"]


async def test_a_session_stored_after_the_client_is_back_is_still_restored(cluster: Cluster) -> None:
    """In a storm the old server may store the session after the client has
    already reconnected elsewhere: B tries again for a few seconds (the offset
    is recent), so the client still recovers."""
    io_a, port_a = await cluster.py_server()
    _, port_b = await cluster.py_server()
    adapter_a = io_a.of("/").adapter
    original = adapter_a._store_session
    loop = asyncio.get_running_loop()

    def late_store(session: dict[str, Any], ttl_ms: int) -> None:
        loop.call_later(1.2, original, session, ttl_ms)

    adapter_a._store_session = late_store  # type: ignore[method-assign]
    clients, emitter = await clients_with_a_first_message(cluster, port_a, n=2)
    await clients.cmd("cut", port=port_b)
    emitter.to("r1").emit("m", 1)
    assert await reconnected(clients)
    emitter.to("r1").emit("m", 2)
    await until(clients_got(clients, 3), what="every message")
    rep = await clients.cmd("report", full=True)
    for c in rep["clients"]:
        assert c["recovered"] == [False, True], c
        assert c["got"] == [0, 1, 2], c
