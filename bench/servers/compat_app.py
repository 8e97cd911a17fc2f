"""The benchmark app written for python-socketio (as pysio_app.py) with only the import changed:
``import fastsio.compat as socketio``, served on fastsio's own server.

    python compat_app.py --port 3000

The handlers are pysio_events.py's, the ones pysio_app.py installs on
python-socketio: on connection join room "all"; bcast(n, payload) emits
"msg" to "all" n times, then acks; echo(x) acks x.
"""
from __future__ import annotations

import logging
import os
import sys

# Run from the checkout without installing: the repository root holds the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import fastsio  # noqa: E402
import fastsio.compat as socketio  # noqa: E402
from pysio_events import install, parse_args  # noqa: E402

sio = socketio.AsyncServer(async_mode="asgi")
install(sio)


def main() -> None:
    args = parse_args()
    print(f"READY fastsio.compat {fastsio.__version__} ({fastsio.IMPLEMENTATION}) on {args.host}:{args.port}",
          flush=True)
    sio.fastsio_server.run(port=args.port, host=args.host)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
