"""Soak: many connections held for minutes under churn and broadcasts, then a reconnect storm.

    python bench/soak/soak.py --connections 10000 --duration 240 --procs 2
    python bench/soak/soak.py --connections 1000 --duration 30      # the CI size

Starts ``server.py`` (fastsio, uvloop) and ``--procs`` Node processes of
``clients.js``, each holding its share of the connections: WebSocket, polling
and polling->WebSocket upgrade clients, a quarter of them churning
(disconnect, reconnect on a random transport, upgrade), some that stop reading
(in a room that gets 32 KB broadcasts, so the slow-consumer caps bound them),
while the server broadcasts a numbered event to everybody five times a second.

Checked at the end (exit code 1 and the failed checks listed otherwise):

- every client that stayed connected got every broadcast since it connected,
  in order, up to the last one (``b`` to all, ``h`` to the heavy room's fast
  readers); churned connections saw no gap either while they lived;
- server RSS, open fds and task count are flat after the warm-up: the slope of
  a least-squares line through the samples, times the measured time, stays
  within a bound (reported per minute);
- no ERROR / Traceback in the server log;
- reconnect storm: every connection cut at once comes back, zero refused;
- the server's graceful close returns in time.

The result is one JSON object (stdout, and ``--json FILE``); raise ``ulimit -n``
first for 10,000 connections (``bench/soak/run.sh`` does).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NODE_PATH = ROOT / "tests" / "peers" / "node_modules"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slope_per_s(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) points (0 with fewer than 3)."""
    n = len(points)
    if n < 3:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (y - my) for t, y in points) / var


