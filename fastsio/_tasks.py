"""The background tasks fastsio starts: kept referenced until done, failures logged, cancellable.

Every coroutine fastsio runs on its own (a coroutine handler, an async ack
callback, an adapter call, a middleware) goes through :func:`spawn`: the task
is held in ``ALL`` until it finishes (asyncio keeps only weak references),
its exception is logged instead of lost, and when an ``owner`` set is given
(a server's ``_tasks``) it is also held there, so the owner's ``close()`` can
cancel what is still running.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Optional

__all__ = ["ALL", "spawn", "log_error", "cancel"]

logger = logging.getLogger("fastsio")

#: every task started through spawn() that has not finished yet
ALL: set["asyncio.Future[Any]"] = set()


def log_error(fut: "asyncio.Future[Any]") -> None:
    """Log the exception of a finished task (the default ``done`` callback)."""
    if not fut.cancelled() and fut.exception() is not None:
        logger.error("background task failed", exc_info=fut.exception())


def spawn(aw: Awaitable[Any], done: Optional[Callable[["asyncio.Future[Any]"], None]] = None,
          owner: Optional[set["asyncio.Future[Any]"]] = None) -> "asyncio.Future[Any]":
    """Run ``aw`` as a task held until it finishes; ``done(task)`` (default: log a failure) after."""
    fut = asyncio.ensure_future(aw)
    ALL.add(fut)
    fut.add_done_callback(ALL.discard)
    if owner is not None:
        owner.add(fut)
        fut.add_done_callback(owner.discard)
    fut.add_done_callback(done if done is not None else log_error)
    return fut


async def cancel(tasks: set["asyncio.Future[Any]"], timeout: float = 1.0) -> None:
    """Cancel every task of ``tasks`` still running and wait (at most ``timeout`` s) for them to end."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    pending = [t for t in tasks if not t.done() and t.get_loop() is loop]
    if not pending:
        return
    for t in pending:
        t.cancel()
    await asyncio.wait(pending, timeout=max(0.0, timeout))
