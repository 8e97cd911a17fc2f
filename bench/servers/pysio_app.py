"""python-socketio 5.x AsyncServer as an ASGI app under uvicorn (uvloop + httptools).

    python pysio_app.py --port 3000

The handlers are pysio_events.py's (compat_app.py installs the same ones on
fastsio.compat): on connection join room "all"; bcast(n, payload) emits
"msg" to "all" n times, then acks; echo(x) acks x.

python-socketio has no per-message-deflate option and python-engineio 4 no
Engine.IO v3, so BENCH_DEFLATE / BENCH_EIO3 change nothing here (uvicorn's
own WebSocket layer may still negotiate permessage-deflate: the load
generator reports whether it did).
"""
from __future__ import annotations

import logging

import socketio
import uvicorn
from pysio_events import install, parse_args

sio = socketio.AsyncServer(async_mode="asgi")
app = socketio.ASGIApp(sio)
install(sio)


def main() -> None:
    args = parse_args()
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
