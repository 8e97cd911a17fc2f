"""The app the workers tests serve with N workers (each handler says which process answered).

Run: ``python tests/interop/workers_app.py PORT WORKERS`` (or through the
command line, ``python -m fastsio serve workers_app:io``).
"""
from __future__ import annotations

import inspect
import os
import sys
from typing import Any

import fastsio

io = fastsio.Server(cors={"origin": "*"}, allow_eio3=True, ping_interval=5, ping_timeout=5)
PID = os.getpid()
if os.environ.get("FASTSIO_TEST_CUSTOM_IDS"):
    # a custom Engine.IO id: with workers it gets two characters in front naming the worker
    io.engine.generate_id = lambda request: "u" + os.urandom(8).hex()


@io.on("connection")
def on_connection(socket: Any) -> None:
    auth = socket.handshake.auth or {}
    socket.data["name"] = auth.get("name")
    socket.data["pid"] = PID
    for room in auth.get("rooms") or ():
        socket.join(room)
    socket.on("pid", lambda *a: PID)
    # one write per line: several workers share the test's stdout pipe
    socket.on("disconnect", lambda reason: os.write(1, f"disconnect {PID} {auth.get('name')} {reason}\n".encode()))

    @socket.on("bcast")
    def bcast(spec: dict[str, Any]) -> int:
        op: Any = io
        for room in spec.get("to") or ():
            op = op.to(room)
        for room in spec.get("except") or ():
            op = op.except_(room)
        op.emit("m", spec.get("payload"), PID)
        return PID

    @socket.on("bcast_ack")
    async def bcast_ack() -> Any:
        return sorted(await io.timeout(5).emit_with_ack("q"), key=str)

    @socket.on("fetch")
    async def fetch() -> Any:
        return sorted(([s.id, s.data.get("name"), s.data.get("pid"), sorted(s.rooms)]
                       for s in await io.fetch_sockets()), key=str)

    @socket.on("count")
    async def count() -> Any:
        n = io.of("/").adapter.server_count()
        return await n if inspect.isawaitable(n) else n

    @socket.on("kick")
    def kick(room: str) -> int:
        io.in_(room).disconnect_sockets()
        return PID

    @socket.on("join_all")
    def join_all(room: str) -> int:
        io.sockets_join(room)
        return PID

    @socket.on("sse")
    async def sse() -> Any:
        return sorted(await io.server_side_emit_with_ack("who", PID))


@io.on("who")
def who(sender: int, callback: Any) -> None:
    callback(PID)


if __name__ == "__main__":
    io.run(port=int(sys.argv[1]), host="127.0.0.1", workers=int(sys.argv[2]), shutdown_timeout=5)
