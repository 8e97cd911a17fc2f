"""Broadcasts to polling-only npm clients through the shared polling body (issue 14).

socket.io-client v4 (XHR: no Accept-Encoding; Fetch: gzip accepted and
inflated by Node's fetch) and socket.io-client v2 (binary payloads, and
``forceBase64``) poll a fastsio.Server with HTTP compression on (threshold
500). The server broadcasts a small message, one over the threshold, one
with a binary attachment, then a burst in one loop iteration after a
private packet to one client: that client's buffer already holds a packet,
so the burst reaches it the general way, behind it, in order. Counting
wrappers on ``poll_payload`` and ``http_compress`` check that each broadcast
was encoded (and compressed) once per payload form, not per recipient.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest


pytestmark = pytest.mark.timeout(90)

N = 4
BIG = "b" * 2000
BLOB = bytes([0, 1, 2, 254, 255]) * 3


async def broadcast_scenario(io: Any, n: int, poll_body_counts: dict[str, int], wait_until: Any,
                             driver: "asyncio.Task[Any]") -> list[dict[str, int]]:
    """Run the broadcasts once ``n`` clients are ready; the counters' increase per step."""
    ready: list[Any] = []
    all_ready = asyncio.get_running_loop().create_future()

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        socket.join("all")

        @socket.on("ready")
        def on_ready(i: int, transport: str) -> None:
            assert transport == "polling"
            ready.append(socket)
            if len(ready) == n and not all_ready.done():
                all_ready.set_result(None)

    done, _ = await asyncio.wait([all_ready, driver], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assert all_ready in done, driver.result() if driver.done() else "clients not ready"
    steps: list[dict[str, int]] = []

    async def step(fn: Any) -> None:
        await wait_until(lambda: all(s.conn.transport.writable for s in ready), 10, "every GET pending")
        before = dict(poll_body_counts)
        fn()
        steps.append({k: poll_body_counts[k] - before[k] for k in poll_body_counts})

    room = io.to("all")
    await step(lambda: room.emit("msg", 0, "small"))
    await step(lambda: room.emit("msg", 1, BIG))
    await step(lambda: room.emit("bin", 2, BLOB))

    def burst() -> None:
        ready[0].emit("pre", 3)
        for i in range(4, 9):
            room.emit("msg", i, f"m{i}")

    await step(burst)
    await asyncio.sleep(0.05)
    room.emit("end")
    return steps


def expected(first: bool) -> list[list[Any]]:
    got: list[list[Any]] = [["msg", 0, "small"], ["msg", 1, BIG], ["bin", 2, {"hex": BLOB.hex()}]]
    if first:
        got.append(["pre", 3])
    return got + [["msg", i, f"m{i}"] for i in range(4, 9)]


def received(run: Any) -> dict[int, list[Any]]:
    out = {}
    for line in run.events("client"):
        got = line["got"]
        for ev in got:
            if ev[0] == "bin":
                assert ev[2]["kind"] in ("Buffer", "ArrayBuffer"), ev
                ev[2] = {"hex": ev[2]["hex"]}
        out[line["id"]] = got
    return out


@pytest.mark.parametrize("fetch", [False, True], ids=["xhr-plain", "fetch-gzip"])
async def test_v4_polling_clients_get_shared_broadcasts(sio_server: Any, run_node: Any, wait_until: Any,
                                                        poll_body_counts: dict[str, int], fetch: bool) -> None:
    io, port = await sio_server(http_compression={"threshold": 500})
    driver = asyncio.ensure_future(run_node("poll_broadcast.mjs", f"port={port}", f"clients={N}",
                                            f"fetch={int(fetch)}", timeout=60))
    steps = await broadcast_scenario(io, N, poll_body_counts, wait_until, driver)
    run = (await driver).check()
    got = received(run)
    assert len(got) == N
    first = [sid for sid, evs in got.items() if evs and ["pre", 3] in evs]
    assert len(first) == 1, got
    for sid, evs in got.items():
        assert evs == expected(sid in first), (sid, evs)
    # once per broadcast; the big one compressed once for every gzip client, never for XHR
    assert steps == [{"payload": 1, "compress": 0}, {"payload": 1, "compress": int(fetch)},
                     {"payload": 1, "compress": 0}, {"payload": 1, "compress": 0}], steps


async def test_v2_polling_clients_get_shared_broadcasts(sio_server: Any, run_node: Any, wait_until: Any,
                                                        poll_body_counts: dict[str, int]) -> None:
    # socket.io-client v2 on Node polls with xmlhttprequest-ssl, which has no responseType:
    # the client asks for base64 (b64=1) with or without forceBase64, so every session here
    # gets the v3 text form (the binary form is covered with raw HTTP in test_polling_shared.py)
    io, port = await sio_server(allow_eio3=True, http_compression={"threshold": 500})
    drivers = [asyncio.ensure_future(run_node("poll_broadcast_v2.cjs", f"port={port}", "clients=2",
                                              f"b64={b64}", timeout=60)) for b64 in (0, 1)]
    gathered = asyncio.ensure_future(asyncio.gather(*drivers))
    steps = await broadcast_scenario(io, 4, poll_body_counts, wait_until, gathered)
    assert [s.transport.supports_binary for s in io.engine.clients.values()] == [False] * 4
    assert all(s.protocol == 3 for s in io.engine.clients.values())
    runs = [r.check() for r in await gathered]
    got: dict[str, list[Any]] = {}
    for r in runs:
        got.update(received(r))
    assert len(got) == 4
    first = [sid for sid, evs in got.items() if ["pre", 3] in evs]
    assert len(first) == 1, got
    for sid, evs in got.items():
        assert evs == expected(sid in first), (sid, evs)
    # one v3 body per broadcast; the v2 XHR client sends no Accept-Encoding: nothing compressed
    assert steps == [{"payload": 1, "compress": 0}] * 4, steps
