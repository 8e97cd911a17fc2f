"""The primary: binds the port, starts N workers, restarts the ones that die, stops them all.

The primary serves no client traffic. It owns the listening sockets (one
``SO_REUSEPORT`` socket per worker, inherited by it; the kernel spreads new
connections over them, and since the primary keeps them open a connection
queued for a worker that died waits for its successor), a private directory (mode 0700) for the
workers' Unix sockets, and a lifeline pipe: a worker whose primary is gone
sees end of file on it and stops.

A worker reports on a status pipe: ``R`` once it accepts connections, or
``E`` and its traceback if it fails while starting. Its stderr goes through
the primary (and on to the primary's stderr) so that the last lines of a
worker that failed can be shown in the primary's own error.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

from .worker import ENV

__all__ = ["Supervisor", "WorkersFailed"]

logger = logging.getLogger("fastsio.workers")

_START_FAILURES = 3      # consecutive start failures of one worker before the primary gives up
_RESTART_BACKOFF = 0.5   # seconds, times the number of consecutive failures
_STDERR_TAIL = 8192


class WorkersFailed(RuntimeError):
    """Workers keep dying while they start: ``exit_code`` is what the primary exits with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Worker:
    __slots__ = ("index", "proc", "status_r", "stderr", "ready", "tail", "status", "started",
                 "failures", "restart_at", "ever_ready")

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.status_r = -1
        self.stderr: Any = None
        self.ready = False
        self.ever_ready = False
        self.tail = b""
        self.status = b""
        self.started = 0.0
        self.failures = 0
        self.restart_at: Optional[float] = None


