"""RedisAdapter in a real cluster: a fastsio server with a Node socket.io 4.8 server
(@socket.io/redis-adapter 8.3) or with a second fastsio server, on a real
redis-server, with npm socket.io-client clients on both.

Every test runs twice: the other server is Node ("node") or fastsio ("fastsio").
Each test uses its own channel key, so the module shares one redis-server and
one node process (tests/peers/node_redis_peer.mjs).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any, AsyncIterator, Optional

import pytest
import redis.asyncio as aioredis

import fastsio
from fastsio.adapters.redis import Emitter, RedisAdapter, create_adapter
from fastsio.exceptions import AckTimeout

from redis_peer import NodePeer, tag, untag
from support.redis_server import RedisServer

_keys = itertools.count()
BIN = bytes(range(256)) + b"\x00\xff"


@pytest.fixture(scope="module")
def shared_redis() -> Any:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def node_peer(shared_redis: RedisServer) -> Any:
    peer = NodePeer(shared_redis.url)
    yield peer
    peer.close()


def _answer(prefix: str, value: Any) -> str:
    return prefix + json.dumps(value, separators=(",", ":"))


class FastsioSide:
    kind = "fastsio"

    def __init__(self, io: fastsio.Server, port: int) -> None:
        self.io = io
        self.port = port
        self.events: list[tuple[str, list[Any]]] = []

    @staticmethod
    async def start(url: str, key: str, port: int, **options: Any) -> "FastsioSide":
        io = fastsio.Server(adapter=RedisAdapter.from_url(url, key=key, **options))
        side = FastsioSide(io, port)
        for name in ("/", "/admin"):
            nsp = io.of(name)

            @nsp.on("connection")
            def on_connection(socket: Any) -> None:
                auth = socket.handshake.auth or {}
                if auth.get("rooms"):
                    socket.join(auth["rooms"])
                if auth.get("data"):
                    socket.data.update(auth["data"])

            @nsp.on("ping")
            def on_ping(*args: Any) -> None:
                cb = args[-1] if args and callable(args[-1]) else None
                args = args[:-1] if cb else args
                side.events.append(("ping", list(args)))
                if cb:
                    cb(_answer("py:", args[0] if args else None))

            @nsp.on("note")
            def on_note(*args: Any) -> None:
                side.events.append(("note", list(args)))

        await io.listen(port, host="127.0.0.1")
        return side

    def _op(self, rooms: Any = (), except_: Any = (), flags: Optional[dict[str, Any]] = None, nsp: str = "/") -> Any:
        op: Any = self.io.of(nsp)
        if rooms:
            op = op.to(list(rooms))
        if except_:
            op = op.except_(list(except_))
        flags = flags or {}
        if flags.get("volatile"):
            op = op.volatile
        if flags.get("compress") is False:
            op = op.compress(False)
        if flags.get("local"):
            op = op.local
        return op

    async def emit(self, event: str, *args: Any, **where: Any) -> None:
        self._op(**where).emit(event, *args)

    async def emit_ack(self, event: str, *args: Any, timeout: float, **where: Any) -> tuple[Optional[str], Any]:
        try:
            return None, await self._op(**where).timeout(timeout).emit_with_ack(event, *args)
        except AckTimeout as err:
            return str(err), err.responses  # type: ignore[attr-defined]

    async def fetch(self, **where: Any) -> list[dict[str, Any]]:
        out = []
        for s in await self._op(**where).fetch_sockets():
            out.append({"id": s.id, "rooms": sorted(s.rooms), "data": s.data, "handshake": s.handshake.to_dict()})
        return out

    async def sockets_join(self, room: Any, **where: Any) -> None:
        self._op(**where).sockets_join(room)

    async def sockets_leave(self, room: Any, **where: Any) -> None:
        self._op(**where).sockets_leave(room)

    async def disconnect_sockets(self, close: bool, **where: Any) -> None:
        self._op(**where).disconnect_sockets(close)

    async def sse(self, event: str, *args: Any) -> None:
        self.io.server_side_emit(event, *args)

    async def sse_ack(self, event: str, *args: Any) -> tuple[Optional[str], Any]:
        try:
            return None, await self.io.server_side_emit_with_ack(event, *args)
        except AckTimeout as err:
            return str(err), err.responses  # type: ignore[attr-defined]

    async def all_rooms(self, nsp: str = "/") -> set[str]:
        return await self.io.of(nsp).adapter.all_rooms()  # type: ignore[no-any-return]

    async def server_count(self, nsp: str = "/") -> int:
        return await self.io.of(nsp).adapter.server_count()  # type: ignore[no-any-return]

    async def server_events(self) -> list[tuple[str, list[Any]]]:
        return self.events

    async def local_rooms(self, sid: str) -> set[str]:
        return set(self.io.sockets.adapter.sids.get(sid, ()))

    async def close(self) -> None:
        await asyncio.wait_for(self.io.close(), 10)


class NodeSide:
    kind = "node"

    def __init__(self, peer: NodePeer, name: str, port: int) -> None:
        self.peer = peer
        self.name = name
        self.port = port

    @staticmethod
    async def start(peer: NodePeer, key: str, **options: Any) -> "NodeSide":
        name = f"node-{key}"
        result = await peer.call("start_server", name=name, key=key, namespaces=["/", "/admin"], **options)
        return NodeSide(peer, name, result["port"])

    def _where(self, rooms: Any = (), except_: Any = (), flags: Optional[dict[str, Any]] = None,
               nsp: str = "/") -> dict[str, Any]:
        return {"name": self.name, "rooms": list(rooms), "except": list(except_), "flags": flags or {}, "nsp": nsp}

    async def emit(self, event: str, *args: Any, **where: Any) -> None:
        await self.peer.call("emit", event=event, args=tag(list(args)), **self._where(**where))

    async def emit_ack(self, event: str, *args: Any, timeout: float, **where: Any) -> tuple[Optional[str], Any]:
        r = await self.peer.call("emit_ack", event=event, args=tag(list(args)), timeout_ms=int(timeout * 1000),
                                 **self._where(**where))
        return r["error"], untag(r["responses"])

    async def fetch(self, **where: Any) -> list[dict[str, Any]]:
        out = await self.peer.call("fetch", **self._where(**where))
        for s in out:
            s["rooms"] = sorted(s["rooms"])
        return out  # type: ignore[no-any-return]

    async def sockets_join(self, room: Any, **where: Any) -> None:
        await self.peer.call("sockets_join", room=room, **self._where(**where))

    async def sockets_leave(self, room: Any, **where: Any) -> None:
        await self.peer.call("sockets_leave", room=room, **self._where(**where))

    async def disconnect_sockets(self, close: bool, **where: Any) -> None:
        await self.peer.call("disconnect_sockets", close=close, **self._where(**where))

    async def sse(self, event: str, *args: Any) -> None:
        await self.peer.call("sse", name=self.name, event=event, args=tag(list(args)))

    async def sse_ack(self, event: str, *args: Any) -> tuple[Optional[str], Any]:
        r = await self.peer.call("sse_ack", name=self.name, event=event, args=tag(list(args)))
        return r["error"], untag(r["responses"])

    async def all_rooms(self, nsp: str = "/") -> set[str]:
        return set(await self.peer.call("all_rooms", name=self.name, nsp=nsp))

    async def server_count(self, nsp: str = "/") -> int:
        return int(await self.peer.call("server_count", name=self.name, nsp=nsp))

    async def server_events(self) -> list[tuple[str, list[Any]]]:
        return [(e["ev"], untag(e["args"])) for e in await self.peer.call("server_events", name=self.name)]

    async def local_rooms(self, sid: str) -> set[str]:
        for s in await self.peer.call("local_sockets", name=self.name):
            if s["id"] == sid:
                return set(s["rooms"])
        return set()

    async def close(self) -> None:
        await self.peer.call("stop_server", name=self.name)


class Clients:
    """npm socket.io-client clients, in the node process."""

    def __init__(self, peer: NodePeer, prefix: str) -> None:
        self.peer = peer
        self.prefix = prefix
        self.names: list[str] = []

    async def connect(self, name: str, side: Any, nsp: str = "/", **auth: Any) -> str:
        full = f"{self.prefix}-{name}"
        self.names.append(full)
        r = await self.peer.call("client_connect", client=full, port=side.port, nsp=nsp, auth=tag(auth),
                                 noack=bool(auth.get("noack")))
        return r["id"]  # type: ignore[no-any-return]

    async def events(self, name: str, count: int = 0, timeout: float = 5, clear: bool = True) -> list[tuple[str, Any]]:
        r = await self.peer.call("client_events", client=f"{self.prefix}-{name}", count=count,
                                 timeout_ms=int(timeout * 1000), clear=clear, timeout=timeout + 5)
        return [(e["ev"], untag(e["args"])) for e in r["events"]]

    async def state(self, name: str) -> dict[str, Any]:
        return await self.peer.call("client_events", client=f"{self.prefix}-{name}", clear=False)  # type: ignore

    async def quiet(self, *names: str, wait: float = 0.3) -> None:
        """Asserts that none of ``names`` got anything within ``wait`` seconds."""
        await asyncio.sleep(wait)
        for name in names:
            assert await self.events(name) == [], name

    async def close(self) -> None:
        for name in self.names:
            await self.peer.call("client_close", client=name)


@pytest.fixture(params=["node", "fastsio"])
async def cluster(request: Any, shared_redis: RedisServer, node_peer: NodePeer) -> AsyncIterator[Any]:
    """(a, b, clients, key): ``a`` is fastsio, ``b`` the other kind, on one Redis and one key."""
    key = f"t{next(_keys)}"
    from conftest import _another_port

    a = await FastsioSide.start(shared_redis.url, key, _another_port())
    if request.param == "node":
        b: Any = await NodeSide.start(node_peer, key)
    else:
        b = await FastsioSide.start(shared_redis.url, key, _another_port())
    clients = Clients(node_peer, key)
    # both servers subscribed before the test starts
    for _ in range(200):
        if await a.server_count() == 2 and await b.server_count() == 2:
            break
        await asyncio.sleep(0.01)
    assert await a.server_count() == 2
    try:
        yield a, b, clients, key
    finally:
        await clients.close()
        await b.close()
        await a.close()
        await node_peer.detach()


async def _both(cluster: Any) -> Any:
    a, b, clients, _ = cluster
    await clients.connect("a1", a, rooms=["r1"], data={"who": "a1"})
    await clients.connect("b1", b, rooms=["r1", "r2"], data={"who": "b1"})
    await clients.connect("b2", b, data={"who": "b2"})
    return a, b, clients


@pytest.mark.parametrize("direction", ["a->b", "b->a"])
async def test_broadcasts_cross_the_cluster_with_rooms_except_and_flags(cluster: Any, direction: str) -> None:
    a, b, clients = await _both(cluster)
    await clients.connect("a2", a, data={"who": "a2"})
    src = a if direction == "a->b" else b
    args = [1, BIN, {"k": [1.5, None, "é"], "b": b"\x00\x01"}, -7]
    await src.emit("m1", *args, rooms=["r1"])
    for name in ("a1", "b1"):
        assert await clients.events(name, 1) == [("m1", args)], name
    await src.emit("m2", "x", except_=["r2"])
    for name in ("a1", "b2", "a2"):
        assert await clients.events(name, 1) == [("m2", ["x"])], name
    await src.emit("m3", rooms=["r1", "r2"])  # two rooms: the namespace channel
    for name in ("a1", "b1"):
        assert await clients.events(name, 1) == [("m3", [])], name
    await src.emit("m4", 4, flags={"volatile": True})
    await src.emit("m5", 5, flags={"compress": False})
    await src.emit("m6", 6)
    for name in ("a1", "a2", "b1", "b2"):
        assert await clients.events(name, 3) == [("m4", [4]), ("m5", [5]), ("m6", [6])], name
    # local: never leaves its server
    await src.emit("m7", 7, flags={"local": True})
    local = ("a1", "a2") if src is a else ("b1", "b2")
    remote = ("b1", "b2") if src is a else ("a1", "a2")
    for name in local:
        assert await clients.events(name, 1) == [("m7", [7])]
    await clients.quiet(*remote, "b1" if src is a else "a1")


async def test_publisher_clients_get_a_broadcast_once_and_binary_stays_binary(cluster: Any) -> None:
    a, b, clients = await _both(cluster)
    await a.emit("bin", BIN, rooms=["r1"])
    state = await clients.peer.call("client_events", client=f"{clients.prefix}-b1", count=1, timeout_ms=5000)
    assert state["events"][0]["kinds"] == ["Buffer"]
    assert untag(state["events"][0]["args"]) == [BIN]
    assert await clients.events("a1", 1) == [("bin", [BIN])]
    await asyncio.sleep(0.2)
    assert await clients.events("a1") == []  # not a second time through Redis


@pytest.mark.parametrize("direction", ["a->b", "b->a"])
async def test_broadcast_with_acks_gathers_every_server(cluster: Any, direction: str) -> None:
    a, b, clients = await _both(cluster)
    src = a if direction == "a->b" else b
    err, responses = await src.emit_ack("q", {"n": 1}, timeout=3)
    assert err is None
    assert responses == [{"n": 1}] * 3
    err, responses = await src.emit_ack("q", BIN, timeout=3, rooms=["r1"])
    assert err is None and responses == [BIN, BIN]
    # a client that never answers: the timeout error carries what came
    other = b if src is a else a
    await clients.connect("mute", other, noack=True)
    err, responses = await src.emit_ack("q", 2, timeout=0.6)
    assert err is not None and "timed out" in err
    assert responses == [2, 2, 2]


@pytest.mark.parametrize("direction", ["a->b", "b->a"])
async def test_fetch_sockets_and_remote_socket_operations(cluster: Any, direction: str) -> None:
    a, b, clients = await _both(cluster)
    src, other = (a, b) if direction == "a->b" else (b, a)
    fetched = await src.fetch()
    by_who = {s["data"]["who"]: s for s in fetched}
    assert set(by_who) == {"a1", "b1", "b2"}
    b1 = by_who["b1"] if other is b else by_who["a1"]
    assert set(b1["rooms"]) >= {b1["id"], "r1"}
    hs = b1["handshake"]
    assert hs["address"] in ("127.0.0.1", "::ffff:127.0.0.1")
    assert hs["query"]["EIO"] == "4" and isinstance(hs["issued"], int) and "GMT" in hs["time"]
    assert hs["auth"]["data"] == {"who": b1["data"]["who"]}
    assert [s["id"] for s in await src.fetch(rooms=["r2"])] == [by_who["b1"]["id"]]
    assert {s["data"]["who"] for s in await src.fetch(except_=["r1"])} == {"b2"}

    victim = "b2" if other is b else "a1"
    target = by_who[victim]["id"]
    if src.kind == "fastsio":
        remote = [s for s in await src.io.fetch_sockets() if s.id == target][0]
        assert type(remote).__name__ == "RemoteSocket" and remote.data == {"who": victim}
        assert remote.handshake.auth["data"] == {"who": victim}
        remote.emit("direct", BIN)
        assert await clients.events(victim, 1) == [("direct", [BIN])]
        assert await remote.timeout(2).emit_with_ack("q", 9) == 9
        remote.join("joined")
    else:
        peer = clients.peer
        await peer.call("remote", name=src.name, sid=target, action="emit", event="direct", args=tag([BIN]))
        assert await clients.events(victim, 1) == [("direct", [BIN])]
        r = await peer.call("remote", name=src.name, sid=target, action="emit_ack", event="q", args=[9])
        assert r["response"] == 9
        await peer.call("remote", name=src.name, sid=target, action="join", room="joined")
    for _ in range(100):
        if "joined" in await other.local_rooms(target):
            break
        await asyncio.sleep(0.02)
    assert "joined" in await other.local_rooms(target)
    if src.kind == "fastsio":
        remote.leave("joined")
    else:
        await peer.call("remote", name=src.name, sid=target, action="leave", room="joined")
    for _ in range(100):
        if "joined" not in await other.local_rooms(target):
            break
        await asyncio.sleep(0.02)
    assert "joined" not in await other.local_rooms(target)
    if src.kind == "fastsio":
        remote.disconnect(True)
    else:
        await peer.call("remote", name=src.name, sid=target, action="disconnect", close=True)
    gone = victim
    for _ in range(100):
        if not (await clients.state(gone))["connected"]:
            break
        await asyncio.sleep(0.02)
    assert not (await clients.state(gone))["connected"]


@pytest.mark.parametrize("direction", ["a->b", "b->a"])
async def test_sockets_join_leave_and_disconnect_across_servers(cluster: Any, direction: str) -> None:
    a, b, clients = await _both(cluster)
    src = a if direction == "a->b" else b
    await src.sockets_join("j1", rooms=["r1"])
    await src.sockets_join(["j2", "j3"], except_=["r2"])
    for _ in range(100):
        fetched = {s["data"]["who"]: set(s["rooms"]) for s in await a.fetch()}
        if "j1" in fetched["b1"] and "j1" in fetched["a1"] and "j2" in fetched["b2"]:
            break
        await asyncio.sleep(0.02)
    assert {"j1", "j2", "j3"} <= fetched["a1"] and "j1" in fetched["b1"] and "j2" not in fetched["b1"]
    assert {"j2", "j3"} <= fetched["b2"] and "j1" not in fetched["b2"]
    await src.sockets_leave("j1")
    for _ in range(100):
        fetched = {s["data"]["who"]: set(s["rooms"]) for s in await b.fetch()}
        if "j1" not in fetched["a1"] and "j1" not in fetched["b1"]:
            break
        await asyncio.sleep(0.02)
    assert "j1" not in fetched["a1"] and "j1" not in fetched["b1"]
    await src.disconnect_sockets(True, rooms=["j2"])
    for _ in range(100):
        states = [await clients.state(n) for n in ("a1", "b2")]
        if not any(s["connected"] for s in states):
            break
        await asyncio.sleep(0.02)
    assert not any(s["connected"] for s in states)
    assert (await clients.state("b1"))["connected"]


@pytest.mark.parametrize("direction", ["a->b", "b->a"])
async def test_server_side_emit_with_and_without_ack(cluster: Any, direction: str) -> None:
    a, b, _, _ = cluster
    src, other = (a, b) if direction == "a->b" else (b, a)
    await src.sse("note", 1, "x", {"y": None})
    for _ in range(100):
        if await other.server_events():
            break
        await asyncio.sleep(0.02)
    assert await other.server_events() == [("note", [1, "x", {"y": None}])]
    assert await src.server_events() == []
    err, responses = await src.sse_ack("ping", {"v": 5})
    assert err is None
    prefix = "node:" if other.kind == "node" else "py:"
    assert responses == [_answer(prefix, {"v": 5})]


async def test_all_rooms_and_server_count(cluster: Any) -> None:
    a, b, clients, _ = cluster
    ida = await clients.connect("a1", a, rooms=["ra"])
    idb = await clients.connect("b1", b, rooms=["rb"])
    for side in (a, b):
        assert await side.server_count() == 2
        assert await side.server_count("/admin") == 2
        assert await side.all_rooms() == {ida, idb, "ra", "rb"}
        assert await side.all_rooms("/admin") == set()


async def test_namespaces_stay_apart(cluster: Any) -> None:
    a, b, clients, _ = cluster
    await clients.connect("a1", a)
    await clients.connect("adm", a, nsp="/admin")
    await clients.connect("b1", b, nsp="/admin")
    await b.emit("only-admin", 1, nsp="/admin")
    for name in ("adm", "b1"):
        assert await clients.events(name, 1) == [("only-admin", [1])]
    await clients.quiet("a1")
    await a.emit("only-main", 2)
    await clients.quiet("adm", "b1")


async def test_specific_response_channel(shared_redis: RedisServer, node_peer: NodePeer) -> None:
    """publish_on_specific_response_channel on both sides: answers go to the requester's own channel."""
    from conftest import _another_port

    key = f"t{next(_keys)}"
    a = await FastsioSide.start(shared_redis.url, key, _another_port(), publish_on_specific_response_channel=True)
    b = await NodeSide.start(node_peer, key, specific=True)
    clients = Clients(node_peer, key)
    sniff = aioredis.Redis.from_url(shared_redis.url)
    ps = sniff.pubsub()
    await ps.psubscribe(f"{key}-response#*")
    try:
        await clients.connect("b1", b, rooms=["r1"])
        await clients.connect("a1", a, rooms=["r1"])
        assert {s["id"] for s in await a.fetch()} and len(await b.fetch()) == 2
        assert len(await a.fetch()) == 2
        seen = set()
        for _ in range(20):
            msg = await ps.get_message(timeout=0.2)
            if msg and msg["type"] == "pmessage":
                seen.add(msg["channel"].decode())
        uid = a.io.sockets.adapter.uid  # type: ignore[attr-defined]
        assert f"{key}-response#/#{uid}#" in seen
        assert f"{key}-response#/#" not in seen
    finally:
        await ps.aclose()
        await sniff.aclose()
        await clients.close()
        await b.close()
        await a.close()
        await node_peer.detach()


