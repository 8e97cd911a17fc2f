"""Engine.IO packet and payload codec (v4, and v3 for ``allow_eio3``).

Describes both ``fastsio._speedups.eio_codec`` and ``fastsio._pure.eio_codec``.
"""
import enum
from typing import Sequence, Union

__all__ = [
    "PacketType",
    "OPEN",
    "CLOSE",
    "PING",
    "PONG",
    "MESSAGE",
    "UPGRADE",
    "NOOP",
    "encode_packet",
    "encode_ws",
    "decode_ws",
    "encode_payload",
    "decode_payload",
    "encode_payload_v3",
    "decode_payload_v3",
]

class PacketType(enum.IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6

OPEN: PacketType
CLOSE: PacketType
PING: PacketType
PONG: PacketType
MESSAGE: PacketType
UPGRADE: PacketType
NOOP: PacketType

_BytesLike = Union[bytes, bytearray, memoryview]

def encode_packet(ptype: int, data: str = "") -> str: ...
def encode_ws(
    ptype: int, data: str | _BytesLike | None = None, eio3: bool = False
) -> str | bytes: ...
def decode_ws(msg: str | _BytesLike, eio3: bool = False) -> tuple[int, str | bytes]: ...
def encode_payload(packets: Sequence[tuple[int, str | bytes]]) -> str: ...
def decode_payload(
    body: str | _BytesLike, max_packets: int = 10000
) -> list[tuple[int, str | bytes]]: ...
def encode_payload_v3(
    packets: Sequence[tuple[int, str | bytes]], supports_binary: bool = False
) -> str | bytes: ...
def decode_payload_v3(
    body: _BytesLike, max_packets: int = 10000
) -> list[tuple[int, str | bytes]]: ...
