#!/usr/bin/env bash
# A debug build of the Cython extensions for coverage and profiling:
# CYTHON_TRACE + linetrace (coverage of the .pyx lines with Cython.Coverage)
# and annotate (fastsio/_speedups/*.html shows where Python objects are touched).
# Rebuild normally afterwards with: bash ci/setup.sh (or pip install -e .).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash ci/setup.sh
rm -f fastsio/_speedups/*.so fastsio/_speedups/*.c
FASTSIO_DEBUG_BUILD=1 .venv/bin/python setup.py build_ext --inplace --force
# the normal build's stamp no longer matches these binaries
rm -f .venv/.fastsio-install.stamp
echo "debug build ready: annotated sources in fastsio/_speedups/*.html"