async def test_emitters_reach_both_kinds_of_server(shared_redis: RedisServer, node_peer: NodePeer) -> None:
    """Node's emitter -> fastsio clients, fastsio's Emitter -> Node clients, and the same bytes on the wire."""
    from conftest import _another_port

    key = f"t{next(_keys)}"
    a = await FastsioSide.start(shared_redis.url, key, _another_port())
    b = await NodeSide.start(node_peer, key)
    clients = Clients(node_peer, key)
    emitter = Emitter.from_url(shared_redis.url, key=key)
    sniff = aioredis.Redis.from_url(shared_redis.url)
    ps = sniff.pubsub()
    await ps.psubscribe(f"{key}*")
    try:
        await clients.connect("a1", a, rooms=["r1"])
        await clients.connect("b1", b, rooms=["r1"])
        await clients.connect("b2", b)
        await clients.connect("adm", a, nsp="/admin")
        await ps.get_message(timeout=0.1)

        # the same emit from both emitters: identical channel and payload
        await node_peer.call("emitter", key=key, action="emit", rooms=["r1"], event="e1",
                             args=tag([1, BIN]))
        await emitter.to("r1").emit("e1", 1, BIN)
        got = []
        for _ in range(50):
            msg = await ps.get_message(timeout=0.1)
            if msg and msg["type"] == "pmessage":
                got.append((msg["channel"], msg["data"]))
            if len(got) == 2:
                break
        assert len(got) == 2 and got[0] == got[1], got
        for name in ("a1", "b1"):
            assert await clients.events(name, 2) == [("e1", [1, BIN])] * 2, name
        await clients.quiet("b2", wait=0.1)

        await emitter.except_("r1").volatile.compress(False).emit("e2", {"x": 1})
        assert await clients.events("b2", 1) == [("e2", [{"x": 1}])]
        await emitter.of("/admin").emit("e3")
        await node_peer.call("emitter", key=key, nsp="/admin", action="emit", event="e3", args=[])
        assert await clients.events("adm", 2) == [("e3", [])] * 2
        await clients.quiet("a1", "b1", "b2", wait=0.1)

        # rooms, server-side events and disconnects from both emitters reach both servers
        await emitter.in_("r1").sockets_join("ej")
        await node_peer.call("emitter", key=key, action="join", rooms=[], room="nj")
        for _ in range(100):
            rooms = {s["data"].get("who", s["id"]): set(s["rooms"]) for s in await a.fetch()}
            if all({"nj"} <= r for r in rooms.values()) and sum("ej" in r for r in rooms.values()) == 2:
                break
            await asyncio.sleep(0.02)
        assert sum("ej" in r for r in rooms.values()) == 2 and all("nj" in r for r in rooms.values())
        await emitter.sockets_leave("nj")
        await node_peer.call("emitter", key=key, action="leave", rooms=["r1"], room="ej")
        for _ in range(100):
            rooms = {s["id"]: set(s["rooms"]) for s in await b.fetch()}
            if not any(("nj" in r or "ej" in r) for r in rooms.values()):
                break
            await asyncio.sleep(0.02)
        assert not any(("nj" in r or "ej" in r) for r in rooms.values())
        await emitter.server_side_emit("note", "from-py")
        await node_peer.call("emitter", key=key, action="sse", event="note", args=["from-node"])
        for _ in range(100):
            if len(await a.server_events()) == 2 and len(await b.server_events()) == 2:
                break
            await asyncio.sleep(0.02)
        for side in (a, b):
            assert sorted(await side.server_events()) == [("note", ["from-node"]), ("note", ["from-py"])]
        await emitter.to("r1").disconnect_sockets(True)
        await node_peer.call("emitter", key=key, action="disconnect", rooms=[], close=False, **{"except": ["r1"]})
        for _ in range(100):
            states = [await clients.state(n) for n in ("a1", "b1", "b2")]
            if not any(s["connected"] for s in states):
                break
            await asyncio.sleep(0.02)
        assert not any(s["connected"] for s in states)
        with pytest.raises(ValueError):
            emitter.emit("connect")
        with pytest.raises(ValueError):
            emitter.emit("x", lambda: None)
    finally:
        await emitter.close()
        await ps.aclose()
        await sniff.aclose()
        await clients.close()
        await b.close()
        await a.close()
        await node_peer.detach()


