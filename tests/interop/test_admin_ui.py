"""io.instrument(): the @socket.io/admin-ui 0.5 protocol, driven by npm
socket.io-client as the UI drives it (tests/peers/admin_client.mjs).

The page itself (the npm package's ui/dist in headless Chromium) is in
test_admin_ui_browser.py.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any

import bcrypt
import pytest

import fastsio
from fastsio.admin import InMemoryStore

PASSWORD_HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()


def admin_events(run: Any, name: str) -> list[list[Any]]:
    return [line["args"] for line in run.events("admin") if line["ev"] == name]


async def test_protocol_in_development_mode(sio_server: Any, run_node: Any) -> None:
    io, port = await sio_server()
    inst = io.instrument(auth={"type": "basic", "username": "admin", "password": PASSWORD_HASH},
                         server_id="test-server", stats_interval=0.5)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.join("lobby")
        socket.data["user"] = "alice"
        socket.emit("welcome", "hi")
        socket.on("chat", lambda *args: None)

    run = await run_node("admin_client.mjs", f"port={port}", "scenario=full", "username=admin",
                         "password=s3cret", timeout=60)
    assert run.events("fail") == [], run.describe()
    run.check()
    assert run.one("refused")["message"] == "invalid credentials"
    (session,) = admin_events(run, "session")
    assert isinstance(session[0], str) and len(session[0]) == 16
    (config,) = admin_events(run, "config")
    assert config[0]["supportedFeatures"] == ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE",
                                              "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]
    (all_sockets,) = admin_events(run, "all_sockets")
    assert [s["nsp"] for s in all_sockets[0]] == ["/admin"]  # the admin socket itself
    user_id = run.one("user")["id"]

    stats = admin_events(run, "server_stats")
    assert len(stats) >= 3
    first = stats[0][0]
    assert first["serverId"] == "test-server" and first["pid"] == os.getpid()
    assert set(first) == {"serverId", "hostname", "pid", "uptime", "clientsCount", "pollingClientsCount",
                          "aggregatedEvents", "namespaces"}
    assert {"name": "/admin", "socketsCount": 1} in first["namespaces"]
    counted: dict[str, int] = {}
    for (s,) in stats:
        for e in s["aggregatedEvents"]:
            counted[e["type"]] = counted.get(e["type"], 0) + e["count"]
    assert counted.get("rawConnection", 0) >= 1 and counted.get("packetsIn", 0) >= 2
    assert counted.get("packetsOut", 0) >= 3 and counted.get("bytesOut", 0) > 0 and counted.get("bytesIn", 0) > 0
    assert any(s[0]["pollingClientsCount"] == 0 and s[0]["clientsCount"] == 2 for s in stats)

    connected = [a for a in admin_events(run, "socket_connected") if a[0]["id"] == user_id]
    (socket_info, when) = connected[0]
    assert socket_info["nsp"] == "/" and socket_info["transport"] == "polling"
    assert socket_info["data"] == {} and len(socket_info["clientId"]) == 12
    assert when.endswith("Z")
    updates = [a[0] for a in admin_events(run, "socket_updated") if a[0]["id"] == user_id]
    assert {"id": user_id, "nsp": "/", "transport": "websocket"} in updates
    assert {"id": user_id, "nsp": "/", "data": {"user": "alice"}} in updates
    joined = [a[:3] for a in admin_events(run, "room_joined")]
    assert ["/", "lobby", user_id] in joined and ["/", "from-admin-room", user_id] in joined
    assert ["/", user_id, ["chat", "hello", 1]] == [a[:3] for a in admin_events(run, "event_received")][0]
    assert ["/", user_id, ["welcome", "hi"]] in [a[:3] for a in admin_events(run, "event_sent")]
    assert run.one("user-got")["args"] == ["x", 2]
    (gone,) = [a for a in admin_events(run, "socket_disconnected") if a[1] == user_id]
    assert gone[:3] == ["/", user_id, "server namespace disconnect"]
    left = [a[:3] for a in admin_events(run, "room_left")]
    assert ["/", "lobby", user_id] in left
    # the admin left: no probe on the hot path any more, no timer
    for _ in range(100):
        if not io._probes:
            break
        await __import__("asyncio").sleep(0.05)
    assert io._probes == [] and inst._timer is None

    # the session handed out logs in without the password
    again = await run_node("admin_client.mjs", f"port={port}", "scenario=session", f"session={session[0]}")
    assert again.check().one("session")["result"] == "connected"
    bogus = await run_node("admin_client.mjs", f"port={port}", "scenario=session", "session=nope")
    assert bogus.check().one("session")["result"] == "refused: invalid credentials"


async def test_read_only_production(sio_server: Any, run_node: Any) -> None:
    io, port = await sio_server()
    io.instrument(auth=False, mode="production", read_only=True, stats_interval=0.5)
    run = await run_node("admin_client.mjs", f"port={port}", "scenario=readonly", timeout=30)
    assert run.events("fail") == [], run.describe()
    run.check()
    (config,) = admin_events(run, "config")
    assert config[0]["supportedFeatures"] == ["AGGREGATED_EVENTS"]
    assert admin_events(run, "all_sockets") == [] and admin_events(run, "socket_connected") == []
    assert run.one("user-still-connected")["connected"] is True


async def test_callable_auth(sio_server: Any, run_node: Any) -> None:
    io, port = await sio_server()
    io.instrument(auth=lambda creds: creds.get("sessionId") == "let-me-in")
    ok = await run_node("admin_client.mjs", f"port={port}", "scenario=session", "session=let-me-in")
    assert ok.check().one("session")["result"] == "connected"
    no = await run_node("admin_client.mjs", f"port={port}", "scenario=session", "session=nope")
    assert no.check().one("session")["result"] == "refused: invalid credentials"


def test_options_are_checked() -> None:
    io = fastsio.Server()
    with pytest.raises(ValueError, match="bcrypt hash"):
        io.instrument(auth={"type": "basic", "username": "a", "password": "plain"})
    with pytest.raises(ValueError, match="auth"):
        io.instrument(auth={"type": "digest"})
    with pytest.raises(ValueError, match="mode"):
        io.instrument(mode="staging")
    with pytest.raises(TypeError):
        io.instrument(readonly=True)  # Node's spelling is read_only here


def test_in_memory_store() -> None:
    store = InMemoryStore()
    assert not store.does_session_exist("x")
    store.save_session("x")
    assert store.does_session_exist("x")


async def test_cluster_wide_with_the_redis_adapter(sio_server: Any, run_node: Any, redis_server: Any,
                                                  wait_until: Any) -> None:
    """Admin on server A; the user socket lives on server B (one Redis): the
    page lists it and its commands act on it."""
    import socketio as pysio

    from fastsio.adapters.redis import RedisAdapter

    io_a, port_a = await sio_server(adapter=RedisAdapter.from_url(redis_server.url))
    io_b, port_b = await sio_server(adapter=RedisAdapter.from_url(redis_server.url))
    io_a.instrument(auth=False, stats_interval=0.5, server_id="A")
    # B is instrumented too, as every server of an instrumented cluster is;
    # no admin is connected to B, yet its stats reach the page through A
    inst_b = io_b.instrument(auth=False, stats_interval=0.5, server_id="B")

    @io_b.on("connection")
    def on_b(socket: Any) -> None:
        socket.data["where"] = "b"

    user = pysio.AsyncClient(reconnection=False)
    try:
        await user.connect(f"http://127.0.0.1:{port_b}", transports=["websocket"])
        sid = user.get_sid("/")
        await asyncio.sleep(0.2)
        run = await run_node("admin_client.mjs", f"port={port_a}", "scenario=cluster", f"target={sid}", timeout=30)
        assert run.events("fail") == [], run.describe()
        run.check()
        (all_sockets,) = admin_events(run, "all_sockets")
        remote = [s for s in all_sockets[0] if s["id"] == sid]
        assert remote and remote[0]["data"] == {"where": "b"} and remote[0]["transport"] == "websocket"
        b_socket = io_b.of("/").sockets[sid]
        await wait_until(lambda: "picked-by-admin" in b_socket.rooms, what="join through the cluster")
        servers = {s[0]["serverId"] for s in admin_events(run, "server_stats")}
        assert servers == {"A", "B"}
        b_connected = [a[2] for a in admin_events(run, "room_joined") if a[1] == "picked-by-admin"]
        assert b_connected == [sid]  # B's live events reach the page on A too
    finally:
        await user.disconnect()
    await io_b.close()
    assert inst_b._timer is None  # close() stops B's stats
