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
EXTENSIONS=(eio_codec ws_frames sio_codec fanout msgpack_codec http_fast)

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# pip and npm must never wait for a prompt (CI has no stdin).
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 npm_config_yes=true
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

hash_files() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# apt_install WHY PKG...: installs Debian packages (one retry after a pause, for a
# mirror hiccup). Needs root: as another user it uses `sudo -n` when that works
# without a password, and otherwise stops with the command to run.
apt_install() {
    local why="$1"
    shift
    command -v apt-get >/dev/null ||
        die "$why: install $* with your system's package manager (no apt-get here: not Debian)"
    local -a as_root=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            die "$why: installing the Debian package(s) $* needs root. Run: sudo apt-get install -y $* (then run this command again)"
        fi
    fi
    log "$why: installing Debian package(s) $* (apt-get)"
    local attempt
    for attempt in 1 2; do
        if "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then
            return 0
        fi
        log "apt-get install $* failed (attempt $attempt)"
        [[ $attempt -eq 2 ]] || sleep 10
    done
    die "could not install the Debian package(s) $*"
}

# --- Python version: 3.10 or newer --------------------------------------------
# (the interpreter of .venv once it exists, else $PYTHON, which makes it)
check_py="$PYTHON"
[[ -x "$VENV/bin/python" ]] && check_py="$VENV/bin/python"
command -v "$check_py" >/dev/null || die "$check_py not found: fastsio needs Python 3.10 or newer (set PYTHON=/path/to/python3.x)"
py_version="$("$check_py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
"$check_py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "fastsio needs Python 3.10 or newer; $check_py is $py_version (set PYTHON=/path/to/python3.x, and remove .venv if it was made by an older one)"

# --- Python -----------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian ships venv/ensurepip apart from the interpreter
        apt_install "$PYTHON has no venv module" "python$py_version-venv"
    fi
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
    # the Cython extensions need a C compiler and the Python headers
    command -v cc >/dev/null || command -v gcc >/dev/null || apt_install "no C compiler" gcc
    if ! "$PY" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
        apt_install "no Python headers (Python.h)" "python$py_version-dev"
    fi
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
# Node.js runs the JS peers of the interop tests; Debian's own packages will do
if ! command -v node >/dev/null; then
    apt_install "node not found (Node.js runs the interop tests' JS peers)" nodejs npm
fi
command -v npm >/dev/null || apt_install "npm not found" npm
command -v node >/dev/null || die "node not found after installing nodejs"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$node_major" -ge 18 ]] || die "Node.js 18 or newer is needed; node is $(node --version)"
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
