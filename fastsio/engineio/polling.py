"""The HTTP long-polling transport: one pending GET carries server packets, POSTs carry client packets."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Optional

from .._impl import eio_codec
from ..exceptions import ProtocolError
from .transport import Packet, PreparedMessage, Transport, poll_payload

if TYPE_CHECKING:
    from ..http import Request
    from .server import Engine

__all__ = ["PollingTransport"]

logger = logging.getLogger(__name__)

CLOSE, NOOP = 1, 6
_TEXT_PLAIN = "text/plain; charset=UTF-8"


class PollingTransport(Transport):
    """Long-polling for one session.

    ``writable`` is True exactly while a GET is waiting for packets.
    """

    __slots__ = ("engine", "_get", "_should_close", "_close_reason", "supports_binary", "answered_at",
                 "_loop", "_msgs")

    name = "polling"

    def __init__(self, engine: "Engine", protocol: int, request: "Request") -> None:
        super().__init__(protocol)
        self.engine = engine
        self._get: Optional["Request"] = None
        self._should_close = False
        self._close_reason = "forced close"
        # v3 clients that cannot take binary payloads ask with b64=1
        self.supports_binary = protocol == 3 and "b64" not in request.query
        self._loop = asyncio.get_event_loop()
        #: loop time of the last answer to a GET: a live client polls again right after it
        self.answered_at = self._loop.time()
        #: the broadcasts whose packets the socket put in its write buffer since the last
        #: send, in order (EngineSocket.send_prepared appends): when they are the whole
        #: buffer, its payload is their shared bodies joined (a burst costs each
        #: recipient a join, not an encode)
        self._msgs: list[PreparedMessage] = []

    def on_request(self, req: "Request") -> None:
        if req.method == "GET":
            self._on_poll(req)
        elif req.method == "POST":
            self._on_data(req)
        else:
            self.engine._respond(req, 400, [("Content-Type", "text/plain")], b"Bad Request")

    # -- GET --------------------------------------------------------------------

    def _on_poll(self, req: "Request") -> None:
        if self._get is not None:
            # Node answers the overlapping GET with 400 and ends the session;
            # the first GET gets the close packet
            self.engine._respond(req, 400, [("Content-Type", "text/plain")], b"Bad Request")
            self._on_error("overlap from client")
            return
        self._get = req
        req._on_abort = self._on_get_aborted
        self.writable = True
        sock = self.socket
        if sock is None or self.closed:
            self._respond_packets([(CLOSE, "")])
            return
        if self._should_close:
            # a close decided while no GET was pending: buffered packets in this
            # response, the close packet in this one only once nothing else is left
            sock._on_closing_poll()
            return
        if sock.upgrading and sock._probed:
            self.send([(NOOP, "")])
            return
        sock._flush()

    def _on_get_aborted(self) -> None:
        self._get = None
        self.writable = False
        if not self.discarded and not self.closed:
            self._on_error("poll connection closed prematurely")

    def send(self, packets: list[Packet], compress: bool = True) -> None:
        msgs = self._msgs
        if msgs:
            self._msgs = []
            n = 0
            for m in msgs:
                n += len(m.packets)
            # the buffer only grows between two sends, so the same count and the same
            # first and last packet mean it holds those messages and nothing else
            first, last = msgs[0].packets, msgs[-1].packets
            if (n == len(packets) and first and last and packets[0] is first[0] and packets[-1] is last[-1]
                    and (self.protocol == 4 or not self.supports_binary
                         or all(len(m.parts) == 1 and isinstance(m.parts[0], str) for m in msgs))):
                self._respond_messages(msgs, compress)
                return
        self._respond_packets(packets, compress)

    def _respond_messages(self, msgs: list[PreparedMessage], compress: bool) -> None:
        req = self._get
        if req is None:
            return
        self._get = None
        self.writable = False
        self.answered_at = self._loop.time()
        if self.protocol == 4:
            # v4 packets are joined by U+001E; each body is its message's packets joined so
            body = b"\x1e".join([m.poll_body(4)[0] for m in msgs])
        else:
            # the v3 text form is its packets' encodings one after the other
            body = b"".join([m.poll_body(3)[0] for m in msgs])
        self.engine._respond_poll(req, body, _TEXT_PLAIN, compress)

    def send_prepared(self, message: PreparedMessage) -> None:
        """Answer the pending GET with a broadcast's message alone.

        The body (and its compressed form) is the one ``message`` keeps for
        every polling recipient of this protocol version and payload form.
        """
        req = self._get
        if req is None:
            return
        self._get = None
        self.writable = False
        self.answered_at = self._loop.time()
        body, ctype = message.poll_body(self.protocol, self.supports_binary)
        self.engine._respond_poll(req, body, ctype, message.compress, message, self.protocol, self.supports_binary)

    def _respond_packets(self, packets: list[Packet], compress: bool = True) -> None:
        req = self._get
        if req is None:
            return
        self._get = None
        self.writable = False
        self.answered_at = self._loop.time()
        body, ctype = poll_payload(packets, self.protocol, self.supports_binary)
        # as Node: the response is compressed when any packet in it may be
        self.engine._respond_poll(req, body, ctype, compress)

    # -- POST -------------------------------------------------------------------

    def _on_data(self, req: "Request") -> None:
        ctype = req.headers.get("content-type", "")
        if self.protocol == 4 and ctype.startswith("application/octet-stream"):
            self.engine._respond(req, 400, [("Content-Type", "text/plain")], b"Bad Request")
            self._on_error("invalid content")
            return
        self.engine._respond_poll(req, b"ok", "text/html", False)
        try:
            if self.protocol == 4:
                packets = eio_codec.decode_payload(req.body)
            else:
                packets = eio_codec.decode_payload_v3(req.body)
        except ProtocolError:
            sock = self.socket
            if sock is not None:
                sock._on_close("parse error")
            return
        for ptype, data in packets:
            if self.socket is None:
                break
            if ptype == CLOSE:
                # a client-initiated close releases the pending GET with a noop, as Node does
                if self._get is not None:
                    self._respond_packets([(NOOP, "")])
                self.discarded = True
                self._on_close()
                break
            self._on_packet(ptype, data)

    # -- closing ------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._msgs = []
        if self._get is not None:
            if self.discarded:
                self._respond_packets([(NOOP, "")])
            else:
                self._respond_packets([(CLOSE, "")])
        elif not self.discarded:
            self._should_close = True
