"""Runs every scenario against every server and writes RESULTS.md, fanout.png, results.json.

Usually started by ``bash bench/run.sh`` (which prepares the environments);
directly: ``bench/.venv/bin/python bench/bench.py [--quick] [--runs N]
[--servers a,b] [--scenarios x,y]``.

Each run of a scenario gets a fresh server process on a free 127.0.0.1 port.
The load generator (``loadgen.js``) reads the server's CPU time and RSS from
/proc around each phase and prints one JSON object. Runs of a scenario are
interleaved across servers (run 1 of every server, then run 2...) so that
noise from other work on the machine spreads over all of them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE = os.environ.get("NODE", "node")
BENCH_PY = os.environ.get("BENCH_PYTHON", sys.executable)
FASTSIO_PY = os.environ.get("FASTSIO_PYTHON") or (
    str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
)

SERVERS: dict[str, dict[str, Any]] = {
    "fastsio": {
        "label": "fastsio (compiled)",
        "cmd": [FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py")],
        "env": {"FASTSIO_NO_EXTENSIONS": "0"},
    },
    "fastsio-pure": {
        "label": "fastsio (pure Python)",
        "cmd": [FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py")],
        "env": {"FASTSIO_NO_EXTENSIONS": "1"},
    },
    "fastsio-metrics": {
        # same app with Server(metrics=True): the cost of counting (docs/operating.md)
        "label": "fastsio (compiled, metrics on)",
        "cmd": [FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py")],
        "env": {"FASTSIO_NO_EXTENSIONS": "0", "FASTSIO_BENCH_METRICS": "1"},
    },
    "fastsio-asgi": {
        # same app with io.run(app=FastAPI): the cost of hosting an ASGI app on the port
        "label": "fastsio (compiled) + FastAPI on the port",
        "cmd": [FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py"), "--asgi"],
        "env": {"FASTSIO_NO_EXTENSIONS": "0"},
    },
    "compat": {
        "label": "fastsio.compat (python-socketio app)",
        "cmd": [FASTSIO_PY, str(BENCH / "servers" / "compat_app.py")],
        "env": {"FASTSIO_NO_EXTENSIONS": "0"},
    },
    "fastsio-uvicorn": {
        # fastsio.ASGIApp(io) under uvicorn, with the options pysio_app.py gives uvicorn (issue 14)
        "label": "fastsio.ASGIApp + uvicorn",
        "cmd": [FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py"), "--uvicorn"],
        "env": {"FASTSIO_NO_EXTENSIONS": "0"},
    },
    "node": {
        "label": "Node socket.io",
        "cmd": [NODE, str(BENCH / "servers" / "node_app.js")],
        "env": {},
    },
    "pysio": {
        "label": "python-socketio + uvicorn",
        "cmd": [BENCH_PY, str(BENCH / "servers" / "pysio_app.py")],
        "env": {},
    },
    # one port, N processes: fastsio workers vs Node's cluster + sticky + cluster-adapter
    "fastsio-w1": {
        "label": "fastsio, 1 process",
        "cmd": [FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py")],
        "env": {"FASTSIO_NO_EXTENSIONS": "0"},
        "tree": True,
    },
    "fastsio-w2": {
        "label": "fastsio workers=2",
        "cmd": [FASTSIO_PY, str(BENCH / "servers" / "fastsio_app.py"), "--workers", "2"],
        "env": {"FASTSIO_NO_EXTENSIONS": "0"},
        "tree": True,
    },
    "node-c1": {
        "label": "Node cluster x1 (sticky + cluster-adapter)",
        "cmd": [NODE, str(BENCH / "servers" / "node_cluster_app.js"), "--workers", "1"],
        "env": {},
        "tree": True,
    },
    "node-c2": {
        "label": "Node cluster x2 (sticky + cluster-adapter)",
        "cmd": [NODE, str(BENCH / "servers" / "node_cluster_app.js"), "--workers", "2"],
        "env": {},
        "tree": True,
    },
    "floor": {
        "label": "floor: bare ws writes",
        "cmd": [NODE, str(BENCH / "servers" / "floor_app.js")],
        "env": {},
    },
}
REFERENCE = "node"
# RESULTS.md from this line on is written by bench/redis_pair.py and kept here.
KEEP_MARKER = "<!-- redis-pair:start -->"

# name -> loadgen arguments. Memory (C) comes from the fanout-5000 runs:
# RSS per idle client after the connect phase, before any broadcast.
FULL: dict[str, dict[str, Any]] = {
    "fanout-1000": {"scenario": "fanout", "clients": 1000, "burst": 200, "warmup": 20, "singles": 100},
    "fanout-5000": {"scenario": "fanout", "clients": 5000, "burst": 200, "warmup": 10, "singles": 30},
    "echo": {"scenario": "echo", "clients": 50, "per-client": 600, "warmup": 20},
    "connect": {"scenario": "connect", "total": 1500, "concurrency": 50},
    "binary": {"scenario": "binary", "clients": 1000, "burst": 20, "warmup": 2, "attachment-bytes": 10240},
    # Extra client counts for the plot only.
    "fanout-200": {"scenario": "fanout", "clients": 200, "burst": 200, "warmup": 20, "singles": 100, "plot": True},
}
# Issue 14: fan-out for every kind of client. Run only when named in --scenarios.
# "env" goes to every server of the scenario (the apps read BENCH_DEFLATE /
# BENCH_EIO3), "servers" limits the scenario to the servers that can run it.
_F = {"scenario": "fanout", "clients": 1000, "burst": 100, "warmup": 10, "singles": 30}
EXTRA: dict[str, dict[str, Any]] = {
    "fanout-polling-1000": {**_F, "transport": "polling",
                            "servers": ["fastsio", "fastsio-pure", "node", "pysio"]},
    "fanout-deflate-1000": {**_F, "deflate": 1, "env": {"BENCH_DEFLATE": "1"},
                            "servers": ["fastsio", "fastsio-pure", "node", "pysio"]},
    "fanout-v4-1000": {**_F, "servers": ["fastsio", "fastsio-pure", "node"]},
    "fanout-eio3-1000": {**_F, "eio": 3, "env": {"BENCH_EIO3": "1"}, "servers": ["fastsio", "fastsio-pure", "node"]},
    "fanout-asgi-1000": {**_F, "servers": ["fastsio-uvicorn", "pysio", "fastsio"], "reference": "pysio"},
}
EXTRA_QUICK: dict[str, dict[str, Any]] = {
    name: {**p, "clients": 100, "burst": 20, "warmup": 5, "singles": 5} for name, p in EXTRA.items()
}
# what each extra scenario's table says about its clients
EXTRA_TITLES = {
    "fanout-polling-1000": "Engine.IO v4 long-polling only clients (GET loop, POST for acks and pongs)",
    "fanout-deflate-1000": "WebSocket clients offering permessage-deflate; servers compress every message "
                           "(fastsio `per_message_deflate={'threshold': 0}`, Node `perMessageDeflate: {threshold: 0}`)",
    "fanout-v4-1000": "WebSocket v4 clients (the reference for the EIO3 table)",
    "fanout-eio3-1000": "Engine.IO v3 (socket.io v2) WebSocket clients (`allow_eio3=True` / `allowEIO3: true`)",
    "fanout-asgi-1000": "WebSocket v4 clients; fastsio.ASGIApp and python-socketio both under uvicorn",
}
LOADGEN_SKIP = ("plot", "env", "servers", "reference")

QUICK: dict[str, dict[str, Any]] = {
    "fanout-1000": {"scenario": "fanout", "clients": 1000, "burst": 50, "warmup": 10, "singles": 30},
    "fanout-5000": {"scenario": "fanout", "clients": 2000, "burst": 20, "warmup": 5, "singles": 10},
    "echo": {"scenario": "echo", "clients": 50, "per-client": 100, "warmup": 10},
    "connect": {"scenario": "connect", "total": 400, "concurrency": 50},
    "binary": {"scenario": "binary", "clients": 300, "burst": 10, "warmup": 1, "attachment-bytes": 10240},
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not listening on {port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def run_one(server: str, name: str, params: dict[str, Any], logdir: Path, run: int) -> dict[str, Any]:
    spec = SERVERS[server]
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", **spec["env"], **params.get("env", {}))
    logfile = logdir / f"{server}-{name}-{run}.log"
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(
            spec["cmd"] + ["--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=BENCH
        )
        result: dict[str, Any]
        try:
            wait_port(port, proc)
            time.sleep(0.3)
            args = [NODE, str(BENCH / "loadgen.js"), "--port", str(port), "--pid", str(proc.pid)]
            if spec.get("tree"):
                # CPU and RSS of the server's whole process tree (primary and workers)
                args += ["--tree", "1"]
            args += ["--clk-tck", str(os.sysconf("SC_CLK_TCK"))]
            for k, v in params.items():
                if k not in LOADGEN_SKIP:
                    args += [f"--{k}", str(v)]
            cp = subprocess.run(args, capture_output=True, timeout=900, cwd=BENCH)
            lines = cp.stdout.decode().strip().splitlines()
            try:
                result = json.loads(lines[-1])
            except (IndexError, json.JSONDecodeError):
                result = {"ok": False, "error": f"loadgen exit {cp.returncode}: {cp.stderr.decode()[-500:]}"}
            if proc.poll() is not None:
                result["ok"] = False
                result["error"] = result.get("error") or f"server died (exit {proc.returncode})"
        except Exception as exc:  # a broken server must not stop the other benchmarks
            result = {"ok": False, "error": str(exc)}
        finally:
            stop(proc)
    head = logfile.read_text(errors="replace").splitlines()
    ready = next((line for line in head if line.startswith("READY")), "")
    result["server_banner"] = ready[6:].strip()
    if not result.get("ok"):
        result["server_log_tail"] = "\n".join(head[-15:])
    return result


# ------------------------------------------------------------------ figures

# (result key path, label, unit, higher is better)
Metric = tuple[tuple[str, ...], str, bool]


def get(r: dict[str, Any], path: tuple[str, ...]) -> Optional[float]:
    cur: Any = r
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return float(cur) if isinstance(cur, (int, float)) else None


def values(runs: list[dict[str, Any]], path: tuple[str, ...], need: Optional[tuple[str, ...]] = None) -> list[float]:
    """The figure at `path` of every successful run (skipping runs where the flag at `need` is false)."""
    out = []
    for r in runs:
        if not r.get("ok"):
            continue
        if need is not None and get(r, need) == 0.0:
            continue
        v = get(r, path)
        if v is not None:
            out.append(v)
    return out


def fmt(v: Optional[float], unit: str) -> str:
    if v is None:
        return "–"
    if unit == "bytes":
        if abs(v) >= 1 << 20:
            return f"{v / (1 << 20):,.1f} MiB"
        return f"{v / 1024:,.1f} KiB" if abs(v) >= 1024 else f"{v:,.0f} B"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def table(
    title: str,
    data: dict[str, list[dict[str, Any]]],
    columns: list[tuple[str, tuple[str, ...], str, bool]],
    note: str = "",
    complete: Optional[tuple[str, ...]] = None,
    reference: str = REFERENCE,
) -> str:
    """One markdown table: per column the median, its ratio to Node (or `reference`) and the min–max."""
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    head = ["server"]
    for label, _, _, better_high in columns:
        head += [label, "vs Node" if reference == REFERENCE else f"vs {reference}", "min – max"]
    head.append("runs ok")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["--:"] * (len(head) - 2) + ["--:"]) + "|")
    ref_runs = data.get(reference, [])
    for server, runs in data.items():
        row = [SERVERS[server]["label"] + _impl_note(runs)]
        for label, path, unit, better_high in columns:
            vs = values(runs, path, complete)
            med = statistics.median(vs) if vs else None
            ref = values(ref_runs, path, complete)
            refmed = statistics.median(ref) if ref else None
            ratio = "–"
            if med is not None and refmed:
                ratio = f"×{med / refmed:.2f}"
            spread = f"{fmt(min(vs), unit)} – {fmt(max(vs), unit)}" if len(vs) > 1 else "–"
            row += [f"**{fmt(med, unit)}**", ratio, spread]
        ok = sum(1 for r in runs if r.get("ok"))
        row.append(f"{ok}/{len(runs)}")
        lines.append("| " + " | ".join(row) + " |")
    cut = []
    for s, runs in data.items():
        for key, req, what in (("burst", "requested_n", "bursts of"), ("single", "requested_rounds", "rounds:")):
            ns = sorted({int(r[key]["n" if key == "burst" else "rounds"]) for r in runs
                         if r.get("ok") and isinstance(r.get(key), dict) and r[key].get(req)
                         and r[key]["n" if key == "burst" else "rounds"] < r[key][req]})
            if ns and any(c[1][0] == key for c in columns):
                want = next(r[key][req] for r in runs if isinstance(r.get(key), dict) and r[key].get(req))
                cut.append(f"- {SERVERS[s]['label']}: {what} {', '.join(map(str, ns))} instead of "
                           f"{want} (a phase is cut to fit in about 15 s)")
    if cut:
        lines += ["", "Shortened phases:", ""] + cut
    errors = [
        f"- {SERVERS[s]['label']}: {r.get('error')}" for s, runs in data.items() for r in runs if not r.get("ok")
    ]
    if errors:
        lines += ["", "Failed runs:", ""] + sorted(set(errors))
    return "\n".join(lines) + "\n"


def _impl_note(runs: list[dict[str, Any]]) -> str:
    # The fastsio app prints the implementation it really loaded.
    for r in runs:
        m = re.search(r"implementation=(\w+)", r.get("server_banner", ""))
        if m:
            return f" [{m.group(1)}]"
    return ""


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model or platform.processor(),
        "kernel": platform.release(),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }

    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, timeout=60, text=True).stdout.strip()
        except Exception as exc:
            return f"? ({exc})"

    info["node"] = out([NODE, "--version"])
    for pkg in ("socket.io", "ws"):
        try:
            info[f"npm {pkg}"] = json.loads((BENCH / "node_modules" / pkg / "package.json").read_text())["version"]
        except OSError:
            info[f"npm {pkg}"] = "missing"
    code = (
        "import importlib.metadata as m, platform, json; d={'python': platform.python_version()}\n"
        "for p in %r:\n"
        "    try: d[p]=m.version(p)\n"
        "    except Exception: pass\n"
        "print(json.dumps(d))"
    )
    bench_pkgs = ("python-socketio", "python-engineio", "uvicorn", "uvloop", "httptools", "websockets")
    try:
        info["bench venv"] = json.loads(out([BENCH_PY, "-c", code % (bench_pkgs,)]))
    except json.JSONDecodeError:
        info["bench venv"] = {}
    try:
        d = json.loads(out([FASTSIO_PY, "-c", code % (("uvloop", "httptools", "orjson"),)]))
    except json.JSONDecodeError:
        d = {}
    fs = out([FASTSIO_PY, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); import fastsio; print(fastsio.__version__)"])
    d["fastsio"] = fs.splitlines()[-1] if fs else "?"
    d["git"] = out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if out(["git", "-C", str(ROOT), "status", "--porcelain", "--", "fastsio"]):
        d["git"] += " + uncommitted changes in fastsio/"
    info["fastsio venv"] = d
    return info


def write_results(results: dict[str, Any], path: Path, quick: bool) -> None:
    m = results["machine"]
    data = results["runs"]
    nruns = results["runs_per_scenario"]
    out = ["# fastsio benchmarks", ""]
    if quick:
        out += ["**Quick run** (`--quick`): smaller loads, fewer runs; not for comparison.", ""]
    bv, fv = m["bench venv"], m["fastsio venv"]
    out += [
        f"Generated by `bash bench/run.sh` on {m['date']}; {nruns} runs per figure "
        f"(each a fresh server process), the bold figure is the median, with the min – max of the runs.",
        "The ratio is this server's median over Node socket.io's median (for throughput higher is better, "
        "for CPU, latency and memory lower is better).",
        "",
        f"- Machine: {m['cores']} cores, {m['cpu']}, Linux {m['kernel']}; load average at start "
        f"{' '.join(m['loadavg_start'])}. The load generator shares the machine (see its CPU below).",
        f"- fastsio {fv.get('fastsio')} (git {fv.get('git')}), Python {fv.get('python')}, "
        f"uvloop {fv.get('uvloop')}, httptools {fv.get('httptools')}, orjson {fv.get('orjson')}",
        f"- Node {m['node']}, socket.io {m['npm socket.io']} (default options), ws {m['npm ws']}",
        f"- python-socketio {bv.get('python-socketio')} / python-engineio {bv.get('python-engineio')} as ASGI app "
        f"under uvicorn {bv.get('uvicorn')} (uvloop {bv.get('uvloop')}, httptools {bv.get('httptools')}, "
        f"websockets {bv.get('websockets')}), Python {bv.get('python')}",
        f"- Floor: Node `ws` server that writes one pre-framed message to every client's socket "
        f"(corked per client), no Socket.IO machinery.",
        "",
        "Every server runs the same app: on connection join room `all`; `bcast(n, payload)` emits `msg` "
        "with the payload to `all` n times then acks; `echo(x)` acks x. Clients are WebSocket-only "
        "(`?EIO=4&transport=websocket`), all in one Node process (`loadgen.js`) that frames Engine.IO/Socket.IO "
        "itself and counts `42…` frames without decoding them. Server CPU is utime+stime from `/proc/PID/stat` "
        "(10 ms ticks) over the phase; RSS is `VmRSS`.",
        "",
    ]
    sc = results["scenarios"]

    def sel(name: str) -> dict[str, list[dict[str, Any]]]:
        return {s: data[name][s] for s in data.get(name, {})}

    out += ["## (A) Fan-out: one room, every client in it", ""]
    for name in ("fanout-1000", "fanout-5000"):
        if name not in data:
            continue
        p = sc[name]
        out.append(
            table(
                f"{p['clients']:,} clients, bursts of {p['burst']} broadcasts of a ~100-byte JSON payload",
                sel(name),
                [
                    ("delivered msgs/s", ("burst", "msgs_per_s"), "", True),
                    ("server CPU µs/msg", ("burst", "cpu_us_per_msg"), "", False),
                ],
                note=f"`bcast({p['burst']}, payload)` ({p['clients'] * p['burst']:,} deliveries), repeated (at most 25 "
                "times) until the phase lasts 1 s; time from the first send to the last delivery and ack.",
                complete=("burst", "complete"),
            )
        )
        out.append(
            table(
                f"{p['clients']:,} clients, single broadcasts in a loop",
                sel(name),
                [
                    ("delivered msgs/s", ("single", "msgs_per_s"), "", True),
                    ("server CPU µs/msg", ("single", "cpu_us_per_msg"), "", False),
                    ("round ms (p50)", ("single", "round_p50_ms"), "", False),
                ],
                note=f"{p['singles']} rounds of `bcast(1, payload)`; a round ends when the ack and all "
                f"{p['clients']:,} deliveries have arrived.",
                complete=("single", "complete"),
            )
        )
    if "echo" in data:
        p = sc["echo"]
        out += ["## (B) Echo: sequential acked round trips", ""]
        out.append(
            table(
                f"{p['clients']} concurrent clients, {p['per-client']} echoes each",
                sel("echo"),
                [
                    ("round trips/s", ("echo", "rt_per_s"), "", True),
                    ("p50 ms", ("echo", "p50_ms"), "", False),
                    ("p99 ms", ("echo", "p99_ms"), "", False),
                    ("server CPU µs/rt", ("echo", "cpu_us_per_rt"), "", False),
                ],
            )
        )
    mem_name = "fanout-5000" if "fanout-5000" in data else None
    if mem_name:
        p = sc[mem_name]
        out += ["## (C) Memory per idle connection", ""]
        out.append(
            table(
                f"RSS per idle connected client at {p['clients']:,} clients",
                sel(mem_name),
                [
                    ("bytes/client", ("memory", "rss_per_client"), "bytes", False),
                    ("RSS at the end of connect", ("memory", "rss_after"), "bytes", False),
                ],
                note="From the fan-out runs: (RSS after all clients connected and 1 s idle − RSS after the first "
                "50) / the rest, before any broadcast. Every client is in room `all`.",
            )
        )
    if "connect" in data:
        p = sc["connect"]
        out += ["## (D) Connect rate", ""]
        out.append(
            table(
                f"WebSocket handshake + Engine.IO open + namespace connect, concurrency {p['concurrency']}",
                sel("connect"),
                [
                    ("connects/s", ("connect_rate", "connects_per_s"), "", True),
                    ("server CPU µs/connect", ("connect_rate", "cpu_us_per_connect"), "", False),
                ],
                note=f"{p['total']} connections, each closed as soon as its `40{{…}}` arrives "
                "(the server's cleanup is in the CPU figure).",
            )
        )
    if "binary" in data:
        p = sc["binary"]
        out += ["## (E) Binary attachment broadcast", ""]
        out.append(
            table(
                f"{p['clients']:,} clients, bursts of {p['burst']} broadcasts with a "
                f"{p['attachment-bytes'] // 1024} kB bytes attachment",
                sel("binary"),
                [
                    ("delivered msgs/s", ("burst", "msgs_per_s"), "", True),
                    ("MB/s", ("burst", "mb_per_s"), "", True),
                    ("server CPU µs/msg", ("burst", "cpu_us_per_msg"), "", False),
                ],
                note="Each message is `451-[\"msg\",{\"_placeholder\":true,\"num\":0}]` plus a binary frame; "
                "a delivery is counted when the binary frame arrives. Bursts repeat until the phase lasts 1 s.",
                complete=("burst", "complete"),
            )
        )
    extra = [n for n in EXTRA if n in data]
    if extra:
        out += ["## (J) Fan-out for every kind of client (issue 14)", ""]
    for name in extra:
        p = sc[name]
        out.append(
            table(
                f"`{name}`: {p['clients']:,} clients, {EXTRA_TITLES[name]}",
                sel(name),
                [
                    ("burst msgs/s", ("burst", "msgs_per_s"), "", True),
                    ("burst CPU µs/msg", ("burst", "cpu_us_per_msg"), "", False),
                    ("single CPU µs/msg", ("single", "cpu_us_per_msg"), "", False),
                    ("single round ms", ("single", "round_p50_ms"), "", False),
                ],
                note=f"Bursts of `bcast({p['burst']})` repeated until the phase lasts 1 s, then {p['singles']} "
                "single acked broadcasts, each waiting for every delivery.",
                complete=("burst", "complete"),
                reference=p.get("reference", REFERENCE),
            )
        )
    out += ["## Load generator cost", ""]
    out += [
        "Load generator CPU per delivered message in the burst phases (median), to show the clients are not the "
        "bottleneck. It depends on how the server writes: one TCP segment per message costs the client a read each.",
        "",
        "| server | " + " | ".join(n for n in data if n.startswith("fanout") or n == "binary") + " |",
        "|---|" + "--:|" * len([n for n in data if n.startswith("fanout") or n == "binary"]),
    ]
    for server in SERVERS:
        cells = []
        for name in data:
            if not (name.startswith("fanout") or name == "binary"):
                continue
            vs = []
            for r in data[name].get(server, []):
                b = r.get("burst") or {}
                if r.get("ok") and b.get("delivered"):
                    vs.append(b["loadgen_cpu_us"] / b["delivered"])
            cells.append(f"{statistics.median(vs):.2f} µs" if vs else "–")
        if any(c != "–" for c in cells):
            out.append(f"| {SERVERS[server]['label']} | " + " | ".join(cells) + " |")
    out += ["", "![fan-out](fanout.png)" if not quick else "![fan-out](fanout-quick.png)", ""]
    out += [f"Total bench time: {results['elapsed_s'] / 60:.1f} min. Raw figures: `results.json`.", ""]
    # Sections written by other scripts (bench/redis_pair.py) are kept.
    kept = ""
    if path.exists():
        previous = path.read_text()
        at = previous.find(KEEP_MARKER)
        if at >= 0:
            kept = previous[at:]
    path.write_text("\n".join(out) + ("\n" + kept if kept else ""))


def plot(results: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        log("matplotlib missing: no plot")
        return
    data = results["runs"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5.4))
    names = sorted(
        (n for n in data if n.startswith("fanout-")), key=lambda n: results["scenarios"][n]["clients"]
    )
    for server in SERVERS:
        for phase, style in (("burst", "-o"), ("single", "--s")):
            xs, ys, cs = [], [], []
            for n in names:
                runs = data[n].get(server, [])
                v = values(runs, (phase, "msgs_per_s"), (phase, "complete"))
                c = values(runs, (phase, "cpu_us_per_msg"), (phase, "complete"))
                if v and c:
                    xs.append(results["scenarios"][n]["clients"])
                    ys.append(statistics.median(v))
                    cs.append(statistics.median(c))
            if not xs:
                continue
            label = f"{SERVERS[server]['label']} ({'burst of ' + str(results['scenarios'][names[0]]['burst']) if phase == 'burst' else 'single'})"
            color = {"fastsio": "C0", "fastsio-pure": "C1", "fastsio-asgi": "C5", "node": "C2", "pysio": "C3",
                     "floor": "C7"}.get(server, "C4")
            ax1.plot(xs, ys, style, label=label, color=color)
            ax2.plot(xs, cs, style, label=label, color=color)
    for ax, title, ylabel in (
        (ax1, "Delivered messages per second", "msgs/s"),
        (ax2, "Server CPU per delivered message", "µs/msg"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        counts = sorted({results["scenarios"][n]["clients"] for n in names})
        ax.set_xticks(counts)
        ax.set_xticklabels([f"{c:,}" for c in counts])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("clients in the room")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax2.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=7, frameon=False)
    m = results["machine"]
    fig.suptitle(f"Socket.IO fan-out, medians of {results['runs_per_scenario']} runs — {m['cores']} cores {m['cpu']}, {m['date']}", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small loads, 1 run; writes to bench/out/")
    ap.add_argument("--runs", type=int, default=None, help="runs per scenario and server (default 3, quick 1)")
    # metrics on, fastsio under uvicorn and the multi-process servers: only when asked for by name
    # (or, for fastsio-uvicorn, by an issue-14 scenario)
    default_servers = [s for s in SERVERS
                       if s not in ("fastsio-metrics", "fastsio-uvicorn") and not SERVERS[s].get("tree")]
    ap.add_argument("--servers", default=None,
                    help="comma-separated subset of " + ",".join(SERVERS)
                    + " (fastsio-metrics, fastsio-uvicorn and the multi-process ones, *-w1/w2 and node-c1/c2,"
                    " only when named; an issue-14 scenario runs its own list)")
    ap.add_argument("--scenarios", default=None, help="comma-separated subset of the scenario names")
    ap.add_argument("--out", default=None, help="output directory (default bench/, quick: bench/out/)")
    ap.add_argument("--from-json", default=None, help="only rewrite RESULTS.md and the plot from a results.json")
    args = ap.parse_args()
    if args.from_json:
        src = Path(args.from_json)
        results = json.loads(src.read_text())
        suffix = "-quick" if results["quick"] else ""
        write_results(results, src.parent / f"RESULTS{suffix}.md", results["quick"])
        plot(results, src.parent / f"fanout{suffix}.png")
        return

    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 65536
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError) as exc:
        log(f"could not raise the fd limit: {exc}")
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    scenarios = QUICK if args.quick else FULL
    if args.scenarios:
        wanted = args.scenarios.split(",")
        every = {**scenarios, **(EXTRA_QUICK if args.quick else EXTRA)}
        unknown = [w for w in wanted if w not in every]
        if unknown:
            sys.exit(f"unknown scenario {', '.join(unknown)}; known: {', '.join(every)}")
        scenarios = {k: v for k, v in every.items() if k in wanted}
    servers = [s for s in args.servers.split(",") if s] if args.servers else list(SERVERS)
    for s in servers:
        if s not in SERVERS:
            sys.exit(f"unknown server {s}; known: {', '.join(SERVERS)}")
    need = max(int(p.get("clients", 0)) for p in scenarios.values()) * 2 + 200
    if nofile < need:
        sys.exit(f"fd limit {nofile} is below the {need} this run needs; raise `ulimit -n`")
    runs = args.runs or (1 if args.quick else 3)
    outdir = Path(args.out) if args.out else (BENCH / "out" if args.quick else BENCH)
    outdir.mkdir(parents=True, exist_ok=True)
    logdir = BENCH / "out" / "logs"
    logdir.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    info = machine()
    log(f"{info['cores']} cores, {info['cpu']}; servers {servers}; {runs} runs of {list(scenarios)}")
    data: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, params in scenarios.items():
        if args.servers or "servers" in params:
            here = [s for s in servers if s in params.get("servers", servers)]
        else:
            here = [s for s in servers if s in default_servers]
        data[name] = {s: [] for s in here}
        for run in range(runs):
            for server in here:
                t = time.monotonic()
                r = run_one(server, name, params, logdir, run)
                data[name][server].append(r)
                status = "ok" if r.get("ok") else f"FAILED: {r.get('error')}"
                log(f"{name} run {run + 1}/{runs} {server}: {status} ({time.monotonic() - t:.1f}s)")
    results = {
        "machine": info,
        "quick": args.quick,
        "runs_per_scenario": runs,
        "scenarios": scenarios,
        "runs": data,
        "elapsed_s": time.monotonic() - t0,
    }
    suffix = "-quick" if args.quick else ""
    (outdir / f"results{suffix}.json").write_text(json.dumps(results, indent=1))
    write_results(results, outdir / f"RESULTS{suffix}.md", args.quick)
    plot(results, outdir / f"fanout{suffix}.png")
    log(f"done in {results['elapsed_s'] / 60:.1f} min: {outdir / f'RESULTS{suffix}.md'}")


if __name__ == "__main__":
    main()
