"""python-socketio 5.x AsyncServer as an ASGI app under uvicorn (uvloop + httptools).

    python pysio_app.py --port 3000

On connection: join room "all". Event bcast(n, payload): emit "msg" with
payload to room "all" n times, then ack. Event echo(x): ack x.

python-socketio has no per-message-deflate option and python-engineio 4 no
Engine.IO v3, so BENCH_DEFLATE / BENCH_EIO3 change nothing here (uvicorn's
own WebSocket layer may still negotiate permessage-deflate: the load
generator reports whether it did).
"""
from __future__ import annotations

import argparse
import logging

import socketio
import uvicorn

sio = socketio.AsyncServer(async_mode="asgi")
app = socketio.ASGIApp(sio)


@sio.event
async def connect(sid: str, environ: dict, auth: object = None) -> None:
    await sio.enter_room(sid, "all")


@sio.event
async def bcast(sid: str, n: int, payload: object) -> None:
    for _ in range(n):
        await sio.emit("msg", payload, room="all")
    return None


@sio.event
async def echo(sid: str, data: object) -> object:
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    print(f"READY python-socketio {socketio.__version__ if hasattr(socketio, '__version__') else ''} "
          f"uvicorn {uvicorn.__version__} on {args.host}:{args.port}", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
