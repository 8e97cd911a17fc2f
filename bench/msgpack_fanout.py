"""The msgpack parser beside the default one: fan-out with real socket.io clients.

    bench/.venv/bin/python bench/msgpack_fanout.py [--clients 1000] [--runs 3]

Servers: fastsio compiled with the default parser and with
``fastsio.parsers.msgpack``, and Node socket.io 4.8 with each parser; the
same benchmark app (bench/servers). Clients: msgpack_fanout.mjs (npm
socket.io-client with socket.io-msgpack-parser for the msgpack runs). Runs
are interleaved across servers; each figure is the median. Prints a
Markdown table (server CPU µs per delivered message, deliveries per second).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import BENCH, FASTSIO_PY, NODE, free_port, stop, wait_port  # noqa: E402

SERVERS = {
    "fastsio, default parser": ([FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py")], {}, "default"),
    "fastsio, msgpack parser": ([FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py")], {"BENCH_PARSER": "msgpack"}, "msgpack"),
    "Node, default parser": ([NODE, str(BENCH / "servers" / "node_app.js")], {}, "default"),
    "Node, msgpack parser": ([NODE, str(BENCH / "servers" / "node_app.js")], {"BENCH_PARSER": "msgpack"}, "msgpack"),
}


def run(name: str, clients: int, burst: int, rounds: int) -> dict[str, object]:
    cmd, extra, parser = SERVERS[name]
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", FASTSIO_NO_EXTENSIONS="0", **extra)
    proc = subprocess.Popen(cmd + ["--port", str(port)], env=env, cwd=BENCH,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        out = subprocess.run(
            [NODE, str(BENCH / "msgpack_fanout.mjs"), f"port={port}", f"pid={proc.pid}",
             f"clk_tck={os.sysconf('SC_CLK_TCK')}", f"parser={parser}", f"clients={clients}",
             f"burst={burst}", f"rounds={rounds}"],
            capture_output=True, timeout=900, cwd=BENCH)
        lines = out.stdout.decode().strip().splitlines()
        return json.loads(lines[-1]) if lines else {"ok": False, "error": out.stderr.decode()[-300:]}
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    results: dict[str, list[dict[str, object]]] = {n: [] for n in SERVERS}
    for i in range(a.runs):
        for name in SERVERS:
            r = run(name, a.clients, a.burst, a.rounds)
            print(f"run {i + 1} {name}: {r}", file=sys.stderr, flush=True)
            results[name].append(r)
    print(f"| server ({a.clients} clients, bursts of {a.burst} x {a.rounds}) | server CPU µs per delivered msg "
          "| delivered msgs/s | runs ok |")
    print("|---|--:|--:|--:|")
    for name, runs in results.items():
        ok = [r for r in runs if r.get("ok")]
        cpu = statistics.median(float(r["cpu_us_per_msg"]) for r in ok) if ok else float("nan")  # type: ignore[arg-type]
        rate = statistics.median(float(r["msgs_per_s"]) for r in ok) if ok else float("nan")  # type: ignore[arg-type]
        print(f"| {name} | {cpu:.3f} | {rate:,.0f} | {len(ok)}/{len(runs)} |")


if __name__ == "__main__":
    main()
