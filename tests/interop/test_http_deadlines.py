"""No connection escapes every deadline (issue 11, section 1).

Each test is a raw client on 127.0.0.1 doing what an attacker (or a broken
network) does: pipelining a partial request, sending CRLFs between requests,
growing one header line without end, never reading its output, trickling a
body, leaving a WebSocket upgrade half done. Timeouts are short (0.3 s) and
the assertions leave wide margins (the test machine is loaded): a connection
that escapes its deadline stays open for the whole window, one that does not
is gone within a fraction of it.
"""
from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from fastsio import http as fhttp

from raw import (
    HOST,
    PATH,
    EngineFixture,
    RawConn,
    build_request,
    polling_handshake,
    upgrade_request,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

T = 0.3  # every timeout of the server under test
WINDOW = 3.0  # how long a client keeps trying to hold a connection

Start = Callable[..., Awaitable[EngineFixture]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    fixtures: list[EngineFixture] = []

    async def _start(**options: Any) -> EngineFixture:
        for name in ("header_timeout", "keep_alive_timeout", "body_timeout"):
            options.setdefault(name, T)
        fx = await EngineFixture.start(**options)
        fixtures.append(fx)
        return fx

    yield _start
    for fx in fixtures:
        await fx.stop()


async def trickle_until_closed(conn: RawConn, chunk: bytes, every: float = 0.1,
                               window: float = WINDOW) -> float:
    """Send ``chunk`` every ``every`` seconds until the server closes; seconds it took (``window`` if never)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    reader = asyncio.ensure_future(conn.read_until_eof(window))
    try:
        while loop.time() - t0 < window:
            if reader.done():
                break
            await conn.send(chunk)
            await asyncio.sleep(every)
        try:
            await asyncio.wait_for(asyncio.shield(reader), 0.5)
        except asyncio.TimeoutError:
            return window
        except Exception:
            pass
        return loop.time() - t0
    finally:
        reader.cancel()


async def test_pipelined_partial_request_keeps_header_deadline(start: Start) -> None:
    # the first request is answered; the "G" of the second arrived in the same packet
    fx = await start()
    conn = await RawConn.connect(fx.port)
    await conn.send(build_request("GET", "/nothing") + b"G")
    resp = await conn.read_response()
    assert resp.status == 404
    await conn.send(b"ET /x HTTP/1.1\r\n")
    took = await trickle_until_closed(conn, b"X-A: b\r\n")
    assert took < 2.0, "a trickled pipelined request held the connection past its header timeout"


async def test_crlf_between_requests_does_not_extend_keep_alive(start: Start) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    resp = await conn.request("GET", "/nothing")
    assert resp.status == 404
    took = await trickle_until_closed(conn, b"\r\n")
    assert took < 2.0, "CRLFs between requests replaced the keep-alive deadline"


async def test_crlf_before_first_request_does_not_extend_header_deadline(start: Start) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    took = await trickle_until_closed(conn, b"\r\n")
    assert took < 2.0


async def test_unterminated_header_value_gets_431_as_it_arrives(start: Start) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    await conn.send(f"GET /nothing HTTP/1.1\r\nHost: {HOST}\r\nX-Long: ".encode())
    sent = 0
    chunk = b"a" * 8192
    reader = asyncio.ensure_future(conn.read_response(timeout=10))
    try:
        while sent < 4_000_000 and not reader.done():
            await conn.send(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)
        resp = await asyncio.wait_for(asyncio.shield(reader), 5)
    finally:
        reader.cancel()
    assert resp.status == 431
    # the server answered after about max_header_size bytes (16 KiB), not when the line ended
    assert sent < 1_000_000, sent
    assert await conn.closed_within(5)
    await fx.witness()


async def test_unterminated_header_name_gets_431(start: Start) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    await conn.send(f"GET /nothing HTTP/1.1\r\nHost: {HOST}\r\n".encode() + b"X" * 40_000)
    resp = await conn.read_response(timeout=5)
    assert resp.status == 431


async def test_header_block_over_limit_in_one_packet_gets_431(start: Start) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    head = f"GET /nothing HTTP/1.1\r\nHost: {HOST}\r\n".encode()
    head += b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 900) for i in range(30))
    await conn.send(head + b"\r\n")
    resp = await conn.read_response(timeout=5)
    assert resp.status == 431


async def test_pipelined_requests_each_get_their_own_header_budget(start: Start) -> None:
    # 40 small requests in one packet are 40 header blocks, not one 40x bigger one
    fx = await start()
    conn = await RawConn.connect(fx.port)
    one = build_request("GET", "/nothing", {"X-Pad": "p" * 600})
    await conn.send(one * 40)
    for _ in range(40):
        resp = await conn.read_response(timeout=5)
        assert resp.status == 404


async def test_url_over_limit_gets_431(start: Start) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    await conn.send(b"GET /" + b"a" * 40_000)
    resp = await conn.read_response(timeout=5)
    assert resp.status == 431


def _slow_reader(port: int) -> socket.socket:
    """A client socket with a tiny receive buffer that the test never reads from."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    return s


async def _connect(s: socket.socket, port: int) -> None:
    await asyncio.get_running_loop().sock_connect(s, (HOST, port))


async def test_closed_websocket_that_does_not_drain_is_aborted(start: Start) -> None:
    fx = await start(drain_timeout=T, max_buffered_bytes=64 * 1024 * 1024, drop_volatile_above=64 * 1024 * 1024)
    loop = asyncio.get_running_loop()
    s = _slow_reader(fx.port)
    try:
        await _connect(s, fx.port)
        await loop.sock_sendall(s, upgrade_request(f"{PATH}?EIO=4&transport=websocket"))
        await wait_for(lambda: len(fx.sockets) == 1, 5, "the session")
        sock = fx.sockets[0]
        http = fx.engine.http_server()
        for _ in range(24):
            sock.send(b"x" * 512 * 1024)
            await asyncio.sleep(0.01)
        conn = next(iter(http.connections))
        await wait_for(lambda: conn.transport.get_write_buffer_size() > 1_000_000, 5, "output to pile up")
        sock.close()
        # the close frame can never leave: the connection is aborted after drain_timeout
        await wait_for(lambda: not http.connections, 3, "the undrained connection to be aborted")
    finally:
        s.close()


async def test_keep_alive_connection_with_pending_output_is_aborted(start: Start) -> None:
    fx = await start(drain_timeout=T)
    fx.engine.fallback = lambda req: (200, [("Content-Type", "text/plain")], b"y" * 8_000_000)
    loop = asyncio.get_running_loop()
    s = _slow_reader(fx.port)
    try:
        await _connect(s, fx.port)
        await loop.sock_sendall(s, build_request("GET", "/big"))
        http = fx.engine.http_server()
        await wait_for(lambda: len(http.connections) == 1, 5, "the connection")
        await wait_for(lambda: not http.connections, 3, "the idle connection with pending output to go")
    finally:
        s.close()


async def test_keep_alive_timeout_does_not_drop_an_answer_a_slow_peer_reads_later(start: Start) -> None:
    """A slow reader (a starved polling client) still gets its whole answer after the
    keep-alive deadline: the close waits for the output, bounded by drain_timeout.
    Aborting at the keep-alive deadline lost poll responses in the soak (gaps)."""
    body = bytes(range(256)) * 32768  # 8 MiB: more than the kernel buffers of a loopback socket
    fx = await start(drain_timeout=10)
    fx.engine.fallback = lambda req: (200, [("Content-Type", "application/octet-stream")], body)
    loop = asyncio.get_running_loop()
    s = _slow_reader(fx.port)
    try:
        await _connect(s, fx.port)
        await loop.sock_sendall(s, build_request("GET", "/big"))
        await asyncio.sleep(4 * T)  # past keep_alive_timeout without reading
        got = b""
        while True:
            chunk = await asyncio.wait_for(loop.sock_recv(s, 1 << 20), 10)
            if not chunk:
                break
            got += chunk
        head, _, received = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert received == body, f"{len(received)} of {len(body)} bytes"
    finally:
        s.close()


async def test_http_close_with_pending_output_is_aborted_after_drain_timeout(start: Start) -> None:
    fx = await start(drain_timeout=T)
    fx.engine.fallback = lambda req: (200, [("Connection", "close")], b"z" * 8_000_000)
    loop = asyncio.get_running_loop()
    s = _slow_reader(fx.port)
    try:
        await _connect(s, fx.port)
        # HTTP/1.0 without keep-alive: the answer is followed by a close that cannot drain
        await loop.sock_sendall(s, b"GET /big HTTP/1.0\r\n\r\n")
        http = fx.engine.http_server()
        await wait_for(lambda: len(http.connections) == 1, 5, "the connection")
        await wait_for(lambda: not http.connections, 3, "the closed connection to be aborted")
    finally:
        s.close()


async def test_body_trickle_is_bounded_by_body_timeout(start: Start) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    conn = await RawConn.connect(fx.port)
    await conn.send(build_request("POST", f"{PATH}?EIO=4&transport=polling&sid={sid}",
                                  {"Content-Length": "100000"}))
    took = await trickle_until_closed(conn, b"4")
    assert took < 2.0
    assert b"408" in conn.buf or took < 2.0


async def test_header_trickle_on_second_request_is_bounded(start: Start) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    resp = await conn.request("GET", "/nothing")
    assert resp.status == 404
    await conn.send(b"POST ")
    took = await trickle_until_closed(conn, b"a")
    assert took < 2.0


async def test_half_done_upgrade_probe_is_closed(start: Start) -> None:
    # a polling session upgraded to WebSocket whose client never sends the probe
    fx = await start(upgrade_timeout=T)
    sid, _, _ = await polling_handshake(fx.port)
    conn = await RawConn.connect(fx.port)
    await conn.send(upgrade_request(f"{PATH}?EIO=4&transport=websocket&sid={sid}"))
    resp = await conn.read_response()
    assert resp.status == 101
    assert await conn.closed_within(2.0)


async def test_half_sent_upgrade_request_is_bounded(start: Start) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    head = upgrade_request(f"{PATH}?EIO=4&transport=websocket")
    await conn.send(head[:-2])
    took = await trickle_until_closed(conn, b"X-A: b\r\n")
    assert took < 2.0


async def test_header_caches_hold_only_short_values(start: Start) -> None:
    fx = await start()
    for i in range(20):
        conn = await RawConn.connect(fx.port)
        ua = f"{i}-" + "u" * 5000
        resp = await conn.request("GET", "/nothing", {"User-Agent": ua, "Referer": "r" * 5000 + str(i),
                                                       "X-" + "n" * 2000 + str(i): "v"})
        assert resp.status == 404
        await conn.close()
    assert max((len(v) for v in fhttp._SHARED_VALUES), default=0) <= fhttp._MAX_SHARED_LEN
    assert max((len(k) for k in fhttp._HEADER_NAMES), default=0) <= fhttp._MAX_SHARED_LEN
