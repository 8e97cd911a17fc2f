"""Per-session deadlines (next ping, pong timeout, close timeout) behind one loop timer.

A loop TimerHandle per session costs about half a kilobyte, and a cancel plus
a new handle on every pong. Sessions need one deadline each, so they sit in
buckets of ``granularity`` seconds (a millisecond: heartbeats keep Node's
timing), bucket keys in a heap, and one ``call_at`` wakes the loop for the
earliest bucket. Most buckets hold one session, so a bucket is the session
itself until a second one joins it, then a set. Moving a session to a new
deadline is a few dict and heap operations.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
from typing import Any, Optional, Protocol

__all__ = ["DeadlineWheel"]

logger = logging.getLogger(__name__)


class _HasDeadline(Protocol):
    _wheel_key: int

    def _on_deadline(self) -> None: ...


class DeadlineWheel:
    """Deadlines rounded to the nearest ``granularity`` seconds, fired in time order."""

    __slots__ = ("loop", "granularity", "buckets", "_keys", "_handle", "_armed_key")

    def __init__(self, loop: asyncio.AbstractEventLoop, granularity: float = 0.001) -> None:
        self.loop = loop
        self.granularity = granularity
        # key -> the one item due then, or a set of items
        self.buckets: dict[int, Any] = {}
        # bucket keys in time order; a key whose bucket emptied stays until it is popped
        self._keys: list[int] = []
        self._handle: Optional[asyncio.TimerHandle] = None
        self._armed_key: Optional[int] = None

    def set(self, item: _HasDeadline, delay: float) -> None:
        """Call ``item._on_deadline()`` in ``delay`` seconds (replacing its previous deadline)."""
        key = round((self.loop.time() + delay) / self.granularity)
        old = item._wheel_key
        if old == key:
            return
        if old >= 0:
            self._discard(item, old)
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = item
            heapq.heappush(self._keys, key)
        elif type(bucket) is set:
            bucket.add(item)
        else:
            self.buckets[key] = {bucket, item}
        item._wheel_key = key
        if self._armed_key is None or key < self._armed_key:
            self._arm(key)

    def clear(self, item: _HasDeadline) -> None:
        """Forget ``item``'s deadline, if it has one."""
        old = item._wheel_key
        if old >= 0:
            self._discard(item, old)
            item._wheel_key = -1

    def _discard(self, item: Any, key: int) -> None:
        bucket = self.buckets.get(key)
        if bucket is item:
            del self.buckets[key]
        elif type(bucket) is set:
            bucket.discard(item)
            if not bucket:
                del self.buckets[key]

    def _arm(self, key: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_key = key
        self._handle = self.loop.call_at(key * self.granularity, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_key = None
        # a timer may wake a hair early: the bucket due now counts as due
        now_key = round(self.loop.time() / self.granularity)
        keys = self._keys
        while keys and keys[0] <= now_key:
            key = heapq.heappop(keys)
            bucket = self.buckets.pop(key, None)
            if bucket is None:
                continue
            for item in (bucket if type(bucket) is set else (bucket,)):
                if item._wheel_key != key:
                    continue
                item._wheel_key = -1
                try:
                    item._on_deadline()
                except Exception:
                    logger.exception("deadline handler failed")
        # keys of buckets that emptied before their time are dropped on the way
        while keys and keys[0] not in self.buckets:
            heapq.heappop(keys)
        # a handler above may have armed the timer for its own new deadline while an
        # earlier bucket still waits: the timer must always be set for the earliest one
        if keys and (self._armed_key is None or keys[0] < self._armed_key):
            self._arm(keys[0])
