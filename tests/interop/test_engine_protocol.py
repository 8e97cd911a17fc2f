"""Engine.IO protocol behaviour of ``fastsio.engineio.Engine``, checked with raw HTTP and WebSocket
bytes against what Node's engine.io answers (protocol v4, and v3 under ``allow_eio3``).

Covers the handshake, polling GET/POST with payload batching, binary as ``b``+base64,
the heartbeat and "ping timeout", the polling -> websocket upgrade (probe, noop
release, no loss or reordering), the upgrade timeout, v3 payloads, CORS, the
cookie, HTTP compression, permessage-deflate, the engine events, middlewares
and ``generate_id``.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import re
import zlib
from typing import Any, Awaitable, Callable, Union

import aiohttp
import orjson
import pytest

from fastsio._impl import eio_codec

from raw import (
    PATH,
    EngineFixture,
    RawConn,
    eio_ws_open,
    http_request,
    poll,
    polling_handshake,
    post,
    upgrade_request,
    wait_for,
    ws_open,
)

pytestmark = pytest.mark.timeout(60)

Start = Callable[..., Awaitable[EngineFixture]]


async def pending_poll(start: Start) -> tuple[EngineFixture, str, Any, "asyncio.Future[Any]"]:
    """An engine with one polling session whose GET is pending: (fx, sid, engine socket, that GET's packets)."""
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    sock = fx.engine.clients[sid]
    pending = asyncio.ensure_future(poll(fx.port, sid))
    await wait_for(lambda: sock.transport.writable, what="GET pending")
    return fx, sid, sock, pending


# -- handshake ---------------------------------------------------------------------------------------------

async def test_polling_handshake_fields(start: Start) -> None:
    fx = await start(ping_interval=25, ping_timeout=20, max_http_buffer_size=1_000_000)
    sid, hs, resp = await polling_handshake(fx.port)
    assert resp.header("content-type") == "text/plain; charset=UTF-8"
    assert resp.body.startswith(b"0{")
    assert set(hs) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert isinstance(sid, str) and len(sid) == 20
    assert re.fullmatch(r"[A-Za-z0-9_-]{20}", sid)
    assert hs["upgrades"] == ["websocket"]
    assert hs["pingInterval"] == 25000 and hs["pingTimeout"] == 20000
    assert hs["maxPayload"] == 1_000_000
    assert sid in fx.engine.clients and fx.sockets[0].id == sid
    assert fx.sockets[0].transport.name == "polling" and fx.sockets[0].protocol == 4


async def test_websocket_handshake_fields(start: Start) -> None:
    fx = await start()
    ws, hs = await eio_ws_open(fx.port)
    assert hs["upgrades"] == []
    assert fx.sockets[0].transport.name == "websocket"
    assert ws.response.header("sec-websocket-accept")
    await ws.close()


async def test_sids_are_unique(start: Start) -> None:
    fx = await start()
    sids = {(await polling_handshake(fx.port))[0] for _ in range(20)}
    assert len(sids) == 20


async def test_no_upgrades_when_disabled(start: Start) -> None:
    fx = await start(allow_upgrades=False)
    _, hs, _ = await polling_handshake(fx.port)
    assert hs["upgrades"] == []


async def test_transports_option(start: Start) -> None:
    fx = await start(transports=["websocket"])
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling")
    assert resp.status == 400 and resp.json() == {"code": 0, "message": "Transport unknown"}
    ws, hs = await eio_ws_open(fx.port)
    await ws.close()


async def test_initial_packet(start: Start) -> None:
    fx = await start(initial_packet="welcome")
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling")
    packets = eio_codec.decode_payload(resp.body)
    assert packets[0][0] == 0 and packets[1:] == [(4, "welcome")]


async def test_path_option(start: Start) -> None:
    fx = await start(path="/custom/")
    resp = await http_request(fx.port, "GET", "/custom/?EIO=4&transport=polling")
    assert resp.status == 200 and resp.body.startswith(b"0{")
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling")
    assert resp.status == 404


# -- polling ------------------------------------------------------------------------------------------------------

async def test_polling_round_trip_with_batching(start: Start) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    resp = await post(fx.port, sid, "4a\x1e4b\x1e" + "b" + base64.b64encode(b"\x00\x01\xff").decode() + "\x1e4é✓😀")
    assert resp.status == 200 and resp.body == b"ok"
    assert resp.header("content-type") == "text/html"
    assert fx.received == ["a", "b", b"\x00\x01\xff", "é✓😀"]
    # the four echoes wait in the buffer and leave batched in one GET
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    assert resp.status == 200
    assert resp.header("content-type") == "text/plain; charset=UTF-8"
    assert resp.body == "4a\x1e4b\x1ebAAH/\x1e4é✓😀".encode()


async def test_pending_get_answered_by_send(start: Start) -> None:
    fx, sid, sock, pending = await pending_poll(start)
    sock.send(b"\x01\x02\x03")
    assert await asyncio.wait_for(pending, 5) == [(4, b"\x01\x02\x03")]


async def test_binary_message_is_b_base64(start: Start) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    fx.engine.clients[sid].send(bytes(range(256)))
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    assert resp.body == b"b" + base64.b64encode(bytes(range(256)))


async def test_client_close_packet_ends_session(start: Start) -> None:
    fx, sid, sock, pending = await pending_poll(start)
    assert (await post(fx.port, sid, "1")).body == b"ok"
    # Node's Polling.onClose: the pending GET is released with a noop
    assert await asyncio.wait_for(pending, 5) == [(6, "")]
    await wait_for(lambda: fx.close_reason(sid) is not None, what="close")
    assert fx.close_reason(sid) == "transport close"


async def test_server_close_sends_close_packet(start: Start) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    sock = fx.engine.clients[sid]
    sock.send("bye")
    sock.close()
    # no GET pending at close time: Node keeps the session until the buffered packets and
    # then the close packet have gone out (GET 1: "4bye", GET 2: "6\x1e1")
    packets: list[tuple[int, Union[str, bytes]]] = []
    for _ in range(3):
        packets += await poll(fx.port, sid)
        if packets[-1] == (1, ""):
            break
    assert [p for p in packets if p[0] != 6] == [(4, "bye"), (1, "")]
    await wait_for(lambda: fx.close_reason(sid) is not None, what="close event")
    assert fx.close_reason(sid) == "forced close"


async def test_server_close_with_pending_get(start: Start) -> None:
    fx, sid, sock, pending = await pending_poll(start)
    sock.close()
    assert await asyncio.wait_for(pending, 5) == [(1, "")]
    assert fx.close_reason(sid) == "forced close"


async def test_websocket_round_trip(start: Start) -> None:
    fx = await start()
    ws, _ = await eio_ws_open(fx.port)
    await ws.send_text("4hello")
    assert await ws.recv_eio() == (4, "hello")
    await ws.send_binary(b"\x00\xffbin")
    opcode, payload, _ = await ws.recv_frame()
    assert (opcode, payload) == (2, b"\x00\xffbin")
    assert fx.received == ["hello", b"\x00\xffbin"]
    await ws.close()


# -- heartbeat ----------------------------------------------------------------------------------------------------

async def test_polling_heartbeat(start: Start) -> None:
    fx = await start(ping_interval=0.3, ping_timeout=1.0)
    sid, _, _ = await polling_handshake(fx.port)
    for _ in range(3):
        assert await poll(fx.port, sid) == [(2, "")]
        assert (await post(fx.port, sid, "3")).body == b"ok"
    assert fx.close_reason(sid) is None
    # stop answering: the ping arrives, then the pending GET gets the close packet
    assert await poll(fx.port, sid) == [(2, "")]
    assert await poll(fx.port, sid) == [(1, "")]
    assert fx.close_reason(sid) == "ping timeout"
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    assert resp.status == 400 and resp.json()["code"] == 1


async def test_websocket_heartbeat_and_ping_timeout(start: Start) -> None:
    fx = await start(ping_interval=0.3, ping_timeout=1.0)
    ws, hs = await eio_ws_open(fx.port)
    for _ in range(3):
        assert await ws.recv_eio(answer_pings=False) == (2, "")
        await ws.send_text("3")
    assert fx.close_reason(hs["sid"]) is None
    assert await ws.recv_eio(answer_pings=False) == (2, "")
    # no pong: the server closes the WebSocket
    await ws.close_code(5)
    assert await ws.closed_within(5)
    assert fx.close_reason(hs["sid"]) == "ping timeout"


# -- upgrade ------------------------------------------------------------------------------------------------------

async def test_upgrade_probe_noop_and_switch(start: Start) -> None:
    fx, sid, sock, pending = await pending_poll(start)
    events: list[str] = []
    sock.on("upgrading", lambda t: events.append("upgrading:" + t.name))
    sock.on("upgrade", lambda t: events.append("upgrade:" + t.name))
    ws = await ws_open(fx.port, f"{PATH}?EIO=4&transport=websocket&sid={sid}")
    await ws.send_text("2probe")
    assert await ws.recv_eio() == (3, "probe")
    # the pending GET is released with a noop so the client can pause polling
    assert await asyncio.wait_for(pending, 5) == [(6, "")]
    assert events == ["upgrading:websocket"]
    await ws.send_text("5")
    await wait_for(lambda: sock.transport.name == "websocket", what="upgrade")
    assert events == ["upgrading:websocket", "upgrade:websocket"]
    await ws.send_text("4over-ws")
    assert await ws.recv_eio() == (4, "over-ws")
    # polling is gone for this session
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    assert resp.status == 400 and resp.json()["code"] == 3
    await ws.close()


async def test_upgrade_loses_and_reorders_nothing(start: Start) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    sock = fx.engine.clients[sid]
    total = 200

    async def pusher() -> None:
        for i in range(total):
            sock.send(f"m{i}")
            await asyncio.sleep(0.003)

    got: list[Union[str, bytes]] = []

    def collect(packets: list[tuple[int, Union[str, bytes]]]) -> None:
        for ptype, data in packets:
            if ptype == 4:
                got.append(data)
            else:
                assert ptype in (2, 6), (ptype, data)

    push = asyncio.ensure_future(pusher())
    collect(await poll(fx.port, sid))
    ws = await ws_open(fx.port, f"{PATH}?EIO=4&transport=websocket&sid={sid}")
    get = asyncio.ensure_future(poll(fx.port, sid))
    await ws.send_text("2probe")
    probe = asyncio.ensure_future(ws.recv_eio())
    while True:
        done, _ = await asyncio.wait({get, probe}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert done, "neither the poll nor the probe answered"
        if probe in done:
            break
        collect(get.result())
        get = asyncio.ensure_future(poll(fx.port, sid))
    assert probe.result() == (3, "probe")
    # the client pauses: it waits for the poll in flight, then sends the upgrade packet
    collect(await asyncio.wait_for(get, 5))
    assert len(got) < total, "the pusher ended before the upgrade: nothing spans it"
    await ws.send_text("5")
    while len(got) < total:
        ptype, data = await ws.recv_eio(10)
        if ptype == 4:
            got.append(data)
    await push
    assert got == [f"m{i}" for i in range(total)]
    await ws.close()


async def test_upgrade_timeout(start: Start) -> None:
    fx = await start(upgrade_timeout=0.3)
    sid, _, _ = await polling_handshake(fx.port)
    ws = await ws_open(fx.port, f"{PATH}?EIO=4&transport=websocket&sid={sid}")
    await ws.send_text("2probe")
    assert await ws.recv_eio() == (3, "probe")
    # no "5": the probe transport is closed, the session stays on polling
    assert await ws.closed_within(5)
    await wait_for(lambda: not fx.engine.clients[sid].upgrading, what="upgrade given up")
    assert (await post(fx.port, sid, "4still-polling")).body == b"ok"
    assert await poll(fx.port, sid) == [(4, "still-polling")]
    assert fx.close_reason(sid) is None


async def test_upgrade_timeout_without_probe(start: Start) -> None:
    fx = await start(upgrade_timeout=0.3)
    sid, _, _ = await polling_handshake(fx.port)
    ws = await ws_open(fx.port, f"{PATH}?EIO=4&transport=websocket&sid={sid}")
    assert await ws.closed_within(5)
    assert fx.engine.clients[sid].transport.name == "polling"


async def test_upgrade_with_wrong_first_packet_closes_probe(start: Start) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    ws = await ws_open(fx.port, f"{PATH}?EIO=4&transport=websocket&sid={sid}")
    await ws.send_text("4not-a-probe")
    assert await ws.closed_within(5)
    assert fx.engine.clients[sid].transport.name == "polling"
    assert "not-a-probe" not in fx.received


# -- Engine.IO v3 ----------------------------------------------------------------------------------------------------

def v3_text_packets(body: str) -> list[str]:
    out = []
    i = 0
    while i < len(body):
        colon = body.index(":", i)
        n = int(body[i:colon])
        out.append(body[colon + 1: colon + 1 + n])
        i = colon + 1 + n
    return out


async def test_eio3_polling(start: Start) -> None:
    fx = await start(allow_eio3=True, ping_interval=25, ping_timeout=20)
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=3&transport=polling")
    assert resp.status == 200
    assert resp.header("content-type") == "text/plain; charset=UTF-8"
    packets = v3_text_packets(resp.text)
    assert packets[0][0] == "0"
    hs = orjson.loads(packets[0][1:])
    sid = hs["sid"]
    assert hs["upgrades"] == ["websocket"] and hs["pingInterval"] == 25000 and hs["pingTimeout"] == 20000
    assert fx.sockets[0].protocol == 3
    # text messages and a client ping (v3: the client pings, the server pongs)
    resp = await post(fx.port, sid, "6:4hello1:2", eio=3)
    assert resp.body == b"ok"
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=3&transport=polling&sid={sid}")
    assert v3_text_packets(resp.text) == ["4hello", "3"]


async def test_eio3_binary_payloads(start: Start) -> None:
    fx = await start(allow_eio3=True)
    # a client that takes binary payloads
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=3&transport=polling")
    sid = orjson.loads(v3_text_packets(resp.text)[0][1:])["sid"]
    fx.engine.clients[sid].send(b"\x01\x02")
    fx.engine.clients[sid].send("hi")
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=3&transport=polling&sid={sid}")
    assert resp.header("content-type") == "application/octet-stream"
    assert resp.body == b"\x01\x03\xff\x04\x01\x02" + b"\x00\x03\xff4hi"
    # a b64=1 client gets b4<base64> in the text form
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=3&transport=polling&b64=1")
    sid = orjson.loads(v3_text_packets(resp.text)[0][1:])["sid"]
    fx.engine.clients[sid].send(b"\x01\x02")
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=3&transport=polling&b64=1&sid={sid}")
    assert resp.text == "6:b4AQI="
    # and a binary POST from the client
    resp = await post(fx.port, sid, b"\x01\x04\xff\x04abc", eio=3, headers={"Content-Type": "application/octet-stream"})
    assert resp.body == b"ok"
    assert fx.received[-1] == b"abc"


async def test_eio3_websocket(start: Start) -> None:
    fx = await start(allow_eio3=True)
    ws = await ws_open(fx.port, f"{PATH}?EIO=3&transport=websocket")
    opcode, payload, _ = await ws.recv_frame()
    assert opcode == 1 and isinstance(payload, str) and payload.startswith("0{")
    await ws.send_text("2")
    assert (await ws.recv_frame())[:2] == (1, "3")
    await ws.send_binary(b"\x04bin")
    assert (await ws.recv_frame())[:2] == (2, b"\x04bin")
    await ws.close()


async def test_eio3_ping_timeout(start: Start) -> None:
    fx = await start(allow_eio3=True, ping_interval=0.2, ping_timeout=0.2)
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=3&transport=polling")
    sid = orjson.loads(v3_text_packets(resp.text)[0][1:])["sid"]
    await wait_for(lambda: fx.close_reason(sid) is not None, what="v3 ping timeout")
    assert fx.close_reason(sid) == "ping timeout"


# -- CORS -----------------------------------------------------------------------------------------------------------

async def preflight(port: int, origin: str, request_headers: str = "") -> Any:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    if request_headers:
        headers["Access-Control-Request-Headers"] = request_headers
    return await http_request(port, "OPTIONS", f"{PATH}?EIO=4&transport=polling", headers)


async def test_cors_preflight(start: Start) -> None:
    fx = await start(cors={"origin": "https://a.example", "credentials": True})
    resp = await preflight(fx.port, "https://a.example", "content-type,x-custom")
    assert resp.status == 204, resp
    assert resp.header("access-control-allow-origin") == "https://a.example"
    assert resp.header("access-control-allow-credentials") == "true"
    assert resp.header("access-control-allow-methods") == "GET,HEAD,PUT,PATCH,POST,DELETE"
    assert resp.header("access-control-allow-headers") == "content-type,x-custom"
    assert "Origin" in ", ".join(resp.header_all("vary"))
    assert resp.header("content-length") == "0"
    assert resp.body == b""
    # the preflight opens no session
    assert not fx.engine.clients


async def test_cors_headers_on_handshake(start: Start) -> None:
    fx = await start(cors={"origin": True, "credentials": True, "exposed_headers": ["x-a", "x-b"]})
    _, _, resp = await polling_handshake(fx.port, headers={"Origin": "https://b.example"})
    assert resp.header("access-control-allow-origin") == "https://b.example"
    assert resp.header("access-control-allow-credentials") == "true"
    assert resp.header("access-control-expose-headers") == "x-a,x-b"


async def test_cors_preflight_options(start: Start) -> None:
    fx = await start(cors={"origin": "*", "methods": ["GET", "POST"], "allowed_headers": ["x-one"], "max_age": 600})
    resp = await preflight(fx.port, "https://c.example", "x-other")
    assert resp.status == 204
    assert resp.header("access-control-allow-origin") == "*"
    assert resp.header("access-control-allow-methods") == "GET,POST"
    assert resp.header("access-control-allow-headers") == "x-one"
    assert resp.header("access-control-max-age") == "600"


@pytest.mark.parametrize("option,origin,expected", [
    ("https://fixed.example", "https://other.example", "https://fixed.example"),
    (["https://a.example", "https://b.example"], "https://b.example", "https://b.example"),
    (["https://a.example", "https://b.example"], "https://evil.example", None),
    (re.compile(r"\.good\.example$"), "https://x.good.example", "https://x.good.example"),
    (re.compile(r"\.good\.example$"), "https://good.example.evil", None),
    ([re.compile(r"^https://r\d\.example$"), "https://s.example"], "https://r7.example", "https://r7.example"),
    (True, "https://any.example", "https://any.example"),
    (lambda origin: origin.endswith(".ok"), "https://a.ok", "https://a.ok"),
    (lambda origin: origin.endswith(".ok"), "https://a.no", None),
    ("*", "https://star.example", "*"),
])
async def test_cors_origin_variants(start: Start, option: Any, origin: str, expected: Any) -> None:
    fx = await start(cors={"origin": option})
    resp = await preflight(fx.port, origin)
    assert resp.status == 204
    assert resp.header("access-control-allow-origin") == expected, resp
    _, _, resp = await polling_handshake(fx.port, headers={"Origin": origin})
    assert resp.header("access-control-allow-origin") == expected, resp


async def test_no_cors_headers_without_option(start: Start) -> None:
    fx = await start()
    _, _, resp = await polling_handshake(fx.port, headers={"Origin": "https://a.example"})
    assert resp.header("access-control-allow-origin") is None


# -- cookie -------------------------------------------------------------------------------------------------------

async def test_cookie_default(start: Start) -> None:
    fx = await start(cookie=True)
    sid, _, resp = await polling_handshake(fx.port)
    assert resp.header("set-cookie") == f"io={sid}; Path=/; HttpOnly; SameSite=Lax"
    # only the handshake sets it
    resp = await http_request(fx.port, "POST", f"{PATH}?EIO=4&transport=polling&sid={sid}", body=b"4x")
    assert resp.header("set-cookie") is None
    ws = await ws_open(fx.port, f"{PATH}?EIO=4&transport=websocket")
    assert re.fullmatch(r"io=[A-Za-z0-9_-]{20}; Path=/; HttpOnly; SameSite=Lax", ws.response.header("set-cookie") or "")
    await ws.close()


async def test_cookie_options(start: Start) -> None:
    fx = await start(cookie={"name": "my", "path": "/p", "http_only": False, "same_site": "Strict"})
    sid, _, resp = await polling_handshake(fx.port)
    assert resp.header("set-cookie") == f"my={sid}; Path=/p; SameSite=Strict"


async def test_no_cookie_by_default(start: Start) -> None:
    fx = await start()
    _, _, resp = await polling_handshake(fx.port)
    assert resp.header("set-cookie") is None


# -- compression ----------------------------------------------------------------------------------------------------

async def test_http_compression_gzip_over_1kb(start: Start) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port, headers={"Accept-Encoding": "gzip"})
    sock = fx.engine.clients[sid]
    sock.send("z" * 2000)
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}",
                              {"Accept-Encoding": "gzip, deflate"})
    assert resp.header("content-encoding") == "gzip"
    assert gzip.decompress(resp.body) == b"4" + b"z" * 2000
    assert int(resp.header("content-length") or 0) == len(resp.body)
    # under the 1 kB threshold: as is
    sock.send("small")
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}", {"Accept-Encoding": "gzip"})
    assert resp.header("content-encoding") is None and resp.body == b"4small"


