"""Wire encodings shared by the cluster adapters (sans-I/O).

What Node's adapters put on a bus, and how fastsio reads it back:

- MessagePack as ``notepack.io`` 3.0.1 writes it (the codec of
  ``@socket.io/redis-adapter`` and ``socket.io-adapter``'s ClusterAdapter):
  ``bytes``/``bytearray``/``memoryview`` as msgpack *bin*, integers in their
  smallest form, floats as float64, ``None`` as nil, lists/tuples as arrays,
  dicts as maps. Decoding also accepts notepack's legacy forms: ext type 0
  -> ``bytes`` (old ArrayBuffer encoding), fixext1 type 0 (``d4 00 00``) ->
  ``None`` (old ``undefined``), ext -1 (timestamp) -> the ISO-8601 string a
  Node client sees for a ``Date`` (``"1970-01-01T00:00:00.000Z"``); other ext
  types -> ``[type, bytes]`` as notepack gives them.
- JSON as Node's ``JSON.stringify`` writes it for requests and responses:
  binary becomes ``{"type": "Buffer", "data": [..bytes..]}`` (so it does not
  survive, exactly as between Node servers).
- A local socket as a ``fetchSockets`` answer entry (``id``, ``handshake`` in
  Node's shape, ``rooms`` list, ``data``), and back into the dict that
  ``fastsio.broadcast.RemoteSocket`` takes.
- ``BroadcastOptions`` as ``{rooms, except, flags}`` (flags in Node's
  camelCase; ``timeout`` in milliseconds on the wire, seconds in Python).

Everything read from the bus is hostile: the ``decode_*``/``*_from_wire``
functions raise ``fastsio.exceptions.ProtocolError`` on anything malformed
and never anything else.

Python values with no msgpack form of their own (``datetime``, ``UUID``,
dataclasses, enums...) are first rendered the way the JSON encoder of
fastsio's packets renders them (orjson), so a remote server's clients get the
same text the local clients get. A float with an integral value (``2.0``) is
written as float64 where notepack, which cannot tell ``2.0`` from ``2``,
writes an integer: both decode to the same number in Node and in a client.
"""
from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional

import msgpack
import orjson

from ..adapter import BroadcastOptions
from ..exceptions import ProtocolError

if TYPE_CHECKING:
    from ..socket import Socket

__all__ = [
    "encode",
    "decode",
    "encode_json",
    "decode_json",
    "decode_any",
    "uid",
    "socket_to_wire",
    "socket_from_wire",
    "handshake_to_wire",
    "node_date_string",
    "iso_from_ms",
    "opts_to_wire",
    "opts_from_wire",
    "check_mapping",
]

# -- identities --------------------------------------------------------------

_UID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def uid(length: int = 6) -> str:
    """A random id in the shape of Node's ``uid2`` (URL-safe alphabet, one byte mod 64 per character).

    Node's redis adapter uses ``uid2(6)`` for server uids and request ids.
    """
    return "".join(_UID_ALPHABET[b & 63] for b in secrets.token_bytes(length))


# -- MessagePack -------------------------------------------------------------


def _fallback(obj: Any) -> Any:
    # Called by the packer for types msgpack has no form for. Binary-like
    # objects that are not bytes/bytearray/memoryview (array.array...) go as
    # bin, like Node's typed arrays; the rest takes its JSON rendering.
    if isinstance(obj, (set, frozenset)):
        raise TypeError(f"cannot encode a {type(obj).__name__} (use a list)")
    try:
        view = memoryview(obj)
    except TypeError:
        pass
    else:
        return view.tobytes()
    try:
        return orjson.loads(orjson.dumps(obj))
    except (TypeError, orjson.JSONEncodeError) as err:
        raise TypeError(f"cannot encode a {type(obj).__name__} for the cluster bus: {err}") from None


_packer = msgpack.Packer(use_bin_type=True, default=_fallback, datetime=False, autoreset=True)


def encode(obj: Any) -> bytes:
    """MessagePack bytes of ``obj``, as notepack.io 3.0.1 writes the same value.

    Raises:
        TypeError: ``obj`` holds something with no msgpack or JSON form, or
            an integer outside -2**63 .. 2**64-1.
    """
    try:
        data: bytes = _packer.pack(obj)
    except OverflowError as err:
        raise TypeError(f"cannot encode an integer that large for the cluster bus: {err}") from None
    return data


def _ext_hook(code: int, data: bytes) -> Any:
    if code == 0:
        # notepack's legacy forms: fixext1 type 0 is `undefined`, ext 0 an ArrayBuffer.
        if data == b"\x00":
            return None
        return data
    return [code, data]


