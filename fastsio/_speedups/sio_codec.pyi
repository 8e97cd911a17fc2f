"""Socket.IO v5 packet codec: the interface of both implementations.

``fastsio._speedups.sio_codec`` (Cython) and ``fastsio._pure.sio_codec``
(pure Python) export exactly these names, with the same behaviour, exceptions
and messages.
"""
import enum
from typing import Any, Final, Union

from typing_extensions import disjoint_base

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
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6

CONNECT: Final[PacketType]
DISCONNECT: Final[PacketType]
EVENT: Final[PacketType]
ACK: Final[PacketType]
CONNECT_ERROR: Final[PacketType]
BINARY_EVENT: Final[PacketType]
BINARY_ACK: Final[PacketType]

RESERVED_EVENTS: Final[frozenset[str]]
MAX_SAFE_INTEGER: Final[int]

@disjoint_base
class Packet:
    """One Socket.IO packet; ``data`` is ``None`` when there is no payload."""

    type: int
    nsp: str
    data: Any
    id: int | None
    def __init__(self, type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> None: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]

def encode(type: int, nsp: str = "/", data: Any = None, id: int | None = None) -> list[Union[str, bytes]]:
    """Encodes one packet: the text frame, then the binary attachments."""

def encode_event(
    nsp: str, event: str, args: tuple[Any, ...] | list[Any], id: int | None = None
) -> list[Union[str, bytes]]:
    """Same as ``encode(EVENT, nsp, [event, *args], id)``; the broadcast hot path."""

@disjoint_base
class Decoder:
    """Incremental decoder: ``feed`` text packets and their binary attachments."""

    def __init__(self, max_attachments: int = 10, max_depth: int = 100) -> None: ...
    @property
    def pending(self) -> bool: ...
    def reset(self) -> None: ...
    def feed(self, data: str | bytes | bytearray | memoryview) -> Packet | None: ...
