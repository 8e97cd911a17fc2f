"""One worker: a full fastsio server on its own uvloop, on the primary's listening socket.

The primary starts a worker by running the same command line again with
``FASTSIO_WORKER`` in the environment (JSON: index, count, the inherited
descriptors, the private directory). When that process reaches
``io.run(..., workers=N)`` (or the command line's ``serve``), it becomes
the worker instead of another primary.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import traceback
from typing import Any, Optional

from .routing import Router

__all__ = ["ENV", "worker_info", "serve_worker"]

logger = logging.getLogger(__name__)

#: environment variable the primary sets for its workers
ENV = "FASTSIO_WORKER"


def worker_info() -> Optional[dict[str, Any]]:
    """What the primary told this process (None when it is not a worker)."""
    raw = os.environ.get(ENV)
    if not raw:
        return None
    info: dict[str, Any] = json.loads(raw)
    return info


def _report(info: dict[str, Any], message: bytes) -> None:
    try:
        os.write(info["status_fd"], message)
    except OSError:
        pass


def serve_worker(server: Any, info: dict[str, Any], app: Any = None) -> None:
    """Serve ``server`` (and the ASGI ``app``, if any) as worker ``info['index']`` until the primary stops it (blocking)."""
    # a worker's children (if the app starts any) are not workers
    os.environ.pop(ENV, None)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(_main(server, info, app))
    else:
        uvloop.run(_main(server, info, app))


async def _main(server: Any, info: dict[str, Any], app: Any = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lifeline = info["lifeline_fd"]
    # the primary holds the other end: end of file means it is gone, so this worker stops too
    loop.add_reader(lifeline, stop.set)
    index, count = int(info["index"]), int(info["count"])
    router: Optional[Router] = None
    bus: Any = None
    try:
        engine = server.engine
        router = Router(index, count, info["dir"], int(info["key"]), engine)
        router.install()
        router.start()
        from ..adapters.local import install_bus

        # the default adapter becomes the local bus; a Redis adapter stays (one more member)
        bus = await install_bus(server, index, count, info["dir"])
        await server._init_adapters()
        http = engine.http_server()
        if app is not None:
            # as Server.listen(app=...) does: the app's startup runs before the port listens
            from ..asgi_host import AsgiHost

            hosted = AsgiHost(app, engine)
            await hosted.startup()
            hosted.install(http)
            server._asgi_host = hosted
        sock = socket.socket(fileno=int(info["listen_fd"]))
        sock.setblocking(False)
        await http.listen(0, sock=sock)
    except BaseException:
        _report(info, b"E" + traceback.format_exc().encode("utf-8", "replace")[-4000:])
        raise
    server._worker_router = router
    logger.debug("worker %d (pid %d) serving", index, os.getpid())
    _report(info, b"R")
    try:
        await stop.wait()
    finally:
        loop.remove_reader(lifeline)
        # first stop taking connections from the other workers: they are closing too
        router.close()
        try:
            await asyncio.wait_for(server.close(), float(info.get("shutdown_timeout", 10)))
        except asyncio.TimeoutError:
            logger.warning("worker %d: graceful close took over %ss", index, info.get("shutdown_timeout"))
        if bus is not None:
            await bus.close()