_TS_MARKERS = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")
_MAX_MS = 8_640_000_000_000_000  # the range of a JavaScript Date


def _days_to_civil(days: int) -> tuple[int, int, int]:
    # Proleptic Gregorian date of a day count from 1970-01-01 (any sign).
    z = days + 719468
    era = z // 146097  # floor division: no adjustment for negative days
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def iso_from_ms(ms: int) -> Optional[str]:
    """``Date.prototype.toISOString`` of ``ms`` since the epoch; None outside a JS Date's range.

    Years 0-9999 have four digits, others six with a sign, as in JavaScript.
    """
    if not -_MAX_MS <= ms <= _MAX_MS:
        return None
    days, rest = divmod(ms, 86_400_000)
    y, m, d = _days_to_civil(days)
    hh, rest = divmod(rest, 3_600_000)
    mm, rest = divmod(rest, 60_000)
    ss, milli = divmod(rest, 1000)
    year = f"{y:04d}" if 0 <= y <= 9999 else f"{'+' if y > 0 else '-'}{abs(y):06d}"
    return f"{year}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{milli:03d}Z"


def _timestamp_text(ts: msgpack.Timestamp) -> Optional[str]:
    # new Date(s * 1e3 + ns / 1e6): JavaScript truncates the fraction toward zero.
    return iso_from_ms(int(ts.seconds * 1000 + ts.nanoseconds / 1e6))


def _replace_timestamps(value: Any) -> Any:
    if isinstance(value, msgpack.Timestamp):
        return _timestamp_text(value)
    if not isinstance(value, (list, dict)):
        return value
    # Iterative: msgpack nests deeper than Python's recursion limit allows.
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            for i, v in enumerate(item):
                if isinstance(v, msgpack.Timestamp):
                    item[i] = _timestamp_text(v)
                elif isinstance(v, (list, dict)):
                    stack.append(v)
        else:
            for k, v in item.items():
                if isinstance(v, msgpack.Timestamp):
                    item[k] = _timestamp_text(v)
                elif isinstance(v, (list, dict)):
                    stack.append(v)
    return value


def decode(data: bytes) -> Any:
    """The value in MessagePack bytes ``data`` (notepack.io's forms, see the module docstring).

    Raises:
        ProtocolError: ``data`` is not exactly one well-formed msgpack value
            (truncated, trailing bytes, bad UTF-8, unhashable map key, too deep).
    """
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True)
    except Exception as err:
        raise ProtocolError(f"malformed msgpack ({type(err).__name__}: {err})") from None
    if any(marker in data for marker in _TS_MARKERS):
        value = _replace_timestamps(value)
    return value


# -- JSON ----------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    # JSON.stringify(Buffer) in Node.
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"type": "Buffer", "data": list(bytes(obj))}
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot encode a {type(obj).__name__} as JSON")


def encode_json(obj: Any) -> bytes:
    """JSON bytes of ``obj`` as Node's ``JSON.stringify`` writes them for the bus.

    Raises:
        TypeError: ``obj`` holds something JSON cannot represent.
    """
    try:
        data: bytes = orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as err:
        raise TypeError(str(err)) from None
    return data


