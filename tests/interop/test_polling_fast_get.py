"""A poll GET whole in one segment takes the recogniser (fastsio._impl.http_fast), not httptools'
callbacks: the answers must be the same as through the parser (the same GET fed byte by byte),
and what the recogniser leaves to the parser keeps its limits and errors.
"""
from __future__ import annotations

import asyncio
from typing import Any, Optional

import pytest

import fastsio.http as fhttp

from raw import PATH, RawConn, build_request, polling_handshake, post

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def recognised(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets of the requests the recogniser took (a counting wrapper around it)."""
    seen: list[str] = []
    real = fhttp._parse_simple_get

    def counting(*args: Any) -> Optional[tuple[str, dict[str, str]]]:
        got = real(*args)
        if got is not None:
            seen.append(got[0])
        return got

    monkeypatch.setattr(fhttp, "_parse_simple_get", counting)
    return seen


async def send_bytewise(conn: RawConn, data: bytes) -> None:
    for i in range(len(data)):
        await conn.send(data[i:i + 1])
        await asyncio.sleep(0)


def comparable(head: bytes) -> list[str]:
    # the head without the Content-Length line (bodies differ in length only with the payload)
    return [line for line in head.decode("latin-1").split("\r\n") if not line.lower().startswith("content-length")]


async def test_whole_and_bytewise_polls_get_the_same_answers(start: Any, recognised: list[str]) -> None:
    fx = await start(cors={"origin": "https://a.example", "credentials": True})
    sid, _, _ = await polling_handshake(fx.port)
    target = f"{PATH}?EIO=4&transport=polling&sid={sid}"
    headers = {"Origin": "https://a.example", "Connection": "keep-alive", "Accept-Encoding": "gzip"}
    get = build_request("GET", target, headers)
    conn = await RawConn.connect(fx.port)
    answers = []
    for bytewise in (False, True, False):
        assert (await post(fx.port, sid, "4hello")).status == 200
        if bytewise:
            await send_bytewise(conn, get)
        else:
            await conn.send(get)
        answers.append(await conn.read_response())
    assert recognised.count(target) == 2  # the two whole GETs, not the byte-wise one
    for resp in answers:
        assert resp.status == 200 and resp.body == b"4hello"
        assert resp.header("access-control-allow-origin") == "https://a.example"
        assert resp.header("access-control-allow-credentials") == "true"
        assert resp.header("connection") == "keep-alive"
    assert comparable(answers[0].raw_head) == comparable(answers[1].raw_head) == comparable(answers[2].raw_head)
    await conn.close()


async def test_a_waiting_poll_answered_by_a_message_on_the_same_connection(start: Any,
                                                                           recognised: list[str]) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    target = f"{PATH}?EIO=4&transport=polling&sid={sid}"
    conn = await RawConn.connect(fx.port)
    for n in range(3):
        await conn.send(build_request("GET", target))
        await asyncio.sleep(0.05)  # the GET waits
        assert (await post(fx.port, sid, f"4m{n}")).status == 200
        resp = await conn.read_response()
        assert resp.status == 200 and resp.body == f"4m{n}".encode()
    assert recognised.count(target) == 3
    await conn.close()


async def test_a_second_concurrent_whole_get_is_refused_as_node_does(start: Any, recognised: list[str]) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    target = f"{PATH}?EIO=4&transport=polling&sid={sid}"
    first = await RawConn.connect(fx.port)
    second = await RawConn.connect(fx.port)
    await first.send(build_request("GET", target))
    await asyncio.sleep(0.05)
    await second.send(build_request("GET", target))
    resp2 = await second.read_response()
    resp1 = await first.read_response()
    assert resp2.status == 400 and resp2.body == b"Bad Request"
    assert resp1.status == 200 and resp1.body == b"1"  # the close packet
    assert recognised.count(target) == 2
    await first.close()
    await second.close()


async def test_unknown_sid_through_the_recogniser(start: Any, recognised: list[str]) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    resp = await conn.request("GET", f"{PATH}?EIO=4&transport=polling&sid=nope")
    assert resp.status == 400 and resp.body == b'{"code":1,"message":"Session ID unknown"}'
    assert recognised == [f"{PATH}?EIO=4&transport=polling&sid=nope"]
    await conn.close()


async def test_connection_close_is_left_to_the_parser_and_closes(start: Any, recognised: list[str]) -> None:
    fx = await start()
    sid, _, _ = await polling_handshake(fx.port)
    await post(fx.port, sid, "4x")
    conn = await RawConn.connect(fx.port)
    await conn.send(build_request("GET", f"{PATH}?EIO=4&transport=polling&sid={sid}", {"Connection": "close"}))
    resp = await conn.read_response()
    assert resp.status == 200 and resp.body == b"4x" and resp.header("connection") == "close"
    assert await conn.closed_within(5)
    assert f"{PATH}?EIO=4&transport=polling&sid={sid}" not in recognised


async def test_whole_gets_around_max_header_size(start: Any, recognised: list[str]) -> None:
    fx = await start()
    limit = 16384  # the engine's HTTP server's max_header_size
    target = f"{PATH}?EIO=4&transport=polling"
    pad = limit - len(build_request("GET", target, {"X-Pad": ""}))
    # a complete head of max_header_size bytes passes (as through the parser), one byte more gets 431
    data = build_request("GET", target, {"X-Pad": "p" * pad})
    assert len(data) == limit
    conn = await RawConn.connect(fx.port)
    await conn.send(data)
    resp = await conn.read_response()
    assert resp.status == 200 and recognised == [target]
    await conn.close()
    conn = await RawConn.connect(fx.port)
    await conn.send(build_request("GET", target, {"X-Pad": "p" * (pad + 1)}))
    out = await conn.read_until_eof(5)
    assert out.startswith(b"HTTP/1.1 431 ")
    assert recognised == [target]


async def test_pipelined_whole_gets_are_left_to_the_parser(start: Any, recognised: list[str]) -> None:
    fx = await start()
    conn = await RawConn.connect(fx.port)
    one = build_request("GET", f"{PATH}?EIO=4&transport=polling")
    await conn.send(one + one)
    r1 = await conn.read_response()
    r2 = await conn.read_response()
    assert r1.status == 200 and r2.status == 200 and r1.body != r2.body  # two handshakes, two sids
    assert recognised == []
    await conn.close()