async def test_http_compression_threshold_option(start: Start) -> None:
    fx = await start(http_compression={"threshold": 10})
    sid, _, _ = await polling_handshake(fx.port)
    fx.engine.clients[sid].send("tiny but over ten")
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}", {"Accept-Encoding": "gzip"})
    assert resp.header("content-encoding") == "gzip"
    assert gzip.decompress(resp.body) == b"4tiny but over ten"


async def test_http_compression_deflate(start: Start) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    fx.engine.clients[sid].send("d" * 3000)
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}", {"Accept-Encoding": "deflate"})
    assert resp.header("content-encoding") == "deflate"
    assert zlib.decompress(resp.body) == b"4" + b"d" * 3000


async def test_http_compression_off(start: Start) -> None:
    fx = await start(http_compression=False)
    sid, _, _ = await polling_handshake(fx.port)
    fx.engine.clients[sid].send("n" * 3000)
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}", {"Accept-Encoding": "gzip"})
    assert resp.header("content-encoding") is None and resp.body == b"4" + b"n" * 3000


async def test_per_message_deflate_negotiated(start: Start) -> None:
    fx = await start(per_message_deflate=True)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{fx.port}{PATH}?EIO=4&transport=websocket",
                                      compress=15) as ws:
            assert ws.compress == 15
            assert "permessage-deflate" in ws._response.headers.get("Sec-WebSocket-Extensions", "")
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.TEXT and msg.data.startswith("0{")
            big = "4" + "compress me " * 500
            for text in ("4small", big, "4again"):
                await ws.send_str(text)
                msg = await ws.receive(timeout=5)
                assert msg.data == text
            await ws.send_bytes(b"\x00" * 5000)
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.BINARY and msg.data == b"\x00" * 5000
    assert fx.received[:3] == ["small", big[1:], "again"]


