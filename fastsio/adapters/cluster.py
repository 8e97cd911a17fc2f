"""The ClusterAdapter protocol of Node's ``socket.io-adapter`` (2.5), over any message bus.

Node's ``ClusterAdapter`` (``packages/socket.io-adapter/lib/cluster-adapter.ts``)
is the protocol that ``@socket.io/redis-adapter``'s sharded adapter, the
``@socket.io/redis-streams-adapter`` and ``@socket.io/cluster-adapter`` speak.
This module is that protocol, once, for fastsio: the messages, the
request/response bookkeeping, applying what another server asks for, and
(``ClusterAdapterWithHeartbeat``) the heartbeats that tell how many servers
there are. It does no I/O: a *transport* subclass carries the messages.

Messages
--------
A message is a dict ``{"uid", "nsp", "type", "data"}`` (``data`` absent for
heartbeats): ``uid`` is the sending adapter's id (16 hex characters, one per
namespace per server), ``nsp`` the namespace name, ``type`` a
:class:`MessageType`:

==  ==========================  =============================================
 1  INITIAL_HEARTBEAT           a server starts (heartbeat flavour only)
 2  HEARTBEAT                   a server is alive
 3  BROADCAST                   ``{packet, opts}``; ``requestId`` when acks are wanted
 4  SOCKETS_JOIN                ``{opts, rooms}``
 5  SOCKETS_LEAVE               ``{opts, rooms}``
 6  DISCONNECT_SOCKETS          ``{opts, close}``
 7  FETCH_SOCKETS               ``{opts, requestId}``
 8  FETCH_SOCKETS_RESPONSE      ``{requestId, sockets}``
 9  SERVER_SIDE_EMIT            ``{packet: [event, *args]}`` (+ ``requestId`` for an ack)
10  SERVER_SIDE_EMIT_RESPONSE   ``{requestId, packet}``
11  BROADCAST_CLIENT_COUNT      ``{requestId, clientCount}``
12  BROADCAST_ACK               ``{requestId, packet}``
13  ADAPTER_CLOSE               a server leaves (heartbeat flavour only)
==  ==========================  =============================================

``packet`` of a broadcast is ``{"type": 2, "data": [event, *args]}`` (no
``nsp``, no ``id``, exactly as Node publishes it); ``opts`` is
``{"rooms": [...], "except": [...], "flags": {...}}`` with Node's flag names
(``volatile``, ``compress``, ``timeout`` in milliseconds,
``expectSingleResponse``). Types 8, 10, 11 and 12 are *responses*, sent to
one requester. Messages carry Python values (``bytes`` for binary); how they
become bytes on the bus is the transport's business.

Writing a transport
-------------------
Subclass :class:`ClusterAdapter` (or :class:`ClusterAdapterWithHeartbeat`
when the bus cannot count its subscribers) and provide:

- ``_do_publish(message) -> None | Awaitable[offset]``: send ``message`` to
  every other server. It must encode (or copy) ``message`` before it
  returns, keep the order of calls, and must not block. Return ``None``
  when the send was queued, or an awaitable that resolves to the message's
  offset on the bus (a Redis Streams id) when the transport has offsets
  (set ``_has_offsets = True``; then, with connection state recovery on, a
  broadcast waits for its offset and appends it to the packet, as Node).
- ``_do_publish_response(requester_uid, response) -> None | Awaitable``:
  send a response to the server whose adapter uid is ``requester_uid``
  (a transport may send it to everybody: responses for an unknown
  ``requestId`` are ignored).
- ``server_count()``: how many servers share the namespace, this one
  included (an ``int`` or an awaitable of one); the heartbeat flavour
  answers it from the live nodes.
- deliver what arrives by calling ``self._on_message(message, offset)``
  (``offset`` is the transport's id of the message, or None) for anything
  read from the bus, or ``self._on_response(response)`` for what arrived on
  a channel of responses only. Both take a decoded dict, check it, ignore
  this adapter's own messages and other namespaces, and never raise: a
  malformed message is logged and dropped. ``_on_raw_error(exc)`` logs a
  message the transport could not decode, with the same rate limit.
- ``init()``: subscribe, then (heartbeat flavour) ``await super().init()``;
  ``close()``: ``super().close()`` first (it sends ADAPTER_CLOSE and fails
  the requests in flight), then flush and tear the I/O down.
- when the bus is lost, ``_fail_requests(error)`` fails the requests in flight
  at once instead of letting them wait for their timeout.

Broadcasts stay on the fast path: a local broadcast is published once (one
encode for the bus) and delivered to this server's clients through
``InMemoryAdapter.broadcast`` (one Socket.IO encode, the same frames to every
target); a broadcast that arrives from the bus takes the same local path.
"""
from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import secrets
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional

