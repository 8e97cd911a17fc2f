"""Prometheus metrics: a scripted session with real clients, then a scrape of
``/metrics`` parsed by ``prometheus_client.parser``; every number must equal
what the session did.
"""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import socketio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import fastsio
import fastsio.metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(port: int, path: str = "/metrics") -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
            return resp.status, resp.headers.get("content-type", ""), await resp.text()


async def test_scrape_matches_the_session(sio_server: Any, run_node: Any, wait_until: Any) -> None:
    io, port = await sio_server(metrics=True)
    chat = io.of("/chat")

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.join("room")
        socket.on("ping-me", lambda *a: socket.emit("pong", *a))

    @chat.on("connection")
    def on_chat(socket: Any) -> None:
        pass

    a = socketio.AsyncClient(reconnection=False)
    b = socketio.AsyncClient(reconnection=False)
    c = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    b.on("news", lambda *x: got.append(x))
    c.on("news", lambda *x: got.append(x))
    try:
        await a.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
        await b.connect(f"http://127.0.0.1:{port}", transports=["polling"])
        await c.connect(f"http://127.0.0.1:{port}", transports=["websocket"], namespaces=["/", "/chat"])
        for i in range(3):
            await a.emit("ping-me", i)
        await a.emit("other")
        await wait_until(lambda: value(samples(_local(io)), "socket_io_events_received_total",
                                       namespace="/", event="other") == 1, what="events counted")
        io.to("room").emit("news", "x" * 100)   # 3 recipients
        io.except_("room").emit("news", "nobody")  # 0 recipients
        await wait_until(lambda: len(got) == 2, what="broadcast delivered")
        await a.disconnect()
        await wait_until(lambda: len(io.of("/").sockets) == 2, what="a left")

        status, ctype, text = await scrape(port)
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        found = samples(text)
        assert value(found, "socket_io_connected", namespace="/") == 2
        assert value(found, "socket_io_connected", namespace="/chat") == 1
        assert value(found, "socket_io_connect_total", namespace="/") == 3
        assert value(found, "socket_io_connect_total", namespace="/chat") == 1
        gone = {dict(k[1])["reason"]: v for k, v in found.items()
                if k[0] == "socket_io_disconnect_total" and dict(k[1])["namespace"] == "/"}
        # python-socketio's client closes the transport when it disconnects
        assert gone == {"transport close": 1}
        assert value(found, "socket_io_events_received_total", namespace="/", event="ping-me") == 3
        assert value(found, "socket_io_events_received_total", namespace="/", event="other") == 1
        assert value(found, "socket_io_events_sent_total", namespace="/", event="pong") == 3
        assert value(found, "socket_io_events_sent_total", namespace="/", event="news") == 3
        assert value(found, "fastsio_broadcasts_total", namespace="/") == 2
        assert value(found, "fastsio_broadcast_recipients_count") == 2
        assert value(found, "fastsio_broadcast_recipients_sum") == 3
        assert value(found, "fastsio_broadcast_recipients_bucket", le="1.0") == 1  # the empty one
        assert value(found, "engine_io_clients", transport="polling") == 1
        assert value(found, "engine_io_clients", transport="websocket") == 1
        assert value(found, "socket_io_recv_bytes") > 0
        # 3 x '42["news","xxx..."]' at least, beside the rest
        assert value(found, "socket_io_transmit_bytes") > 3 * 100
        assert ("fastsio_outbound_buffered_bytes", ()) in found
        for name in ("fastsio_ack_timeouts_total", "fastsio_volatile_dropped_total",
                     "fastsio_slow_consumer_disconnects_total", "fastsio_adapter_request_timeouts_total"):
            assert (name, ()) in found
        assert ("fastsio_adapter_messages_total", (("direction", "published"),)) in found
    finally:
        for client in (a, b, c):
            await client.disconnect()


def _local(io: Any) -> str:
    return io._metrics.render().decode()


async def test_hostile_event_names_do_not_grow_the_registry(sio_server: Any, wait_until: Any) -> None:
    io, port = await sio_server(metrics={"max_event_labels": 5, "path": "/stats"})

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        pass

    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
        for i in range(50):
            await client.emit(f"ev-{i}")
        status, _, text = await scrape(port, "/stats")
        assert status == 200
        found = samples(text)
        names = {dict(k[1]).get("event") for k in found if k[0] == "socket_io_events_received_total"}
        assert len(names) == 6 and "_other" in names
        assert value(found, "socket_io_events_received_total", namespace="/", event="_other") == 45
        assert (await scrape(port, "/metrics"))[0] == 404  # moved
    finally:
        await client.disconnect()