async def test_per_message_deflate_off_by_default(start: Start) -> None:
    fx = await start()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{fx.port}{PATH}?EIO=4&transport=websocket",
                                      compress=15) as ws:
            assert ws.compress == 0
            msg = await ws.receive(timeout=5)
            assert msg.data.startswith("0{")
            await ws.send_str("4plain")
            assert (await ws.receive(timeout=5)).data == "4plain"


# -- events, middlewares, generate_id -----------------------------------------------------------------------------

async def test_connection_error_event(start: Start) -> None:
    fx = await start()
    await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=bogus")
    await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid=nope")
    await http_request(fx.port, "POST", f"{PATH}?EIO=4&transport=polling", body=b"4x")
    await http_request(fx.port, "GET", f"{PATH}?EIO=9&transport=polling")
    assert [(e["code"], e["message"]) for e in fx.errors] == [
        (0, "Transport unknown"), (1, "Session ID unknown"), (2, "Bad handshake method"),
        (5, "Unsupported protocol version")]
    assert [e["context"] for e in fx.errors] == [
        {"transport": "bogus"}, {"sid": "nope"}, {"method": "POST"}, {"protocol": "9"}]
    assert fx.errors[0]["req"].url == f"{PATH}?EIO=4&transport=bogus"
    assert fx.errors[0]["req"].query["transport"] == "bogus"