from .._impl import sio_codec
from ..adapter import BroadcastOptions, InMemoryAdapter
from ..exceptions import AckTimeout, FastsioError, ProtocolError
from . import _wire

if TYPE_CHECKING:
    from ..namespace import Namespace
    from ..socket import Socket

__all__ = [
    "MessageType",
    "ClusterAdapter",
    "ClusterAdapterWithHeartbeat",
    "ClusterMessage",
    "random_id",
]

logger = logging.getLogger(__name__)

#: A message of the protocol, as a dict (see the module docstring).
ClusterMessage = dict[str, Any]

#: The uid of ``@socket.io/*-emitter`` publishers: never counted as a server.
EMITTER_UID = "emitter"

_EVENT = int(sio_codec.EVENT)
_BINARY_EVENT = int(sio_codec.BINARY_EVENT)
# Events a remote server may not trigger through server_side_emit: they mean
# something to the namespace itself.
_RESERVED = frozenset(sio_codec.RESERVED_EVENTS) | {"connection", "new_namespace"}
# A remote broadcast's ack timeout (wire milliseconds) is clamped to this many seconds.
_MAX_ACK_SECONDS = 3600.0


class MessageType(enum.IntEnum):
    """The ``type`` of a cluster message (Node's ``MessageType``)."""

    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


_T_BROADCAST = 3
_T_JOIN = 4
_T_LEAVE = 5
_T_DISCONNECT = 6
_T_FETCH = 7
_T_FETCH_RESPONSE = 8
_T_SSE = 9
_T_SSE_RESPONSE = 10
_T_CLIENT_COUNT = 11
_T_ACK = 12
_RESPONSE_TYPES = frozenset((_T_FETCH_RESPONSE, _T_SSE_RESPONSE, _T_CLIENT_COUNT, _T_ACK))


def random_id() -> str:
    """A new adapter uid or request id: 8 random bytes as 16 hex characters, as Node."""
    return secrets.token_hex(8)


# -- wire forms -------------------------------------------------------------
# The shared codec of the adapters (_wire) converts the Python objects.

_opts_to_wire = _wire.opts_to_wire
_opts_from_wire = _wire.opts_from_wire
_socket_to_wire = _wire.socket_to_wire
_socket_from_wire = _wire.socket_from_wire


def _check_request_id(data: Any) -> str:
    if not isinstance(data, dict):
        raise ProtocolError("message data is not a map")
    rid = data.get("requestId")
    if not isinstance(rid, str):
        raise ProtocolError("message has no requestId")
    return rid


def _check_event(packet: Any) -> list[Any]:
    if not isinstance(packet, list) or not packet or not isinstance(packet[0], str):
        raise ProtocolError("packet is not [event, ...args]")
    return packet


class _Request:
    """A request of this server waiting for the answers of the others."""

    __slots__ = ("type", "done", "timer", "current", "expected", "missing", "responses", "what")

    def __init__(
        self,
        type: int,
        done: Callable[[Optional[BaseException], list[Any]], None],
        expected: int,
        missing: Optional[set[str]],
        responses: list[Any],
        what: str,
    ) -> None:
        self.type = type
        self.done = done
        self.timer: Optional[asyncio.TimerHandle] = None
        self.current = 0
        self.expected = expected
        # The heartbeat flavour waits for these uids; the plain one counts.
        self.missing = missing
        self.responses = responses
        self.what = what

    @property
    def complete(self) -> bool:
        if self.missing is not None:
            return not self.missing
        return self.current >= self.expected

    def timeout_error(self) -> AckTimeout:
        if self.missing is not None:
            text = f"{self.what}: timeout reached: missing {len(self.missing)} responses"
        else:
            text = f"{self.what}: timeout reached: only {self.current} responses received out of {self.expected}"
        err = AckTimeout(text)
        err.responses = list(self.responses)  # type: ignore[attr-defined]
        return err


