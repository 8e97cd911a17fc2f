#!/usr/bin/env bash
# The demo command: prepare the checkout, then serve the demo on
# http://127.0.0.1:3000 until Ctrl-C. Arguments go to `python -m fastsio.demo`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash "$ROOT/ci/setup.sh"
exec "$ROOT/.venv/bin/python" -m fastsio.demo "$@"
