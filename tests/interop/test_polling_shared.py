"""The polling broadcast fast path (issue 14): one response body per broadcast, raw HTTP clients.

A ``PreparedMessage`` handed to many polling sessions whose GET is pending is
encoded once per payload form (v4; v3 text; v3 binary) and, where HTTP
compression applies, compressed once per content coding; every response
still carries the headers of its own request (CORS origin, content coding).
A session whose buffer already holds packets gets the message behind them.
Also the request cycle's one movable deadline (``HttpConnection._arm``).
"""
from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any, Awaitable, Callable, Optional

import orjson
import pytest

from fastsio._impl import eio_codec
from fastsio.engineio import PreparedMessage

from raw import (
    PATH,
    EngineFixture,
    HttpResponse,
    RawConn,
    build_request,
    http_request,
    polling_handshake,
    post,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

Start = Callable[..., Awaitable[EngineFixture]]


class PendingPoll:
    """A GET sent on its own connection, its answer read later."""

    def __init__(self, conn: RawConn) -> None:
        self.conn = conn

    @classmethod
    async def send(cls, port: int, sid: str, eio: int = 4, query: str = "",
                   headers: Optional[dict[str, str]] = None) -> "PendingPoll":
        conn = await RawConn.connect(port)
        await conn.send(build_request("GET", f"{PATH}?EIO={eio}&transport=polling&sid={sid}{query}", headers))
        return cls(conn)

    async def answer(self) -> HttpResponse:
        return await self.conn.read_response()


def body_of(resp: HttpResponse) -> bytes:
    enc = resp.header("content-encoding")
    if enc == "gzip":
        return gzip.decompress(resp.body)
    if enc == "deflate":
        return zlib.decompress(resp.body)
    assert enc is None, enc
    return resp.body


async def open_sessions(fx: EngineFixture, n: int, eio: int = 4, query: str = "",
                        headers: Optional[dict[str, str]] = None) -> list[str]:
    sids = []
    for _ in range(n):
        if eio == 4:
            sid, _, _ = await polling_handshake(fx.port, f"EIO=4&transport=polling{query}", headers=headers)
        else:
            resp = await http_request(fx.port, "GET", f"{PATH}?EIO=3&transport=polling{query}", headers)
            ptype, data = eio_codec.decode_payload_v3(resp.body)[0]
            assert ptype == 0 and isinstance(data, str), resp
            sid = orjson.loads(data)["sid"]
        sids.append(sid)
    return sids


async def pending(fx: EngineFixture, sids: list[str], polls: list[PendingPoll]) -> None:
    await wait_for(lambda: all(fx.engine.clients[s].transport.writable for s in sids), 5, "GETs pending")


# -- v4 -------------------------------------------------------------------------------------------------------------

async def test_v4_body_is_built_once_and_compressed_once_per_coding(start: Start, poll_body_counts: dict[str, int]) -> None:
    fx = await start(http_compression={"threshold": 100})
    sids = await open_sessions(fx, 6)
    encodings = [{"Accept-Encoding": "gzip, deflate"}, {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "deflate"},
                 {"Accept-Encoding": "deflate"}, {}, {}]
    polls = [await PendingPoll.send(fx.port, sid, headers=h) for sid, h in zip(sids, encodings)]
    await pending(fx, sids, polls)
    big = '2["msg","' + "x" * 500 + '"]'
    message = PreparedMessage([big])
    for sid in sids:
        fx.engine.clients[sid].send_prepared(message)
    answers = [await p.answer() for p in polls]
    assert poll_body_counts == {"payload": 1, "compress": 2}
    assert [a.header("content-encoding") for a in answers] == ["gzip", "gzip", "deflate", "deflate", None, None]
    # the same bytes object went to every recipient of one form
    assert answers[0].body == answers[1].body and answers[2].body == answers[3].body
    for a in answers:
        assert a.status == 200
        assert body_of(a) == ("4" + big).encode()
        assert a.header("content-type") == "text/plain; charset=UTF-8"
        assert a.header("cache-control") == "no-store"
        assert int(a.header("content-length") or -1) == len(a.body)
    # under the threshold: not compressed; compress=False: not compressed
    polls = [await PendingPoll.send(fx.port, sid, headers=h) for sid, h in zip(sids, encodings)]
    await pending(fx, sids, polls)
    small = PreparedMessage(['2["s"]'])
    for sid in sids:
        fx.engine.clients[sid].send_prepared(small)
    for p in polls:
        a = await p.answer()
        assert a.header("content-encoding") is None and a.body == b'42["s"]'
    polls = [await PendingPoll.send(fx.port, sid, headers=h) for sid, h in zip(sids, encodings)]
    await pending(fx, sids, polls)
    plain = PreparedMessage([big], compress=False)
    for sid in sids:
        fx.engine.clients[sid].send_prepared(plain)
    for p in polls:
        a = await p.answer()
        assert a.header("content-encoding") is None and a.body == ("4" + big).encode()
    assert poll_body_counts == {"payload": 3, "compress": 2}


async def test_v4_binary_attachment_is_base64_in_the_shared_body(start: Start, poll_body_counts: dict[str, int]) -> None:
    fx = await start()
    sids = await open_sessions(fx, 3)
    polls = [await PendingPoll.send(fx.port, sid) for sid in sids]
    await pending(fx, sids, polls)
    blob = bytes(range(256)) * 4
    message = PreparedMessage(['51-["bin",{"_placeholder":true,"num":0}]', blob])
    for sid in sids:
        fx.engine.clients[sid].send_prepared(message)
    for p in polls:
        a = await p.answer()
        assert eio_codec.decode_payload(a.body) == [(4, '51-["bin",{"_placeholder":true,"num":0}]'), (4, blob)]
    assert poll_body_counts["payload"] == 1


async def test_cors_headers_follow_each_request(start: Start) -> None:
    fx = await start(cors={"origin": ["http://a.example", "http://b.example"], "credentials": True})
    sids = await open_sessions(fx, 3)
    origins = ["http://a.example", "http://b.example", "http://evil.example"]
    polls = [await PendingPoll.send(fx.port, sid, headers={"Origin": o}) for sid, o in zip(sids, origins)]
    await pending(fx, sids, polls)
    message = PreparedMessage(['2["hi"]'])
    for sid in sids:
        fx.engine.clients[sid].send_prepared(message)
    answers = [await p.answer() for p in polls]
    assert [a.header("access-control-allow-origin") for a in answers] == ["http://a.example", "http://b.example", None]
    for a in answers:
        assert a.header("vary") == "Origin" and a.header("access-control-allow-credentials") == "true"
        assert a.body == b'42["hi"]'
    # a callable origin is asked per request, as Node does
    asked: list[str] = []

    def origin(o: str) -> bool:
        asked.append(o)
        return True

    fx2 = await start(cors={"origin": origin})
    sid = (await open_sessions(fx2, 1))[0]
    for o in ("http://x.example", "http://y.example"):
        p = await PendingPoll.send(fx2.port, sid, headers={"Origin": o})
        await pending(fx2, [sid], [p])
        fx2.engine.clients[sid].send_prepared(message)
        assert (await p.answer()).header("access-control-allow-origin") == o
    assert asked[-2:] == ["http://x.example", "http://y.example"]


async def test_ie_gets_x_xss_protection_as_from_node(start: Start) -> None:
    fx = await start()
    sids = await open_sessions(fx, 2)
    polls = [await PendingPoll.send(fx.port, sids[0], headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Trident/7.0)"}),
             await PendingPoll.send(fx.port, sids[1], headers={"User-Agent": "Mozilla/5.0 Firefox/120"})]
    await pending(fx, sids, polls)
    message = PreparedMessage(['2["hi"]'])
    for sid in sids:
        fx.engine.clients[sid].send_prepared(message)
    a, b = [await p.answer() for p in polls]
    assert a.header("x-xss-protection") == "0" and b.header("x-xss-protection") is None


async def test_buffered_recipient_gets_everything_in_order(start: Start, poll_body_counts: dict[str, int]) -> None:
    fx = await start()
    sids = await open_sessions(fx, 2)
    shared, busy = sids
    fx.engine.clients[busy].send("before")  # no GET pending: buffered
    polls = [await PendingPoll.send(fx.port, shared)]
    await pending(fx, [shared], polls)
    m1, m2 = PreparedMessage(['2["one"]']), PreparedMessage(['2["two"]'])
    for m in (m1, m2):
        for sid in sids:
            fx.engine.clients[sid].send_prepared(m)
    assert (await polls[0].answer()).body == b'42["one"]'
    resp = await PendingPoll.send(fx.port, busy)
    assert eio_codec.decode_payload((await resp.answer()).body) == [(4, "before"), (4, '2["one"]'), (4, '2["two"]')]
    p = await PendingPoll.send(fx.port, shared)
    assert eio_codec.decode_payload((await p.answer()).body) == [(4, '2["two"]')]
    # m1's body for the shared answer, m2's for the shared recipient's buffered one; the
    # busy recipient's payload (its own packet first) was encoded the general way
    assert poll_body_counts["payload"] == 2


# -- v3 ---------------------------------------------------------------------------------------------------------------

async def test_v3_binary_and_base64_forms_are_built_once_each(start: Start, poll_body_counts: dict[str, int]) -> None:
    fx = await start(allow_eio3=True, http_compression={"threshold": 100})
    binary = await open_sessions(fx, 2, eio=3)
    b64 = await open_sessions(fx, 2, eio=3, query="&b64=1")
    sids = binary + b64
    gz = {"Accept-Encoding": "gzip"}
    polls = [await PendingPoll.send(fx.port, sid, eio=3, query="&b64=1" if sid in b64 else "", headers=gz)
             for sid in sids]
    await pending(fx, sids, polls)
    blob = b"\x00\xff" * 300
    text = '51-["bin",{"_placeholder":true,"num":0}]'
    message = PreparedMessage([text, blob])
    for sid in sids:
        fx.engine.clients[sid].send_prepared(message)
    answers = [await p.answer() for p in polls]
    assert poll_body_counts == {"payload": 2, "compress": 2}
    for a in answers[:2]:
        assert a.header("content-type") == "application/octet-stream" and a.header("content-encoding") == "gzip"
        assert body_of(a) == eio_codec.encode_payload_v3([(4, text), (4, blob)], True)
    for a in answers[2:]:
        assert a.header("content-type") == "text/plain; charset=UTF-8"
        assert body_of(a) == eio_codec.encode_payload_v3([(4, text), (4, blob)], False).encode()  # type: ignore[union-attr]
        assert eio_codec.decode_payload_v3(body_of(a)) == [(4, text), (4, blob)]


async def test_v3_text_message_and_post_answer(start: Start) -> None:
    fx = await start(allow_eio3=True)
    sid = (await open_sessions(fx, 1, eio=3))[0]
    p = await PendingPoll.send(fx.port, sid, eio=3)
    await pending(fx, [sid], [p])
    fx.engine.clients[sid].send_prepared(PreparedMessage(['2["é"]']))
    a = await p.answer()
    assert eio_codec.decode_payload_v3(a.body) == [(4, '2["é"]')]
    resp = await post(fx.port, sid, eio_codec.encode_payload_v3([(4, "hi")]), eio=3)  # type: ignore[arg-type]
    assert resp.status == 200 and resp.body == b"ok" and resp.header("content-type") == "text/html"


# -- the request cycle's deadline -------------------------------------------------------------------------------------

async def test_header_deadline_is_not_held_back_by_a_later_keep_alive_deadline(start: Start) -> None:
    # the armed timer is the long keep-alive one when the next request begins: the
    # header deadline, earlier, must re-arm it
    fx = await start(header_timeout=0.3, body_timeout=0.3, keep_alive_timeout=30)
    conn = await RawConn.connect(fx.port)
    assert (await conn.request("GET", "/nothing")).status == 404
    await asyncio.sleep(0.6)  # the first timer has fired and been moved to the keep-alive deadline
    await conn.send(b"GET /x HTTP/1.1\r\n")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(30):
        if conn.writer.is_closing():
            break
        try:
            await conn.send(b"X-A: b\r\n")
        except (ConnectionError, OSError):
            break
        if await conn.closed_within(0.1):
            break
    assert loop.time() - t0 < 2.5, "a request's header deadline waited for the keep-alive timer"


async def test_keep_alive_deadline_holds_after_the_timer_fired_early(start: Start) -> None:
    fx = await start(header_timeout=0.2, body_timeout=0.2, keep_alive_timeout=1.2)
    conn = await RawConn.connect(fx.port)
    loop = asyncio.get_running_loop()
    assert (await conn.request("GET", "/nothing")).status == 404
    t0 = loop.time()
    # the header timer fires at 0.2 s and re-arms for the rest of the keep-alive
    assert not await conn.closed_within(0.7), "closed before its keep-alive deadline"
    assert await conn.closed_within(5.0)
    assert loop.time() - t0 >= 1.1


async def test_many_requests_on_one_connection_then_idle_close(start: Start) -> None:
    fx = await start(header_timeout=0.3, body_timeout=0.3, keep_alive_timeout=0.3)
    conn = await RawConn.connect(fx.port)
    for _ in range(50):
        assert (await conn.request("GET", "/nothing")).status == 404
    assert await conn.closed_within(3.0)


async def test_buffered_broadcasts_are_joined_from_their_shared_bodies(start: Start, poll_body_counts: dict[str, int]) -> None:
    # no GET pending (a burst): each recipient's next answer is the broadcasts' bodies joined;
    # one that also got a packet of its own between them is encoded the general way
    fx = await start(allow_eio3=True)
    v4 = await open_sessions(fx, 3)
    v3 = await open_sessions(fx, 2, eio=3, query="&b64=1")
    v3bin = await open_sessions(fx, 1, eio=3)
    ms = [PreparedMessage([f'2["m",{i}]']) for i in range(3)]
    ms.append(PreparedMessage(['51-["b",{"_placeholder":true,"num":0}]', b"\x00\xff"]))
    for i, m in enumerate(ms):
        for sid in v4 + v3 + v3bin:
            fx.engine.clients[sid].send_prepared(m)
        if i == 1:
            fx.engine.clients[v4[2]].send("own")
    packets = [p for m in ms for p in m.packets]
    expected_v4 = eio_codec.encode_payload(packets).encode()
    for sid in v4[:2]:
        a = await (await PendingPoll.send(fx.port, sid)).answer()
        assert a.body == expected_v4
    a = await (await PendingPoll.send(fx.port, v4[2])).answer()
    assert eio_codec.decode_payload(a.body) == packets[:2] + [(4, "own")] + packets[2:]
    for sid in v3:
        a = await (await PendingPoll.send(fx.port, sid, eio=3, query="&b64=1")).answer()
        assert a.body == eio_codec.encode_payload_v3(packets, False).encode()  # type: ignore[union-attr]
    # a v3 client taking binary payloads, with an attachment in the batch: the binary form
    a = await (await PendingPoll.send(fx.port, v3bin[0], eio=3)).answer()
    assert a.header("content-type") == "application/octet-stream"
    assert eio_codec.decode_payload_v3(a.body) == packets
    # each message's v4 and v3 text bodies once, whatever the number of recipients
    assert poll_body_counts["payload"] == 8


async def test_closing_answer_gets_drain_timeout_not_keep_alive_timeout(start: Start) -> None:
    # a "Connection: close" poll answered with more than the socket buffers hold: the
    # connection then has drain_timeout to hand it over, not the (shorter) keep-alive timeout
    fx = await start(keep_alive_timeout=0.3, header_timeout=0.3, drain_timeout=4.0,
                     max_buffered_bytes=256 * 1024 * 1024)
    sid = (await open_sessions(fx, 1))[0]
    big = "x" * _more_than_the_socket_buffers_hold()
    fx.engine.clients[sid].send(big)
    conn = await RawConn.connect(fx.port)
    await conn.send(build_request("GET", f"{PATH}?EIO=4&transport=polling&sid={sid}", {"Connection": "close"}))
    await asyncio.sleep(1.2)  # not reading: past the keep-alive timeout, within the drain timeout
    resp = await conn.read_response(timeout=20)
    assert resp.status == 200 and len(resp.body) == len(big) + 1


def _more_than_the_socket_buffers_hold() -> int:
    # the client's receive buffer and the server's send buffer grow up to these (Linux autotuning)
    total = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        try:
            with open(f"/proc/sys/net/ipv4/{name}") as f:
                total += int(f.read().split()[2])
        except (OSError, ValueError, IndexError):
            total += 32 * 1024 * 1024
    return min(total + 16 * 1024 * 1024, 160 * 1024 * 1024)
