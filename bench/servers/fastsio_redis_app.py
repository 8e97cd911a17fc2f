"""fastsio with the Redis adapter, for the two-servers-on-one-Redis benchmark.

    python fastsio_redis_app.py --port 3000 --redis redis://127.0.0.1:6379/0

On connection: join room "all". Event bcast(n, payload): emit "msg" with
payload to room "all" n times (to every server of the cluster), then ack.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import fastsio  # noqa: E402
from fastsio.adapters.redis import RedisAdapter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    io = fastsio.Server(adapter=RedisAdapter.from_url(args.redis, key="bench"))

    @io.on("connection")
    def on_connection(socket: "fastsio.Socket") -> None:
        socket.join("all")

        @socket.on("bcast")
        def bcast(n: int, payload: object) -> None:
            room = io.to("all")
            for _ in range(n):
                room.emit("msg", payload)
            return None

    print(f"READY fastsio {fastsio.__version__} implementation={fastsio.IMPLEMENTATION} redis "
          f"on {args.host}:{args.port}", flush=True)
    io.run(port=args.port, host=args.host)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
