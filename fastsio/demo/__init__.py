"""The fastsio chat demo: ``python -m fastsio.demo`` (or ``bash ci/demo.sh``).

Serves a small chat page on http://127.0.0.1:3000/ that loads the client
bundle fastsio serves at ``/socket.io/socket.io.min.js``. Open it in several
tabs: each tab picks a name and a room, and messages reach everybody in the
same room (``socket.to(room).emit``), acknowledged by the server.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from importlib import resources
from typing import Any, Optional, Sequence

import fastsio

__all__ = ["main", "serve", "create_server"]

log = logging.getLogger(__name__)

ROOMS = ("lobby", "python", "node")


def create_server(**options: Any) -> fastsio.Server:
    """The chat server: rooms, names, acked messages and presence counts."""
    io = fastsio.Server(**options)
    page = resources.files(__package__).joinpath("index.html").read_bytes()
    previous = io.engine.fallback

    def route(request: Any) -> Any:
        if request.path in ("/", "/index.html"):
            return 200, [("Content-Type", "text/html; charset=utf-8")], page
        return previous(request) if previous is not None else None

    io.engine.fallback = route

    def presence(room: str) -> None:
        count = len(io.sockets.adapter.rooms.get(room, ()))
        io.to(room).emit("presence", {"room": room, "count": count})

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        socket.data["name"] = str(socket.handshake.auth.get("name") or "guest")[:32]
        socket.data["room"] = None

        @socket.on("join")
        def join(room: Any) -> Any:
            if room not in ROOMS:
                return {"ok": False, "error": "unknown room"}
            old = socket.data["room"]
            if old:
                socket.leave(old)
                socket.to(old).emit("system", f"{socket.data['name']} left")
                presence(old)
            socket.join(room)
            socket.data["room"] = room
            socket.to(room).emit("system", f"{socket.data['name']} joined")
            presence(room)
            return {"ok": True, "room": room}

        @socket.on("chat")
        def chat(text: Any) -> Any:
            room = socket.data["room"]
            if not room or not isinstance(text, str) or not text.strip():
                return {"ok": False}
            message = {"from": socket.data["name"], "text": text[:500]}
            socket.to(room).emit("chat", message)
            return {"ok": True}

        @socket.on("disconnecting")
        def disconnecting(reason: str) -> None:
            room = socket.data.get("room")
            if room:
                socket.to(room).emit("system", f"{socket.data['name']} left")

        @socket.on("disconnect")
        def disconnect(reason: str) -> None:
            room = socket.data.get("room")
            if room:
                presence(room)

    return io


async def serve(host: str = "127.0.0.1", port: int = 3000, stop: Optional[asyncio.Event] = None) -> None:
    """Run the chat server until ``stop`` is set (or SIGINT/SIGTERM arrives)."""
    stop = stop or asyncio.Event()
    io = create_server()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    await io.listen(port, host=host)
    print(f"fastsio demo: chat on http://{host}:{port}/ ({fastsio.IMPLEMENTATION} codecs; Ctrl-C stops)",
          flush=True)
    try:
        await stop.wait()
    finally:
        await io.close()
        print("fastsio demo: closed", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Parse ``--host``/``--port`` and serve on uvloop."""
    parser = argparse.ArgumentParser(prog="python -m fastsio.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import uvloop

    uvloop.run(serve(args.host, args.port))
