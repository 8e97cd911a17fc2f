"""A small event emitter, the Python twin of Node's EventEmitter.

Listeners may be plain functions or coroutine functions. Plain functions are
called directly; a coroutine function gets a task, since asyncio needs one to
run it. Every ``on`` also works as a decorator.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable, Optional, TypeVar, Union, overload

from . import _tasks

__all__ = ["EventEmitter"]

logger = logging.getLogger(__name__)

Listener = Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])

_background_tasks = _tasks.ALL


def run_listener(fn: Listener, *args: Any) -> Any:
    """Call ``fn``; schedule it as a task if it returns an awaitable.

    The task is kept referenced until it finishes so it is not collected
    mid-flight, and its exception is logged rather than lost.
    """
    result = fn(*args)
    if inspect.isawaitable(result):
        return _tasks.spawn(result, _task_done)
    return result


def _task_done(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("listener failed", exc_info=task.exception())


class EventEmitter:
    """Node-style ``on``/``once``/``off``/``emit`` for server-side objects."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: Optional[dict[str, list[Listener]]] = None

    @overload
    def on(self, event: str) -> Callable[[F], F]: ...

    @overload
    def on(self, event: str, listener: Listener) -> "EventEmitter": ...

    def on(self, event: str, listener: Optional[Listener] = None) -> Union["EventEmitter", Callable[[F], F]]:
        """Add ``listener`` for ``event``; without a listener, return a decorator.

        Example:
            >>> @engine.on("connection")
            ... def on_connection(sock): ...
        """
        if listener is None:
            def decorator(fn: F) -> F:
                self._add(event, fn, False)
                return fn
            return decorator
        self._add(event, listener, False)
        return self

    add_listener = on

    def prepend_listener(self, event: str, listener: Listener) -> "EventEmitter":
        """Add ``listener`` in front of the others for ``event``."""
        self._add(event, listener, True)
        return self

    def once(self, event: str, listener: Optional[Listener] = None) -> Any:
        """Like ``on``, but the listener is removed after its first call."""
        def wrap(fn: Listener) -> Listener:
            def once_wrapper(*args: Any) -> Any:
                self.off(event, once_wrapper)
                return fn(*args)
            once_wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
            self._add(event, once_wrapper, False)
            return fn
        if listener is None:
            return wrap
        wrap(listener)
        return self

    def off(self, event: str, listener: Listener) -> "EventEmitter":
        """Remove ``listener`` (or a ``once`` wrapper of it) from ``event``.

        Matched by equality, not identity: ``obj.method`` makes a new bound
        method object on each access, and two of them are equal (as Node's
        ``===`` holds for the one function it was given).
        """
        if self._listeners is None:
            return self
        lst = self._listeners.get(event)
        if not lst:
            return self
        for i in range(len(lst) - 1, -1, -1):
            fn = lst[i]
            if fn == listener or getattr(fn, "__wrapped__", None) == listener:
                del lst[i]
                break
        if not lst:
            del self._listeners[event]
        return self

    remove_listener = off

    def remove_all_listeners(self, event: Optional[str] = None) -> "EventEmitter":
        """Remove every listener, or every listener of ``event``."""
        if self._listeners is not None:
            if event is None:
                self._listeners = None
            else:
                self._listeners.pop(event, None)
        return self

    def listeners(self, event: str) -> list[Listener]:
        """A copy of the listeners of ``event``."""
        if self._listeners is None:
            return []
        # a once() wrapper is listed as the function the caller gave, as Node does
        return [getattr(fn, "__wrapped__", fn) for fn in self._listeners.get(event, ())]

    def listener_count(self, event: str) -> int:
        """How many listeners ``event`` has."""
        if self._listeners is None:
            return 0
        return len(self._listeners.get(event, ()))

    def event_names(self) -> list[str]:
        """The events that have listeners."""
        return list(self._listeners or ())

    def emit(self, event: str, *args: Any) -> bool:
        """Call every listener of ``event`` with ``args``; True if there was one."""
        return self._emit_local(event, *args)

    def _emit_local(self, event: str, *args: Any) -> bool:
        if self._listeners is None:
            return False
        lst = self._listeners.get(event)
        if not lst:
            return False
        for fn in list(lst):
            try:
                run_listener(fn, *args)
            except Exception:
                logger.exception("listener for %r failed", event)
        return True

    def _add(self, event: str, fn: Listener, prepend: bool) -> None:
        if self._listeners is None:
            self._listeners = {}
        lst = self._listeners.setdefault(event, [])
        if prepend:
            lst.insert(0, fn)
        else:
            lst.append(fn)
