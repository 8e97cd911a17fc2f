from typing import Any, Collection, Mapping

__all__ = ["target_ids", "deliver"]

def target_ids(
    rooms_map: Mapping[str, Collection[str]],
    all_ids: Collection[str],
    rooms: Collection[str],
    except_rooms: Collection[str],
    except_ids: Collection[str],
) -> list[str]: ...
def deliver(sockets: Mapping[str, Any], ids: Collection[str], message: Any, volatile: bool = False) -> int: ...