def decode_json(data: bytes) -> Any:
    """The value in JSON bytes ``data``.

    Raises:
        ProtocolError: not valid JSON (or not UTF-8).
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise ProtocolError(f"malformed JSON ({err})") from None


def decode_any(data: bytes) -> Any:
    """Node's rule for requests and responses: JSON if the first byte is ``{``, msgpack otherwise.

    Raises:
        ProtocolError: empty or malformed.
    """
    if not data:
        raise ProtocolError("empty message")
    if data[0] == 0x7B:
        return decode_json(data)
    return decode(data)


# -- sockets -------------------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def node_date_string(ms: int) -> str:
    """``new Date(ms).toString()`` of a Node process running in UTC.

    Example: ``"Wed Nov 25 2026 21:24:37 GMT+0000 (Coordinated Universal Time)"``,
    the ``time`` field of a handshake.
    """
    t = time.gmtime(ms // 1000)
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT+0000 (Coordinated Universal Time)"
    )


def handshake_to_wire(handshake: Any) -> dict[str, Any]:
    """A ``fastsio.socket.Handshake`` in the shape Node sends in a fetchSockets answer."""
    return {
        "headers": handshake.headers,
        "time": node_date_string(int(handshake.issued)),
        "address": handshake.address,
        "xdomain": handshake.xdomain,
        "secure": handshake.secure,
        "issued": handshake.issued,
        "url": handshake.url,
        "query": handshake.query,
        "auth": handshake.auth,
    }


def socket_to_wire(socket: "Socket") -> dict[str, Any]:
    """One entry of a fetchSockets answer: ``{id, handshake, rooms, data}`` as Node sends it."""
    return {
        "id": socket.id,
        "handshake": handshake_to_wire(socket.handshake),
        "rooms": list(socket.rooms),
        "data": socket.data,
    }


def _str_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not an object")
    return value


def socket_from_wire(entry: Any) -> dict[str, Any]:
    """Checks one fetchSockets answer entry and returns the dict ``RemoteSocket`` takes.

    Raises:
        ProtocolError: not an object with a string ``id``, or fields of the wrong type.
    """
    if not isinstance(entry, dict):
        raise ProtocolError("a fetched socket is not an object")
    sid = entry.get("id")
    if not isinstance(sid, str):
        raise ProtocolError("a fetched socket has no string id")
    hs = _str_dict(entry.get("handshake"), "handshake")
    issued = hs.get("issued", 0)
    if isinstance(issued, bool) or not isinstance(issued, (int, float)):
        issued = 0
    handshake = {
        "headers": _str_dict(hs.get("headers"), "handshake.headers"),
        "address": hs.get("address") if isinstance(hs.get("address"), str) else "",
        "xdomain": bool(hs.get("xdomain")),
        "secure": bool(hs.get("secure")),
        "issued": int(issued) if -_MAX_MS <= issued <= _MAX_MS else 0,
        "url": hs.get("url") if isinstance(hs.get("url"), str) else "",
        "query": _str_dict(hs.get("query"), "handshake.query"),
        "auth": _str_dict(hs.get("auth"), "handshake.auth"),
    }
    rooms = entry.get("rooms", [])
    if not isinstance(rooms, list):
        raise ProtocolError("a fetched socket's rooms is not an array")
    data = entry.get("data")
    return {
        "id": sid,
        "handshake": handshake,
        "rooms": [_room(r) for r in rooms],
        "data": data if data is not None else {},
    }


# -- broadcast options ---------------------------------------------------------

# Python flag name -> Node's. Flags not listed here stay local.
_FLAGS_OUT = {
    "volatile": "volatile",
    "compress": "compress",
    "local": "local",
    "timeout": "timeout",
    "expect_single_response": "expectSingleResponse",
    "broadcast": "broadcast",
    "binary": "binary",
}
_FLAGS_IN = {v: k for k, v in _FLAGS_OUT.items()}


def _seconds_to_ms(seconds: Any) -> Any:
    ms = seconds * 1000
    if isinstance(ms, float) and ms.is_integer():
        return int(ms)
    return ms


def _room(value: Any) -> str:
    # Node rooms may be numbers; Python rooms are strings, rendered as JS does.
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"a room is a {type(value).__name__}, not a string or number")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _rooms(value: Any, what: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ProtocolError(f"{what} is not an array")
    return frozenset(_room(r) for r in value)


def opts_to_wire(opts: BroadcastOptions, flags: bool = True) -> dict[str, Any]:
    """``{rooms, except, flags}`` as Node publishes them (``flags`` left out when ``flags=False``).

    ``timeout`` goes out in milliseconds; Python flags Node does not know stay local.
    """
    out: dict[str, Any] = {"rooms": list(opts.rooms), "except": list(opts.except_)}
    if flags:
        wire: dict[str, Any] = {}
        for name, value in opts.flags.items():
            node = _FLAGS_OUT.get(name)
            if node is None:
                continue
            wire[node] = _seconds_to_ms(value) if name == "timeout" and value is not None else value
        out["flags"] = wire
    return out


def opts_from_wire(obj: Any) -> BroadcastOptions:
    """``BroadcastOptions`` from Node's ``{rooms, except, flags}`` (``timeout`` ms -> seconds).

    Raises:
        ProtocolError: not an object, rooms that are not arrays of strings or
            numbers, flags that are not an object, a timeout that is not a number.
    """
    if not isinstance(obj, dict):
        raise ProtocolError("broadcast options are not an object")
    rooms = _rooms(obj.get("rooms"), "opts.rooms")
    except_ = _rooms(obj.get("except"), "opts.except")
    raw = obj.get("flags")
    flags: dict[str, Any] = {}
    if raw is not None:
        if not isinstance(raw, dict):
            raise ProtocolError("opts.flags is not an object")
        for node, value in raw.items():
            name = _FLAGS_IN.get(node)
            if name is None:
                continue
            if name == "timeout":
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                    raise ProtocolError("opts.flags.timeout is not a number")
                value = max(0.0, value / 1000)
            flags[name] = value
    return BroadcastOptions(rooms, except_, flags)


def check_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` if it is a dict, else ProtocolError naming ``what``."""
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not an object")
    return value
