"""DeadlineWheel: per-session deadlines behind one loop timer, in order, on time, moved cheaply."""
from __future__ import annotations

import asyncio

from fastsio.engineio.deadlines import DeadlineWheel


class Item:
    def __init__(self, name: str, log: list[tuple[str, float]], loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self._wheel_key = -1
        self.log = log
        self.loop = loop

    def _on_deadline(self) -> None:
        self.log.append((self.name, self.loop.time()))


async def test_fires_in_order_never_early_and_moves() -> None:
    loop = asyncio.get_running_loop()
    wheel = DeadlineWheel(loop, granularity=0.01)
    log: list[tuple[str, float]] = []
    a, b, c, d = (Item(n, log, loop) for n in "abcd")
    start = loop.time()
    wheel.set(a, 0.05)
    wheel.set(b, 0.02)
    wheel.set(c, 0.03)
    wheel.set(d, 0.04)
    wheel.set(c, 0.08)  # moved later
    wheel.clear(d)  # cancelled
    await asyncio.sleep(0.15)
    assert [n for n, _ in log] == ["b", "a", "c"]
    due = {"a": 0.05, "b": 0.02, "c": 0.08}
    for name, when in log:
        assert when - start >= due[name] - 0.006
    assert wheel.buckets == {} and a._wheel_key == -1 and d._wheel_key == -1


async def test_an_item_set_from_its_own_deadline_fires_again() -> None:
    loop = asyncio.get_running_loop()
    wheel = DeadlineWheel(loop, granularity=0.01)
    log: list[tuple[str, float]] = []

    class Repeating(Item):
        def _on_deadline(self) -> None:
            super()._on_deadline()
            if len(self.log) < 3:
                wheel.set(self, 0.01)

    wheel.set(Repeating("r", log, loop), 0.01)
    await asyncio.sleep(0.2)
    assert len(log) == 3


async def test_a_handler_setting_a_later_deadline_does_not_delay_an_earlier_one() -> None:
    # regression: during a fire the timer was disarmed; a handler's set() armed it for its
    # own (later) deadline and an earlier waiting bucket then fired seconds late
    loop = asyncio.get_running_loop()
    wheel = DeadlineWheel(loop, granularity=0.001)
    log: list[tuple[str, float]] = []

    class Rescheduling(Item):
        def _on_deadline(self) -> None:
            super()._on_deadline()
            wheel.set(self, 5.0)

    start = loop.time()
    early = Rescheduling("early", log, loop)
    later = Item("later", log, loop)
    wheel.set(early, 0.01)
    wheel.set(later, 0.05)
    await asyncio.sleep(0.3)
    assert [n for n, _ in log] == ["early", "later"]
    assert log[1][1] - start < 0.25
    wheel.clear(early)
