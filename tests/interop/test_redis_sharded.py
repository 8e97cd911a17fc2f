"""RedisShardedAdapter against Node's createShardedAdapter on one real redis-server.

A Node socket.io 4.8 server (tests/peers/node_sharded_server.mjs, driven over
stdin) and a fastsio server share a private redis-server 7; npm
socket.io-client clients (run by the same Node process) connect to both.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, AsyncIterator, Callable, Optional

import pytest
import redis.asyncio as aioredis

import fastsio
from fastsio.broadcast import RemoteSocket
from fastsio.adapters.redis_sharded import RedisShardedAdapter, create_sharded_adapter

from conftest import NODE_MODULES, PEERS, _another_port, _node_binary

pytestmark = pytest.mark.timeout(120)


class NodePeer:
    """The Node server + clients process: ``await call(cmd, **fields)`` -> its result line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self._seq = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                self._changed.set()
                return
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                continue
            self._changed.set()

    async def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10, what: str = "line") -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            for line in self.lines:
                if pred(line):
                    return line
            if self.proc.returncode is not None and self._reader.done():
                raise AssertionError(f"node exited waiting for {what}: {self.lines[-5:]}")
            left = end - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; last lines {self.lines[-8:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def call(self, cmd: str, timeout: float = 15, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        seq = self._seq
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": seq, "cmd": cmd, **fields}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.wait(lambda l: l.get("event") == "result" and l.get("id") == seq, timeout, f"result of {cmd}")

    def received(self, name: str, ev: Optional[str] = None) -> list[list[Any]]:
        return [l["args"] for l in self.lines
                if l.get("event") == "recv" and l.get("name") == name and (ev is None or l.get("ev") == ev)]

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.call("exit"), 5)
            except Exception:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()


@pytest.fixture
async def node_sharded(redis_server: Any) -> AsyncIterator[Callable[..., Any]]:
    peers: list[NodePeer] = []

    async def start(mode: str = "dynamic") -> tuple[NodePeer, int]:
        node = _node_binary()
        port = _another_port()
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        env.pop("NODE_OPTIONS", None)
        proc = await asyncio.create_subprocess_exec(
            node, str(PEERS / "node_sharded_server.mjs"), f"url={redis_server.url}", f"port={port}",
            f"mode={mode}", "deadline_ms=90000", cwd=str(PEERS), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        peer = NodePeer(proc)
        peers.append(peer)
        await peer.wait(lambda l: l.get("event") == "ready", 20, "node ready")
        return peer, port

    yield start
    for peer in peers:
        await peer.close()


@pytest.fixture
async def fastsio_sharded(redis_server: Any) -> AsyncIterator[Callable[..., Any]]:
    servers: list[fastsio.Server] = []

    async def start(mode: str = "dynamic", **options: Any) -> tuple[fastsio.Server, int]:
        io = fastsio.Server(adapter=RedisShardedAdapter.from_url(redis_server.url, subscription_mode=mode, **options))

        @io.on("connection")
        def on_connection(socket: Any) -> None:
            auth = socket.handshake.auth or {}
            if isinstance(auth.get("rooms"), list):
                socket.join(auth["rooms"])
            socket.data = {"name": auth.get("name"), "server": "fastsio"}

        port = _another_port()
        await io.listen(port, host="127.0.0.1")
        servers.append(io)
        return io, port

    yield start
    for io in servers:
        await asyncio.wait_for(io.close(), 10)


def _bin(data: bytes) -> dict[str, str]:
    return {"$bin": data.hex()}


async def _cluster(node_sharded: Any, fastsio_sharded: Any, mode: str) -> tuple[NodePeer, fastsio.Server, dict[str, str]]:
    peer, nport = await node_sharded(mode)
    io, fport = await fastsio_sharded(mode)
    sids = {}
    for name, port, rooms in (("n1", nport, ["r1"]), ("n2", nport, ["r2", "x"]),
                              ("f1", fport, ["r1"]), ("f2", fport, ["r2", "x"])):
        res = await peer.call("client", name=name, url=f"http://127.0.0.1:{port}", rooms=rooms)
        assert "sid" in res, res
        sids[name] = res["sid"]
    # both servers see each other (and the dynamic room channels are subscribed)
    for _ in range(200):
        if (await io.sockets.adapter.server_count()) == 2 and (await peer.call("server_count"))["count"] == 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    return peer, io, sids


async def _settle(peer: NodePeer, names: list[str], ev: str, count: int = 1, timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while any(len(peer.received(n, ev)) < count for n in names) and loop.time() < end:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.15)  # and nothing more arrives for the others


@pytest.mark.parametrize("mode", ["dynamic", "static", "dynamic-private"])
async def test_broadcasts_cross_both_ways(node_sharded: Any, fastsio_sharded: Any, mode: str) -> None:
    peer, io, sids = await _cluster(node_sharded, fastsio_sharded, mode)
    everyone = ["n1", "n2", "f1", "f2"]
    blob = bytes(range(256)) + b"\x00\xff"
    # from fastsio
    io.to("r1").emit("py-room", 1, "two", {"three": [None, 2.5]})
    io.to(["r1", "r2"]).except_("x").emit("py-multi")
    io.compress(False).emit("py-all")
    io.emit("py-bin", blob, {"nested": [b"\x01"]})
    io.to(sids["n2"]).emit("py-direct")
    io.local.emit("py-local")
    await _settle(peer, everyone, "py-bin")
    await _settle(peer, ["n2"], "py-direct")
    assert peer.received("n1", "py-room") == [[1, "two", {"three": [None, 2.5]}]]
    assert peer.received("f1", "py-room") == [[1, "two", {"three": [None, 2.5]}]]
    assert peer.received("n2", "py-room") == [] and peer.received("f2", "py-room") == []
    assert [bool(peer.received(n, "py-multi")) for n in everyone] == [True, False, True, False]
    assert all(peer.received(n, "py-all") == [[]] for n in everyone)
    for n in everyone:
        assert peer.received(n, "py-bin") == [[_bin(blob), {"nested": [_bin(b"\x01")]}]], n
    assert peer.received("n2", "py-direct") == [[]] and peer.received("n1", "py-direct") == []
    assert all(peer.received(n, "py-local") == ([[]] if n[0] == "f" else []) for n in everyone)
    # from node
    await peer.call("emit", rooms=["r1"], ev="js-room", args=[1, {"a": "b"}])
    await peer.call("emit", rooms=["r1", "r2"], ev="js-multi-all")
    await peer.call("emit", rooms=["r1", "r2"], **{"except": ["x"]}, ev="js-multi")
    await peer.call("emit", flags={"compress": False}, ev="js-all")
    await peer.call("emit", ev="js-bin", args=[_bin(blob)])
    await peer.call("emit", rooms=[sids["f2"]], ev="js-direct")
    await _settle(peer, everyone, "js-bin")
    await _settle(peer, ["f2"], "js-direct")
    assert peer.received("f1", "js-room") == [[1, {"a": "b"}]] and peer.received("n1", "js-room") == [[1, {"a": "b"}]]
    assert peer.received("f2", "js-room") == []
    assert [bool(peer.received(n, "js-multi")) for n in everyone] == [True, False, True, False]
    assert all(peer.received(n, "js-multi-all") == [[]] for n in everyone)
    assert all(peer.received(n, "js-all") == [[]] for n in everyone)
    assert all(peer.received(n, "js-bin") == [[_bin(blob)]] for n in everyone)
    assert peer.received("f2", "js-direct") == [[]] and peer.received("f1", "js-direct") == []
    # volatile (alone: a client busy with a previous packet may drop a volatile one)
    io.volatile.emit("py-volatile")
    await _settle(peer, everyone, "py-volatile")
    await peer.call("emit", flags={"volatile": True}, ev="js-volatile")
    await _settle(peer, everyone, "js-volatile")
    assert all(peer.received(n, "py-volatile") == [[]] and peer.received(n, "js-volatile") == [[]] for n in everyone)


@pytest.mark.parametrize("mode", ["dynamic", "static"])
async def test_cluster_operations_cross_both_ways(node_sharded: Any, fastsio_sharded: Any, mode: str) -> None:
    peer, io, sids = await _cluster(node_sharded, fastsio_sharded, mode)
    assert await io.sockets.adapter.server_count() == 2
    assert (await peer.call("server_count"))["count"] == 2

    # broadcast with acks, gathered from both servers' clients
    answers = await io.timeout(5).emit_with_ack("q-py", 1)
    assert sorted(answers) == ["f1:q-py", "f2:q-py", "n1:q-py", "n2:q-py"]
    res = await peer.call("emit_ack", ms=5000, ev="q-js", rooms=["r1"])
    assert sorted(res["responses"]) == ["f1:q-js", "n1:q-js"], res

    # fetch_sockets both ways
    found = await io.in_("r2").fetch_sockets()
    assert sorted(s.id for s in found) == sorted([sids["n2"], sids["f2"]])
    remote = next(s for s in found if s.id == sids["n2"])
    assert isinstance(remote, RemoteSocket)
    assert remote.rooms == {sids["n2"], "r2", "x"} and remote.data == {"name": "n2", "server": "node"}
    res = await peer.call("fetch", rooms=["r1"])
    by_id = {s["id"]: s for s in res["sockets"]}
    assert set(by_id) == {sids["n1"], sids["f1"]}
    assert by_id[sids["f1"]]["rooms"] == sorted([sids["f1"], "r1"])
    assert by_id[sids["f1"]]["data"] == {"name": "f1", "server": "fastsio"}
    assert by_id[sids["f1"]]["time"].endswith("(Coordinated Universal Time)")

    # a RemoteSocket works through the other server
    remote.emit("to-remote", 5)
    await _settle(peer, ["n2"], "to-remote")
    assert peer.received("n2", "to-remote") == [[5]]
    await peer.call("remote_emit", sid=sids["f1"], ev="to-remote-py", args=[6])
    await _settle(peer, ["f1"], "to-remote-py")
    assert peer.received("f1", "to-remote-py") == [[6]]

    # sockets_join / sockets_leave both ways
    io.in_("r1").sockets_join("joined-py")
    await asyncio.sleep(0.3)
    res = await peer.call("fetch", rooms=["joined-py"])
    assert {s["id"] for s in res["sockets"]} == {sids["n1"], sids["f1"]}
    await peer.call("leave", rooms=["joined-py"], room="r1")
    await peer.call("join", rooms=["x"], room="joined-js")
    await asyncio.sleep(0.3)
    assert {s.id for s in await io.in_("r1").fetch_sockets()} == set()
    assert {s.id for s in await io.in_("joined-js").fetch_sockets()} == {sids["n2"], sids["f2"]}

    # server_side_emit with and without ack, both ways
    got: list[Any] = []
    io.on("note", lambda *args: got.append(args))
    io.on("ask", lambda value, callback: callback(f"py:{value}"))
    assert await io.server_side_emit_with_ack("ask", 7) == ["node:7"]
    res = await peer.call("sse_ack", ev="ask", args=[8])
    assert res["responses"] == ["py:8"], res
    io.server_side_emit("note", 1, "a")
    await peer.call("sse", ev="note", args=[2, "b"])
    await peer.wait(lambda l: l.get("event") == "server_event" and l.get("ev") == "note", 5, "note on node")
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.02)
    assert got == [(2, "b")]

    # disconnect_sockets both ways
    io.in_(sids["n1"]).disconnect_sockets(True)
    await peer.wait(lambda l: l.get("event") == "client_disconnect" and l.get("name") == "n1", 5, "n1 disconnect")
    await peer.call("disconnect", rooms=[sids["f2"]], close=False)
    await peer.wait(lambda l: l.get("event") == "client_disconnect" and l.get("name") == "f2", 5, "f2 disconnect")
    assert {s.id for s in await io.fetch_sockets()} == {sids["n2"], sids["f1"]}


async def test_broadcast_ack_timeout_carries_partial_responses(
        node_sharded: Any, fastsio_sharded: Any, redis_server: Any) -> None:
    peer, io, sids = await _cluster(node_sharded, fastsio_sharded, "dynamic")
    # a fastsio-side socket that never answers
    silent = next(s for s in io.sockets.sockets.values() if s.id == sids["f2"])
    silent.conn.close()
    await asyncio.sleep(0.2)
    # a ghost subscriber that never answers makes the request time out (as between Node servers)
    ghost = aioredis.Redis.from_url(redis_server.url)
    ps = ghost.pubsub()
    await ps.ssubscribe("socket.io#/#")
    try:
        with pytest.raises(TimeoutError) as info:
            await io.timeout(2).emit_with_ack("q")
        assert sorted(info.value.responses) == ["f1:q", "n1:q", "n2:q"]  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError, match="fetch_sockets: timeout reached"):
            await io.timeout(1).fetch_sockets()
    finally:
        await ps.aclose()
        await ghost.aclose()


async def test_dynamic_mode_servers_without_members_get_nothing(
        node_sharded: Any, fastsio_sharded: Any, redis_server: Any) -> None:
    peer, io, sids = await _cluster(node_sharded, fastsio_sharded, "dynamic")
    await peer.call("client", name="n3", url=f"http://127.0.0.1:{(await _node_port(peer))}", rooms=["node-only"])
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        channels = set(await r.execute_command("PUBSUB", "SHARDCHANNELS"))
        assert b"socket.io#/#node-only#" in channels and b"socket.io#/#r1#" in channels
        counts = dict(zip(*[iter(await r.execute_command("PUBSUB", "SHARDNUMSUB", "socket.io#/#r1#",
                                                          "socket.io#/#node-only#", "socket.io#/#x#"))] * 2))
        assert counts == {b"socket.io#/#r1#": 2, b"socket.io#/#node-only#": 1, b"socket.io#/#x#": 2}
        # fastsio subscribes to no socket-id channel in dynamic mode
        assert not any(sids["f1"].encode() in c for c in channels)
        seen: list[bytes] = []
        adapter = io.sockets.adapter
        real = adapter._on_raw

        def spy(raw: bytes, response: bool) -> None:
            if not raw.startswith(adapter._self_json):  # its own messages come back too
                seen.append(raw)
            real(raw, response)

        adapter._on_raw = spy  # type: ignore[method-assign]
        for i in range(5):
            await peer.call("emit", rooms=["node-only"], ev="quiet", args=[i])
        await _settle(peer, ["n3"], "quiet", 5)
        assert len(peer.received("n3", "quiet")) == 5
        assert seen == []  # not one message reached the fastsio server
        # once a fastsio socket joins, the room's traffic comes
        io.in_(sids["f1"]).sockets_join("node-only")
        for _ in range(100):
            if (await r.execute_command("PUBSUB", "SHARDNUMSUB", "socket.io#/#node-only#"))[1] == 2:
                break
            await asyncio.sleep(0.02)
        await peer.call("emit", rooms=["node-only"], ev="loud")
        await _settle(peer, ["f1"], "loud")
        assert peer.received("f1", "loud") == [[]] and len(seen) == 1
        # and when the last member leaves, the channel is dropped again
        io.in_(sids["f1"]).sockets_leave("node-only")
        for _ in range(100):
            if (await r.execute_command("PUBSUB", "SHARDNUMSUB", "socket.io#/#node-only#"))[1] == 1:
                break
            await asyncio.sleep(0.02)
        assert (await r.execute_command("PUBSUB", "SHARDNUMSUB", "socket.io#/#node-only#"))[1] == 1
    finally:
        await r.aclose()


async def _node_port(peer: NodePeer) -> int:
    return int(next(l for l in peer.lines if l.get("event") == "ready")["port"])


async def test_redis_restart_reconnects_and_resubscribes(
        fastsio_sharded: Any, redis_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    a, _ = await fastsio_sharded("dynamic")
    b, _ = await fastsio_sharded("dynamic")
    got: list[Any] = []
    b.on("note", lambda *args: got.append(args))
    a.server_side_emit("note", 1)
    for _ in range(200):
        if got:
            break
        await asyncio.sleep(0.01)
    assert got == [(1,)]
    with caplog.at_level(logging.WARNING, logger="fastsio.adapters.redis_sharded"):
        redis_server.stop()
        # a request in flight fails with a clear error instead of hanging
        with pytest.raises((ConnectionError, OSError)):
            await asyncio.wait_for(a.fetch_sockets(), 5)
        await asyncio.sleep(0.3)
        redis_server.start()
        loop = asyncio.get_running_loop()
        end = loop.time() + 15
        while loop.time() < end:
            try:
                if await a.sockets.adapter.server_count() == 2:
                    break
            except Exception:
                pass
            await asyncio.sleep(0.05)
        assert await a.sockets.adapter.server_count() == 2
        # a still counts b from its heartbeats of before the restart, so b may not have
        # re-subscribed yet: emit again until it hears one (a lost resubscribe never does)
        for _ in range(15):
            a.server_side_emit("note", 2)
            for _ in range(100):
                if len(got) > 1:
                    break
                await asyncio.sleep(0.01)
            if len(got) > 1:
                break
    assert got[0] == (1,) and len(got) > 1 and set(got[1:]) == {(2,)}
    assert "lost the Redis bus" in caplog.text and "is back" in caplog.text


async def test_malformed_messages_on_the_channel_are_dropped(
        fastsio_sharded: Any, redis_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    a, _ = await fastsio_sharded("dynamic")
    b, _ = await fastsio_sharded("dynamic")
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        with caplog.at_level(logging.WARNING, logger="fastsio.adapters.cluster"):
            for junk in (b"not json", b'{"foo": 1}', b"\x84\xa3uid", b"{", b"", b'{"uid":"x","nsp":"/","type":3}',
                         b'[1,2,3]', b"\xc1"):
                await r.execute_command("SPUBLISH", "socket.io#/#", junk)
            await r.execute_command("SPUBLISH", f"socket.io#/#{a.sockets.adapter.uid}#", b"\x93\x01\x02")
            await asyncio.sleep(0.3)
        assert "dropped a malformed" in caplog.text
        got: list[Any] = []
        b.on("note", lambda *args: got.append(args))
        a.server_side_emit("note", "still fine")
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [("still fine",)]
    finally:
        await r.aclose()


async def test_unreachable_redis_fails_listen_clearly() -> None:
    port = _another_port()  # nothing listens there
    io = fastsio.Server(adapter=RedisShardedAdapter.from_url(f"redis://127.0.0.1:{port}/0"))
    with pytest.raises(ConnectionError, match="cannot reach Redis"):
        await asyncio.wait_for(io.listen(_another_port(), host="127.0.0.1"), 10)
    await io.close()


async def test_create_sharded_adapter_takes_user_clients_and_checks_options(redis_server: Any) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        create_sharded_adapter(object(), nope=1)
    with pytest.raises(ValueError):
        create_sharded_adapter(object(), subscription_mode="sometimes")
    pub = aioredis.Redis.from_url(redis_server.url)
    try:
        io = fastsio.Server(adapter=create_sharded_adapter(pub, channel_prefix="app"))
        await io.listen(_another_port(), host="127.0.0.1")
        assert await io.sockets.adapter.server_count() == 1
        assert io.sockets.adapter.channel == "app#/#"
        await io.close()
        assert await pub.ping()  # the user's client stays open
    finally:
        await pub.aclose()


async def test_request_in_flight_fails_at_once_when_redis_goes(
        fastsio_sharded: Any, redis_server: Any) -> None:
    a, _ = await fastsio_sharded("dynamic")
    a.sockets.adapter.requests_timeout = 30
    ghost = aioredis.Redis.from_url(redis_server.url)
    ps = ghost.pubsub()
    await ps.ssubscribe("socket.io#/#")  # a second "server" that never answers
    try:
        assert await a.sockets.adapter.server_count() == 2
        task = asyncio.ensure_future(a.fetch_sockets())
        await asyncio.sleep(0.2)
        assert not task.done()
        redis_server.stop()
        with pytest.raises(ConnectionError, match="lost the connection to Redis"):
            await asyncio.wait_for(task, 5)
    finally:
        try:
            await asyncio.wait_for(ps.aclose(), 2)
            await asyncio.wait_for(ghost.aclose(), 2)
        except Exception:
            pass


async def test_mixed_cluster_survives_a_redis_restart(
        node_sharded: Any, fastsio_sharded: Any, redis_server: Any) -> None:
    peer, io, sids = await _cluster(node_sharded, fastsio_sharded, "dynamic")
    io.emit("before")
    await _settle(peer, ["n1", "f1"], "before")
    redis_server.stop()
    # local delivery goes on while the bus is down
    io.to("r1").emit("during")
    await _settle(peer, ["f1"], "during")
    assert peer.received("f1", "during") == [[]]
    await asyncio.sleep(0.3)
    redis_server.start()
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    # both servers re-subscribe by themselves: the room channels too
    r = aioredis.Redis.from_url(redis_server.url)
    try:
        while loop.time() < end:
            try:
                counts = await r.execute_command("PUBSUB", "SHARDNUMSUB", "socket.io#/#", "socket.io#/#r1#")
                if counts[1] == 2 and counts[3] == 2:
                    break
            except Exception:
                pass
            await asyncio.sleep(0.1)
        assert counts[1] == 2 and counts[3] == 2, counts
    finally:
        await r.aclose()
    io.to("r1").emit("after-py")
    await peer.call("emit", rooms=["r1"], ev="after-js")
    await _settle(peer, ["n1", "f1"], "after-js")
    await _settle(peer, ["n1", "f1"], "after-py")
    for n in ("n1", "f1"):
        assert peer.received(n, "after-py") == [[]] and peer.received(n, "after-js") == [[]], n


async def test_a_stalled_redis_fails_requests_with_a_deadline(fastsio_sharded: Any, redis_server: Any) -> None:
    import signal

    a, _ = await fastsio_sharded("dynamic", requests_timeout=0.5)
    assert await a.sockets.adapter.server_count() == 1
    assert redis_server.proc is not None
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TimeoutError, match="server_count: Redis .* did not answer within 0.5s"):
            await asyncio.wait_for(a.fetch_sockets(), 5)
        assert loop.time() - start < 4
        a.emit("local delivery goes on")  # queued for the bus, no exception
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    for _ in range(200):
        try:
            if await a.sockets.adapter.server_count() == 1:
                break
        except Exception:
            pass
        await asyncio.sleep(0.05)
    assert await a.sockets.adapter.server_count() == 1