class ClusterAdapter(InMemoryAdapter):
    """An adapter whose cluster operations cross a message bus (Node's ``ClusterAdapter``).

    Abstract: a transport subclass carries the messages (see the module
    docstring). Every operation of the Server/Namespace API crosses the
    cluster: broadcasts (rooms, except, ``volatile``/``compress``; ``local``
    never publishes), broadcasts with acks (the client-count step),
    ``fetch_sockets``, ``sockets_join``/``sockets_leave``,
    ``disconnect_sockets`` and ``server_side_emit`` (with acks).

    Args:
        nsp: the namespace.
        requests_timeout: seconds ``fetch_sockets`` (unless ``timeout()`` was
            set on the operator) and ``server_side_emit`` with an ack wait for
            the other servers before failing with ``AckTimeout`` (a
            ``TimeoutError``); Node's ``DEFAULT_TIMEOUT``, 5.

    Attributes:
        uid: this adapter's id on the bus.
    """

    #: Whether ``_do_publish`` resolves to an offset (Redis Streams ids).
    _has_offsets = False

    def __init__(self, nsp: "Namespace", *, requests_timeout: float = 5.0) -> None:
        super().__init__(nsp)
        if not isinstance(requests_timeout, (int, float)) or requests_timeout <= 0:
            raise ValueError("requests_timeout must be a positive number of seconds")
        self.uid: str = random_id()
        self.requests_timeout = float(requests_timeout)
        self._requests: dict[str, _Request] = {}
        # requestId -> (client_count_callback, ack, timer) of our broadcasts with acks
        self._ack_requests: dict[str, tuple[Callable[[int], Any], Callable[..., Any], Any]] = {}
        self._pending: set["asyncio.Future[Any]"] = set()
        self._closed = False
        self._bad_messages = 0
        self._bad_logged_at = -1e9
        #: messages published and received on the bus, requests that timed out (read by fastsio.metrics)
        self.counters = {"published": 0, "received": 0, "request_timeouts": 0}

    # -- the transport's part ----------------------------------------------

    def _do_publish(self, message: ClusterMessage) -> Optional[Awaitable[Optional[str]]]:
        """Send ``message`` to the other servers (see the module docstring)."""
        raise NotImplementedError

    def _do_publish_response(self, requester_uid: str, response: ClusterMessage) -> Optional[Awaitable[Any]]:
        """Send ``response`` to the server of adapter ``requester_uid``."""
        raise NotImplementedError

    def server_count(self) -> Any:
        """How many servers share this namespace, this one included (an int or an awaitable of one)."""
        raise NotImplementedError

    # -- publishing -----------------------------------------------------------

    def _message(self, type: int, data: Optional[dict[str, Any]] = None) -> ClusterMessage:
        # uid first: a transport can drop its own messages by their first bytes.
        msg: ClusterMessage = {"uid": self.uid, "nsp": self.nsp.name, "type": type}
        if data is not None:
            msg["data"] = data
        return msg

    def _track(self, result: Any, what: str) -> Optional["asyncio.Future[Any]"]:
        if result is None or not inspect.isawaitable(result):
            return None
        fut = asyncio.ensure_future(result)
        self._pending.add(fut)

        def done(f: "asyncio.Future[Any]") -> None:
            self._pending.discard(f)
            if not f.cancelled() and f.exception() is not None:
                logger.error("[%s] %s failed: %s", self.uid, what, f.exception())

        fut.add_done_callback(done)
        return fut

    def _publish(self, message: ClusterMessage) -> Optional["asyncio.Future[Any]"]:
        """Hand ``message`` to the transport; a future of its offset when the transport gives one."""
        self.counters["published"] += 1
        try:
            result = self._do_publish(message)
        except Exception as exc:
            logger.error("[%s] could not publish a message of type %s: %s", self.uid, message.get("type"), exc)
            return None
        return self._track(result, "publishing a message")

    def _publish_response(self, requester_uid: str, response: ClusterMessage) -> None:
        self.counters["published"] += 1
        try:
            result = self._do_publish_response(requester_uid, response)
        except Exception as exc:
            logger.error("[%s] could not publish a response of type %s: %s", self.uid, response.get("type"), exc)
            return
        self._track(result, "publishing a response")

    # -- offsets (connection state recovery) --------------------------------

    def _wants_offsets(self) -> bool:
        return self._has_offsets and self.nsp.server._recovery is not None

    def _add_offset_if_necessary(self, packet: Any, opts: BroadcastOptions, offset: Optional[str]) -> None:
        if offset is None or self.nsp.server._recovery is None:
            return
        # Packets with an ack cannot be replayed on another server, volatile ones are not kept.
        if packet.type == _EVENT and packet.id is None and "volatile" not in opts.flags:
            packet.data = list(packet.data)
            packet.data.append(offset)

    # -- cluster operations -------------------------------------------------

    def broadcast(self, packet: Any, opts: BroadcastOptions) -> None:
        """Publish the broadcast once, then deliver it to this server's sockets."""
        if not opts.flags.get("local"):
            message = self._message(_T_BROADCAST, {
                "packet": {"type": _EVENT, "data": packet.data},
                "opts": _opts_to_wire(opts),
            })
            if self._wants_offsets():
                fut = self._publish(message)
                if fut is not None:
                    def deliver(f: "asyncio.Future[Any]") -> None:
                        offset = None
                        if not f.cancelled() and f.exception() is None:
                            offset = f.result()
                        self._add_offset_if_necessary(packet, opts, offset)
                        InMemoryAdapter.broadcast(self, packet, opts)

                    fut.add_done_callback(deliver)
                    return
            else:
                self._publish(message)
        InMemoryAdapter.broadcast(self, packet, opts)

    def broadcast_with_ack(
        self,
        packet: Any,
        opts: BroadcastOptions,
        client_count_callback: Callable[[int], Any],
        ack: Callable[..., Any],
    ) -> None:
        """Broadcast asking every client of every server for an ack.

        Each other server answers with its client count, then with one
        message per client ack; ``client_count_callback`` and ``ack`` are
        called for those as for the local clients.
        """
        if not opts.flags.get("local"):
            request_id = random_id()
            timeout = opts.flags.get("timeout")
            timer = None
            if isinstance(timeout, (int, float)):
                # Nothing tells whether every client answered: the entry just expires.
                timer = asyncio.get_running_loop().call_later(
                    max(0.0, float(timeout)), self._ack_requests.pop, request_id, None)
            self._ack_requests[request_id] = (client_count_callback, ack, timer)
            self._publish(self._message(_T_BROADCAST, {
                "packet": {"type": _EVENT, "data": packet.data},
                "requestId": request_id,
                "opts": _opts_to_wire(opts),
            }))
        InMemoryAdapter.broadcast_with_ack(self, packet, opts, client_count_callback, ack)

    def add_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        """Make the sockets ``opts`` selects, on every server, join ``rooms``."""
        if not opts.flags.get("local"):
            self._publish(self._message(_T_JOIN, {"opts": _opts_to_wire(opts), "rooms": list(rooms)}))
        InMemoryAdapter.add_sockets(self, opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: list[str]) -> None:
        """Make the sockets ``opts`` selects, on every server, leave ``rooms``."""
        if not opts.flags.get("local"):
            self._publish(self._message(_T_LEAVE, {"opts": _opts_to_wire(opts), "rooms": list(rooms)}))
        InMemoryAdapter.del_sockets(self, opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        """Disconnect the sockets ``opts`` selects, on every server."""
        if not opts.flags.get("local"):
            self._publish(self._message(_T_DISCONNECT, {"opts": _opts_to_wire(opts), "close": bool(close)}))
        InMemoryAdapter.disconnect_sockets(self, opts, close)

    def _expected_from(self, server_count: int) -> tuple[int, Optional[set[str]]]:
        """How many answers to wait for (and from whom, in the heartbeat flavour)."""
        return server_count - 1, None

    def _start_request(
        self,
        type: int,
        data: dict[str, Any],
        done: Callable[[Optional[BaseException], list[Any]], None],
        expected: int,
        missing: Optional[set[str]],
        responses: list[Any],
        timeout: float,
        what: str,
    ) -> None:
        if self._closed:
            done(FastsioError(f"{what}: the adapter is closed"), responses)
            return
        request_id = random_id()
        request = _Request(type, done, expected, missing, responses, what)
        request.timer = asyncio.get_running_loop().call_later(timeout, self._on_request_timeout, request_id)
        self._requests[request_id] = request
        data["requestId"] = request_id
        self._publish(self._message(type, data))

    def _on_request_timeout(self, request_id: str) -> None:
        request = self._requests.pop(request_id, None)
        if request is None:
            return
        logger.debug("[%s] request %s timed out", self.uid, request_id)
        self.counters["request_timeouts"] += 1
        request.done(request.timeout_error(), request.responses)

    def _finish(self, request_id: str, request: _Request) -> None:
        self._requests.pop(request_id, None)
        if request.timer is not None:
            request.timer.cancel()
        request.done(None, request.responses)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        """The sockets ``opts`` selects on every server.

        Local sockets are ``Socket`` objects, the others dicts (``id``,
        ``handshake``, ``rooms``, ``data``) that the operator turns into
        ``RemoteSocket``.

        Raises:
            AckTimeout: some server did not answer within ``timeout()`` (or
                ``requests_timeout``); ``responses`` holds what came.
        """
        local: list[Any] = list(InMemoryAdapter.fetch_sockets(self, opts))
        if opts.flags.get("local"):
            return local
        count = self.server_count()
        if inspect.isawaitable(count):
            count = await count
        expected, missing = self._expected_from(int(count))
        if expected <= 0:
            return local
        fut: "asyncio.Future[list[Any]]" = asyncio.get_running_loop().create_future()

        def done(err: Optional[BaseException], responses: list[Any]) -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(responses)

        timeout = opts.flags.get("timeout")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            timeout = self.requests_timeout
        self._start_request(_T_FETCH, {"opts": _opts_to_wire(opts)}, done, expected, missing, local,
                            float(timeout), "fetch_sockets")
        return await fut

    def server_side_emit(self, packet: list[Any]) -> Any:
        """Emit ``[event, *args]`` to the other servers' ``io.on(event)`` listeners.

        A trailing callable is an ack callback: it gets ``(None, answers)``
        once every other server answered (the first argument of each one's
        callback), or ``(AckTimeout, answers so far)`` after
        ``requests_timeout``. Returns an awaitable when it has to ask the bus
        how many servers there are.
        """
        if not (packet and callable(packet[-1])):
            self._publish(self._message(_T_SSE, {"packet": list(packet)}))
            return None
        ack: Callable[..., Any] = packet[-1]
        args = list(packet[:-1])
        count = self.server_count()
        if inspect.isawaitable(count):
            async def later() -> None:
                self._server_side_emit_with_ack(args, ack, int(await count))
            return later()
        self._server_side_emit_with_ack(args, ack, int(count))
        return None

    def _server_side_emit_with_ack(self, args: list[Any], ack: Callable[..., Any], server_count: int) -> None:
        expected, missing = self._expected_from(server_count)

        def done(err: Optional[BaseException], responses: list[Any]) -> None:
            try:
                result = ack(err, responses)
                if inspect.isawaitable(result):
                    self._track(result, "a server_side_emit callback")
            except Exception:
                logger.exception("server_side_emit callback failed")

        if expected <= 0:
            done(None, [])
            return
        self._start_request(_T_SSE, {"packet": args}, done, expected, missing, [], self.requests_timeout,
                            "server_side_emit")

    async def all_rooms(self) -> set[str]:
        """The rooms of this server (Node's ClusterAdapter has no cluster-wide ALL_ROOMS request)."""
        return set(self.rooms)

    # -- what arrives from the bus ------------------------------------------

    def _on_raw_error(self, exc: BaseException, what: str = "message") -> None:
        """Log (rate-limited) a message that could not be decoded or applied, and drop it."""
        self._bad_messages += 1
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:
            now = self._bad_logged_at + 60
        if now - self._bad_logged_at >= 10:
            self._bad_logged_at = now
            logger.warning("[%s] dropped a malformed %s on the bus of %s (%d so far): %s",
                           self.uid, what, self.nsp.name, self._bad_messages, exc)

    def _on_message(self, message: Any, offset: Optional[str] = None) -> None:
        """Apply ``message`` from the bus (a decoded dict); never raises."""
        self.counters["received"] += 1
        try:
            if not isinstance(message, dict):
                raise ProtocolError("message is not a map")
            uid = message.get("uid")
            if uid == self.uid:
                return
            if message.get("nsp") != self.nsp.name:
                return
            type = message.get("type")
            if not isinstance(type, int) or isinstance(type, bool):
                raise ProtocolError("message type is not an integer")
            self._dispatch(message, type, uid, offset)
        except ProtocolError as exc:
            self._on_raw_error(exc)
        except Exception as exc:
            logger.exception("[%s] error while applying a message from the bus", self.uid)
            self._bad_messages += 1
            del exc

    def _dispatch(self, message: ClusterMessage, type: int, uid: Any, offset: Optional[str]) -> None:
        if not isinstance(uid, str):
            raise ProtocolError("message has no uid")
        if type in _RESPONSE_TYPES:
            self._handle_response(message, type)
            return
        data = message.get("data")
        if not isinstance(data, dict):
            if type in (MessageType.INITIAL_HEARTBEAT, MessageType.HEARTBEAT, MessageType.ADAPTER_CLOSE):
                return  # only the heartbeat flavour acts on these
            raise ProtocolError("message data is not a map")
        if type == _T_BROADCAST:
            self._on_broadcast(uid, data, offset)
        elif type == _T_JOIN or type == _T_LEAVE:
            rooms = data.get("rooms")
            if not isinstance(rooms, list):
                raise ProtocolError("rooms is not a list")
            names = [r if isinstance(r, str) else str(r) for r in rooms if isinstance(r, (str, int))]
            opts = _opts_from_wire(data.get("opts"))
            if type == _T_JOIN:
                InMemoryAdapter.add_sockets(self, opts, names)
            else:
                InMemoryAdapter.del_sockets(self, opts, names)
        elif type == _T_DISCONNECT:
            InMemoryAdapter.disconnect_sockets(self, _opts_from_wire(data.get("opts")), bool(data.get("close")))
        elif type == _T_FETCH:
            request_id = _check_request_id(data)
            opts = _opts_from_wire(data.get("opts"))
            sockets = InMemoryAdapter.fetch_sockets(self, opts)
            self._publish_response(uid, {
                "uid": self.uid, "nsp": self.nsp.name, "type": _T_FETCH_RESPONSE,
                "data": {"requestId": request_id, "sockets": [_socket_to_wire(s) for s in sockets]},
            })
        elif type == _T_SSE:
            self._on_server_side_emit(uid, data)
        elif type > _T_ACK + 1 or type < 1:
            logger.debug("[%s] unknown message type %s", self.uid, type)

    def _on_broadcast(self, uid: str, data: dict[str, Any], offset: Optional[str]) -> None:
        wire_packet = data.get("packet")
        if not isinstance(wire_packet, dict):
            raise ProtocolError("broadcast packet is not a map")
        args = wire_packet.get("data")
        ptype = wire_packet.get("type", _EVENT)
        if ptype != _EVENT and ptype != _BINARY_EVENT:
            raise ProtocolError("broadcast packet is not an event")
        _check_event(args)
        opts = _opts_from_wire(data.get("opts"))
        packet = sio_codec.Packet(_EVENT, self.nsp.name, args, None)
        request_id = data.get("requestId")
        if request_id is None:
            self._add_offset_if_necessary(packet, opts, offset)
            InMemoryAdapter.broadcast(self, packet, opts)
            return
        if not isinstance(request_id, str):
            raise ProtocolError("requestId is not a string")
        nsp = self.nsp.name
        me = self.uid

        def on_count(count: int) -> None:
            self._publish_response(uid, {
                "uid": me, "nsp": nsp, "type": _T_CLIENT_COUNT,
                "data": {"requestId": request_id, "clientCount": count},
            })

        def on_ack(*answer: Any) -> None:
            self._publish_response(uid, {
                "uid": me, "nsp": nsp, "type": _T_ACK,
                "data": {"requestId": request_id, "packet": answer[0] if answer else None},
            })

        InMemoryAdapter.broadcast_with_ack(self, packet, opts, on_count, on_ack)
        # The requester stops listening after its timeout; forget the clients' acks then
        # too, or a client that never answers keeps an entry until it disconnects.
        ack_id = packet.id
        timeout = opts.flags.get("timeout")
        seconds = float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else self.requests_timeout
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(min(seconds, _MAX_ACK_SECONDS) + 1.0, self._forget_acks, ack_id)

    def _forget_acks(self, ack_id: Optional[int]) -> None:
        if ack_id is None:
            return
        for sock in self.nsp.sockets.values():
            acks = sock._acks
            if acks and ack_id in acks:
                del acks[ack_id]

    def _on_server_side_emit(self, uid: str, data: dict[str, Any]) -> None:
        packet = _check_event(data.get("packet"))
        if packet[0] in _RESERVED:
            raise ProtocolError(f"server_side_emit of the reserved event {packet[0]!r}")
        request_id = data.get("requestId")
        if request_id is None:
            self.nsp._on_server_side_emit(list(packet))
            return
        if not isinstance(request_id, str):
            raise ProtocolError("requestId is not a string")
        called = False
        me = self.uid
        nsp = self.nsp.name

        def callback(*answer: Any) -> None:
            nonlocal called
            # Only the first call, and only its first argument, travel (as Node).
            if called:
                return
            called = True
            self._publish_response(uid, {
                "uid": me, "nsp": nsp, "type": _T_SSE_RESPONSE,
                "data": {"requestId": request_id, "packet": answer[0] if answer else None},
            })

        self.nsp._on_server_side_emit([*packet, callback])

    def _on_response(self, response: Any) -> None:
        """Apply ``response`` (a decoded dict) from a channel of responses; never raises."""
        self.counters["received"] += 1
        try:
            if not isinstance(response, dict):
                raise ProtocolError("response is not a map")
            if response.get("uid") == self.uid:
                return
            type = response.get("type")
            if type not in _RESPONSE_TYPES or isinstance(type, bool):
                raise ProtocolError(f"not a response type: {type!r}")
            self._handle_response(response, type)
        except ProtocolError as exc:
            self._on_raw_error(exc, "response")
        except Exception:
            logger.exception("[%s] error while applying a response from the bus", self.uid)

    def _handle_response(self, response: ClusterMessage, type: int) -> None:
        data = response.get("data")
        request_id = _check_request_id(data)
        assert isinstance(data, dict)
        if type == _T_CLIENT_COUNT or type == _T_ACK:
            entry = self._ack_requests.get(request_id)
            if entry is None:
                return
            if type == _T_CLIENT_COUNT:
                count = data.get("clientCount")
                if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                    raise ProtocolError("clientCount is not a count")
                entry[0](count)
            else:
                entry[1](data.get("packet"))
            return
        request = self._requests.get(request_id)
        if request is None:
            return
        if type == _T_FETCH_RESPONSE:
            if request.type != _T_FETCH:
                return
            sockets = data.get("sockets")
            if not isinstance(sockets, list):
                raise ProtocolError("sockets is not a list")
            found = []
            for item in sockets:
                try:
                    found.append(_socket_from_wire(item))
                except ProtocolError as exc:
                    self._on_raw_error(exc, "socket entry")
            request.responses.extend(found)
        else:
            if request.type != _T_SSE:
                return
            request.responses.append(data.get("packet"))
        self._count_response(request_id, request, response.get("uid"))

    def _count_response(self, request_id: str, request: _Request, uid: Any) -> None:
        request.current += 1
        if request.missing is not None:
            request.missing.discard(uid)
        if request.complete:
            self._finish(request_id, request)

    # -- life cycle ------------------------------------------------------------

    def _fail_requests(self, error: BaseException) -> None:
        """Fail every request in flight with ``error`` (the bus is gone, the adapter closes)."""
        requests, self._requests = self._requests, {}
        for request in requests.values():
            if request.timer is not None:
                request.timer.cancel()
            try:
                request.done(error, request.responses)
            except Exception:
                logger.exception("error while failing a cluster request")

    def close(self) -> Any:
        """Fail the requests in flight and stop the timers (the transport then closes its I/O)."""
        self._closed = True
        self._fail_requests(FastsioError("the adapter was closed"))
        for _, _, timer in self._ack_requests.values():
            if timer is not None:
                timer.cancel()
        self._ack_requests.clear()
        return None


class ClusterAdapterWithHeartbeat(ClusterAdapter):
    """A ``ClusterAdapter`` that counts the servers by their heartbeats (Node's ``ClusterAdapterWithHeartbeat``).

    Each server publishes INITIAL_HEARTBEAT when it starts, HEARTBEAT when
    it published nothing for ``heartbeat_interval`` seconds, and
    ADAPTER_CLOSE when it closes; a server not heard from for
    ``heartbeat_timeout`` seconds is taken out. ``server_count()`` is 1 plus
    the live nodes, and ``fetch_sockets``/``server_side_emit`` wait for the
    answers of exactly those nodes (a node that goes away while they wait
    no longer counts).

    Args:
        nsp: the namespace.
        heartbeat_interval: seconds (Node: 5).
        heartbeat_timeout: seconds (Node: 10).
        requests_timeout: as for ``ClusterAdapter``.
    """

    def __init__(
        self,
        nsp: "Namespace",
        *,
        heartbeat_interval: float = 5.0,
        heartbeat_timeout: float = 10.0,
        requests_timeout: float = 5.0,
    ) -> None:
        super().__init__(nsp, requests_timeout=requests_timeout)
        for name, value in (("heartbeat_interval", heartbeat_interval), ("heartbeat_timeout", heartbeat_timeout)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        self.heartbeat_interval = float(heartbeat_interval)
        self.heartbeat_timeout = float(heartbeat_timeout)
        # uid -> loop time of its last message
        self.nodes: dict[str, float] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._last_publish = 0.0
        self._heartbeat_timer: Optional[asyncio.TimerHandle] = None
        self._cleanup_timer: Optional[asyncio.TimerHandle] = None

    def init(self) -> Any:
        """Start the timers on the running loop and announce this server (INITIAL_HEARTBEAT).

        Returns a coroutine: the namespace runs it on the loop that serves.
        A transport's ``init`` subscribes first, then awaits this.
        """
        return self._start()

    async def _start(self) -> None:
        if self._closed or self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._schedule_cleanup()
        self._publish(self._message(MessageType.INITIAL_HEARTBEAT))

    def _schedule_cleanup(self) -> None:
        assert self._loop is not None
        self._cleanup_timer = self._loop.call_later(min(1.0, self.heartbeat_timeout / 2), self._cleanup)

    def _cleanup(self) -> None:
        if self._closed or self._loop is None:
            return
        threshold = self._loop.time() - self.heartbeat_timeout
        for uid in [u for u, seen in self.nodes.items() if seen < threshold]:
            logger.debug("[%s] node %s seems down", self.uid, uid)
            self._remove_node(uid)
        self._schedule_cleanup()

    def _publish(self, message: ClusterMessage) -> Optional["asyncio.Future[Any]"]:
        loop = self._loop
        if loop is not None and not self._closed:
            self._last_publish = loop.time()
            if self._heartbeat_timer is None:
                self._heartbeat_timer = loop.call_later(self.heartbeat_interval, self._heartbeat)
        return super()._publish(message)

    def _heartbeat(self) -> None:
        self._heartbeat_timer = None
        if self._closed or self._loop is None:
            return
        # One timer, not one per publish: it fires heartbeat_interval after the last message.
        due = self._last_publish + self.heartbeat_interval
        now = self._loop.time()
        if now + 0.001 < due:
            self._heartbeat_timer = self._loop.call_later(due - now, self._heartbeat)
            return
        self._publish(self._message(MessageType.HEARTBEAT))

    def server_count(self) -> int:
        """1 plus the servers heard from within ``heartbeat_timeout``."""
        return 1 + len(self.nodes)

    def _expected_from(self, server_count: int) -> tuple[int, Optional[set[str]]]:
        return len(self.nodes), set(self.nodes)

    def _dispatch(self, message: ClusterMessage, type: int, uid: Any, offset: Optional[str]) -> None:
        if not isinstance(uid, str):
            raise ProtocolError("message has no uid")
        if uid != EMITTER_UID and self._loop is not None:
            self.nodes[uid] = self._loop.time()
        if type == MessageType.INITIAL_HEARTBEAT:
            self._publish(self._message(MessageType.HEARTBEAT))
        elif type == MessageType.HEARTBEAT:
            pass
        elif type == MessageType.ADAPTER_CLOSE:
            self._remove_node(uid)
        else:
            super()._dispatch(message, type, uid, offset)

    def _remove_node(self, uid: str) -> None:
        self.nodes.pop(uid, None)
        for request_id, request in list(self._requests.items()):
            if request.missing is not None and uid in request.missing:
                request.missing.discard(uid)
                if request.complete:
                    self._finish(request_id, request)

    def close(self) -> Any:
        """Announce ADAPTER_CLOSE, stop the timers and fail the requests in flight."""
        if not self._closed and self._loop is not None:
            super()._publish(self._message(MessageType.ADAPTER_CLOSE))
        for timer in (self._heartbeat_timer, self._cleanup_timer):
            if timer is not None:
                timer.cancel()
        self._heartbeat_timer = self._cleanup_timer = None
        return super().close()