class Supervisor:
    """Runs ``command`` N times as workers on one listening socket (blocking ``run()``).

    Args:
        command: the worker's command line (the primary's own, by default).
        host: address to bind.
        port: port to bind (0: any free port).
        workers: number of worker processes.
        shutdown_timeout: seconds a worker may take to close gracefully.
        options: extra worker settings (JSON-serialisable).
    """

    def __init__(self, command: Sequence[str], *, host: str, port: int, workers: int,
                 shutdown_timeout: float = 10.0, options: Optional[dict[str, Any]] = None) -> None:
        self.command = list(command)
        self.host = host
        self.port = port
        self.count = workers
        self.shutdown_timeout = shutdown_timeout
        self.options = dict(options or {})
        self.workers = [_Worker(i) for i in range(workers)]
        self._stop_signal: Optional[int] = None
        self._all_ready = False
        self._sel = selectors.DefaultSelector()
        self._socks: list[socket.socket] = []
        self._dir = ""
        self._key = secrets.randbits(8)
        self._lifeline_r = -1
        self._lifeline_w = -1

    # -- life cycle --------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM; returns the exit code (raises WorkersFailed on a start failure)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # one SO_REUSEPORT socket per worker: the kernel spreads new connections over them
        # by address hash; the primary keeps them all open, so connections queued on the
        # socket of a worker that died wait there for its successor
        for _ in range(self.count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.host, self.port))
            sock.listen(4096)
            sock.set_inheritable(True)
            self._socks.append(sock)
            self.port = sock.getsockname()[1]
        self._dir = tempfile.mkdtemp(prefix="fastsio-workers-")
        os.chmod(self._dir, 0o700)
        self._lifeline_r, self._lifeline_w = os.pipe()
        os.set_inheritable(self._lifeline_r, True)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            logger.info("fastsio primary %d: %d workers on http://%s:%d", os.getpid(), self.count,
                        self.host, self.port)
            for w in self.workers:
                self._spawn(w)
            self._loop()
            return 0
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for sock in self._socks:
                sock.close()
            os.close(self._lifeline_r)
            os.close(self._lifeline_w)
            shutil.rmtree(self._dir, ignore_errors=True)
            self._sel.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:
            # a second signal: no more patience
            for w in self.workers:
                if w.proc is not None and w.proc.poll() is None:
                    w.proc.kill()
        self._stop_signal = signum

    def _spawn(self, w: _Worker) -> None:
        listen_fd = self._socks[w.index].fileno()
        status_r, status_w = os.pipe()
        info = {"index": w.index, "count": self.count, "dir": self._dir, "key": self._key,
                "listen_fd": listen_fd, "status_fd": status_w, "lifeline_fd": self._lifeline_r,
                "shutdown_timeout": self.shutdown_timeout, **self.options}
        env = dict(os.environ)
        env[ENV] = json.dumps(info)
        w.proc = subprocess.Popen(self.command, env=env, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  pass_fds=(listen_fd, status_w, self._lifeline_r))
        os.close(status_w)
        os.set_blocking(status_r, False)
        w.status_r = status_r
        w.stderr = w.proc.stderr
        assert w.stderr is not None
        os.set_blocking(w.stderr.fileno(), False)
        self._sel.register(status_r, selectors.EVENT_READ, (w, "status"))
        self._sel.register(w.stderr.fileno(), selectors.EVENT_READ, (w, "stderr"))
        w.ready = False
        w.tail = b""
        w.status = b""
        w.started = time.monotonic()
        w.restart_at = None
        logger.debug("worker %d started (pid %d)", w.index, w.proc.pid)

    def _loop(self) -> None:
        while self._stop_signal is None:
            for key, _ in self._sel.select(0.05):
                w, kind = key.data
                self._read(w, kind)
            now = time.monotonic()
            for w in self.workers:
                if w.proc is not None and w.proc.poll() is not None:
                    self._reap(w)
                if w.proc is None and w.restart_at is not None and now >= w.restart_at and self._stop_signal is None:
                    self._spawn(w)

    def _read(self, w: _Worker, kind: str) -> None:
        fd = w.status_r if kind == "status" else w.stderr.fileno()
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._sel.unregister(fd)
            return
        if kind == "stderr":
            try:
                sys.stderr.buffer.write(data)
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
            w.tail = (w.tail + data)[-_STDERR_TAIL:]
            return
        w.status += data
        if w.status.startswith(b"R") and not w.ready:
            w.ready = w.ever_ready = True
            w.failures = 0
            assert w.proc is not None
            logger.debug("worker %d ready (pid %d)", w.index, w.proc.pid)
            if not self._all_ready and all(x.ready for x in self.workers):
                self._all_ready = True
                logger.info("fastsio primary %d: all %d workers ready", os.getpid(), self.count)

    def _close_pipes(self, w: _Worker) -> None:
        # what is left in the pipes (the last words of a dying worker)
        for kind in ("status", "stderr"):
            fd = w.status_r if kind == "status" else (w.stderr.fileno() if w.stderr is not None else -1)
            if fd < 0:
                continue
            for _ in range(64):
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                if kind == "stderr":
                    try:
                        sys.stderr.buffer.write(data)
                        sys.stderr.flush()
                    except (OSError, ValueError, AttributeError):
                        pass
                    w.tail = (w.tail + data)[-_STDERR_TAIL:]
                else:
                    w.status += data
            try:
                self._sel.unregister(fd)
            except (KeyError, ValueError):
                pass
        os.close(w.status_r)
        w.status_r = -1
        if w.stderr is not None:
            w.stderr.close()
            w.stderr = None

    def _reap(self, w: _Worker) -> None:
        proc = w.proc
        assert proc is not None
        code = proc.returncode
        self._close_pipes(w)
        w.proc = None
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        if self._stop_signal is not None:
            return
        if not w.ready and not w.status.startswith(b"R"):
            w.failures += 1
            if not any(x.ever_ready for x in self.workers) or w.failures >= _START_FAILURES:
                error = w.status[1:] if w.status.startswith(b"E") else w.tail
                text = error.decode("utf-8", "replace").strip()
                last = text.splitlines()[-1] if text else "(no output)"
                raise WorkersFailed(f"worker {w.index} (pid {proc.pid}) {how} while starting: {last}",
                                    code if code > 0 else 1)
            logger.warning("worker %d (pid %d) %s while starting; restarting", w.index, proc.pid, how)
        else:
            logger.warning("worker %d (pid %d) %s; restarting it", w.index, proc.pid, how)
        w.ready = False
        w.restart_at = time.monotonic() + _RESTART_BACKOFF * w.failures

    def _stop_all(self) -> None:
        live = [w for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for w in live:
            assert w.proc is not None
            try:
                w.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.shutdown_timeout + 2
        while time.monotonic() < deadline and any(w.proc is not None and w.proc.poll() is None for w in live):
            for key, _ in self._sel.select(0.05):
                w, kind = key.data
                self._read(w, kind)
        for w in self.workers:
            if w.proc is None:
                continue
            if w.proc.poll() is None:
                logger.warning("worker %d (pid %d) did not stop in time: killing it", w.index, w.proc.pid)
                w.proc.kill()
                w.proc.wait()
            self._close_pipes(w)
            w.proc = None