async def test_headers_and_initial_headers_events(start: Start) -> None:
    fx = await start()
    seen: list[str] = []

    def on_headers(headers: dict[str, str], req: Any) -> None:
        headers["X-Every"] = "1"
        seen.append(req.method)

    def on_initial(headers: dict[str, str], req: Any) -> None:
        headers["X-First"] = "1"

    fx.engine.on("headers", on_headers)
    fx.engine.on("initial_headers", on_initial)
    sid, _, resp = await polling_handshake(fx.port)
    assert resp.header("x-every") == "1" and resp.header("x-first") == "1"
    resp = await post(fx.port, sid, "4x")
    assert resp.header("x-every") == "1" and resp.header("x-first") is None
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    assert resp.header("x-every") == "1" and resp.header("x-first") is None
    ws = await ws_open(fx.port, f"{PATH}?EIO=4&transport=websocket")
    assert ws.response.header("x-every") == "1" and ws.response.header("x-first") == "1"
    await ws.close()
    assert seen[:3] == ["GET", "POST", "GET"]


async def test_middleware_runs_and_refuses(start: Start) -> None:
    fx = await start()
    calls: list[str] = []

    def mw(req: Any, next_: Any) -> None:
        calls.append(req.url)
        if req.headers.get("x-block"):
            next_(Exception("blocked"))
        else:
            next_()

    fx.engine.use(mw)
    sid, _, _ = await polling_handshake(fx.port)
    assert calls == [f"{PATH}?EIO=4&transport=polling"]
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling", {"X-Block": "1"})
    assert resp.status == 400 and resp.json() == {"code": 3, "message": "Bad request"}
    assert fx.errors[-1]["context"]["name"] == "MIDDLEWARE_FAILURE"
    # upgrades go through the middlewares too; a refusal is abortUpgrade's plain 400
    conn = await RawConn.connect(fx.port)
    await conn.send(upgrade_request(f"{PATH}?EIO=4&transport=websocket", extra={"X-Block": "1"}))
    resp = await conn.read_response()
    assert resp.status == 400 and resp.body == b"Bad request"
    assert await conn.closed_within(5)
    await conn.close()
    ws, _ = await eio_ws_open(fx.port)
    await ws.close()


