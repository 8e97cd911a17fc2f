"""PreparedMessage.asgi_events: the ASGI ``websocket.send`` events of a broadcast, built once per protocol.

What the events carry must be exactly what the WebSocket frames of the same
message carry (the built-in server's path), for both protocol versions, in
the compiled and the pure-Python run of the suite alike.
"""
from __future__ import annotations

from typing import Any, Union

from hypothesis import given, settings
from hypothesis import strategies as st

from fastsio._impl import ws_frames
from fastsio.asgi import _WebSocketBridge
from fastsio.engineio.transport import PreparedMessage, asgi_send_events, frame_packets
from fastsio.http import Request, WebSocketHandler

texts = st.text(max_size=300)
attachments = st.binary(max_size=300)
parts_strategy = st.tuples(texts, st.lists(attachments, max_size=3)).map(lambda t: [t[0], *t[1]])


def _frames_content(data: bytes) -> list[tuple[int, Union[str, bytes]]]:
    parser = ws_frames.FrameParser(1 << 30, client_side=True, max_fragments=1 << 20)
    return [(opcode, payload) for opcode, payload, _ in parser.feed(data)]


def _events_content(events: Any) -> list[tuple[int, Union[str, bytes]]]:
    out: list[tuple[int, Union[str, bytes]]] = []
    for event, size in events:
        assert event["type"] == "websocket.send"
        if "text" in event:
            assert size == len(event["text"].encode("utf-8"))
            out.append((ws_frames.OP_TEXT, event["text"]))
        else:
            assert size == len(event["bytes"])
            out.append((ws_frames.OP_BINARY, event["bytes"]))
    return out


@settings(max_examples=80, deadline=None)
@given(parts=parts_strategy)
def test_asgi_events_carry_what_the_frames_carry(parts: list[Union[str, bytes]]) -> None:
    message = PreparedMessage(parts)
    for protocol in (4, 3):
        items, total = message.asgi_events(protocol)
        assert _events_content(items) == _frames_content(message.ws_bytes(protocol))
        assert total == sum(size for _, size in items)
        assert len(items) == len(parts)


def test_asgi_events_are_built_once_per_protocol_and_shared() -> None:
    message = PreparedMessage(['451-["b",{"_placeholder":true,"num":0}]', b"\x00\x01"])
    v4 = message.asgi_events(4)
    v3 = message.asgi_events(3)
    assert message.asgi_events(4) is v4 and message.asgi_events(3) is v3
    assert v4 is not v3
    # v4 hands the attachment over as it is (no copy); v3 prefixes its type byte
    assert v4[0][1][0]["bytes"] is message.parts[1]
    assert v3[0][1][0]["bytes"] == b"\x04\x00\x01"
    # the text part is the same content for both versions, one object each
    assert v4[0][0][0]["text"] == v3[0][0][0]["text"] == "4" + str(message.parts[0])


class _Handler(WebSocketHandler):
    def on_ws_message(self, data: "str | bytes") -> None:
        pass

    def on_ws_close(self, reason: str, description: Any = None) -> None:
        pass


async def _noop_send(event: dict[str, Any]) -> None:
    pass


def test_bridge_takes_packets_and_frames_alike() -> None:
    req = Request("GET", "/socket.io/?EIO=4&transport=websocket", {}, b"", "", False, "1.1", True, True)
    packets: list[Any] = [(4, "2hello é"), (4, b"\x00\xff"), (2, "")]
    for protocol in (4, 3):
        by_packets = _WebSocketBridge(req, _noop_send)
        by_frames = _WebSocketBridge(req, _noop_send)
        for bridge in (by_packets, by_frames):
            bridge.accept_websocket(_Handler(), max_message_size=1000)
        by_packets.write_packets(packets, protocol)
        # the fallback for a caller that writes frames: parsed back into the same events
        by_frames.write(frame_packets(packets, protocol == 3))
        assert list(by_packets._out)[1:] == list(by_frames._out)[1:] == list(asgi_send_events(packets, protocol == 3)[0])
        assert by_packets.queued == by_frames.queued == asgi_send_events(packets, protocol == 3)[1]
