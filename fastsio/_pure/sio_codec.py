"""Socket.IO v5 packet codec, pure-Python twin of ``fastsio._speedups.sio_codec``.

Wire format: socket.io-protocol v5, section "Packet encoding"::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

followed, for BINARY_EVENT / BINARY_ACK, by one binary frame per attachment.
Binary values in the payload are replaced by ``{"_placeholder":true,"num":i}``
(depth-first order) and sent as those frames.

Decoding is as strict as Node's socket.io-parser 4.2.x: every malformed packet
raises :class:`~fastsio.exceptions.ProtocolError` with a short message that is
identical in both implementations.
"""
from __future__ import annotations

import enum
import operator
import re
import sys
from typing import Any, Union

import orjson

from ..exceptions import ProtocolError

__all__ = [
    "PacketType",
    "CONNECT",
    "DISCONNECT",
    "EVENT",
    "ACK",
    "CONNECT_ERROR",
    "BINARY_EVENT",
    "BINARY_ACK",
    "RESERVED_EVENTS",
    "MAX_SAFE_INTEGER",
    "Packet",
    "encode",
    "encode_event",
    "Decoder",
]


class PacketType(enum.IntEnum):
    """Socket.IO packet types (the first character of a packet)."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


CONNECT = PacketType.CONNECT
DISCONNECT = PacketType.DISCONNECT
EVENT = PacketType.EVENT
ACK = PacketType.ACK
CONNECT_ERROR = PacketType.CONNECT_ERROR
BINARY_EVENT = PacketType.BINARY_EVENT
BINARY_ACK = PacketType.BINARY_ACK

#: Event names a peer may not send: they mean something to the library itself.
RESERVED_EVENTS: frozenset[str] = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

#: Largest ack id: JavaScript numbers above it lose precision (Node gives Infinity).
MAX_SAFE_INTEGER = 2**53 - 1

_BINARY_TYPES = (bytes, bytearray, memoryview)
_DIGITS = re.compile("[0-9]*")
_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
_JSONEncodeError = orjson.JSONEncodeError

Frame = Union[str, bytes]


class Packet:
    """One Socket.IO packet.

    Args:
        type: the packet type, 0..6 (see :class:`PacketType`).
        nsp: the namespace, as sent on the wire (may carry a ``?query``).
        data: the decoded JSON payload, ``None`` when absent.
        id: the ack id, ``None`` when absent.
    """

    __slots__ = ("type", "nsp", "data", "id")

    type: int
    nsp: str
    data: Any
    id: int | None

    def __init__(self, type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> None:
        if not isinstance(nsp, str):
            raise TypeError(f"Expected str, got {nsp.__class__.__name__}")
        t = operator.index(type)
        if not -(2**31) <= t < 2**31:  # the compiled twin keeps it in a C int
            raise OverflowError("value too large to convert to int")
        self.type = t
        self.nsp = nsp
        self.data = data
        self.id = id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return (
            self.type == other.type
            and self.nsp == other.nsp
            and self.id == other.id
            and self.data == other.data
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Packet(type={self.type!r}, nsp={self.nsp!r}, data={self.data!r}, id={self.id!r})"


# ---------------------------------------------------------------------------
# encoding


def _check_header(type: Any, nsp: Any, id: Any) -> int:
    if not isinstance(type, int) or isinstance(type, bool) or not 0 <= type <= 6:
        raise ValueError("invalid packet type")
    if not isinstance(nsp, str):
        raise TypeError("nsp must be a str")
    # A comma ends the namespace on the wire; one without a leading "/" is read
    # back as part of the payload.
    if not nsp.startswith("/") or "," in nsp:
        raise ValueError("invalid namespace")
    if id is not None:
        if not isinstance(id, int) or isinstance(id, bool):
            raise TypeError("id must be an int or None")
        if not 0 <= id <= MAX_SAFE_INTEGER:
            raise ValueError("invalid ack id")
    return int(type)


def _has_binary(obj: Any) -> bool:
    if isinstance(obj, _BINARY_TYPES):
        return True
    if isinstance(obj, (list, tuple)):
        stack: list[Any] = [obj]
    elif isinstance(obj, dict):
        stack = [obj.values()]
    else:
        return False
    # Explicit stack: arbitrarily deep data must not exhaust the C stack.
    while stack:
        for v in stack.pop():
            if isinstance(v, _BINARY_TYPES):
                return True
            if isinstance(v, (list, tuple)):
                stack.append(v)
            elif isinstance(v, dict):
                stack.append(v.values())
    return False


def _deconstruct(obj: Any, buffers: list[bytes]) -> Any:
    """Copies ``obj`` with every buffer replaced by a numbered placeholder."""
    if isinstance(obj, _BINARY_TYPES):
        buffers.append(bytes(obj))
        return {"_placeholder": True, "num": 0}
    root: Any
    if isinstance(obj, (list, tuple)):
        root = []
        stack: list[Any] = [(iter(obj), root, None)]
    elif isinstance(obj, dict):
        root = {}
        stack = [(iter(obj.items()), None, root)]
    else:
        return obj
    # Each frame is (iterator, output list or None, output dict or None). A
    # child container is appended to its parent before it is filled and the
    # walk descends at once, so placeholders are numbered in depth-first order.
    while stack:
        it, out_list, out_dict = stack[-1]
        descended = False
        for item in it:
            if out_list is not None:
                key = None
                v = item
            else:
                key, v = item
            if isinstance(v, _BINARY_TYPES):
                new: Any = {"_placeholder": True, "num": len(buffers)}
                buffers.append(bytes(v))
            elif isinstance(v, (list, tuple)):
                new = []
                frame = (iter(v), new, None)
                descended = True
            elif isinstance(v, dict):
                new = {}
                frame = (iter(v.items()), None, new)
                descended = True
            else:
                new = v
            if out_list is not None:
                out_list.append(new)
            else:
                out_dict[key] = new
            if descended:
                stack.append(frame)
                break
        if not descended:
            stack.pop()
    return root


def _text(type: int, attachments: int, nsp: str, id: int | None, data: Any, js: bytes | None = None) -> str:
    parts = [str(type)]
    if attachments:
        parts.append(f"{attachments}-")
    if nsp != "/":
        parts.append(nsp)
        parts.append(",")
    if id is not None:
        parts.append(str(id))
    if js is not None:
        parts.append(js.decode())
    elif data is not None:
        parts.append(_dumps(data).decode())
    return "".join(parts)


def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> list[Frame]:
    """Encodes one packet as wire frames.

    EVENT and ACK packets whose data holds ``bytes``, ``bytearray`` or
    ``memoryview`` values anywhere become BINARY_EVENT / BINARY_ACK: each buffer
    is replaced by a placeholder and sent as its own frame. Conversely a
    BINARY_* type with no buffer in its data is sent as plain EVENT / ACK.

    Args:
        type: packet type 0..6.
        nsp: namespace; starts with ``/`` and has no comma.
        data: JSON-serialisable payload (orjson), ``None`` for none.
        id: ack id, ``0 <= id <= MAX_SAFE_INTEGER``, or ``None``.

    Returns:
        The text frame, then the binary attachments as ``bytes``.

    Raises:
        ValueError: bad type, namespace or id.
        TypeError: a wrong argument type, or data orjson cannot serialise.

    Example:
        >>> encode(EVENT, "/admin", ["hello", 1], 12)
        ['2/admin,12["hello",1]']
    """
    t = _check_header(type, nsp, id)
    js = None
    if EVENT <= t <= ACK or t >= BINARY_EVENT:
        is_event = t == EVENT or t == BINARY_EVENT
        if data is not None:
            # orjson refuses every buffer, so data it serialises holds none:
            # the Python-level walk is left for the rare failure.
            try:
                js = _dumps(data)
            except _JSONEncodeError:
                pass
        if js is None and data is not None and _has_binary(data):
            buffers: list[bytes] = []
            data = _deconstruct(data, buffers)
            t = BINARY_EVENT if is_event else BINARY_ACK
            frames: list[Frame] = [_text(t, len(buffers), nsp, id, data)]
            frames.extend(buffers)
            return frames
        t = EVENT if is_event else ACK
    return [_text(t, 0, nsp, id, data, js)]


def encode_event(nsp: str, event: str, args: tuple[Any, ...] | list[Any], id: int | None = None) -> list[Frame]:
    """Encodes an event; the hot path of ``emit`` and broadcasts.

    Same output as ``encode(EVENT, nsp, [event, *args], id)``.

    Args:
        nsp: namespace; starts with ``/`` and has no comma.
        event: the event name.
        args: the event arguments.
        id: ack id or ``None``.

    Returns:
        The text frame, then the binary attachments as ``bytes``.

    Raises:
        ValueError: bad namespace or id.
        TypeError: a wrong argument type, or data orjson cannot serialise.

    Example:
        >>> encode_event("/", "hello", (1, "a"))
        ['2["hello",1,"a"]']
    """
    if not isinstance(event, str):
        raise TypeError("event must be a str")
    if not isinstance(args, (tuple, list)):
        raise TypeError("args must be a tuple or list")
    data = [event, *args]
    return encode(EVENT, nsp, data, id)


# ---------------------------------------------------------------------------
# decoding


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _too_deep(payload: str, max_depth: int) -> bool:
    """Nesting depth of the (already validated) JSON text > max_depth?

    Counted on the text, as the compiled twin does: the parsed value can be
    shallower than what was sent (a repeated key keeps only its last value).
    """
    depth = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", payload)):
        if bracket == "[" or bracket == "{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _payload_valid(t: int, data: Any) -> bool:
    if t == CONNECT:
        return type(data) is dict
    if t == CONNECT_ERROR:
        return type(data) is str or type(data) is dict
    if t == EVENT or t == BINARY_EVENT:
        if type(data) is not list or not data:
            return False
        first = data[0]
        tf = type(first)
        return tf is int or tf is float or (tf is str and first not in RESERVED_EVENTS)
    if t == ACK or t == BINARY_ACK:
        return type(data) is list
    return False  # DISCONNECT carries no payload


def _find_placeholders(data: Any, n: int) -> list[tuple[Any, Any, int]]:
    """Locates placeholders as (container, key, num); checks them against n."""
    locs: list[tuple[Any, Any, int]] = []
    seen: set[int] = set()
    stack: list[Any] = [data]
    while stack:
        c = stack.pop()
        for k, v in enumerate(c) if type(c) is list else c.items():
            tv = type(v)
            if tv is dict:
                if v.get("_placeholder") is True:
                    num = v.get("num")
                    if type(num) is not int or not 0 <= num < n:
                        raise ProtocolError("illegal attachments")
                    locs.append((c, k, num))
                    seen.add(num)
                else:
                    stack.append(v)
            elif tv is list:
                stack.append(v)
    if len(seen) != n:
        raise ProtocolError("unreferenced attachment")
    return locs


def _ssize(value: Any) -> int:
    v = operator.index(value)
    if not -sys.maxsize - 1 <= v <= sys.maxsize:  # the compiled twin keeps a Py_ssize_t
        raise OverflowError("Python int too large to convert to C ssize_t")
    return v


class Decoder:
    """Incremental Socket.IO packet decoder with binary reassembly.

    Args:
        max_attachments: most binary attachments one packet may announce.
        max_depth: deepest nesting of lists/objects accepted in a payload.

    Example:
        >>> d = Decoder()
        >>> d.feed('51-["up",{"_placeholder":true,"num":0}]') is None
        True
        >>> d.feed(b"\\x01")
        Packet(type=5, nsp='/', data=['up', b'\\x01'], id=None)
    """

    __slots__ = ("_max_attachments", "_max_depth", "_pending", "_expected", "_buffers", "_locs")

    def __init__(self, max_attachments: int = 10, max_depth: int = 100) -> None:
        self._max_attachments = _ssize(max_attachments)
        self._max_depth = _ssize(max_depth)
        self._pending: Packet | None = None
        self._expected = 0
        self._buffers: list[bytes] = []
        self._locs: list[tuple[Any, Any, int]] = []

    @property
    def pending(self) -> bool:
        """True while a binary packet waits for attachments."""
        return self._pending is not None

    def reset(self) -> None:
        """Drops a pending binary packet and its attachments."""
        self._pending = None
        self._expected = 0
        self._buffers = []
        self._locs = []

    def feed(self, data: str | bytes | bytearray | memoryview) -> Packet | None:
        """Feeds one frame: a text packet or one binary attachment.

        Args:
            data: a ``str`` packet, or a bytes-like attachment.

        Returns:
            The complete packet, or ``None`` while attachments are missing.

        Raises:
            ProtocolError: the frame is malformed or unexpected.
            TypeError: ``data`` is neither str nor bytes-like.
        """
        if isinstance(data, str):
            if self._pending is not None:
                self.reset()
                raise ProtocolError("got plaintext data when reconstructing a packet")
            return self._decode_str(data)
        if isinstance(data, _BINARY_TYPES):
            if self._pending is None:
                raise ProtocolError("got binary data when not reconstructing a packet")
            self._buffers.append(data if type(data) is bytes else bytes(data))
            if len(self._buffers) < self._expected:
                return None
            packet = self._pending
            buffers = self._buffers
            for container, key, num in self._locs:
                container[key] = buffers[num]
            self.reset()
            return packet
        raise TypeError("feed() takes str or a bytes-like object")

    def _decode_str(self, s: str) -> Packet | None:
        length = len(s)
        if length == 0:
            raise ProtocolError("empty packet")
        c = s[0]
        if not "0" <= c <= "6":
            raise ProtocolError("unknown packet type")
        t = ord(c) - 48
        i = 1
        n = 0
        if t == BINARY_EVENT or t == BINARY_ACK:
            j = _DIGITS.match(s, 1).end()  # type: ignore[union-attr]
            if j == 1 or j >= length or s[j] != "-":
                raise ProtocolError("illegal attachments")
            digits = s[1:j].lstrip("0")
            if not digits:
                raise ProtocolError("illegal attachments")
            # Bounded before int(): a huge digit run must not cost quadratic time.
            if len(digits) > 18 or int(digits) > self._max_attachments:
                raise ProtocolError("too many attachments")
            n = int(digits)
            i = j + 1
        nsp = "/"
        if i < length and s[i] == "/":
            j = s.find(",", i)
            if j < 0:
                nsp = s[i:]
                i = length
            else:
                nsp = s[i:j]
                i = j + 1
        id = None
        if i < length and "0" <= s[i] <= "9":
            j = _DIGITS.match(s, i).end()  # type: ignore[union-attr]
            digits = s[i:j].lstrip("0")
            if len(digits) > 16 or (digits and int(digits) > MAX_SAFE_INTEGER):
                raise ProtocolError("invalid ack id")
            id = int(digits) if digits else 0
            i = j
        data = None
        locs: list[tuple[Any, Any, int]] = []
        if i < length:
            payload = s[i:]
            try:
                data = _loads(payload)
            except _JSONDecodeError:
                raise ProtocolError("invalid JSON") from None
            max_depth = self._max_depth
            # Nesting depth never exceeds the number of opening brackets (nor
            # half the length), so ordinary packets skip the walk.
            if (
                len(payload) > 2 * max_depth
                and payload.count("[") + payload.count("{") > max_depth
                and _too_deep(payload, max_depth)
            ):
                raise ProtocolError("nesting too deep")
            if not _payload_valid(t, data):
                raise ProtocolError("invalid payload")
            if n:
                locs = _find_placeholders(data, n)
        packet = Packet(t, nsp, data, id)
        if n:
            if not locs:
                # Attachments announced but no payload to put them in.
                raise ProtocolError("unreferenced attachment")
            self._pending = packet
            self._expected = n
            self._buffers = []
            self._locs = locs
            return None
        return packet
