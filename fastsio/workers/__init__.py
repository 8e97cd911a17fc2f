"""Many worker processes on one port: ``io.run(port=3000, workers=N)``.

See docs/workers.md for how it works. In short: a primary process binds the
port and supervises N workers; each worker runs the same program up to
``io.run`` and serves there, a full fastsio server on its own uvloop. A
request for a session of another worker is handed, TCP connection and the
bytes already read, to that worker (``routing``); the workers share rooms
and broadcasts over a local cluster adapter (``fastsio.adapters.local``),
or over the Redis adapter the app configured.

Linux only (``SCM_RIGHTS`` with ``memfd``, ``sched_getaffinity``).
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Optional, Sequence, Union

from .supervisor import Supervisor, WorkersFailed
from .worker import ENV, serve_worker, worker_info

__all__ = ["run", "resolve_workers", "current_worker", "WorkersFailed", "ENV"]

logger = logging.getLogger(__name__)


def resolve_workers(workers: Union[int, str, None]) -> int:
    """The number of workers ``workers`` asks for: an int >= 1, or ``"auto"`` (usable cores).

    Raises:
        ValueError: for anything else.
    """
    if workers is None:
        return 1
    if workers == "auto":
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1 or 'auto', not {workers!r}")
    if workers > 256:
        raise ValueError("workers must be at most 256")
    return workers


def current_worker() -> Optional[tuple[int, int]]:
    """``(index, count)`` inside a worker before it serves; None in a single process or the primary."""
    info = worker_info()
    if info is None:
        return None
    return int(info["index"]), int(info["count"])


def run(server: Any, *, port: Optional[int], host: str = "0.0.0.0", workers: Union[int, str] = 1,
        ssl: Any = None, shutdown_timeout: float = 10.0, command: Optional[Sequence[str]] = None,
        app: Any = None) -> None:
    """Serve ``server`` with ``workers`` processes on one port (blocking).

    In the primary this binds ``host:port``, starts the workers by running
    ``command`` (default: this program's own command line) and returns when
    SIGINT or SIGTERM has stopped them. In a worker (the same program, run
    again by the primary) it serves ``server`` until the primary stops it.

    Args:
        server: the fastsio.Server.
        port: the port (0 picks a free one; the primary logs which).
        host: the address to bind.
        workers: an int >= 1, or ``"auto"`` for ``len(os.sched_getaffinity(0))``.
        ssl: not supported with workers > 1 (a TLS connection cannot move
            between processes): terminate TLS in front.
        shutdown_timeout: seconds each worker may take to close gracefully.
        command: the worker command line (the command line tool passes its own).
        app: an ASGI app every worker serves beside the server (``Server.run(app=...)``).

    Raises:
        WorkersFailed: the workers keep dying while they start (bad import...);
            ``exit_code`` is the worker's.
        RuntimeError: not on Linux, or ``ssl`` given.
    """
    info = worker_info()
    if info is not None:
        serve_worker(server, info, app)
        return
    count = resolve_workers(workers)
    if not sys.platform.startswith("linux"):
        raise RuntimeError("workers > 1 needs Linux (connections move between workers with SCM_RIGHTS "
                           "and memfd); run one process per port behind a sticky load balancer elsewhere")
    if ssl is not None:
        raise RuntimeError("ssl is not supported with workers > 1: a TLS connection cannot move between "
                           "processes; terminate TLS in a proxy in front")
    if port is None:
        raise ValueError("run(workers=N) needs a port")
    if command is None:
        command = [sys.executable, *sys.orig_argv[1:]]
    if not logging.getLogger().handlers and not logger.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sup = Supervisor(command, host=host, port=port, workers=count, shutdown_timeout=shutdown_timeout)
    try:
        sup.run()
    except WorkersFailed as exc:
        logger.error("%s", exc)
        raise SystemExit(exc.exit_code) from None
