"""The app of the workers recovery tests: connection state recovery on, every answer names its worker.

Served through the command line (``python -m fastsio serve
workers_recovery_app:io --workers N``). ``FASTSIO_TEST_RECOVERY_S`` sets
``max_disconnection_duration`` (default 60 s).
"""
from __future__ import annotations

import asyncio
import os
from typing import Any

import fastsio

io = fastsio.Server(cors={"origin": "*"}, ping_interval=5, ping_timeout=5, connection_state_recovery={
    "max_disconnection_duration": float(os.environ.get("FASTSIO_TEST_RECOVERY_S", "60"))})
PID = os.getpid()
_ticks = 0
_tasks: set["asyncio.Future[Any]"] = set()


@io.on("connection")
def on_connection(socket: Any) -> None:
    if not socket.recovered:
        auth = socket.handshake.auth or {}
        socket.data["name"] = auth.get("name")
        socket.data["first_pid"] = PID
        for room in auth.get("rooms") or ():
            socket.join(room)
    socket.on("pid", lambda *a: PID)

    @socket.on("state")
    def state() -> Any:
        return {"pid": PID, "id": socket.id, "recovered": socket.recovered, "rooms": sorted(socket.rooms),
                "data": socket.data}

    @socket.on("tick")
    def tick(spec: dict[str, Any]) -> int:
        # this worker broadcasts ("t", its pid, a counter of its own) to room "r", n times
        async def run(n: int, every: float) -> None:
            global _ticks
            for _ in range(n):
                io.to("r").emit("t", PID, _ticks)
                _ticks += 1
                await asyncio.sleep(every)

        task = asyncio.ensure_future(run(int(spec["n"]), float(spec["ms"]) / 1000))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        return PID
