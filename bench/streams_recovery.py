"""Connection state recovery benchmarks (issue 9 section 5), standalone.

    .venv/bin/python bench/streams_recovery.py cost  [--clients 1000]
    .venv/bin/python bench/streams_recovery.py storm [--sizes 1000,5000] [--kinds fastsio,node]

``cost`` (a): the broadcast cost on one fastsio server, CPU microseconds per
delivered message (bench/loadgen.js fanout bursts of 200 repeated for 4 s, raw WebSocket clients),
with recovery off and on, with the in-memory adapter and with the Redis
Streams adapter (a private redis-server).

``storm`` (b): N npm socket.io-client clients (tests/peers/node_streams_clients.mjs,
1,000 per Node process, connected in groups of 250) connected to server A of
a Redis Streams cluster; a third server of the same kind broadcasts
``m <counter>`` to their room every ``1000 * N / --rate`` ms (100 ms at
1,000 clients with the default 10,000 deliveries per second, so the clients'
side has the same work at every N; at 50,000 a second the 10,000 npm clients
alone need more than one of a 2-core machine's cores and starve the servers,
bench/RESULTS.md H); every client's TCP connection is cut at
once and it reconnects to server B (``--delay-ms``/``--delay-max-ms``: its
reconnectionDelay/Max, 50/500 ms by default, socket.io-client's own are
1000/5000). Reported: the share of clients recovered, the share of the
messages sent that every client got (in order, none twice), the time from the
cut until the last client is back (and the median and 90th percentile), the
reconnect attempts and their errors, and the CPU seconds each process used
from the cut until all were back. fastsio servers
(bench/servers/fastsio_streams_app.py) against Node socket.io 4.8 with
@socket.io/redis-streams-adapter (tests/peers/node_streams_server.mjs), the
same clients for both. The script raises its open-file limit (inherited by
the servers and drivers) for 10,000 clients.

Prints one JSON object per measurement and a Markdown table at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "tests" / "peers"
PY = str(ROOT / ".venv" / "bin" / "python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning",
                                      "--maxclients", "20000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "flushall"], check=False, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- (a) cost ------------------------------------------------------------------------


def run_cost(clients: int, redis: Redis) -> list[dict[str, Any]]:
    rows = []
    for adapter in ("memory", "streams"):
        for recovery in (False, True):
            port = free_port()
            env = dict(os.environ)
            if recovery:
                env["FASTSIO_BENCH_RECOVERY"] = "1"
            if adapter == "streams":
                env["FASTSIO_BENCH_STREAMS"] = redis.url
                redis.flush()
            server = subprocess.Popen([PY, str(ROOT / "bench" / "servers" / "fastsio_app.py"), "--port", str(port)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                assert server.stdout is not None
                ready = server.stdout.readline()
                assert ready.startswith("READY"), ready
                out = subprocess.run(
                    ["node", str(ROOT / "bench" / "loadgen.js"), "--port", str(port), "--pid", str(server.pid),
                     "--scenario", "fanout", "--clients", str(clients), "--burst", "200", "--singles", "0",
                     "--offset", "1" if recovery else "0", "--min-seconds", "4", "--max-bursts", "1000"],
                    cwd=str(ROOT / "bench"), capture_output=True, text=True, timeout=300,
                    env={**os.environ, "NODE_PATH": str(ROOT / "bench" / "node_modules")},
                )
                if out.returncode != 0:
                    raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                row = {"bench": "cost", "adapter": adapter, "recovery": recovery, "clients": clients,
                       "cpu_us_per_msg": result["burst"]["cpu_us_per_msg"],
                       "msgs_per_s": result["burst"]["msgs_per_s"], "impl": ready.split("implementation=")[-1].split()[0]}
                print(json.dumps(row), flush=True)
                rows.append(row)
            finally:
                server.terminate()
                server.wait(10)
    return rows


# -- (b) storm -------------------------------------------------------------------------


class Proc:
    """A subprocess speaking lines on stdin/stdout."""

    def __init__(self, argv: list[str], env: Optional[dict[str, str]] = None, log: Optional[str] = None) -> None:
        self.argv = argv
        self.log = log
        self.env = env
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.n = 0

    async def start(self, until: str, timeout: float = 120) -> str:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=open(self.log, "ab") if self.log else asyncio.subprocess.DEVNULL, env=self.env, cwd=str(PEERS), limit=256 * 1024 * 1024)
        return await self.read_until(until, timeout)

    async def read_until(self, marker: str, timeout: float = 120) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        end = time.monotonic() + timeout
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), max(0.1, end - time.monotonic()))
            if not line:
                raise RuntimeError(f"{self.argv[:2]} exited")
            text = line.decode()
            if marker in text:
                return text

    async def send(self, text: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def cmd(self, name: str, timeout: float = 180, **fields: Any) -> dict[str, Any]:
        self.n += 1
        await self.send(json.dumps({"id": self.n, "cmd": name, **fields}))
        while True:
            line = await self.read_until('"result"', timeout)
            res: dict[str, Any] = json.loads(line)
            if res.get("id") == self.n:
                return res

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            await asyncio.wait_for(self.proc.wait(), 5)
        except Exception:
            self.proc.kill()
            await self.proc.wait()


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NODE_PATH"] = str(PEERS / "node_modules")
    return env


LOG_DIR = tempfile.mkdtemp(prefix="bench-storm-")


async def server(kind: str, redis: Redis, port: int) -> Proc:
    log = os.path.join(LOG_DIR, f"{kind}-{port}.log")
    if kind == "fastsio":
        app = os.environ.get("FASTSIO_STREAMS_APP", str(ROOT / "bench" / "servers" / "fastsio_streams_app.py"))
        p = Proc([PY, app, "--port", str(port), "--redis", redis.url], log=log)
        await p.start("READY")
    else:
        p = Proc(["node", str(PEERS / "node_streams_server.mjs"), f"port={port}", f"redis={redis.url}",
                  "recovery_ms=120000", "timeout_ms=900000", "quiet=true", "ping_ms=20000"], env=node_env(), log=log)
        await p.start('"ready"')
    return p


def _cpu_s(pid: Optional[int]) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# Clients per Node driver process: one process for 10,000 clients would be
# the bottleneck of the storm (and its event loop the time measured).
CLIENTS_PER_DRIVER = 1000


# the light clients of bench/storm_clients.js take 2,500 per process as easily
RAW_CLIENTS_PER_DRIVER = 2500


async def run_storm_one(kind: str, n: int, redis: Redis, rate: float = 10_000,
                        delay_ms: int = 50, delay_max_ms: int = 500, max_wait_s: float = 150,
                        driver: str = "npm") -> dict[str, Any]:
    """One storm of ``n`` clients; the emitter's tick keeps ``rate`` deliveries per second at any N."""
    redis.flush()
    tick_ms = max(1, round(1000 * n / rate))
    pa, pb, pe = free_port(), free_port(), free_port()
    procs = [await server(kind, redis, pa), await server(kind, redis, pb), await server(kind, redis, pe)]
    emitter = procs[2]
    drivers = []
    per_driver = RAW_CLIENTS_PER_DRIVER if driver == "raw" else CLIENTS_PER_DRIVER
    script = ROOT / "bench" / "storm_clients.js" if driver == "raw" else PEERS / "node_streams_clients.mjs"
    k = max(1, -(-n // per_driver))
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    try:
        for size in sizes:
            d = Proc(["node", str(script), f"port={pa}", f"n={size}", "rooms=r1",
                      "timeout_ms=900000", "ramp=250", "connect_ms=280000", f"delay_ms={delay_ms}",
                      f"delay_max_ms={delay_max_ms}"], env=node_env())
            drivers.append(d)
            await d.start('"connected"', timeout=300)
        if kind == "fastsio":
            await emitter.send(f"tick r1 {tick_ms}")
        else:
            await emitter.cmd("tick", rooms=["r1"], ms=tick_ms)
        await asyncio.sleep(2.0)
        pids = {"A": procs[0].pid, "B": procs[1].pid, "emitter": procs[2].pid, "redis": redis.proc.pid}
        cpu0 = {name: _cpu_s(pid) for name, pid in pids.items()}
        cpu0["clients"] = sum(_cpu_s(d.pid) for d in drivers)
        t_cut = time.monotonic()
        await asyncio.gather(*(d.cmd("cut", port=pb) for d in drivers))
        backs = await asyncio.gather(*(d.cmd("wait", connects=2, ms=int(max_wait_s * 1000), timeout=max_wait_s + 20) for d in drivers))
        wall = time.monotonic() - t_cut
        cpu = {name: round(_cpu_s(pid) - cpu0[name], 2) for name, pid in pids.items()}
        cpu["clients"] = round(sum(_cpu_s(d.pid) for d in drivers) - cpu0["clients"], 2)
        await asyncio.sleep(1.0)
        if kind == "fastsio":
            await emitter.send("untick")
            sent = int((await emitter.read_until("SENT")).split()[1])
        else:
            sent = int((await emitter.cmd("untick"))["sent"])
        # let the last messages arrive
        end = time.monotonic() + 30
        while True:
            reps = await asyncio.gather(*(d.cmd("report", backs=True) for d in drivers))
            if sum(r["total_got"] for r in reps) >= n * sent or time.monotonic() > end:
                break
            await asyncio.sleep(0.5)
        times = sorted(t for r in reps for t in r["backs"])
        cuts = [r["cut_at"] for r in reps if r.get("cut_at")]
        lasts = [r["last_back_at"] for r in reps if r.get("last_back_at")]
        errors: dict[str, int] = {}
        for r in reps:
            for key, v in r.get("errors", {}).items():
                errors[key] = errors.get(key, 0) + v

        def pct(q: float) -> Optional[int]:
            return times[min(len(times) - 1, int(q * len(times)))] if times else None

        row = {
            "bench": "storm", "kind": kind, "clients": n, "driver": driver, "drivers": len(drivers), "tick_ms": tick_ms,
            "all_back": all(b.get("ok") for b in backs),
            "recovered_share": sum(r["recovered"] for r in reps) / n,
            "delivered_share": sum(r["total_got"] for r in reps) / (n * sent) if sent else None,
            "in_order_share": sum(r["in_order"] for r in reps) / n,
            "back_ms": (max(lasts) - min(cuts)) if lasts and cuts else None,
            "back_p50_ms": pct(0.5), "back_p90_ms": pct(0.9), "back_p99_ms": pct(0.99),
            "attempts": sum(r.get("attempts", 0) for r in reps), "errors": errors, "sent": sent,
            "wait_s": round(wall, 2), "cpu_s_during_storm": cpu,
            "loadavg": open("/proc/loadavg").read().split()[0],
        }
        print(json.dumps(row), flush=True)
        return row
    finally:
        for d in drivers:
            await d.stop()
        for p in procs:
            await p.stop()


def table(rows: list[dict[str, Any]]) -> str:
    out = []
    cost = [r for r in rows if r["bench"] == "cost"]
    if cost:
        out.append("| adapter | recovery | clients | CPU µs / delivered msg | msgs/s | ratio on/off |")
        out.append("|---|---|---|---|---|---|")
        for r in cost:
            off = next(x for x in cost if x["adapter"] == r["adapter"] and not x["recovery"])
            out.append(f"| {r['adapter']} | {'on' if r['recovery'] else 'off'} | {r['clients']} | "
                       f"{r['cpu_us_per_msg']:.3f} | {r['msgs_per_s']:.0f} | "
                       f"{r['cpu_us_per_msg'] / off['cpu_us_per_msg']:.2f} |")
    storm = [r for r in rows if r["bench"] == "storm"]
    if storm:
        out.append("")
        out.append("| servers | N | tick | recovered | messages delivered | in order, none twice | all back after "
                   "| p50 / p90 back | CPU s A / B / clients / redis during the storm |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in storm:
            delivered = f"{100 * r['delivered_share']:.2f}%" if r["delivered_share"] is not None else "-"
            back = f"{r['back_ms'] / 1000:.1f} s" if r["back_ms"] is not None else "-"
            cpu = r["cpu_s_during_storm"]
            p50 = f"{r['back_p50_ms'] / 1000:.1f} / {r['back_p90_ms'] / 1000:.1f} s" if r["back_p50_ms"] is not None else "-"
            out.append(f"| {r['kind']} | {r['clients']} | {r['tick_ms']} ms | {100 * r['recovered_share']:.1f}% | "
                       f"{delivered} | {100 * r['in_order_share']:.1f}% | {back}{'' if r['all_back'] else ' (not all)'} "
                       f"| {p50} | {cpu['A']} / {cpu['B']} / {cpu['clients']} / {cpu['redis']} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["cost", "storm", "all"])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--kinds", default="fastsio,node")
    parser.add_argument("--rate", type=float, default=10_000,
                        help="storm: deliveries per second the emitter's tick makes (tick = 1000 * N / rate ms)")
    parser.add_argument("--delay-ms", type=int, default=50, help="storm: the clients' reconnectionDelay")
    parser.add_argument("--delay-max-ms", type=int, default=500, help="storm: the clients' reconnectionDelayMax")
    parser.add_argument("--max-wait-s", type=float, default=150, help="storm: how long all may take to be back")
    parser.add_argument("--driver", choices=["npm", "raw"], default="npm",
                        help="storm: npm socket.io-client clients, or bench/storm_clients.js (raw framing, "
                             "the same recovery protocol, a fraction of the CPU)")
    args = parser.parse_args()
    # 10,000 clients and their reconnects: fds for the drivers and the servers (inherited).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    redis = Redis()
    rows: list[dict[str, Any]] = []
    try:
        if args.what in ("cost", "all"):
            rows += run_cost(args.clients, redis)
        if args.what in ("storm", "all"):
            for n in [int(x) for x in args.sizes.split(",")]:
                for kind in args.kinds.split(","):
                    try:
                        rows.append(asyncio.run(run_storm_one(kind, n, redis, args.rate, args.delay_ms,
                                                              args.delay_max_ms, args.max_wait_s, args.driver)))
                    except Exception as err:  # a size that does not fit the machine
                        where = traceback.extract_tb(err.__traceback__)
                        print(json.dumps({"bench": "storm", "kind": kind, "clients": n, "error": repr(err),
                                          "at": [f"{f.name}:{f.lineno}" for f in where[-4:]]}), flush=True)
    finally:
        redis.stop()
    print(table([r for r in rows if "error" not in r]))
    print(f"server logs: {LOG_DIR}")


if __name__ == "__main__":
    sys.exit(main())
