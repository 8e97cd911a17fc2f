"""A fastsio server of a Redis Streams cluster for bench/streams_recovery.py.

    python fastsio_streams_app.py --port 3000 --redis redis://127.0.0.1:6379/0

Connection state recovery on (120 s). A new socket joins the rooms of its
auth (``{"rooms": [...]}``). Commands on stdin, one per line: ``tick ROOM MS``
emits ``m <counter>`` to ROOM every MS milliseconds; ``untick`` stops and
prints ``SENT <count>``.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import fastsio  # noqa: E402
from fastsio.adapters.redis_streams import RedisStreamsAdapter  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    io = fastsio.Server(adapter=RedisStreamsAdapter.from_url(args.redis),
                        connection_state_recovery={"max_disconnection_duration": 120})

    @io.on("connection")
    def on_connection(socket: fastsio.Socket) -> None:
        if not socket.recovered:
            rooms = socket.handshake.auth.get("rooms")
            if isinstance(rooms, list):
                socket.join(rooms)

    await io.listen(args.port, host="127.0.0.1")
    print(f"READY implementation={fastsio.IMPLEMENTATION}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    sent = 0
    ticker: "asyncio.Task[None] | None" = None

    async def tick(room: str, ms: float) -> None:
        nonlocal sent
        op = io.to(room)
        while True:
            op.emit("m", sent)
            sent += 1
            await asyncio.sleep(ms / 1000)

    while True:
        line = (await reader.readline()).decode().split()
        if not line:
            break
        if line[0] == "tick":
            sent = 0
            ticker = asyncio.ensure_future(tick(line[1], float(line[2])))
        elif line[0] == "untick" and ticker is not None:
            ticker.cancel()
            print(f"SENT {sent}", flush=True)
    await io.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    import uvloop

    uvloop.run(main())
