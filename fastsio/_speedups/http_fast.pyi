"""Types of fastsio._speedups.http_fast and its twin fastsio._pure.http_fast."""
from typing import Optional

__all__ = ["parse_simple_get", "split_query"]

def parse_simple_get(data: bytes, limit: int, max_headers: int, names: dict[bytes, str],
                     values: dict[str, str], shared: frozenset[str]) -> Optional[tuple[str, dict[str, str]]]: ...
def split_query(qs: str) -> Optional[dict[str, str]]: ...
