#!/usr/bin/env bash
# Prepare a checkout for tests and demos: virtualenv, editable install with the
# Cython extensions built, the npm test peers, the browser client bundle.
# Idempotent: a second run only checks stamps and returns in a second or two.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
PEERS="$ROOT/tests/peers"
STATIC="$ROOT/fastsio/static"
EXTENSIONS=(eio_codec ws_frames sio_codec fanout msgpack_codec)

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# pip and npm must never wait for a prompt (CI has no stdin).
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 npm_config_yes=true
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

hash_files() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# --- Python -----------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
    log "creating virtualenv in .venv"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# The stamp covers everything that changes what `pip install -e` produces.
py_inputs=(setup.py pyproject.toml)
shopt -s nullglob
py_inputs+=(fastsio/_speedups/*.pyx fastsio/_speedups/*.pxd)
shopt -u nullglob
py_stamp_file="$VENV/.fastsio-install.stamp"
py_stamp="$(hash_files "${py_inputs[@]}")"

extensions_present() {
    local name
    for name in "${EXTENSIONS[@]}"; do
        compgen -G "fastsio/_speedups/$name.*.so" >/dev/null || return 1
    done
}

if [[ "$(cat "$py_stamp_file" 2>/dev/null)" != "$py_stamp" ]] || ! extensions_present; then
    log "installing fastsio (editable, with Cython extensions) and test dependencies"
    rm -f "$py_stamp_file"
    "$PY" -m pip install -q --upgrade pip
    # Build requirements go into the venv so rebuilds skip build isolation.
    "$PY" -m pip install -q "setuptools>=68" wheel "cython>=3.0"
    "$PY" -m pip install -q --no-build-isolation -e ".[test]"
    extensions_present || die "Cython extensions were not built into fastsio/_speedups"
    echo "$py_stamp" >"$py_stamp_file"
else
    log "python environment up to date"
fi

# --- npm peers ----------------------------------------------------------------
command -v node >/dev/null || die "node not found (Node.js 20 is needed for the interop tests)"
command -v npm >/dev/null || die "npm not found"
npm_stamp_file="$PEERS/node_modules/.fastsio-npm.stamp"
npm_stamp="$(hash_files "$PEERS/package.json" "$PEERS/package-lock.json")"
if [[ "$(cat "$npm_stamp_file" 2>/dev/null)" != "$npm_stamp" ]]; then
    log "installing npm test peers (npm ci in tests/peers)"
    (cd "$PEERS" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$npm_stamp" >"$npm_stamp_file"
else
    log "npm peers up to date"
fi
for peer in engine.io-client socket.io-client socket.io-client-v2; do
    [[ -f "$PEERS/node_modules/$peer/package.json" ]] || die "npm peer $peer missing after npm ci"
done

# --- browser client bundle (served at /socket.io/socket.io.js) ---------------
mkdir -p "$STATIC"
dist="$PEERS/node_modules/socket.io-client/dist"
for f in socket.io.js socket.io.min.js socket.io.esm.min.js; do
    for g in "$f" "$f.map"; do
        [[ -f "$dist/$g" ]] || die "client bundle $dist/$g missing"
        cmp -s "$dist/$g" "$STATIC/$g" || cp "$dist/$g" "$STATIC/$g"
    done
done

log "ready ($("$PY" -c 'import sys; print(sys.version.split()[0])'), node $(node --version))"
