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
  a least-squares line through the samples, times the measured span, stays
  within a bound (reported per minute). The bounds are wide on purpose (the
  machine this runs on is shared and noisy); a leak per connection or per
  churn cycle crosses them by far (1,000 connections churning a quarter every
  ~8 s open ~600 connections in a 20 s span, so one leaked fd each is 600):

  - RSS: drift ≤ max(5 % of the mean, 16 MiB)  (``RSS_DRIFT_*``)
  - open fds: drift ≤ max(25 % of the mean, 150)  (``FDS_DRIFT_*``; churn
    moves the count by ±10 % from one sample to the next)
  - asyncio tasks: drift ≤ max(10 % of the mean, 50)  (``TASKS_DRIFT_*``)
  - peak RSS above the idle server ≤ 64 KiB per connection + 2 × the cap per
    stopped reader + 48 MiB  (``RSS_*``: the caps bound what a non-reader holds)

- every client that stopped reading is disconnected by the server as a slow
  consumer: reason ``"transport error"``, a description naming
  ``max_buffered_bytes``, with no more than the cap plus one write pending
  (``STOPPED_SLACK``), before the end of the run;
- no ERROR / Traceback in the server log;
- reconnect storm: every connection cut at once comes back, zero refused;
- the server's graceful close returns in time.

Every failure is one line saying which invariant broke, with the numbers; the
result also carries the load average and the client processes' worst
event-loop lag, so a failure on a starved machine can be told apart.

The result is one JSON object (stdout, and ``--json FILE``); raise ``ulimit -n``
first for 10,000 connections (``bench/soak/run.sh`` does).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

