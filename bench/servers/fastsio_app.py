"""fastsio running the benchmark app (compiled, or pure with FASTSIO_NO_EXTENSIONS=1).

    python fastsio_app.py --port 3000 [--workers N]
    python fastsio_app.py --port 3000 --asgi     # with a FastAPI app hosted on the same port

On connection: join room "all". Event bcast(n, payload): emit "msg" with
payload to room "all" n times, then ack. Event echo(x): ack x. With --asgi,
``io.run(app=api)`` also serves a FastAPI app (GET /health) for every path
outside /socket.io/: the fan-out must cost the same.

Environment (bench/streams_recovery.py): FASTSIO_BENCH_RECOVERY=1 turns
connection state recovery on; FASTSIO_BENCH_STREAMS=redis://... uses the
Redis Streams adapter. Issue 14 scenarios (bench.py sets them per scenario):
BENCH_DEFLATE=1 turns per_message_deflate on with threshold 0 (every message
compressed); BENCH_EIO3=1 sets allow_eio3. ``--uvicorn`` serves
``fastsio.ASGIApp(io)`` under uvicorn (same options as pysio_app.py) instead
of ``io.run()``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

# Run from the checkout without installing: the repository root holds the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import fastsio  # noqa: E402

# FASTSIO_BENCH_METRICS=1: the same app with Prometheus metrics on.
_options: dict[str, object] = {"metrics": os.environ.get("FASTSIO_BENCH_METRICS") == "1"}
if os.environ.get("FASTSIO_BENCH_RECOVERY") == "1":
    _options["connection_state_recovery"] = {"max_disconnection_duration": 120}
if os.environ.get("FASTSIO_BENCH_STREAMS"):
    from fastsio.adapters.redis_streams import RedisStreamsAdapter  # noqa: E402

    _options["adapter"] = RedisStreamsAdapter.from_url(os.environ["FASTSIO_BENCH_STREAMS"])
# BENCH_PARSER=msgpack: the msgpack parser (fastsio.parsers.msgpack) instead of the default.
if os.environ.get("BENCH_PARSER") == "msgpack":
    _options["parser"] = fastsio.parsers.msgpack
if os.environ.get("BENCH_DEFLATE") == "1":
    _options["per_message_deflate"] = {"threshold": 0}
if os.environ.get("BENCH_EIO3") == "1":
    _options["allow_eio3"] = True
io = fastsio.Server(**_options)  # type: ignore[arg-type]


@io.on("connection")
def on_connection(socket: "fastsio.Socket") -> None:
    socket.join("all")

    @socket.on("bcast")
    def bcast(n: int, payload: object) -> None:
        room = io.to("all")
        for _ in range(n):
            room.emit("msg", payload)
        return None

    @socket.on("echo")
    def echo(data: object) -> object:
        return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--asgi", action="store_true", help="host a FastAPI app on the same port")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--uvicorn", action="store_true", help="serve fastsio.ASGIApp(io) under uvicorn")
    args = parser.parse_args()
    if args.uvicorn:
        import uvicorn

        print(f"READY fastsio {fastsio.__version__} implementation={fastsio.IMPLEMENTATION} "
              f"ASGIApp under uvicorn {uvicorn.__version__} on {args.host}:{args.port}", flush=True)
        uvicorn.run(fastsio.ASGIApp(io), host=args.host, port=args.port, loop="uvloop", http="httptools",
                    log_level="warning", access_log=False, backlog=4096)
        return
    app = None
    if args.asgi:
        from fastapi import FastAPI

        app = FastAPI()

        @app.get("/health")
        async def health() -> dict[str, int]:
            return {"clients": len(io.sockets.sockets)}

    if not os.environ.get("FASTSIO_WORKER"):
        # the primary prints it once (workers run this same program again)
        print(f"READY fastsio {fastsio.__version__} implementation={fastsio.IMPLEMENTATION} "
              f"on {args.host}:{args.port}{' with a FastAPI app' if app is not None else ''}"
              + (f" workers={args.workers}" if args.workers > 1 else ""), flush=True)
    io.run(port=args.port, host=args.host, app=app, workers=args.workers)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