async def test_register_into_an_existing_registry(sio_server: Any) -> None:
    io, port = await sio_server()
    registry = CollectorRegistry()
    fastsio.metrics.register(io, registry)

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        pass

    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
        await asyncio.sleep(0.05)
        found = samples(generate_latest(registry).decode())
        assert value(found, "socket_io_connected", namespace="/") == 1
        assert value(found, "socket_io_connect_total", namespace="/") == 1
        assert (await scrape(port))[0] == 404  # not served unless metrics=True
    finally:
        await client.disconnect()


def test_options_fail_early() -> None:
    with pytest.raises(TypeError, match="metrics option"):
        fastsio.Server(metrics={"paht": "/m"})
    with pytest.raises(ValueError, match="start with"):
        fastsio.Server(metrics={"path": "metrics"})


def test_no_probe_without_metrics() -> None:
    assert fastsio.Server()._probes == []


async def test_ack_latency_and_timeouts(sio_server: Any, wait_until: Any) -> None:
    io, port = await sio_server(metrics=True)
    answers: list[Any] = []

    @io.on("connection")
    async def on_connection(socket: Any) -> None:
        answers.append(await socket.timeout(5).emit_with_ack("question"))
        try:
            await socket.timeout(0.2).emit_with_ack("ignored")
        except TimeoutError:
            answers.append("timed out")

    client = socketio.AsyncClient(reconnection=False)
    client.on("question", lambda: "answer")

    async def too_late() -> str:
        await asyncio.sleep(1)
        return "late"

    client.on("ignored", too_late)
    try:
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
        await wait_until(lambda: len(answers) == 2, what="both acks settled")
        found = samples(_local(io))
        assert value(found, "fastsio_ack_latency_seconds_count") == 1
        assert 0 < value(found, "fastsio_ack_latency_seconds_sum") < 5
        assert value(found, "fastsio_ack_timeouts_total") == 1
    finally:
        await client.disconnect()


async def test_adapter_messages_and_request_timeouts(sio_server: Any, redis_server: Any) -> None:
    """Two servers on one Redis, plus a silent subscriber that counts as a server and never answers."""
    import redis.asyncio as aioredis

    from fastsio.adapters.redis import RedisAdapter

    io_a, _ = await sio_server(metrics=True, adapter=RedisAdapter.from_url(redis_server.url, requests_timeout=0.5))
    io_b, _ = await sio_server(adapter=RedisAdapter.from_url(redis_server.url, requests_timeout=0.5))
    silent = aioredis.from_url(redis_server.url)
    pubsub = silent.pubsub()
    await pubsub.subscribe("socket.io-request#/#")
    try:
        io_a.emit("hello", 1)  # one broadcast published
        with pytest.raises(TimeoutError):
            await io_a.fetch_sockets()  # B answers, the silent one never does
        await asyncio.sleep(0.1)
        found = samples(_local(io_a))
        assert value(found, "fastsio_adapter_messages_total", direction="published") >= 2
        assert value(found, "fastsio_adapter_messages_total", direction="received") >= 1  # B's answer
        assert value(found, "fastsio_adapter_request_timeouts_total") == 1
    finally:
        await pubsub.aclose()
        await silent.aclose()


async def test_slow_consumer_figures(sio_server: Any, wait_until: Any) -> None:
    """A client that stops reading: buffered bytes show, volatile packets are
    dropped and counted, then its disconnect is counted."""
    from test_slow_consumers import SlowClient

    io, port = await sio_server(metrics=True, max_buffered_bytes=512 * 1024, drop_volatile_above=64 * 1024)
    slow = SlowClient()
    try:
        await slow.open(port, "/socket.io/?EIO=4&transport=websocket")
        assert (await slow.recv_text()).startswith("0{")
        await slow.send_text("40")
        assert (await slow.recv_text()).startswith("40{")
        await wait_until(lambda: len(io.of("/").sockets) == 1, what="the socket")
        (sock,) = io.of("/").sockets.values()
        chunk = "x" * 16 * 1024
        peak = 0.0
        for _ in range(400):
            if not sock.connected:
                break
            io.volatile.emit("v", chunk)
            io.emit("n", chunk)
            await asyncio.sleep(0)
            peak = max(peak, value(samples(_local(io)), "fastsio_outbound_buffered_bytes"))
        await wait_until(lambda: not sock.connected, what="the slow consumer to be cut")
        found = samples(_local(io))
        assert peak > 64 * 1024
        assert value(found, "fastsio_volatile_dropped_total") >= 1
        assert value(found, "fastsio_slow_consumer_disconnects_total") == 1
        assert value(found, "socket_io_disconnect_total", namespace="/", reason="transport error") == 1
    finally:
        slow.close()
