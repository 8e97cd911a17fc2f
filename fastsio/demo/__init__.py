"""The fastsio demo: ``python -m fastsio.demo`` (or ``bash ci/demo.sh``).

For now an Engine.IO echo server on http://127.0.0.1:3000 (path
``/engine.io/``): every message, text or binary, is sent back as it came.
Any engine.io-client v6 can talk to it::

    import { Socket } from "engine.io-client";
    const socket = new Socket("ws://127.0.0.1:3000");
    socket.on("open", () => socket.send("hello"));
    socket.on("message", (data) => console.log("echo:", data));
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any, Optional, Sequence

__all__ = ["main", "serve"]

log = logging.getLogger(__name__)


async def serve(host: str = "127.0.0.1", port: int = 3000, stop: Optional[asyncio.Event] = None) -> None:
    """Run the echo server until ``stop`` is set (or SIGINT/SIGTERM arrives).

    Args:
        host: address to listen on.
        port: TCP port to listen on.
        stop: an event that ends the server when set; a fresh one if None.
    """
    from fastsio.engineio import Engine

    stop = stop or asyncio.Event()
    engine = Engine(path="/engine.io/")

    def on_connection(sock: Any) -> None:
        log.info("connection %s over %s", sock.id, sock.transport.name)
        sock.on("message", lambda data: sock.send(data))
        sock.on("upgrade", lambda transport: log.info("%s upgraded to %s", sock.id, transport.name))
        sock.on("close", lambda *reason: log.info("%s closed %s", sock.id, reason))

    engine.on("connection", on_connection)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    await engine.listen(port, host=host)
    print(f"fastsio demo: Engine.IO echo server on http://{host}:{port}/engine.io/ (Ctrl-C stops)", flush=True)
    try:
        await stop.wait()
    finally:
        await engine.close()
        print("fastsio demo: closed", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Parse ``--host``/``--port`` and serve on uvloop when it is installed."""
    parser = argparse.ArgumentParser(prog="python -m fastsio.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))
