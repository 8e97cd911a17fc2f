"""Socket.IO msgpack packet codec (socket.io-msgpack-parser 3.x): the interface of both implementations.

``fastsio._speedups.msgpack_codec`` (Cython) and ``fastsio._pure.msgpack_codec``
(pure Python) export exactly these names, with the same behaviour, exceptions
and messages.
"""
from typing import Any, Final

from typing_extensions import disjoint_base

from .sio_codec import ACK as ACK
from .sio_codec import CONNECT as CONNECT
from .sio_codec import CONNECT_ERROR as CONNECT_ERROR
from .sio_codec import DISCONNECT as DISCONNECT
from .sio_codec import EVENT as EVENT
from .sio_codec import Packet as Packet
from .sio_codec import PacketType as PacketType

__all__ = [
    "PacketType",
    "CONNECT",
    "DISCONNECT",
    "EVENT",
    "ACK",
    "CONNECT_ERROR",
    "MAX_SAFE_INTEGER",
    "Packet",
    "encode",
    "encode_event",
    "Decoder",
]

MAX_SAFE_INTEGER: Final[int]

def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> list[bytes]:
    """Encodes one packet as one binary frame."""

def encode_event(nsp: str, event: str, args: tuple[Any, ...] | list[Any], id: int | None = None) -> list[bytes]:
    """Same as ``encode(EVENT, nsp, [event, *args], id)``."""

@disjoint_base
class Decoder:
    """Decodes one msgpack Socket.IO packet per binary frame."""

    def __init__(self, max_attachments: int = 10, max_depth: int = 100) -> None: ...
    @property
    def pending(self) -> bool: ...
    def reset(self) -> None: ...
    def feed(self, data: str | bytes | bytearray | memoryview) -> Packet | None: ...
