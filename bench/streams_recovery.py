"""Connection state recovery benchmarks (issue 9 section 5), standalone.

    .venv/bin/python bench/streams_recovery.py cost  [--clients 1000]
    .venv/bin/python bench/streams_recovery.py storm [--sizes 1000,5000] [--kinds fastsio,node]

``cost`` (a): the broadcast cost on one fastsio server, CPU microseconds per
delivered message (bench/loadgen.js fanout burst, raw WebSocket clients),
with recovery off and on, with the in-memory adapter and with the Redis
Streams adapter (a private redis-server).

``storm`` (b): N npm socket.io-client clients (tests/peers/node_streams_clients.mjs,
one Node process) connected to server A of a Redis Streams cluster; a third
server of the same kind broadcasts ``m <counter>`` to their room every 20 ms;
every client's TCP connection is cut at once and it reconnects to server B.
Reported: the share of clients recovered, the share of the messages sent
that every client got (in order, none twice), and the time from the cut
until the last client is back. fastsio servers (bench/servers/fastsio_streams_app.py)
against Node socket.io 4.8 with @socket.io/redis-streams-adapter
(tests/peers/node_streams_server.mjs), the same clients for both.

Prints one JSON object per measurement and a Markdown table at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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
                     "--offset", "1" if recovery else "0"],
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

    def __init__(self, argv: list[str], env: Optional[dict[str, str]] = None) -> None:
        self.argv = argv
        self.env = env
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.n = 0

    async def start(self, until: str, timeout: float = 120) -> str:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env=self.env, cwd=str(PEERS), limit=256 * 1024 * 1024)
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


async def server(kind: str, redis: Redis, port: int) -> Proc:
    if kind == "fastsio":
        p = Proc([PY, os.environ.get("FASTSIO_STREAMS_APP", str(ROOT / "bench" / "servers" / "fastsio_streams_app.py")), "--port", str(port),
                  "--redis", redis.url])
        await p.start("READY")
    else:
        p = Proc(["node", str(PEERS / "node_streams_server.mjs"), f"port={port}", f"redis={redis.url}",
                  "recovery_ms=120000", "timeout_ms=900000", "quiet=true", "ping_ms=20000"], env=node_env())
        await p.start('"ready"')
    return p


async def run_storm_one(kind: str, n: int, redis: Redis, tick_ms: int = 20) -> dict[str, Any]:
    redis.flush()
    pa, pb, pe = free_port(), free_port(), free_port()
    procs = [await server(kind, redis, pa), await server(kind, redis, pb), await server(kind, redis, pe)]
    emitter = procs[2]
    clients = Proc(["node", str(PEERS / "node_streams_clients.mjs"), f"port={pa}", f"n={n}", "rooms=r1",
                    "timeout_ms=900000"], env=node_env())
    try:
        await clients.start('"connected"', timeout=300)
        if kind == "fastsio":
            await emitter.send(f"tick r1 {tick_ms}")
        else:
            await emitter.cmd("tick", rooms=["r1"], ms=tick_ms)
        await asyncio.sleep(1.0)
        await clients.cmd("cut", port=pb)
        back = await clients.cmd("wait", connects=2, ms=240000, timeout=260)
        await asyncio.sleep(1.0)
        if kind == "fastsio":
            await emitter.send("untick")
            sent = int((await emitter.read_until("SENT")).split()[1])
        else:
            sent = int((await emitter.cmd("untick"))["sent"])
        # let the last messages arrive
        end = time.monotonic() + 60
        while True:
            rep = await clients.cmd("report")
            if rep["total_got"] >= n * sent or time.monotonic() > end:
                break
            await asyncio.sleep(0.5)
        row = {
            "bench": "storm", "kind": kind, "clients": n, "all_back": back.get("ok"),
            "recovered_share": rep["recovered"] / n,
            "delivered_share": rep["total_got"] / (n * sent) if sent else None,
            "in_order_share": rep["in_order"] / n,
            "back_ms": rep["back_ms"], "back_p50_ms": rep.get("back_p50_ms"), "back_p90_ms": rep.get("back_p90_ms"),
            "attempts": rep.get("attempts"), "errors": rep.get("errors"), "sent": sent,
        }
        print(json.dumps(row), flush=True)
        return row
    finally:
        await clients.stop()
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
        out.append("| servers | N | recovered | messages delivered | in order, none twice | all back after |")
        out.append("|---|---|---|---|---|---|")
        for r in storm:
            delivered = f"{100 * r['delivered_share']:.2f}%" if r["delivered_share"] is not None else "-"
            back = f"{r['back_ms'] / 1000:.1f} s" if r["back_ms"] is not None else "-"
            out.append(f"| {r['kind']} | {r['clients']} | {100 * r['recovered_share']:.1f}% | {delivered} | "
                       f"{100 * r['in_order_share']:.1f}% | {back}{'' if r['all_back'] else ' (not all)'} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["cost", "storm", "all"])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--kinds", default="fastsio,node")
    args = parser.parse_args()
    redis = Redis()
    rows: list[dict[str, Any]] = []
    try:
        if args.what in ("cost", "all"):
            rows += run_cost(args.clients, redis)
        if args.what in ("storm", "all"):
            for n in [int(x) for x in args.sizes.split(",")]:
                for kind in args.kinds.split(","):
                    try:
                        rows.append(asyncio.run(run_storm_one(kind, n, redis)))
                    except Exception as err:  # a size that does not fit the machine
                        print(json.dumps({"bench": "storm", "kind": kind, "clients": n, "error": repr(err)}),
                              flush=True)
    finally:
        redis.stop()
    print(table([r for r in rows if "error" not in r]))


if __name__ == "__main__":
    sys.exit(main())
