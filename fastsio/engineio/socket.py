"""One Engine.IO session: heartbeat, write buffer, and the polling -> websocket upgrade."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Optional, Union

import orjson

from .._impl import fanout
from ..emitter import EventEmitter
from .transport import Packet, PreparedMessage, Transport

if TYPE_CHECKING:
    from ..http import Request
    from .server import Engine

__all__ = ["EngineSocket"]

logger = logging.getLogger(__name__)

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)

#: seconds a closing polling session waits for the GET that takes its close packet
CLOSE_TIMEOUT = 30.0

# what a session's one deadline means
_NO_DEADLINE, _PING_DUE, _PONG_OVERDUE, _CLOSE_DUE = range(4)


class EngineSocket(EventEmitter):
    """An Engine.IO connection (Node's engine.io ``Socket``).

    Attributes:
        id: the session id.
        protocol: 4, or 3 for clients accepted through ``allow_eio3``.
        request: the request that opened the session.
        transport: the current transport (``transport.name`` is
            ``"polling"`` or ``"websocket"``).
        ready_state: ``"opening"``, ``"open"``, ``"closing"`` or ``"closed"``.

    Events: ``message`` (str or bytes), ``close`` (reason, description),
    ``upgrading`` and ``upgrade`` (transport), ``packet`` and
    ``packet_create`` (dict with ``type`` and ``data``), ``drain``,
    ``heartbeat``, ``error``. ``close`` is the last event: the listeners are
    dropped after it (a closed session is freed by reference counting).
    """

    __slots__ = ("id", "server", "protocol", "request", "transport", "ready_state", "upgrading",
                 "upgraded", "write_buffer", "_wheel_key", "_deadline_kind", "_close_reason", "_upgrade_timer",
                 "_probe_transport", "_probed", "remote_address", "_direct", "_watched", "_buffered", "_compress", "__weakref__")

    #: events whose listeners need every outgoing packet one by one
    _PACKET_EVENTS = frozenset(("packet_create", "drain"))

    def __init__(self, server: "Engine", sid: str, protocol: int, transport: Transport,
                 request: "Request") -> None:
        super().__init__()
        self.id = sid
        self.server = server
        self.protocol = protocol
        self.request = request
        self.remote_address = request.remote_address
        self.transport = transport
        transport.socket = self
        self.ready_state = "opening"
        self.upgrading = False
        self.upgraded = False
        self.write_buffer: list[Packet] = []
        # bytes waiting in write_buffer: a polling client that stops polling must not
        # make the server buffer without bound until its ping timeout
        self._buffered = 0
        # whether any packet in write_buffer may be compressed (the emit's compress flag)
        self._compress = False
        # one deadline at a time, kept in the engine's DeadlineWheel: what it means is
        # _deadline_kind (send the next ping, pong overdue, close timeout)
        self._wheel_key = -1
        self._deadline_kind = _NO_DEADLINE
        self._close_reason = "forced close"
        self._upgrade_timer: Optional[asyncio.TimerHandle] = None
        self._probe_transport: Optional[Transport] = None
        self._probed = False
        # the door to the broadcast fast path: its target is the WebSocket connection's
        # write buffer while a prepared broadcast may go there directly (nobody watching
        # outgoing packets, nothing buffered), else None; its kind says which shared
        # frames it takes (v4/v3, plain/deflate); fanout.deliver reads it
        self._direct = fanout.DirectWriter()
        self._watched = False

    # -- listeners that turn the broadcast fast path off -------------------------------

    def _add(self, event: str, fn: Any, prepend: bool) -> None:
        super()._add(event, fn, prepend)
        self._refresh_direct()

    def off(self, event: str, listener: Any) -> "EngineSocket":
        super().off(event, listener)
        self._refresh_direct()
        return self

    def remove_all_listeners(self, event: Optional[str] = None) -> "EngineSocket":
        super().remove_all_listeners(event)
        self._refresh_direct()
        return self

    def _refresh_direct(self) -> None:
        lst = self._listeners
        self._watched = lst is not None and any(lst.get(e) for e in self._PACKET_EVENTS)
        t = self.transport
        direct = self._direct
        if self.ready_state == "open" and not self._watched and t.name == "websocket" and not self.write_buffer:
            deflate = bool(t.deflate)  # type: ignore[attr-defined]
            direct.kind = (fanout.KIND_EIO3 if self.protocol == 3 else 0) | (fanout.KIND_DEFLATE if deflate else 0)
            direct.threshold = t.deflate_threshold  # type: ignore[attr-defined]
            direct.target = getattr(t.conn, "_wbuf", None)  # type: ignore[attr-defined]
        else:
            direct.target = None

    # -- opening ------------------------------------------------------------------

    def _open(self) -> None:
        self.ready_state = "open"
        srv = self.server
        handshake: dict[str, Any] = {
            "sid": self.id,
            "upgrades": srv._upgrades_for(self.transport.name),
            "pingInterval": int(srv.ping_interval * 1000),
            "pingTimeout": int(srv.ping_timeout * 1000),
        }
        if self.protocol == 4:
            handshake["maxPayload"] = srv.max_http_buffer_size
        self._send_packet(OPEN, orjson.dumps(handshake).decode())
        if srv.initial_packet is not None:
            self._send_packet(MESSAGE, srv.initial_packet)
        self.emit("open")
        self._refresh_direct()
        if self.protocol == 4:
            self._schedule_ping()
        else:
            self._reset_ping_timeout(srv.ping_interval + srv.ping_timeout)

    # -- heartbeat ------------------------------------------------------------------

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_event_loop()

    def _set_deadline(self, kind: int, delay: float) -> None:
        self._deadline_kind = kind
        self.server._deadlines().set(self, delay)

    def _clear_deadline(self) -> None:
        self._deadline_kind = _NO_DEADLINE
        if self._wheel_key >= 0:
            self.server._deadlines().clear(self)

    def _on_deadline(self) -> None:
        kind = self._deadline_kind
        self._deadline_kind = _NO_DEADLINE
        if kind == _PING_DUE:
            self._send_ping()
        elif kind == _PONG_OVERDUE:
            self._on_close("ping timeout")
        elif kind == _CLOSE_DUE:
            self._on_close(self._close_reason)

    def _schedule_ping(self) -> None:
        self._set_deadline(_PING_DUE, self.server.ping_interval)

    def _send_ping(self) -> None:
        if self.ready_state != "open":
            return
        self._send_packet(PING)
        self._reset_ping_timeout(self.server.ping_timeout)

    def _reset_ping_timeout(self, delay: float) -> None:
        self._set_deadline(_PONG_OVERDUE, delay)

    # -- incoming ---------------------------------------------------------------------

    def _on_packet(self, ptype: int, data: Any, transport: Transport) -> None:
        if transport is not self.transport:
            self._on_probe_packet(ptype, data, transport)
            return
        if self.ready_state != "open":
            return
        if self._listeners is not None and "packet" in self._listeners:
            self.emit("packet", {"type": ptype, "data": data})
        if ptype == MESSAGE:
            self.emit("message", data)
        elif (ptype == PING and self.protocol == 4) or (ptype == PONG and self.protocol == 3):
            # as Node: a heartbeat in the wrong direction is a broken client
            self._on_close("transport error", "invalid heartbeat direction")
        elif ptype == PONG and self.protocol == 4:
            # one pong per ping: unsolicited pongs (a flood included) move no deadline
            if self._deadline_kind == _PONG_OVERDUE:
                self._schedule_ping()
            self.emit("heartbeat")
        elif ptype == PING and self.protocol == 3:
            self._reset_ping_timeout(self.server.ping_interval + self.server.ping_timeout)
            self._send_packet(PONG, data if isinstance(data, str) else "")
            self.emit("heartbeat")
        elif ptype == CLOSE:
            self._on_close("transport close")
        # other types on an established transport carry nothing for us

    # -- upgrade --------------------------------------------------------------------------

    def _maybe_upgrade(self, transport: Transport) -> None:
        """Start probing ``transport`` (a WebSocket) to replace polling."""
        self.upgrading = True
        self._probed = False
        self._probe_transport = transport
        transport.socket = self
        self._upgrade_timer = self._loop().call_later(self.server.upgrade_timeout, self._on_upgrade_timeout)

    def _on_upgrade_timeout(self) -> None:
        self._upgrade_timer = None
        t = self._probe_transport
        self._end_probe()
        if t is not None:
            t.close()

    def _end_probe(self) -> None:
        self.upgrading = False
        self._probe_transport = None
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None

    def _on_probe_packet(self, ptype: int, data: Any, transport: Transport) -> None:
        if transport is not self._probe_transport:
            return
        if self.ready_state != "open" and not (self.ready_state == "closing" and self._probed):
            return
        if ptype == PING and data == "probe" and self.ready_state == "open":
            transport.send([(PONG, "probe")])
            self._probed = True
            self.emit("upgrading", transport)
            # release the pending GET so the client can pause polling
            self._release_poll()
        elif ptype == UPGRADE and self._probed:
            self._end_probe()
            old = self.transport
            old.discard()
            self._release_poll()
            self.transport = transport
            self.upgraded = True
            old.socket = None
            old.close()
            self.emit("upgrade", transport)
            if self.ready_state == "closing":
                # closed during the upgrade: what was buffered, then the close, on the WebSocket
                if self.write_buffer:
                    self._send_buffer()
                self._on_close(self._close_reason)
                return
            self._flush()
            self._refresh_direct()
        else:
            self._end_probe()
            transport.close()

    def _release_poll(self) -> None:
        t = self.transport
        if t.name == "polling" and t.writable:
            t.send([(NOOP, "")])

    # -- outgoing ----------------------------------------------------------------------------

    def _on_volatile_dropped(self) -> None:
        # a volatile packet skipped because this client is not writable (stats)
        self.server._volatile_dropped += 1

    @property
    def writable(self) -> bool:
        """True when a packet sent now leaves at once (volatile packets need this)."""
        t = self.transport
        if self.ready_state != "open" or not t.writable:
            return False
        return t.can_write_now()

    def send(self, data: Union[str, bytes, bytearray, memoryview], options: Any = None,
             callback: Any = None) -> "EngineSocket":
        """Send one message (``str`` as text, bytes-like as binary).

        Args:
            data: the message.
            options: ``{"compress": False}`` keeps it out of permessage-deflate
                and HTTP compression (as Node's ``socket.send(data, {compress})``).
        """
        if not isinstance(data, (str, bytes)):
            data = bytes(data)
        compress = True if options is None else bool(options.get("compress", True))
        self._send_packet(MESSAGE, data, compress)
        return self

    write = send

    def send_prepared(self, message: PreparedMessage) -> None:
        """Send a message framed once for many sockets (the broadcast path)."""
        if self.ready_state != "open":
            return
        t = self.transport
        if not self.write_buffer and not self._watched:
            if t.name == "websocket":
                t.send_prepared(message)  # type: ignore[attr-defined]
                return
            if t.writable and not (self.upgrading and self._probed):
                # a GET waits and the message is all it gets: the broadcast's shared polling body
                t.send_prepared(message)  # type: ignore[attr-defined]
                return
        if self._watched:
            for ptype, data in message.packets:
                self.emit("packet_create", {"type": ptype, "data": data})
        self.write_buffer.extend(message.packets)
        if t.name == "polling":
            t._msgs.append(message)  # type: ignore[attr-defined]
        for part in message.parts:
            self._buffered += len(part)
        if message.compress:
            self._compress = True
        self._flush()

    def _send_packet(self, ptype: int, data: Union[str, bytes] = "", compress: bool = False) -> None:
        if self.ready_state == "closing" or self.ready_state == "closed":
            return
        if self._listeners is not None and "packet_create" in self._listeners:
            self.emit("packet_create", {"type": ptype, "data": data})
        self.write_buffer.append((ptype, data))
        self._buffered += len(data)
        if compress:
            self._compress = True
        self._flush()

    def _flush(self) -> None:
        if self.ready_state == "closed" or not self.write_buffer:
            return
        t = self.transport
        if not t.writable or self.upgrading and t.name == "polling" and self._probed:
            cap = self.server.max_buffered_bytes
            if self._buffered > cap:
                logger.info("session %s: %d bytes wait for a client that does not read", self.id, self._buffered)
                self.server._slow_consumers += 1
                self._on_close("transport error", f"write buffer overflow: {self._buffered} bytes pending for a "
                                                  f"client that does not read (max_buffered_bytes={cap})")
            return
        buf = self.write_buffer
        self.write_buffer = []
        self._buffered = 0
        compress, self._compress = self._compress, False
        t.send(buf, compress)
        if self._listeners is not None:
            self.emit("drain")

    # -- closing ---------------------------------------------------------------------------------

    def close(self, discard: bool = False, reason: str = "forced close") -> None:
        """Close the session; buffered packets and the close packet go out first when they can.

        As Node's engine.io: on polling, what is buffered leaves in one
        response and the close packet in the next one (socket.io-client
        handles the packets of one payload a microtask after the close packet
        of that payload, so a close in the same payload would lose them).
        With no GET pending the session waits (up to ``CLOSE_TIMEOUT``
        seconds) for the client's next GET. A close during the upgrade lets
        the upgrade finish and goes out on the new WebSocket.
        """
        if self.ready_state != "open":
            return
        self.ready_state = "closing"
        self._close_reason = reason
        t = self.transport
        if not discard and self.upgrading and self._probed:
            # the client has paused polling: it sends the upgrade packet next, and the
            # buffered packets and the close then go over the WebSocket (_on_probe_packet)
            self._set_deadline(_CLOSE_DUE, CLOSE_TIMEOUT)
            return
        if not discard and t.name == "polling":
            if self.write_buffer and t.writable:
                self._send_buffer()
            if t.writable:
                t.send([(CLOSE, "")])
                t.closed = True
                self._on_close(reason)
                return
            t._should_close = True  # type: ignore[attr-defined]
            t._close_reason = reason  # type: ignore[attr-defined]
            self._set_deadline(_CLOSE_DUE, CLOSE_TIMEOUT)
            return
        if self.write_buffer and t.writable:
            self._send_buffer()
        self._on_close(reason)

    def _send_buffer(self) -> None:
        buf = self.write_buffer
        self.write_buffer = []
        self._buffered = 0
        compress, self._compress = self._compress, False
        self.transport.send(buf, compress)

    def _on_closing_poll(self) -> None:
        """A GET arrived for a session that is closing: the buffer first, the close packet after."""
        t = self.transport
        if self.write_buffer:
            self._send_buffer()
            return
        t.send([(CLOSE, "")])
        t.closed = True
        self._on_close(self._close_reason)

    def _on_transport_close(self, transport: Transport, reason: str, description: Any) -> None:
        if transport is self._probe_transport:
            self._end_probe()
            return
        if transport is self.transport:
            self._on_close(reason, description)

    def _on_close(self, reason: str, description: Any = None) -> None:
        if self.ready_state == "closed":
            return
        self.ready_state = "closed"
        self._direct.target = None
        self._clear_deadline()
        probe = self._probe_transport
        self._end_probe()
        if probe is not None:
            probe.socket = None
            probe.close()
        self.write_buffer = []
        t = self.transport
        t.socket = None
        t.close()
        self.server._remove(self)
        self.emit("close", reason, description)
        # "close" is the last event: the listeners (bound methods and closures holding this
        # session) go, so a closed session is freed without the cyclic GC
        self._listeners = None

    def __repr__(self) -> str:
        return f"<EngineSocket {self.id} {self.transport.name} {self.ready_state}>"
