"""Session ids that name their worker, and where a request ends in bytes a connection read."""
from __future__ import annotations

import os

import pytest

from fastsio.workers import resolve_workers
import asyncio

from fastsio.workers.routing import make_id_generator, message_end, owner_of, tag_prefix, wrap_id_generator


@pytest.mark.parametrize("index", [0, 1, 7, 255])
@pytest.mark.parametrize("key", [0, 0x5A, 255])
def test_a_session_id_names_its_worker(index: int, key: int) -> None:
    gen = make_id_generator(index, key)
    ids = {gen() for _ in range(200)}
    assert len(ids) == 200
    for sid in ids:
        assert len(sid) == 20
        assert owner_of(sid, key) == index


def test_foreign_or_malformed_ids_have_no_owner() -> None:
    assert owner_of("short", 0) is None
    assert owner_of("!!!!" + "a" * 16, 0) is None
    assert owner_of("", 0) is None


@pytest.mark.parametrize("index", [0, 1, 7, 255])
@pytest.mark.parametrize("key", [0, 0x5A, 255])
def test_a_custom_generate_id_keeps_its_ids_after_two_characters_naming_the_worker(index: int, key: int) -> None:
    gen = wrap_id_generator(lambda req: f"user-{req}", index, key)
    sid = gen(42)
    assert sid == tag_prefix(index, key) + "user-42"
    assert owner_of(sid, key, custom=True) == index
    # the same two characters a default id of that worker starts with (but for the random low bits)
    default = make_id_generator(index, key)()
    assert owner_of(default, key, custom=True) == index
    assert default[0] == sid[0]

    async def user(req: object) -> str:
        return "async-id"

    pending = wrap_id_generator(user, index, key)(None)
    assert asyncio.run(pending) == tag_prefix(index, key) + "async-id"  # type: ignore[arg-type]


def test_custom_ids_of_any_length_only_when_the_ids_are_custom() -> None:
    sid = tag_prefix(1, 0) + "x"
    assert owner_of(sid, 0) is None
    assert owner_of(sid, 0, custom=True) == 1
    assert owner_of("ab", 0, custom=True) is None
    assert owner_of("A" * 2000, 0, custom=True) is None


def test_ids_are_not_guessable_from_each_other() -> None:
    gen = make_id_generator(3, 0x11)
    a, b = gen(), gen()
    # only the first byte is fixed: everything after the first two characters differs
    assert a[2:] != b[2:]


REQS = [
    b"GET /socket.io/?EIO=4&transport=polling&sid=a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /socket.io/?EIO=4&transport=polling&sid=b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n40abc",
    b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /socket.io/?EIO=4&transport=websocket&sid=c HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
]


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4])
def test_message_end_finds_the_end_of_the_nth_request(count: int) -> None:
    data = b"".join(REQS) + b"\x81\x05hello"
    assert message_end(data, count) == sum(len(r) for r in REQS[:count])


def test_message_end_with_a_partial_request_behind() -> None:
    data = REQS[0] + REQS[1][:30]
    assert message_end(data, 1) == len(REQS[0])


def test_resolve_workers() -> None:
    assert resolve_workers(1) == 1
    assert resolve_workers(4) == 4
    assert resolve_workers("auto") == len(os.sched_getaffinity(0))
    for bad in (0, -1, "4", 2.0, True, 1000):
        with pytest.raises(ValueError):
            resolve_workers(bad)  # type: ignore[arg-type]


def test_current_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastsio.workers import ENV, current_worker

    monkeypatch.delenv(ENV, raising=False)
    assert current_worker() is None
    monkeypatch.setenv(ENV, '{"index": 2, "count": 4}')
    assert current_worker() == (2, 4)


def test_tls_with_workers_fails_at_start_naming_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    import fastsio

    monkeypatch.delenv("FASTSIO_WORKER", raising=False)
    io = fastsio.Server()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # a TLS connection's state lives in the process that did the handshake: it cannot be handed over
    with pytest.raises(RuntimeError, match="ssl is not supported with workers > 1.*terminate TLS in a proxy"):
        io.run(port=0, host="127.0.0.1", ssl=ctx, workers=2)
