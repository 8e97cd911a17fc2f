"""The local bus framing: what one worker reads from another, split anywhere, hostile or not."""
from __future__ import annotations

from typing import Any

from fastsio.adapters import _wire
from fastsio.adapters.local import _HELLO, _MAGIC, MAX_MESSAGE, LocalBus, _frame, _In


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class FakeAdapter:
    def __init__(self) -> None:
        self.got: list[Any] = []
        self.nodes: dict[str, float] = {}

    def _on_message(self, message: Any, offset: Any = None) -> None:
        self.got.append(message)


def _conn() -> tuple[LocalBus, _In, FakeTransport, FakeAdapter]:
    bus = LocalBus(0, 3, "/nonexistent")
    adapter = FakeAdapter()
    bus.adapters["/"] = adapter  # type: ignore[assignment]
    conn = _In(bus)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return bus, conn, transport, adapter


MESSAGES = [{"uid": "a" * 16, "nsp": "/", "type": 3, "data": {"packet": {"type": 2, "data": ["ev", i, b"\x00" * i]}}}
            for i in range(5)]


def test_frames_split_at_every_byte_arrive_whole_and_in_order() -> None:
    stream = _HELLO.pack(_MAGIC, 2) + b"".join(_frame(_wire.encode(m)) for m in MESSAGES)
    for step in (1, 2, 7, len(stream)):
        bus, conn, transport, adapter = _conn()
        for i in range(0, len(stream), step):
            conn.data_received(stream[i:i + step])
        assert adapter.got == MESSAGES
        assert not transport.aborted
        assert conn.peer == 2 and bus.uid_worker == {"a" * 16: 2}


def test_a_stranger_is_cut_off() -> None:
    _, conn, transport, adapter = _conn()
    conn.data_received(b"GET / HTTP/1.1\r\n\r\n")
    assert transport.aborted and adapter.got == []


def test_a_worker_index_out_of_range_is_cut_off() -> None:
    _, conn, transport, _ = _conn()
    conn.data_received(_HELLO.pack(_MAGIC, 3))
    assert transport.aborted


def test_an_oversized_frame_is_refused_before_it_is_buffered() -> None:
    _, conn, transport, adapter = _conn()
    conn.data_received(_HELLO.pack(_MAGIC, 1) + (MAX_MESSAGE + 1).to_bytes(4, "big") + b"x" * 100)
    assert transport.aborted and adapter.got == []


def test_a_malformed_message_is_dropped_and_the_next_one_arrives() -> None:
    _, conn, transport, adapter = _conn()
    conn.data_received(_HELLO.pack(_MAGIC, 1) + _frame(b"\xc1\xc1") + _frame(_wire.encode([1, 2]))
                       + _frame(_wire.encode(MESSAGES[0])))
    assert adapter.got == [MESSAGES[0]] and not transport.aborted


def test_messages_of_unknown_namespaces_are_ignored() -> None:
    _, conn, _, adapter = _conn()
    conn.data_received(_HELLO.pack(_MAGIC, 1) + _frame(_wire.encode(dict(MESSAGES[0], nsp="/other"))))
    assert adapter.got == []
