"""DeadlineWheel: per-session deadlines behind one loop timer, in order, on time, moved cheaply."""
from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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


class FakeLoop:
    """A loop whose clock only moves when the test says: timers run in time order."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, int, Any]] = []
        self.seq = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, fn: Any) -> Any:
        self.seq += 1
        entry = [when, self.seq, fn, False]
        self.timers.append(entry)  # type: ignore[arg-type]

        class Handle:
            def cancel(self_inner) -> None:
                entry[3] = True

        return Handle()

    def run_until(self, until: float) -> None:
        while True:
            live = [t for t in self.timers if not t[3]]  # type: ignore[index]
            if not live:
                break
            first = min(live, key=lambda t: (t[0], t[1]))
            if first[0] > until:
                break
            self.timers.remove(first)
            self.now = max(self.now, first[0])
            first[2]()
        self.now = max(self.now, until)


ops = st.lists(st.tuples(st.integers(0, 7), st.one_of(st.none(), st.floats(0, 2)), st.floats(0, 0.5)),
               max_size=60)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_every_deadline_fires_once_on_time_whatever_the_order_of_sets(steps: list[Any]) -> None:
    loop = FakeLoop()
    wheel = DeadlineWheel(loop, granularity=0.001)  # type: ignore[arg-type]
    due: dict[int, float] = {}
    wrong: list[tuple[int, float, float | None]] = []

    class It:
        def __init__(self, n: int) -> None:
            self.n = n
            self._wheel_key = -1

        def _on_deadline(self) -> None:
            # checked here (the wheel logs, not raises, what a handler raises)
            expected = due.pop(self.n, None)
            if expected is None or abs(loop.now - expected) > 0.0006:
                wrong.append((self.n, loop.now, expected))
            # even items re-arm themselves from their handler, as the heartbeat does
            # (ping sent -> pong deadline), a few times each
            if self.n % 2 == 0 and rearms[self.n] > 0:
                rearms[self.n] -= 1
                delay = 0.05 * (self.n + 1)
                due[self.n] = loop.now + delay
                wheel.set(self, delay)

    items = [It(i) for i in range(8)]
    rearms = {i: 3 for i in range(8)}
    for index, delay, advance in steps:
        if delay is None:
            wheel.clear(items[index])
            due.pop(index, None)
        else:
            wheel.set(items[index], delay)
            due[index] = loop.now + delay
        loop.run_until(loop.now + advance)
    loop.run_until(loop.now + 5)
    assert wrong == []
    assert due == {}
    assert wheel.buckets == {}
