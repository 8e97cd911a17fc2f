#!/usr/bin/env bash
# The long soak: bash bench/soak/run.sh [--connections 10000 --duration 240 --procs 2 --json out.json]
# Sets up the project (ci/setup.sh), raises the fd limit to the hard limit (10,000
# connections need ~25,000 descriptors across the server and the client processes),
# then runs bench/soak/soak.py; exit code 1 when an invariant did not hold.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash ci/setup.sh >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec .venv/bin/python bench/soak/soak.py "$@"