# the invariants' bounds (see the module docstring)
RSS_DRIFT_FRAC, RSS_DRIFT_MIN_KIB = 0.05, 16 * 1024
FDS_DRIFT_FRAC, FDS_DRIFT_MIN = 0.25, 150
TASKS_DRIFT_FRAC, TASKS_DRIFT_MIN = 0.10, 50
RSS_PER_CONNECTION_KIB, RSS_FIXED_KIB = 64, 48 * 1024
STOPPED_SLACK = 2   # pending bytes at the cut ≤ cap + STOPPED_SLACK × (largest message + 4 KiB)
SINK_BYTES = 256 * 1024
CLOSE_MAX_S = 6.0

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


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def raise_fd_limit(need: int) -> None:
    """Raise the soft RLIMIT_NOFILE towards ``need`` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY else min(hard, need), hard))
        except (ValueError, OSError):
            pass


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
                   pure: bool = False, interval: float = 0.2, heavy_bytes: int = 32768,
                   heavy_interval: float = 0.1, sample_every: float = 2.0, ws_frac: float = 0.6,
                   upgrade_frac: float = 0.2, max_buffered_bytes: int = 2 * 1024 * 1024,
                   drain_timeout: float = 5.0, storm: bool = True, concurrency: int = 200,
                   settle: float = 3.0) -> dict[str, Any]:
    """Run one soak; returns the result dict (``result["failures"]`` lists what did not hold).

    Raises this process's soft fd limit (the children inherit it) to what the
    connections need, up to the hard limit.

    ``interval``: seconds between numbered broadcasts to everybody;
    ``heavy_bytes`` / ``heavy_interval``: the broadcasts to the heavy room
    (320 kB/s by default: a fast reader survives a stall of several seconds;
    the stopped readers also get 2.6 MB/s of their own, so they reach
    ``max_buffered_bytes`` a few seconds after they connect); ``ws_frac`` / ``upgrade_frac``: the share of clients
    starting on WebSocket / on polling then upgrading (the rest poll).
    """
    raise_fd_limit(connections * 3 + 1000)
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
        "--interval", str(interval), "--heavy-bytes", str(heavy_bytes), "--heavy-interval", str(heavy_interval),
        "--sample-every", str(sample_every), "--max-buffered-bytes", str(max_buffered_bytes),
        "--drain-timeout", str(drain_timeout), "--sink-bytes", str(SINK_BYTES),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=open(log_dir / "server.stderr", "wb"),
        env=env, cwd=str(ROOT), limit=1 << 24))
    result: dict[str, Any] = {"connections": connections, "duration_s": duration, "procs": procs,
                              "warmup_s": warmup, "stopped_readers": stopped, "heavy_fast": heavy_fast,
                              "interval_s": interval, "heavy_bytes": heavy_bytes, "heavy_interval_s": heavy_interval,
                              "ws_frac": ws_frac, "upgrade_frac": upgrade_frac, "churn_period_s": churn_period, "sample_every_s": sample_every,
                              "max_buffered_bytes": max_buffered_bytes, "load_avg_start": os.getloadavg(),
                              "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "commit": _commit(), "cpus": os.cpu_count()}
    failures: list[str] = []
    swarm: list[Proc] = []
    try:
        ready = await server.wait("ready", 30)
        assert server.proc.pid is not None
        result["server"] = {k: ready[k] for k in ("implementation", "loop", "nofile", "rss_kib")}
        node_env = dict(os.environ, NODE_PATH=str(NODE_PATH))
        per = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
        for i, n in enumerate(per):
            swarm.append(Proc(f"clients{i}", await asyncio.create_subprocess_exec(
                node, str(HERE / "clients.js"), "--port", str(port), "--n", str(n), "--tag", str(i),
                "--stopped", str(stopped // procs + (1 if i < stopped % procs else 0)),
                "--heavy-fast", str(heavy_fast // procs + (1 if i < heavy_fast % procs else 0)),
                "--churn-period", str(churn_period), "--ws-frac", str(ws_frac),
                "--upgrade-frac", str(upgrade_frac), "--concurrency", str(concurrency),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=open(log_dir / f"clients{i}.stderr", "wb"), env=node_env, cwd=str(ROOT), limit=1 << 24)))
        t_connect = time.monotonic()
        readies = await asyncio.gather(*[p.wait("ready", 120 + connections / 20) for p in swarm])
        result["initial_connect_s"] = round(time.monotonic() - t_connect, 2)
        result["initial_connected"] = sum(r["connected"] for r in readies)
        if result["initial_connected"] != connections:
            failures.append(f"initial connect: {result['initial_connected']} of {connections}")
        os.kill(server.proc.pid, signal.SIGHUP)   # the broadcasts to everybody start
        t_start = time.monotonic()
        samples_before = len([line for line in server.lines if line.get("event") == "sample"])
        await asyncio.sleep(min(warmup, duration))
        os.kill(server.proc.pid, signal.SIGUSR2)   # the server counts its objects by type (see "objects_grown")
        await asyncio.sleep(max(0.0, duration - warmup))
        # stop churning, let the last churners settle, then stop the broadcasts
        for p in swarm:
            p.send("stop-churn")
        await asyncio.sleep(2.0)
        os.kill(server.proc.pid, signal.SIGUSR1)
        final = await server.wait("stopped", 60)
        await asyncio.sleep(settle)   # the last broadcasts reach every client
        reports = []
        for p in swarm:
            p.send("report")
        reports = await asyncio.gather(*[p.wait("report", 60) for p in swarm])
        samples_all = [line for line in server.lines if line.get("event") == "sample"][samples_before:]
        result["objects_grown_after_warmup"] = final.get("objects_grown")
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
        client_errors: collections.Counter[str] = collections.Counter()
        for r in reports:
            client_errors.update(r["totals"]["errors"])
        result["delivery"]["client_errors"] = dict(client_errors)
        if stable_connected != stable_count:
            failures.append(f"clients meant to stay connected lost their connection: {stable_count - stable_connected} "
                            f"of {stable_count} (client-side errors {dict(client_errors)}, server-side reasons "
                            f"{samples_all[-1]['reasons'] if samples_all else '?'})")
        if b_gaps or h_gaps:
            stable_gaps = sum(r["stable"]["b_gaps"] for r in reports)
            failures.append(f"broadcasts missing or out of order: {b_gaps} gaps in 'b' ({stable_gaps} on clients that "
                            f"stayed connected), {h_gaps} in 'h'")
            result["delivery"]["gap_samples"] = [g for r in reports for g in r.get("gap_samples", [])][:20]
            failures.append(f"first gaps: {result['delivery']['gap_samples'][:4]}")
        first_max = max((r["stable"]["b_first_max"] for r in reports if r["stable"]["connected"]), default=-1)
        result["delivery"]["stable_first_max"] = first_max
        if first_max > 0:
            # every one of them was connected before the first broadcast
            failures.append(f"a client that stayed connected missed the first broadcasts: its first 'b' is {first_max}")
        if last_min != final["seq"]:
            failures.append(f"a client that stayed connected stopped receiving: its last 'b' is {last_min}, "
                            f"the last sent is {final['seq']}")
        result["delivery"]["heavy_fast_ended"] = final.get("heavy_fast_ended", [])
        if heavy_count and (heavy_connected != heavy_count or hlast_min != final["hseq"]):
            failures.append(f"heavy-room fast readers: {heavy_connected} of {heavy_count} connected, "
                            f"last 'h' {hlast_min} of {final['hseq']}; ended on the server: "
                            f"{[(e['reason'], e['description'][:120], e['t_disconnect']) for e in final.get('heavy_fast_ended', [])]}")
        # the clients that stopped reading: cut by the server as slow consumers, within the caps
        cap = max_buffered_bytes
        slack = STOPPED_SLACK * (max(heavy_bytes, SINK_BYTES) + 4096)
        ends = final.get("stopped_readers", [])
        pending = []
        bad = []
        for e in ends:
            m = re.search(r"(\d+) bytes pending", e.get("description", ""))
            if m:
                pending.append(int(m.group(1)))
            if e.get("reason") != "transport error" or "max_buffered_bytes" not in e.get("description", ""):
                bad.append(e)
        cut_after = [round(e["t_disconnect"] - e["t_connect"], 2) for e in ends if "t_disconnect" in e]
        result["stopped"] = {
            "clients": stopped, "seen_by_server": len(ends),
            "cut_as_slow_consumers": len(ends) - len(bad),
            "transports": dict(collections.Counter(e["transport"] for e in ends)),
            "pending_at_cut_max": max(pending, default=None),
            "cut_after_connect_s_max": max(cut_after, default=None),
            "slow_consumer_disconnects": samples_all[-1].get("slow_consumer_disconnects") if samples_all else None,
            "volatile_dropped": samples_all[-1].get("volatile_dropped") if samples_all else None,
            "ends": ends[:40],
        }
        if len(ends) != stopped:
            failures.append(f"stopped readers: the server saw {len(ends)} of {stopped}")
        if bad:
            failures.append(f"stopped readers not cut as slow consumers: {len(bad)} of {len(ends)}, e.g. "
                            f"{[(e.get('reason', 'still connected'), e.get('description', '')[:120]) for e in bad[:3]]}")
        if pending and max(pending) > cap + slack:
            failures.append(f"stopped readers held past the cap: {max(pending)} bytes pending at the cut "
                            f"> max_buffered_bytes {cap} + {slack}")
        # memory, fds, tasks after the warm-up, while connections were held
        samples = samples_all
        t_run_end = time.monotonic() - t_start
        series = [s for s in samples if s["t"] >= (samples[0]["t"] if samples else 0) + warmup]
        result["samples"] = len(samples)
        result["series"] = [[s["t"], s["rss_kib"], s["fds"], s["tasks"], s["sessions"], s["objects"]] for s in samples]
        trend: dict[str, Any] = {}
        if len(series) >= 3:
            span = series[-1]["t"] - series[0]["t"]
            for key in ("rss_kib", "fds", "tasks", "bg_tasks", "sessions", "objects"):
                pts = [(s["t"], float(s[key])) for s in series]
                sl = slope_per_s(pts)
                mean = sum(y for _, y in pts) / len(pts)
                trend[key] = {"first": pts[0][1], "last": pts[-1][1], "min": min(y for _, y in pts),
                              "max": max(y for _, y in pts), "slope_per_min": round(sl * 60, 3),
                              "drift_over_span": round(sl * span, 1), "mean": round(mean, 1)}
            trend["span_s"] = round(span, 1)
            # flat: what the slope adds over the measured span is small next to the level
            for key, label, frac, floor, unit in (
                    ("rss_kib", "server RSS", RSS_DRIFT_FRAC, RSS_DRIFT_MIN_KIB, " KiB"),
                    ("fds", "server open fds", FDS_DRIFT_FRAC, FDS_DRIFT_MIN, ""),
                    ("tasks", "server asyncio tasks", TASKS_DRIFT_FRAC, TASKS_DRIFT_MIN, "")):
                t = trend[key]
                bound = max(frac * t["mean"], floor)
                if t["drift_over_span"] > bound:
                    failures.append(f"{label} grows after the warm-up: {t['slope_per_min']}{unit}/min, "
                                    f"+{t['drift_over_span']}{unit} over {span:.0f} s > bound {bound:.0f}{unit} "
                                    f"(first {t['first']:.0f}, last {t['last']:.0f}, max {t['max']:.0f})")
        else:
            failures.append(f"too few samples after the warm-up: {len(series)}")
        rss_idle = result["server"]["rss_kib"]
        rss_peak = max((s["rss_kib"] for s in samples), default=0)
        rss_budget = connections * RSS_PER_CONNECTION_KIB + stopped * 2 * cap // 1024 + RSS_FIXED_KIB
        result["rss"] = {"idle_kib": rss_idle, "peak_kib": rss_peak, "peak_above_idle_kib": rss_peak - rss_idle,
                         "budget_kib": rss_budget}
        if rss_peak - rss_idle > rss_budget:
            failures.append(f"server RSS peak {rss_peak} KiB is {rss_peak - rss_idle} KiB above the idle server, "
                            f"over the budget {rss_budget} KiB ({RSS_PER_CONNECTION_KIB} KiB per connection + "
                            f"2 x {cap} bytes per stopped reader + {RSS_FIXED_KIB} KiB)")
        result["trend"] = trend
        result["server_last_sample"] = samples[-1] if samples else None
        result["run_s"] = round(t_run_end, 1)
        # reconnect storm: every connection cut at once, all come back
        if storm:
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
        closed = await server.wait("closed", 60)
        result["close_s"] = closed["seconds"]
        if closed["seconds"] > CLOSE_MAX_S:
            failures.append(f"graceful close took {closed['seconds']} s > {CLOSE_MAX_S} s")
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
    errors = [line for line in log_text.splitlines()
              if " ERROR " in line or "Traceback" in line or " CRITICAL " in line]
    result["server_log_errors"] = errors[:20]
    result["server_log_warnings"] = len([line for line in log_text.splitlines() if " WARNING " in line])
    if errors:
        failures.append(f"{len(errors)} error lines in the server log, first: {errors[0][:300]}")
    result["load_avg_end"] = os.getloadavg()
    lags = [r.get("lag", {}).get("max_s", 0) for r in result.get("clients", [])]
    result["client_lag_max_s"] = max(lags, default=None)
    if failures:
        # what the machine was doing: a starved client process answers late and reads late
        failures.append(f"(context: load average {result['load_avg_start'][0]:.1f} at the start, "
                        f"{result['load_avg_end'][0]:.1f} at the end on {os.cpu_count()} cores; "
                        f"worst client event-loop lag {result['client_lag_max_s']} s)")
    result["failures"] = failures
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--duration", type=float, default=240)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--warmup", type=float, default=0)
    p.add_argument("--churn-period", type=float, default=15)
    p.add_argument("--stopped", type=int, default=None, help="clients that stop reading (default N/200)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between numbered broadcasts")
    p.add_argument("--heavy-fast", type=int, default=None, help="fast readers in the heavy room (default N/200)")
    p.add_argument("--heavy-bytes", type=int, default=32768)
    p.add_argument("--heavy-interval", type=float, default=0.1)
    p.add_argument("--sample-every", type=float, default=2.0)
    p.add_argument("--ws-frac", type=float, default=0.6)
    p.add_argument("--upgrade-frac", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=200, help="connects in flight per client process")
    p.add_argument("--no-storm", action="store_true")
    p.add_argument("--pure", action="store_true", help="FASTSIO_NO_EXTENSIONS=1 for the server")
    p.add_argument("--json", help="write the result here too")
    p.add_argument("--log-dir", help="server and client logs (default: a temp dir)")
    a = p.parse_args()
    result = asyncio.run(run_soak(a.connections, a.duration, a.procs, a.warmup, stopped=a.stopped, heavy_fast=a.heavy_fast,
                                  churn_period=a.churn_period, log_dir=Path(a.log_dir) if a.log_dir else None,
                                  pure=a.pure, interval=a.interval, heavy_bytes=a.heavy_bytes,
                                  heavy_interval=a.heavy_interval, sample_every=a.sample_every, ws_frac=a.ws_frac,
                                  upgrade_frac=a.upgrade_frac, storm=not a.no_storm, concurrency=a.concurrency))
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
