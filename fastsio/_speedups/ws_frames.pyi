"""Types of fastsio._speedups.ws_frames and its twin fastsio._pure.ws_frames."""
import enum
from typing import Final, Union

from typing_extensions import disjoint_base

_Buffer = Union[bytes, bytearray, memoryview]

__all__ = [
    "Opcode",
    "OP_CONT",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "FrameParser",
    "build_frame",
    "build_close",
    "parse_close",
    "apply_mask",
]

class Opcode(enum.IntEnum):
    OP_CONT = 0
    OP_TEXT = 1
    OP_BINARY = 2
    OP_CLOSE = 8
    OP_PING = 9
    OP_PONG = 10

OP_CONT: Final[int]
OP_TEXT: Final[int]
OP_BINARY: Final[int]
OP_CLOSE: Final[int]
OP_PING: Final[int]
OP_PONG: Final[int]

@disjoint_base
class FrameParser:
    def __init__(
        self,
        max_message_size: int = 1_000_000,
        *,
        max_fragments: int = 1000,
        client_side: bool = False,
        allow_rsv1: bool = False,
    ) -> None: ...
    @property
    def closed(self) -> bool: ...
    def feed(self, data: _Buffer) -> list[tuple[int, str | bytes, bool]]: ...

def build_frame(
    opcode: int,
    payload: bytes | str = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bytes | None = None,
) -> bytes: ...
def build_close(code: int = 1000, reason: str = "") -> bytes: ...
def parse_close(payload: _Buffer) -> tuple[int, str]: ...
def apply_mask(data: _Buffer, mask: bytes) -> bytes: ...
