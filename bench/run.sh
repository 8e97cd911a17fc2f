#!/usr/bin/env bash
# One command for the fastsio benchmarks: prepares what it needs, then runs
# every scenario against every server and writes bench/RESULTS.md,
# bench/fanout.png and bench/results.json.
#
#   bash bench/run.sh               # full run (~9 min on 2 cores)
#   bash bench/run.sh --quick       # short run, written to bench/out/
#   bash bench/run.sh --servers node,fastsio --scenarios echo --runs 5
#   bash bench/run.sh --micro       # codec micro-benchmarks (pytest-benchmark)
#   bash bench/run.sh --no-setup    # skip ci/setup.sh (fastsio already built)
#   bash bench/run.sh --redis-pair [--quick] [--clients N] [--runs N]
#                                   # two servers on one Redis: fastsio pair vs Node pair
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
cd "$BENCH"

log() { printf '[run.sh] %s\n' "$*" >&2; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

SETUP=1
MICRO=0
REDIS_PAIR=0
ARGS=()
for a in "$@"; do
    case "$a" in
        --no-setup) SETUP=0 ;;
        --micro) MICRO=1 ;;
        --redis-pair) REDIS_PAIR=1 ;;
        *) ARGS+=("$a") ;;
    esac
done

# 5,000 clients means 5,000 sockets in the server and 5,000 in the load generator.
HARD="$(ulimit -Hn)"
if [[ "$HARD" == "unlimited" ]]; then HARD=65536; fi
ulimit -n "$HARD" || log "could not raise the fd limit above $(ulimit -n)"
log "fd limit $(ulimit -n)"

# fastsio: the project's venv with the Cython extensions built (idempotent).
if [[ "$SETUP" == 1 ]]; then
    bash "$ROOT/ci/setup.sh" || log "WARNING: ci/setup.sh failed; benchmarking fastsio as it is"
fi
export FASTSIO_PYTHON="$ROOT/.venv/bin/python"

if [[ "$MICRO" == 1 ]]; then
    mkdir -p "$BENCH/out"; cd "$ROOT"
    exec "$FASTSIO_PYTHON" -m pytest bench/micro -p no:cacheprovider -o testpaths=bench/micro \
        --benchmark-columns=median,iqr,ops,rounds --benchmark-sort=fullname --benchmark-json="$BENCH/out/micro.json" ${ARGS[@]+"${ARGS[@]}"}
fi

if [[ "$REDIS_PAIR" == 1 ]]; then
    # Node side from the test peers (socket.io 4.8, @socket.io/redis-adapter 8.3, redis, socket.io-client).
    exec "$FASTSIO_PYTHON" "$BENCH/redis_pair.py" ${ARGS[@]+"${ARGS[@]}"}
fi

# Node: socket.io and ws from the lock file.
command -v node >/dev/null || { log "node not found"; exit 1; }
stamp() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }
if [[ ! -f node_modules/.bench-stamp || "$(cat node_modules/.bench-stamp)" != "$(stamp package-lock.json)" ]]; then
    log "npm ci"
    npm ci --no-audit --no-fund >&2
    stamp package-lock.json > node_modules/.bench-stamp
fi

# Python: the bench venv for python-socketio/uvicorn and matplotlib.
if [[ ! -x .venv/bin/python ]]; then
    log "creating bench/.venv"
    "${PYTHON:-python3}" -m venv .venv
fi
if [[ ! -f .venv/.bench-stamp || "$(cat .venv/.bench-stamp)" != "$(stamp requirements.txt)" ]]; then
    log "pip install -r bench/requirements.txt"
    .venv/bin/pip install -q -r requirements.txt
    stamp requirements.txt > .venv/.bench-stamp
fi

exec .venv/bin/python bench.py ${ARGS[@]+"${ARGS[@]}"}
