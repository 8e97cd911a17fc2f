"""The benchmark app written for python-socketio (as pysio_app.py) with only the import changed:
``import fastsio.compat as socketio``, served on fastsio's own server.

    python compat_app.py --port 3000

On connection: join room "all". Event bcast(n, payload): emit "msg" with
payload to room "all" n times, then ack. Event echo(x): ack x.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

# Run from the checkout without installing: the repository root holds the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import fastsio  # noqa: E402
import fastsio.compat as socketio  # noqa: E402

sio = socketio.AsyncServer(async_mode="asgi")


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
    print(f"READY fastsio.compat {fastsio.__version__} ({fastsio.IMPLEMENTATION}) on {args.host}:{args.port}",
          flush=True)
    sio.fastsio_server.run(port=args.port, host=args.host)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