async def test_fastsio_publishes_the_bytes_node_publishes(shared_redis: RedisServer, node_peer: NodePeer) -> None:
    """The same operations on a fastsio and on a Node server: the same channels and bytes, uids aside."""
    from conftest import _another_port

    from fastsio.adapters import _wire

    key = f"t{next(_keys)}"
    a = await FastsioSide.start(shared_redis.url, key, _another_port())
    b = await NodeSide.start(node_peer, key)
    sniff = aioredis.Redis.from_url(shared_redis.url)
    ps = sniff.pubsub()
    await ps.psubscribe(f"{key}*")
    try:
        await ps.get_message(timeout=0.1)
        seen: dict[str, list[tuple[str, bytes]]] = {}
        for side in (a, b):
            await side.emit("m", 1, -2.5, BIN, {"k": [None, "é"]}, rooms=["r1"], flags={"volatile": True})
            await side.emit("m", except_=["x"], flags={"compress": False})
            await side.emit_ack("q", 2, timeout=0.3)
            await side.sockets_join("x", rooms=["r1"])
            await side.sockets_leave(["x", "y"], except_=["r2"])
            await side.disconnect_sockets(False, rooms=["zz"])
            await side.sse("note", 1, {"a": [1]})
            await side.sse_ack("ping", 1)
            await side.all_rooms()
            await side.fetch(rooms=["r9"])
            await asyncio.sleep(0.4)
            got = []
            while (msg := await ps.get_message(timeout=0.2)) is not None:
                if msg["type"] != "pmessage":
                    continue
                raw: bytes = msg["data"]
                value = _wire.decode_any(raw)
                ids = [value[0]] if isinstance(value, list) else [value.get("uid"), value.get("requestId")]
                for i, ident in enumerate(ids):
                    if isinstance(ident, str):
                        raw = raw.replace(ident.encode(), b"ID%d----" % i)
                got.append((msg["channel"].decode(), raw))
            seen[side.kind] = got
        assert len(seen["fastsio"]) >= 14
        # the answers differ by nature ("py:1" / "node:1"): compare them apart
        def norm(items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
            return [(c, d.replace(b"node:1", b"ANSWER").replace(b"py:1", b"ANSWER")) for c, d in items]
        assert norm(seen["fastsio"]) == norm(seen["node"])
    finally:
        await ps.aclose()
        await sniff.aclose()
        await b.close()
        await a.close()
        await node_peer.detach()


async def test_receiving_server_encodes_a_broadcast_once_for_all_its_clients(shared_redis: RedisServer,
                                                                           node_peer: NodePeer) -> None:
    from conftest import _another_port

    key = f"t{next(_keys)}"
    a = await FastsioSide.start(shared_redis.url, key, _another_port())
    b = await FastsioSide.start(shared_redis.url, key, _another_port())
    clients = Clients(node_peer, key)
    calls: list[Any] = []
    try:
        for i in range(5):
            await clients.connect(f"b{i}", b, rooms=["r1"])
        nsp = b.io.sockets
        real = nsp._encode

        def counting(*args: Any) -> Any:
            calls.append(args)
            return real(*args)

        nsp._encode = counting
        await a.emit("once", BIN, rooms=["r1"])
        for i in range(5):
            assert await clients.events(f"b{i}", 1) == [("once", [BIN])]
        assert len(calls) == 1
    finally:
        await clients.close()
        await b.close()
        await a.close()
        await node_peer.detach()
