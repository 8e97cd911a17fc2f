"""Per-session deadlines (next ping, pong timeout, close timeout) behind one loop timer.

A loop TimerHandle per session costs about half a kilobyte and a cancel plus
a new handle on every pong. Sessions only need one deadline each, to within
a few tens of milliseconds, so they sit in buckets of ``granularity``
seconds; one ``call_at`` wakes the loop for the earliest bucket. Moving a
session to a new deadline is a set removal and a set insertion.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional, Protocol

__all__ = ["DeadlineWheel"]

logger = logging.getLogger(__name__)


class _HasDeadline(Protocol):
    _wheel_key: int

    def _on_deadline(self) -> None: ...


class DeadlineWheel:
    """Deadlines bucketed by ``granularity`` seconds; never fires early, at most one bucket late."""

    __slots__ = ("loop", "granularity", "buckets", "_handle", "_armed_key")

    def __init__(self, loop: asyncio.AbstractEventLoop, granularity: float = 0.05) -> None:
        self.loop = loop
        self.granularity = granularity
        self.buckets: dict[int, set[Any]] = {}
        self._handle: Optional[asyncio.TimerHandle] = None
        self._armed_key: Optional[int] = None

    def set(self, item: _HasDeadline, delay: float) -> None:
        """Call ``item._on_deadline()`` in ``delay`` seconds (replacing its previous deadline)."""
        # rounded up, so a deadline never fires before its time
        key = int((self.loop.time() + delay) / self.granularity) + 1
        old = item._wheel_key
        if old == key:
            return
        if old >= 0:
            self._discard(item, old)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = set()
        bucket.add(item)
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
        if bucket is not None:
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
        now_key = int(self.loop.time() / self.granularity)
        for key in sorted(k for k in self.buckets if k <= now_key):
            bucket = self.buckets.pop(key, None)
            if not bucket:
                continue
            for item in bucket:
                if item._wheel_key != key:
                    continue
                item._wheel_key = -1
                try:
                    item._on_deadline()
                except Exception:
                    logger.exception("deadline handler failed")
        if self.buckets and self._armed_key is None:
            self._arm(min(self.buckets))
