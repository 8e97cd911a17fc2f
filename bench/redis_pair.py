"""Two servers on one Redis: fastsio pair vs Node pair (@socket.io/redis-adapter 8.3), in one run.

    .venv/bin/python bench/redis_pair.py [--clients 1000] [--runs 3] [--quick]

Starts a private redis-server, then for each run and each kind (interleaved:
run 1 of fastsio, run 1 of node, run 2...) two fresh server processes A and B
on it, and ``redis_loadgen.mjs`` with the clients split over both. Broadcasts
are published on A; the figures are B's (the receiving server's) CPU per
message delivered to its clients, and the latency from the request on A to
the arrival at B's clients. Prints a Markdown table with the medians and the
ratios fastsio / Node; writes ``bench/out/redis-pair.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = ROOT / "tests" / "peers" / "node_modules"
NODE = os.environ.get("NODE", "node")
FASTSIO_PY = os.environ.get("FASTSIO_PYTHON") or str(ROOT / ".venv" / "bin" / "python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def server_cmd(kind: str, port: int, url: str) -> list[str]:
    if kind == "fastsio":
        return [FASTSIO_PY, str(BENCH / "servers" / "fastsio_redis_app.py"), "--port", str(port), "--redis", url]
    return [NODE, str(BENCH / "servers" / "node_redis_app.js"), "--port", str(port), "--redis", url]


def run_pair(kind: str, url: str, params: dict[str, Any], logdir: Path, run: int) -> dict[str, Any]:
    env = dict(os.environ, NODE_PATH=str(PEERS), PYTHONUNBUFFERED="1", FASTSIO_NO_EXTENSIONS="0")
    ports = [free_port(), free_port()]
    procs = []
    logs = []
    try:
        for side, port in zip("ab", ports):
            log = open(logdir / f"redis-{kind}-{side}-{run}.log", "wb")
            logs.append(log)
            procs.append(subprocess.Popen(server_cmd(kind, port, url), stdout=log, stderr=subprocess.STDOUT,
                                          env=env, cwd=BENCH))
        for port, proc in zip(ports, procs):
            wait_port(port, proc)
        time.sleep(0.5)
        args = [NODE, str(BENCH / "redis_loadgen.mjs"), "--port-a", str(ports[0]), "--port-b", str(ports[1]),
                "--pid-a", str(procs[0].pid), "--pid-b", str(procs[1].pid),
                "--clk-tck", str(os.sysconf("SC_CLK_TCK"))]
        for k, v in params.items():
            args += [f"--{k}", str(v)]
        cp = subprocess.run(args, capture_output=True, timeout=900, cwd=BENCH, env=env)
        try:
            result: dict[str, Any] = json.loads(cp.stdout.decode().strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"ok": False, "error": f"loadgen exit {cp.returncode}: {cp.stderr.decode()[-500:]}"}
    except Exception as exc:
        result = {"ok": False, "error": str(exc)}
    finally:
        for proc in procs:
            stop(proc)
        for log in logs:
            log.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--singles", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="100 clients, 1 run, small phases")
    parser.add_argument("--write-results", action="store_true", help="put the table into bench/RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.runs, args.burst, args.bursts, args.singles = 100, 1, 20, 3, 20
    params = {"clients": args.clients, "burst": args.burst, "bursts": args.bursts, "singles": args.singles,
              "warmup": 5}
    out = BENCH / "out"
    logdir = out / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed")
    rport = free_port()
    rdir = tempfile.mkdtemp(prefix="bench-redis-")
    redis = subprocess.Popen([binary, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                              "no", "--dir", rdir, "--loglevel", "warning"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{rport}/0"
    results: dict[str, list[dict[str, Any]]] = {"fastsio": [], "node": []}
    load_before = os.getloadavg()[0]
    try:
        wait_port(rport, redis)
        for run in range(1, args.runs + 1):
            for kind in ("fastsio", "node"):
                r = run_pair(kind, url, params, logdir, run)
                print(f"[redis-pair] run {run} {kind}: {json.dumps(r)}", file=sys.stderr, flush=True)
                results[kind].append(r)
    finally:
        stop(redis)
        shutil.rmtree(rdir, ignore_errors=True)

    def med(kind: str, key: str) -> float:
        vals = [r[key] for r in results[kind] if r.get("ok") and isinstance(r.get(key), (int, float))]
        return statistics.median(vals) if vals else float("nan")

    rows = [
        ("receiving server CPU per delivered message, bursts (µs)", "b_us_per_msg"),
        ("receiving server CPU per delivered message, single broadcasts (µs)", "single_b_cpu_us_per_msg"),
        ("publishing server CPU per local delivery, bursts (µs)", "a_us_per_msg"),
        ("cross-server latency p50 (ms)", "lat_b_p50_ms"),
        ("cross-server latency p99 (ms)", "lat_b_p99_ms"),
        ("local latency on the publisher p50 (ms)", "lat_a_p50_ms"),
        ("receiving server deliveries per second, bursts", "b_msgs_per_s"),
    ]
    ok = {k: sum(1 for r in v if r.get("ok")) for k, v in results.items()}
    load_after = os.getloadavg()[0]
    lines = [
        f"{args.clients} clients ({args.clients // 2} per server), bursts of {args.burst} x {args.bursts}, "
        f"{args.singles} single broadcasts; median of {ok['fastsio']} fastsio / {ok['node']} Node runs "
        f"({time.strftime('%Y-%m-%d')}, fastsio compiled; machine load average {load_before:.1f} before, "
        f"{load_after:.1f} after, on {os.cpu_count()} cores).",
        "",
        "| figure | fastsio pair | Node pair | ratio fastsio / Node |",
        "|---|---|---|---|",
    ]
    for label, key in rows:
        f, n = med("fastsio", key), med("node", key)
        lines.append(f"| {label} | {f:.3g} | {n:.3g} | {f / n:.2f}× |")
    failed = [f"{k} run {i + 1}: {r.get('error')}" for k, v in results.items() for i, r in enumerate(v)
              if not r.get("ok")]
    if failed:
        lines += ["", "Failed runs (left out): " + "; ".join(failed)]
    print("\n" + "\n".join(lines))
    (out / "redis-pair.json").write_text(json.dumps({"params": params, "runs": results}, indent=1))
    if args.write_results:
        write_results(lines)


START = "<!-- redis-pair:start -->"
END = "<!-- redis-pair:end -->"


def write_results(lines: list[str]) -> None:
    """Puts the table into bench/RESULTS.md between the redis-pair markers (bench.py keeps it)."""
    path = BENCH / "RESULTS.md"
    text = path.read_text() if path.exists() else ""
    section = "\n".join([
        START,
        "## (F) Two servers on one Redis (`bash bench/run.sh --redis-pair`)",
        "",
        "Clients split over two servers joined by Redis; every broadcast is published on one (A) and",
        "delivered by the other (B) to its clients. fastsio pair (`RedisAdapter`) against a Node pair",
        "(socket.io 4.8 + `@socket.io/redis-adapter` 8.3). Method: bench/README.md.",
        "",
        *lines,
        END,
    ])
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