class Proc:
    """A child process speaking JSON lines on stdout."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            self.lines.append(line)
            for w in list(self.waiters):
                if w[0] == line.get("event") and not w[1].done():
                    w[1].set_result(line)
                    self.waiters.remove(w)

    async def wait(self, event: str, timeout: float) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append((event, fut))
        return await asyncio.wait_for(fut, timeout)

    def send(self, cmd: str) -> None:
        if self.proc.returncode is not None or self.proc.stdin is None or self.proc.stdin.is_closing():
            raise RuntimeError(f"{self.name} exited early (code {self.proc.returncode}) before {cmd!r}")
        self.proc.stdin.write((cmd + "\n").encode())

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(sig)
                await asyncio.wait_for(self.proc.wait(), timeout)
            except (asyncio.TimeoutError, ProcessLookupError):
                if self.proc.returncode is None:
                    self.proc.kill()
                    await self.proc.wait()
        await asyncio.wait_for(self.reader, 5)


async def run_soak(connections: int = 1000, duration: float = 30.0, procs: int = 1, warmup: float = 0.0,
                   stopped: Optional[int] = None, heavy_fast: Optional[int] = None, churn_period: float = 10.0,
                   log_dir: Optional[Path] = None, python: str = sys.executable, node: str = "node",
                   pure: bool = False) -> dict[str, Any]:
    """Run one soak; returns the result dict (``result["failures"]`` lists what did not hold)."""
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"fastsio-soak-{os.getpid()}"
    log_dir.mkdir(parents=True, exist_ok=True)
    server_log = log_dir / "server.log"
    if server_log.exists():
        server_log.unlink()
    port = _free_port()
    stopped = max(1, connections // 200) if stopped is None else stopped
    heavy_fast = max(2, connections // 200) if heavy_fast is None else heavy_fast
    warmup = warmup or min(60.0, max(10.0, duration / 4))
    env = dict(os.environ)
    if pure:
        env["FASTSIO_NO_EXTENSIONS"] = "1"
    server = Proc("server", await asyncio.create_subprocess_exec(
        python, str(HERE / "server.py"), "--port", str(port), "--log", str(server_log),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=open(log_dir / "server.stderr", "wb"),
        env=env, cwd=str(ROOT)))
    result: dict[str, Any] = {"connections": connections, "duration_s": duration, "procs": procs,
                              "warmup_s": warmup, "stopped_readers": stopped, "heavy_fast": heavy_fast}
    failures: list[str] = []
    swarm: list[Proc] = []
    try:
        ready = await server.wait("ready", 30)
        result["server"] = {k: ready[k] for k in ("implementation", "loop", "nofile")}
        node_env = dict(os.environ, NODE_PATH=str(NODE_PATH))
        per = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
        for i, n in enumerate(per):
            swarm.append(Proc(f"clients{i}", await asyncio.create_subprocess_exec(
                node, str(HERE / "clients.js"), "--port", str(port), "--n", str(n), "--tag", str(i),
                "--stopped", str(stopped // procs + (1 if i < stopped % procs else 0)),
                "--heavy-fast", str(heavy_fast // procs + (1 if i < heavy_fast % procs else 0)),
                "--churn-period", str(churn_period),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=open(log_dir / f"clients{i}.stderr", "wb"), env=node_env, cwd=str(ROOT))))
        t_connect = time.monotonic()
        readies = await asyncio.gather(*[p.wait("ready", 120 + connections / 20) for p in swarm])
        result["initial_connect_s"] = round(time.monotonic() - t_connect, 2)
        result["initial_connected"] = sum(r["connected"] for r in readies)
        if result["initial_connected"] != connections:
            failures.append(f"initial connect: {result['initial_connected']} of {connections}")
        t_start = time.monotonic()
        samples_before = len([l for l in server.lines if l.get("event") == "sample"])
        await asyncio.sleep(duration)
        # stop churning, let the last churners settle, then stop the broadcasts
        for p in swarm:
            p.send("stop-churn")
        await asyncio.sleep(2.0)
        assert server.proc.pid is not None
        os.kill(server.proc.pid, signal.SIGUSR1)
        final = await server.wait("stopped", 10)
        await asyncio.sleep(3.0)   # the last broadcasts reach every client
        reports = []
        for p in swarm:
            p.send("report")
        reports = await asyncio.gather(*[p.wait("report", 30) for p in swarm])
        result["final_seq"] = final["seq"]
        result["final_hseq"] = final["hseq"]
        result["clients"] = reports
        stable_count = sum(r["stable"]["count"] for r in reports)
        stable_connected = sum(r["stable"]["connected"] for r in reports)
        b_gaps = sum(r["totals"]["b_gaps"] for r in reports)
        h_gaps = sum(r["totals"]["h_gaps"] for r in reports)
        last_min = min((r["stable"]["b_last_min"] for r in reports if r["stable"]["connected"]), default=-1)
        hlast_min = min((r["heavy"]["h_last_min"] for r in reports if r["heavy"]["connected"]), default=-1)
        heavy_connected = sum(r["heavy"]["connected"] for r in reports)
        heavy_count = sum(r["heavy"]["count"] for r in reports)
        result["delivery"] = {
            "stable_clients": stable_count, "stable_connected": stable_connected,
            "b_gaps": b_gaps, "h_gaps": h_gaps, "stable_last_min": last_min,
            "heavy_fast_connected": heavy_connected, "heavy_last_min": hlast_min,
            "churns": sum(r["totals"]["churns"] for r in reports),
            "upgrades": sum(r["totals"]["upgrades"] for r in reports),
            "lost": sum(r["totals"]["lost"] for r in reports),
            "volatile_received": sum(r["totals"]["v"] for r in reports),
        }
        if stable_connected != stable_count:
            failures.append(f"stable clients connected at the end: {stable_connected} of {stable_count}")
        if b_gaps or h_gaps:
            failures.append(f"gaps or reordering: b {b_gaps}, h {h_gaps}")
        if last_min != final["seq"]:
            failures.append(f"a stable client's last broadcast is {last_min}, the last sent is {final['seq']}")
        if heavy_count and (heavy_connected != heavy_count or hlast_min != final["hseq"]):
            failures.append(f"heavy-room fast readers: {heavy_connected} of {heavy_count} connected, "
                            f"last {hlast_min} of {final['hseq']}")
        # memory, fds, tasks after the warm-up, while connections were held
        samples = [l for l in server.lines if l.get("event") == "sample"][samples_before:]
        t_run_end = time.monotonic() - t_start
        series = [s for s in samples if s["t"] >= (samples[0]["t"] if samples else 0) + warmup]
        result["samples"] = len(samples)
        trend: dict[str, Any] = {}
        if len(series) >= 3:
            span = series[-1]["t"] - series[0]["t"]
            for key in ("rss_kib", "fds", "tasks", "bg_tasks", "sessions"):
                pts = [(s["t"], float(s[key])) for s in series]
                sl = slope_per_s(pts)
                mean = sum(y for _, y in pts) / len(pts)
                trend[key] = {"first": pts[0][1], "last": pts[-1][1], "min": min(y for _, y in pts),
                              "max": max(y for _, y in pts), "slope_per_min": round(sl * 60, 3),
                              "drift_over_span": round(sl * span, 1), "mean": round(mean, 1)}
            trend["span_s"] = round(span, 1)
            # flat: what the slope adds over the measured span is small next to the level
            rss = trend["rss_kib"]
            if rss["drift_over_span"] > max(0.05 * rss["mean"], 16 * 1024):
                failures.append(f"RSS grows: {rss['slope_per_min']} KiB/min over {span:.0f}s")
            fds = trend["fds"]
            if fds["drift_over_span"] > max(0.05 * fds["mean"], 50):
                failures.append(f"open fds grow: {fds['slope_per_min']}/min")
            tasks = trend["tasks"]
            if tasks["drift_over_span"] > max(0.05 * tasks["mean"], 50):
                failures.append(f"tasks grow: {tasks['slope_per_min']}/min")
        else:
            failures.append(f"too few samples after the warm-up: {len(series)}")
        result["trend"] = trend
        result["server_last_sample"] = samples[-1] if samples else None
        result["run_s"] = round(t_run_end, 1)
        # reconnect storm: every connection cut at once, all come back
        for p in swarm:
            p.send("storm")
        storms = await asyncio.gather(*[p.wait("storm", 120 + connections / 50) for p in swarm])
        result["storm"] = {
            "seconds": max(s["seconds"] for s in storms),
            "clients": sum(s["clients"] for s in storms),
            "connected": sum(s["connected"] for s in storms),
            "refused": sum(s["refused"] for s in storms),
            "timed_out_attempts": sum(s.get("timeouts", 0) for s in storms),
            "errors": [s["errors"] for s in storms],
        }
        if result["storm"]["connected"] != result["storm"]["clients"] or result["storm"]["refused"]:
            failures.append(f"storm: {result['storm']['connected']} of {result['storm']['clients']} back, "
                            f"{result['storm']['refused']} refused")
        for p in swarm:
            p.send("quit")
        await asyncio.gather(*[asyncio.wait_for(p.proc.wait(), 20) for p in swarm], return_exceptions=True)
        os.kill(server.proc.pid, signal.SIGTERM)
        closed = await server.wait("closed", 30)
        result["close_s"] = closed["seconds"]
        if closed["seconds"] > 6:
            failures.append(f"graceful close took {closed['seconds']}s")
        result["reasons"] = closed["reasons"]
    except (RuntimeError, asyncio.TimeoutError) as exc:
        failures.append(f"run aborted: {exc!r}")
        for name in ["server.stderr"] + [f"clients{i}.stderr" for i in range(len(swarm))]:
            f = log_dir / name
            if f.exists() and f.stat().st_size:
                failures.append(f"{name}: {f.read_text()[-1500:]}")
    finally:
        for p in swarm:
            await p.stop(signal.SIGKILL)
        await server.stop()
    log_text = server_log.read_text() if server_log.exists() else ""
    errors = [l for l in log_text.splitlines() if " ERROR " in l or "Traceback" in l or " CRITICAL " in l]
    result["server_log_errors"] = errors[:20]
    result["server_log_warnings"] = len([l for l in log_text.splitlines() if " WARNING " in l])
    if errors:
        failures.append(f"{len(errors)} error lines in the server log")
    result["failures"] = failures
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--duration", type=float, default=240)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--warmup", type=float, default=0)
    p.add_argument("--churn-period", type=float, default=15)
    p.add_argument("--pure", action="store_true", help="FASTSIO_NO_EXTENSIONS=1 for the server")
    p.add_argument("--json", help="write the result here too")
    p.add_argument("--log-dir", help="server and client logs (default: a temp dir)")
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.connections * 3 + 1000
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        except (ValueError, OSError):
            pass
    result = asyncio.run(run_soak(a.connections, a.duration, a.procs, a.warmup, churn_period=a.churn_period,
                                  log_dir=Path(a.log_dir) if a.log_dir else None, pure=a.pure))
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    if result["failures"]:
        print("FAILED:\n  " + "\n  ".join(result["failures"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
