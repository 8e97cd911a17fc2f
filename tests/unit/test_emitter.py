"""fastsio.emitter.EventEmitter: what Node's EventEmitter does, for Python callables."""
from __future__ import annotations

from typing import Any

from fastsio.emitter import EventEmitter


class Holder:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def handler(self, value: Any) -> None:
        self.got.append(value)


def test_off_removes_a_bound_method_given_again() -> None:
    # obj.handler is a new object on each access: off() must match it by equality
    em, holder = EventEmitter(), Holder()
    em.on("x", holder.handler)
    em.once("y", holder.handler)
    em.off("x", holder.handler)
    em.off("y", holder.handler)
    em.emit("x", 1)
    em.emit("y", 2)
    assert holder.got == [] and em.listener_count("x") == 0 and em.listener_count("y") == 0


def test_off_removes_one_listener_the_last_added() -> None:
    em, a, b = EventEmitter(), Holder(), Holder()
    em.on("x", a.handler)
    em.on("x", b.handler)
    em.on("x", a.handler)
    em.off("x", a.handler)
    em.emit("x", 1)
    assert a.got == [1] and b.got == [1]
