from typing import Any, Collection, Mapping, Optional

from typing_extensions import disjoint_base

__all__ = ["target_ids", "deliver", "WriteBuffer", "FlushQueue", "DirectWriter", "KIND_EIO3", "KIND_DEFLATE"]

KIND_EIO3: int
KIND_DEFLATE: int

@disjoint_base
class WriteBuffer:
    conn: Any
    queue: FlushQueue
    transport: Any
    paused: bool
    chunks: list[bytes]
    buffered: int
    max_bytes: int
    drop_above: int
    def __init__(self, conn: Any, queue: FlushQueue, max_bytes: int = ..., drop_above: int = ...) -> None: ...
    def push(self, data: bytes) -> None: ...
    def take(self) -> Optional[bytes]: ...
    def clear(self) -> None: ...
    @property
    def pending(self) -> bool: ...

@disjoint_base
class FlushQueue:
    loop: Any
    pending: list[WriteBuffer]
    scheduled: bool
    volatile_dropped: int
    def __init__(self, loop: Any) -> None: ...
    def add(self, buf: WriteBuffer) -> None: ...
    def flush(self) -> None: ...

@disjoint_base
class DirectWriter:
    target: Optional[WriteBuffer]
    kind: int
    threshold: int
    def __init__(self, target: Optional[WriteBuffer] = None, kind: int = 0, threshold: int = 1024) -> None: ...

def target_ids(
    rooms_map: Mapping[str, Collection[str]],
    all_ids: Collection[str],
    rooms: Collection[str],
    except_rooms: Collection[str],
    except_ids: Collection[str],
) -> list[str]: ...
def deliver(sockets: Mapping[str, Any], ids: Collection[str], message: Any, volatile: bool = False,
            directs: Optional[Mapping[str, DirectWriter]] = None) -> int: ...
