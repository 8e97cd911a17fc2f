"""Hostile raw bytes against the Engine.IO server: each test checks the answer
Node's engine.io (on Node's http server and ``ws``) gives, and that another
session open on the same server (the witness) still echoes afterwards.

No Node.js is needed: the expected answers are written down here, taken from
engine.io's ``abortRequest``/``abortUpgrade`` and error codes 0-5, Node's HTTP
parser (llhttp, strict) and ``ws``'s close codes.
"""
from __future__ import annotations

import asyncio
import gzip
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from fastsio._impl import ws_frames

from raw import (
    MASK,
    PATH,
    EngineFixture,
    RawConn,
    RawWebSocket,
    Witness,
    build_request,
    eio_ws_open,
    http_request,
    poll,
    polling_handshake,
    post,
    upgrade_request,
    wait_for,
    free_port,
    ws_key,
)

pytestmark = pytest.mark.timeout(60)

Start = Callable[..., Awaitable[tuple[EngineFixture, Witness]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """``fx, witness = await start(**engine_options)``: an echoing engine and an open witness session."""
    fixtures: list[EngineFixture] = []

    async def _start(**options: Any) -> tuple[EngineFixture, Witness]:
        fx = await EngineFixture.start(**options)
        fixtures.append(fx)
        witness = await fx.witness()
        return fx, witness

    yield _start
    for fx in fixtures:
        await fx.stop()


def expect_error(resp: Any, code: int, message: str, status: int = 400) -> None:
    """Node's ``abortRequest``: status, ``Content-Type: application/json`` and the exact JSON body."""
    assert resp.status == status, resp
    assert resp.header("content-type") == "application/json", resp
    assert resp.body == f'{{"code":{code},"message":"{message}"}}'.encode(), resp


async def raw_answer(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` on a fresh connection: (everything the server wrote, whether it closed)."""
    conn = await RawConn.connect(port)
    await conn.send(data)
    try:
        out = await conn.read_until_eof(timeout)
        closed = True
    except asyncio.TimeoutError:
        out = bytes(conn.buf)
        closed = False
    await conn.close()
    return out, closed


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw[9:12])


# -- engine.io error codes ---------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["xyz", "__proto__", "__class__", "constructor", "hasOwnProperty",
                                       "toString", "", "POLLING", "polling%00", "websocket%20", "Transport"])
async def test_transport_unknown(start: Start, transport: str) -> None:
    fx, witness = await start()
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport={transport}")
    expect_error(resp, 0, "Transport unknown")
    await witness.check()


async def test_transport_missing(start: Start) -> None:
    fx, witness = await start()
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4")
    expect_error(resp, 0, "Transport unknown")
    await witness.check()


@pytest.mark.parametrize("transport", ["__proto__", "__class__", "xyz"])
async def test_transport_unknown_on_upgrade(start: Start, transport: str) -> None:
    # abortUpgrade: a plain 400 with the message as text/html, then the socket is destroyed
    fx, witness = await start()
    out, closed = await raw_answer(fx.port, upgrade_request(f"{PATH}?EIO=4&transport={transport}"))
    assert closed
    assert status_of(out) == 400, out
    assert out.endswith(b"\r\n\r\nTransport unknown"), out
    await witness.check()


@pytest.mark.parametrize("sid", ["nope", "__proto__", "constructor", "x" * 2000])
async def test_unknown_sid(start: Start, sid: str) -> None:
    fx, witness = await start()
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    expect_error(resp, 1, "Session ID unknown")
    resp = await http_request(fx.port, "POST", f"{PATH}?EIO=4&transport=polling&sid={sid}", body=b"4x")
    expect_error(resp, 1, "Session ID unknown")
    await witness.check()


async def test_witness_sid_unknown_to_polling_after_its_close(start: Start) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    assert (await post(fx.port, sid, "1")).body == b"ok"
    await wait_for(lambda: fx.close_reason(sid) is not None, what="close")
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    expect_error(resp, 1, "Session ID unknown")
    await witness.check()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_bad_handshake_method(start: Start, method: str) -> None:
    fx, witness = await start()
    resp = await http_request(fx.port, method, f"{PATH}?EIO=4&transport=polling", body=b"4hello")
    expect_error(resp, 2, "Bad handshake method")
    assert len(fx.engine.clients) == 1
    await witness.check()


async def test_sid_with_wrong_transport(start: Start) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    # a polling session asked for over transport=websocket without an upgrade
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=websocket&sid={sid}")
    expect_error(resp, 3, "Bad request")
    # a websocket session asked for over polling
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={witness.sid}")
    expect_error(resp, 3, "Bad request")
    resp = await http_request(fx.port, "POST", f"{PATH}?EIO=4&transport=polling&sid={witness.sid}", body=b"4x")
    expect_error(resp, 3, "Bad request")
    await witness.check()


async def test_upgrade_of_a_websocket_session_refused(start: Start) -> None:
    # Node (Server.onWebSocket): the second WebSocket of a session completes its handshake, then is closed
    fx, witness = await start()
    out, closed = await raw_answer(fx.port, upgrade_request(f"{PATH}?EIO=4&transport=websocket&sid={witness.sid}"))
    assert closed and status_of(out) == 101, out
    frames = ws_frames.FrameParser(client_side=True).feed(out[out.index(b"\r\n\r\n") + 4:])
    assert [f[0] for f in frames] == [8], frames
    assert fx.engine.clients[witness.sid].transport.name == "websocket"
    await witness.check()


async def test_second_concurrent_get(start: Start) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    sock = fx.engine.clients[sid]
    first = asyncio.ensure_future(poll(fx.port, sid))
    await wait_for(lambda: sock.transport.writable, what="first GET pending")
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    assert resp.status == 400, resp
    # the first GET is answered with the close packet and the session is gone
    assert await asyncio.wait_for(first, 5) == [(1, "")]
    await wait_for(lambda: fx.close_reason(sid) is not None, what="session close")
    assert fx.close_reason(sid) == "transport error"
    assert sid not in fx.engine.clients
    await witness.check()


@pytest.mark.parametrize("body", [b"9garbage", b"", b"4ok\x1e", b"\x1e", b"b!!!notbase64", b"4\xff\xfe",
                                  b"4a\x1e7b", b"x"])
async def test_undecodable_post_payload(start: Start, body: bytes) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    resp = await post(fx.port, sid, body)
    assert resp.status == 200 and resp.body == b"ok", resp
    await wait_for(lambda: fx.close_reason(sid) is not None, what="session close")
    assert fx.close_reason(sid) == "parse error"
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling&sid={sid}")
    expect_error(resp, 1, "Session ID unknown")
    await witness.check()


async def test_allow_request_refusal(start: Start) -> None:
    fx, witness = await start()
    fx.engine.allow_request = lambda req: False
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling")
    expect_error(resp, 4, "Forbidden", status=403)
    # a refused WebSocket handshake gets abortUpgrade's plain 400
    out, closed = await raw_answer(fx.port, upgrade_request(f"{PATH}?EIO=4&transport=websocket"))
    assert closed and status_of(out) == 400, out
    assert out.endswith(b"Forbidden"), out
    assert [e["code"] for e in fx.errors] == [4, 4]
    await witness.check()


async def test_allow_request_async_refusal_with_message(start: Start) -> None:
    fx, witness = await start()

    async def allow(req: Any) -> Any:
        await asyncio.sleep(0)
        raise ValueError("no entry")

    fx.engine.allow_request = allow
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=polling")
    expect_error(resp, 4, "no entry", status=403)
    await witness.check()


@pytest.mark.parametrize("query", ["transport=polling", "EIO=3&transport=polling", "EIO=5&transport=polling",
                                   "EIO=&transport=polling", "EIO=abc&transport=polling", "EIO=04&transport=polling"])
async def test_unsupported_protocol_version(start: Start, query: str) -> None:
    fx, witness = await start()
    resp = await http_request(fx.port, "GET", f"{PATH}?{query}")
    expect_error(resp, 5, "Unsupported protocol version")
    await witness.check()


async def test_unsupported_protocol_version_on_websocket(start: Start) -> None:
    fx, witness = await start()
    out, closed = await raw_answer(fx.port, upgrade_request(f"{PATH}?EIO=3&transport=websocket"))
    assert closed and status_of(out) == 400, out
    assert out.endswith(b"Unsupported protocol version"), out
    await witness.check()


async def test_post_octet_stream_on_v4(start: Start) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    resp = await post(fx.port, sid, b"4hello", headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 400, resp
    await wait_for(lambda: fx.close_reason(sid) is not None, what="session close")
    assert fx.close_reason(sid) == "transport error"
    await witness.check()


# -- sizes -------------------------------------------------------------------------------------------------------

async def test_post_over_max_http_buffer_size_gets_413(start: Start) -> None:
    fx, witness = await start(max_http_buffer_size=1000)
    sid, hs, _ = await polling_handshake(fx.port)
    assert hs["maxPayload"] == 1000
    resp = await post(fx.port, sid, "4" + "x" * 1500)
    assert resp.status == 413, resp
    assert not [d for d in fx.received if isinstance(d, str) and d.startswith("xxx")]
    await witness.check()


async def test_post_over_max_http_buffer_size_ends_session(start: Start) -> None:
    fx, witness = await start(max_http_buffer_size=1000)
    sid, _, _ = await polling_handshake(fx.port)
    resp = await post(fx.port, sid, "4" + "x" * 1500)
    assert resp.status == 413, resp
    await wait_for(lambda: fx.close_reason(sid) is not None, timeout=3, what="session close after 413")
    await witness.check()


async def test_chunked_post_over_max_http_buffer_size(start: Start) -> None:
    fx, witness = await start(max_http_buffer_size=1000)
    sid, _, _ = await polling_handshake(fx.port)
    chunk = b"4" + b"y" * 799
    body = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n"
    req = (f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
           "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n").encode() + body
    out, closed = await raw_answer(fx.port, req)
    assert status_of(out) == 413, out
    assert closed
    assert not fx.received[1:], fx.received
    await witness.check()


@pytest.mark.parametrize("header", [
    bytes([0x81, 0xFF]) + (1 << 40).to_bytes(8, "big") + MASK,       # 1 TiB, 64-bit length
    bytes([0x82, 0xFF]) + (2000).to_bytes(8, "big") + MASK,          # just over, 64-bit length
    bytes([0x81, 0xFE]) + (1001).to_bytes(2, "big") + MASK,          # 16-bit length
    bytes([0x81, 0xFE]) + (1001).to_bytes(2, "big"),                 # the mask key not even sent yet
])
async def test_ws_message_over_max_from_header(start: Start, header: bytes) -> None:
    fx, witness = await start(max_http_buffer_size=1000)
    ws, hs = await eio_ws_open(fx.port)
    await ws.send_raw(header)
    assert await ws.close_code() == 1009
    assert await ws.closed_within(5)
    await wait_for(lambda: fx.close_reason(hs["sid"]) is not None, what="session close")
    await witness.check()


async def test_ws_message_over_max_across_fragments(start: Start) -> None:
    fx, witness = await start(max_http_buffer_size=1000)
    ws, _ = await eio_ws_open(fx.port)
    data = ws_frames.build_frame(1, "4" + "a" * 599, fin=False, mask=MASK)
    data += ws_frames.build_frame(0, "a" * 600, fin=True, mask=MASK)
    await ws.send_raw(data)
    assert await ws.close_code() == 1009
    await witness.check()


# -- malformed HTTP ----------------------------------------------------------------------------------

async def test_request_headers_over_16k(start: Start) -> None:
    fx, witness = await start()
    req = (f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
           f"X-Big: {'a' * 17000}\r\n\r\n").encode()
    out, closed = await raw_answer(fx.port, req)
    assert status_of(out) == 431, out
    assert closed
    await witness.check()


async def test_request_headers_over_16k_in_many_lines(start: Start) -> None:
    fx, witness = await start()
    lines = "".join(f"X-H{i}: {'b' * 300}\r\n" for i in range(60))
    req = f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode()
    out, closed = await raw_answer(fx.port, req)
    assert status_of(out) == 431, out
    assert closed
    await witness.check()


async def test_url_over_16k(start: Start) -> None:
    fx, witness = await start()
    req = f"GET {PATH}?EIO=4&transport=polling&pad={'p' * 17000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    out, closed = await raw_answer(fx.port, req)
    assert status_of(out) == 431, out
    assert closed
    await witness.check()


MALFORMED = {
    "garbage": b"GARBAGE\r\n\r\n",
    "tls_hello": bytes.fromhex("160301020001000200000303") + b"\x00" * 40,
    "no_colon": f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost x\r\n\r\n".encode(),
    "space_before_colon": f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost : x\r\n\r\n".encode(),
    "bad_version": f"GET {PATH}?EIO=4&transport=polling HTTP/1.x\r\nHost: x\r\n\r\n".encode(),
    "nul_in_url": f"GET {PATH}?EIO=4&transport=polling\x00 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "bad_content_length": f"POST {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                          "Content-Length: 1x\r\n\r\n".encode(),
    "negative_content_length": f"POST {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: -1\r\n\r\n".encode(),
    "bad_chunk_size": f"POST {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                      "Transfer-Encoding: chunked\r\n\r\nzz\r\n".encode(),
    "bare_cr_request_line": f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\rHost: x\r\n\r\n".encode(),
    "bare_cr_in_header": f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n".encode(),
    "lf_only_lines": f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\nHost: x\n\n".encode(),
    "lf_only_header_line": f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n".encode(),
    "duplicate_content_length": f"POST {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                                "Content-Length: 2\r\nContent-Length: 2\r\n\r\n4x".encode(),
    "conflicting_content_length": f"POST {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Length: 2\r\nContent-Length: 5\r\n\r\n4x".encode(),
    "content_length_and_chunked": f"POST {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                                  "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "2\r\n4x\r\n0\r\n\r\n".encode(),
    "chunked_not_last": f"POST {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                        "Transfer-Encoding: chunked, identity\r\n\r\n2\r\n4x\r\n0\r\n\r\n".encode(),
    "obs_fold": f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n".encode(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_http(start: Start, name: str) -> None:
    fx, witness = await start()
    out, closed = await raw_answer(fx.port, MALFORMED[name])
    assert out, f"{name}: no answer at all"
    assert status_of(out) == 400, out
    assert closed, f"{name}: connection left open"
    # nothing of the request reached the engine
    assert len(fx.engine.clients) == 1
    await witness.check()


async def test_malformed_request_after_a_good_one_on_keep_alive(start: Start) -> None:
    fx, witness = await start()
    good = build_request("GET", f"{PATH}?EIO=4&transport=polling")
    out, closed = await raw_answer(fx.port, good + b"BAD REQUEST LINE\r\n\r\n")
    assert status_of(out) == 200, out
    assert b"HTTP/1.1 400" in out[12:], out
    assert closed
    await witness.check()


# -- slow clients ---------------------------------------------------------------------------------------------------

async def test_slowloris_headers(start: Start) -> None:
    fx, witness = await start(header_timeout=1)
    conn = await RawConn.connect(fx.port)
    data = f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Slow: {'z' * 200}".encode()
    loop = asyncio.get_running_loop()
    began = loop.time()
    closed = False
    for i in range(len(data)):
        await conn.send(data[i:i + 1])
        if await conn.closed_within(0.2):
            closed = True
            break
        if loop.time() - began > 8:
            break
    assert closed, "a request trickling its headers was never dropped"
    await conn.close()
    await witness.check()


async def test_slowloris_headers_answer_is_408(start: Start) -> None:
    fx, witness = await start(header_timeout=1)
    conn = await RawConn.connect(fx.port)
    await conn.send(f"GET {PATH}?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n".encode())
    out = await conn.read_until_eof(6)
    assert status_of(out) == 408, out
    await conn.close()
    await witness.check()


async def test_silent_connection_dropped(start: Start) -> None:
    fx, witness = await start(header_timeout=1)
    conn = await RawConn.connect(fx.port)
    assert await conn.closed_within(6)
    await conn.close()
    await witness.check()


async def test_trickling_body_cut_off(start: Start) -> None:
    fx, witness = await start(body_timeout=1)
    sid, _, _ = await polling_handshake(fx.port)
    conn = await RawConn.connect(fx.port)
    await conn.send(f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: text/plain\r\nContent-Length: 500\r\n\r\n4".encode())
    loop = asyncio.get_running_loop()
    began = loop.time()
    closed = False
    while loop.time() - began < 8:
        await conn.send(b"q")
        if await conn.closed_within(0.2):
            closed = True
            break
    assert closed, "a body trickling in was never cut off"
    await conn.close()
    # the partial message never reached the session
    assert not [d for d in fx.received if isinstance(d, str) and d.startswith("q")]
    await witness.check()


async def test_idle_keep_alive_closed(start: Start) -> None:
    fx, witness = await start(keep_alive_timeout=0.5)
    conn = await RawConn.connect(fx.port)
    resp = await conn.request("GET", f"{PATH}?EIO=4&transport=polling")
    assert resp.status == 200 and resp.header("connection") == "keep-alive", resp
    assert await conn.closed_within(5)
    await conn.close()
    await witness.check()


async def test_handshake_never_followed_by_poll_expires(start: Start) -> None:
    fx, witness = await start(ping_interval=0.3, ping_timeout=0.6)
    sid, _, _ = await polling_handshake(fx.port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 6
    # keep the witness alive (it answers pings while it reads) until the idle session expires
    while fx.close_reason(sid) is None and loop.time() < deadline:
        try:
            await witness.ws.recv_eio(0.05)
        except asyncio.TimeoutError:
            pass
    assert fx.close_reason(sid) == "ping timeout"
    assert sid not in fx.engine.clients
    await witness.check()


# -- WebSocket frame violations (ws: 1002 protocol error, 1007 bad data, 1008 policy, 1009 too big) -------------

def masked(first: int, payload: bytes, mask: bytes = MASK) -> bytes:
    """A frame with first byte ``first`` and a masked ``payload`` under 126 bytes."""
    assert len(payload) < 126
    return bytes([first, 0x80 | len(payload)]) + mask + ws_frames.apply_mask(payload, mask) if payload else \
        bytes([first, 0x80]) + mask


BAD_FRAMES = {
    "unmasked": (ws_frames.build_frame(1, "4hello"), 1002),
    "rsv1_without_extension": (masked(0xC1, b"4hello"), 1002),
    "rsv2": (masked(0xA1, b"4hello"), 1002),
    "rsv3": (masked(0x91, b"4hello"), 1002),
    "opcode_3": (masked(0x83, b"4hello"), 1002),
    "opcode_7": (masked(0x87, b""), 1002),
    "opcode_0xb": (masked(0x8B, b""), 1002),
    "opcode_0xf": (masked(0x8F, b""), 1002),
    "fragmented_ping": (masked(0x09, b"x"), 1002),
    "fragmented_close": (masked(0x08, b"\x03\xe8"), 1002),
    "long_ping": (bytes([0x89, 0x80 | 126]) + (126).to_bytes(2, "big") + MASK + b"p" * 126, 1002),
    "continuation_without_start": (masked(0x80, b"4x"), 1002),
    "new_message_inside_fragmented": (masked(0x01, b"4a") + masked(0x81, b"4b"), 1002),
    "invalid_utf8_text": (masked(0x81, b"4\xff\xfe"), 1007),
    "overlong_utf8": (masked(0x81, b"4\xc0\xaf"), 1007),
    "surrogate_utf8": (masked(0x81, b"4\xed\xa0\x80"), 1007),
    "invalid_utf8_across_fragments": (masked(0x01, b"4\xe2\x82") + masked(0x80, b"\xff"), 1007),
    "close_payload_1_byte": (masked(0x88, b"\x03"), 1002),
    "close_code_1005": (masked(0x88, (1005).to_bytes(2, "big")), 1002),
    "close_code_999": (masked(0x88, (999).to_bytes(2, "big")), 1002),
    "close_code_2000": (masked(0x88, (2000).to_bytes(2, "big")), 1002),
    "close_reason_not_utf8": (masked(0x88, b"\x03\xe8\xff"), 1007),
    "length_top_bit": (bytes([0x82, 0xFF]) + (1 << 63).to_bytes(8, "big") + MASK, 1002),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
async def test_ws_bad_frame(start: Start, name: str) -> None:
    data, code = BAD_FRAMES[name]
    fx, witness = await start()
    ws, hs = await eio_ws_open(fx.port)
    await ws.send_raw(data)
    assert await ws.close_code() == code
    assert await ws.closed_within(5)
    await wait_for(lambda: fx.close_reason(hs["sid"]) is not None, what="session close")
    assert fx.close_reason(hs["sid"]) == "transport error"
    assert "hello" not in fx.received
    await witness.check()


@pytest.mark.parametrize("piece", [b"", b"a"])
async def test_ws_message_in_thousands_of_fragments(start: Start, piece: bytes) -> None:
    fx, witness = await start()
    ws, _ = await eio_ws_open(fx.port)
    data = masked(0x01, b"4") + masked(0x00, piece) * 5000 + masked(0x80, b"!")
    await ws.send_raw(data)
    assert await ws.close_code() == 1008
    await witness.check()


async def test_ws_fragmented_message_within_limits_is_fine(start: Start) -> None:
    fx, witness = await start()
    ws, _ = await eio_ws_open(fx.port)
    # a ping between fragments is allowed (RFC 6455 5.4) and answered
    data = masked(0x01, b"4frag") + masked(0x89, b"hi") + masked(0x00, b"-mid") + masked(0x80, b"-end")
    await ws.send_raw(data)
    frames = [await ws.recv_frame(), await ws.recv_frame()]
    assert (10, b"hi", False) in frames
    assert (1, "4frag-mid-end", False) in frames
    await witness.check()


async def test_ws_garbage_engine_packet_closes_session(start: Start) -> None:
    fx, witness = await start()
    ws, hs = await eio_ws_open(fx.port)
    await ws.send_text("9nonsense")
    assert await ws.closed_within(5)
    await wait_for(lambda: fx.close_reason(hs["sid"]) is not None, what="session close")
    assert fx.close_reason(hs["sid"]) == "parse error"
    await witness.check()


@pytest.mark.parametrize("packet", ["2", "2probe"])
async def test_v4_client_ping_is_invalid_heartbeat_direction(start: Start, packet: str) -> None:
    # engine.io Socket.onPacket: a "ping" from a v4 client is an error ("invalid heartbeat direction")
    fx, witness = await start()
    ws, hs = await eio_ws_open(fx.port)
    await ws.send_text(packet)
    await wait_for(lambda: fx.close_reason(hs["sid"]) is not None, timeout=3, what="session close")
    assert fx.close_reason(hs["sid"]) == "transport error"
    await witness.check()


# -- hostile upgrade requests --------------------------------------------------------------------------------------

def upgrade_with(headers: dict[str, str], body: bytes = b"", target: str = f"{PATH}?EIO=4&transport=websocket") -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: x"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _ws_headers(**changes: Any) -> dict[str, str]:
    h = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": ws_key(),
         "Sec-WebSocket-Version": "13"}
    for k, v in changes.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    return h


BAD_UPGRADES = {
    "with_body": upgrade_with({**_ws_headers(), "Content-Length": "5"}, b"hello"),
    "with_chunked_body": upgrade_with({**_ws_headers(), "Transfer-Encoding": "chunked"}, b"5\r\nhello\r\n0\r\n\r\n"),
    "bad_upgrade": upgrade_with(_ws_headers(Upgrade="h2c")),
    "missing_key": upgrade_with(_ws_headers(**{"Sec-WebSocket-Key": None})),
    "short_key": upgrade_with(_ws_headers(**{"Sec-WebSocket-Key": "c2hvcnQ="})),
    "key_not_base64": upgrade_with(_ws_headers(**{"Sec-WebSocket-Key": "!" * 24})),
    "bad_version": upgrade_with(_ws_headers(**{"Sec-WebSocket-Version": "7"})),
    "missing_version": upgrade_with(_ws_headers(**{"Sec-WebSocket-Version": None})),
    "post_upgrade": upgrade_with(_ws_headers()).replace(b"GET ", b"POST ", 1),
    "thousands_of_headers": upgrade_with({**_ws_headers(), **{f"X-{i}": "v" for i in range(3000)}}),
}


@pytest.mark.parametrize("name", sorted(BAD_UPGRADES))
async def test_bad_upgrade_request(start: Start, name: str) -> None:
    fx, witness = await start()
    out, closed = await raw_answer(fx.port, BAD_UPGRADES[name])
    assert status_of(out) == 400, out
    assert b"101 Switching" not in out
    assert closed, f"{name}: connection left open"
    assert len(fx.engine.clients) == 1
    await witness.check()


async def test_websocket_handshake_without_upgrade_header(start: Start) -> None:
    # no Upgrade header: Node's http server sees a plain GET, engine.io answers TRANSPORT_HANDSHAKE_ERROR
    fx, witness = await start()
    resp = await http_request(fx.port, "GET", f"{PATH}?EIO=4&transport=websocket",
                              {k: v for k, v in _ws_headers(Upgrade=None).items()})
    expect_error(resp, 3, "Bad request")
    assert fx.errors[-1]["context"] == {"name": "TRANSPORT_HANDSHAKE_ERROR"}
    await witness.check()


async def test_bad_upgrade_request_for_existing_polling_session(start: Start) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    target = f"{PATH}?EIO=4&transport=websocket&sid={sid}"
    out, closed = await raw_answer(fx.port, upgrade_with(_ws_headers(**{"Sec-WebSocket-Key": None}), target=target))
    assert status_of(out) == 400 and closed, out
    # the polling session is untouched
    assert (await post(fx.port, sid, "4still")).body == b"ok"
    assert await poll(fx.port, sid) == [(4, "still")]
    await witness.check()


async def test_frames_pipelined_behind_upgrade_request(start: Start) -> None:
    # bytes after the upgrade request's headers are frames, not HTTP
    fx, witness = await start()
    conn = await RawConn.connect(fx.port)
    await conn.send(upgrade_request(f"{PATH}?EIO=4&transport=websocket") + ws_frames.build_frame(1, "4early", mask=MASK))
    resp = await conn.read_response()
    assert resp.status == 101, resp
    ws = RawWebSocket(conn, resp)
    assert (await ws.recv_eio())[0] == 0
    assert await ws.recv_eio() == (4, "early")
    await ws.close()
    await witness.check()


# -- floods --------------------------------------------------------------------------------------------------------

async def test_ws_ping_frame_flood_creates_no_tasks(start: Start) -> None:
    fx, witness = await start()
    ws, hs = await eio_ws_open(fx.port)
    before = len(asyncio.all_tasks())
    await ws.send_raw(masked(0x89, b"p") * 10_000)
    pongs = 0
    while pongs < 10_000:
        opcode, payload, _ = await ws.recv_frame(10)
        if opcode == 10:
            assert payload == b"p"
            pongs += 1
    assert len(asyncio.all_tasks()) <= before
    await ws.send_text("4after")
    assert await ws.recv_eio() == (4, "after")
    await witness.check()


async def test_ws_engine_pong_flood_creates_no_tasks(start: Start) -> None:
    fx, witness = await start(ping_interval=0.2, ping_timeout=5)
    ws, hs = await eio_ws_open(fx.port)
    before = len(asyncio.all_tasks())
    await ws.send_raw(masked(0x81, b"3") * 10_000 + masked(0x81, b"4done"))
    while True:
        ptype, data = await ws.recv_eio(10)
        if ptype == 4:
            assert data == "done"
            break
    assert len(asyncio.all_tasks()) <= before
    assert fx.close_reason(hs["sid"]) is None
    # the heartbeat still runs: pings keep coming and answering them keeps the session
    pings = 0
    while pings < 2:
        ptype, data = await ws.recv_eio(5, answer_pings=False)
        if ptype == 2:
            pings += 1
            await ws.send_text("3")
    assert fx.close_reason(hs["sid"]) is None
    await witness.check()


async def test_polling_pong_flood_creates_no_tasks(start: Start) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    before = len(asyncio.all_tasks())
    resp = await post(fx.port, sid, "\x1e".join(["3"] * 9_999 + ["4done"]))
    assert resp.status == 200 and resp.body == b"ok", resp
    assert len(asyncio.all_tasks()) <= before
    assert await poll(fx.port, sid) == [(4, "done")]
    await witness.check()


async def test_polling_too_many_packets_in_one_payload(start: Start) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    resp = await post(fx.port, sid, "\x1e".join(["3"] * 20_000))
    assert resp.status == 200 and resp.body == b"ok", resp
    await wait_for(lambda: fx.close_reason(sid) is not None, what="session close")
    await witness.check()


async def test_many_pipelined_requests(start: Start) -> None:
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    one = build_request("GET", f"{PATH}?EIO=4&transport=polling&sid=unknown")
    conn = await RawConn.connect(fx.port)
    await conn.send(one * 200)
    for _ in range(200):
        resp = await conn.read_response(10)
        expect_error(resp, 1, "Session ID unknown")
    await conn.close()
    await witness.check()


async def test_gzip_bomb_accept_encoding_is_harmless(start: Start) -> None:
    # Accept-Encoding only shapes the answer; a request body is never inflated
    fx, witness = await start()
    sid, _, _ = await polling_handshake(fx.port)
    bomb = gzip.compress(b"4" + b"0" * 100_000)
    resp = await post(fx.port, sid, bomb, headers={"Content-Encoding": "gzip"})
    assert resp.status == 200, resp
    await wait_for(lambda: fx.close_reason(sid) is not None, what="session close")
    assert fx.close_reason(sid) == "parse error"
    await witness.check()


async def test_polling_client_that_stops_polling_is_not_buffered_without_bound() -> None:
    """A session whose client never polls again is closed once its buffer passes max_buffered_bytes."""
    from fastsio.engineio import Engine

    port = free_port()
    engine = Engine(max_buffered_bytes=64 * 1024)
    closed: list[tuple[str, object]] = []
    socks: list[object] = []

    def on_connection(sock: object) -> None:
        socks.append(sock)
        sock.on("close", lambda reason, desc=None: closed.append((reason, desc)))  # type: ignore[attr-defined]

    engine.on("connection", on_connection)
    await engine.listen(port, host="127.0.0.1")
    try:
        sid, _, _ = await polling_handshake(port)
        sock = engine.clients[sid]
        for _ in range(100):
            sock.send("x" * 1000)
        assert len(closed) == 1 and closed[0][0] == "transport error"
        assert closed[0][1].startswith("write buffer overflow: ") and "max_buffered_bytes=" in closed[0][1]
        assert sid not in engine.clients
    finally:
        await engine.close()