async def test_async_middleware(start: Start) -> None:
    fx = await start()

    async def mw(req: Any) -> None:
        await asyncio.sleep(0.01)
        if "deny" in req.query:
            raise PermissionError("no")

    fx.engine.use(mw)
    await polling_handshake(fx.port)
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&deny=1")
    assert resp.status == 400 and resp.json()["code"] == 3


async def test_generate_id(start: Start) -> None:
    fx = await start()
    n = iter(range(100))
    fx.engine.generate_id = lambda req: f"custom-{next(n)}-{req.query['transport']}"
    sid, _, _ = await polling_handshake(fx.port)
    assert sid == "custom-0-polling"
    assert (await post(fx.port, sid, "4x")).body == b"ok"
    assert await poll(fx.port, sid) == [(4, "x")]


async def test_async_generate_id(start: Start) -> None:
    # Node awaits generateId (it may return a Promise)
    fx = await start()

    n = iter(range(100))

    async def gen(req: Any) -> str:
        await asyncio.sleep(0.01)
        return f"async-id-{next(n)}"

    fx.engine.generate_id = gen
    sid, _, _ = await polling_handshake(fx.port)
    assert sid == "async-id-0"
    ws, hs = await eio_ws_open(fx.port)
    assert hs["sid"] == "async-id-1"
    await ws.close()


async def test_async_allow_request(start: Start) -> None:
    fx = await start()

    async def allow(req: Any) -> bool:
        await asyncio.sleep(0.01)
        return req.headers.get("x-token") == "ok"

    fx.engine.allow_request = allow
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling", {"X-Token": "bad"})
    assert resp.status == 403 and resp.json() == {"code": 4, "message": "Forbidden"}
    await polling_handshake(fx.port, headers={"X-Token": "ok"})
