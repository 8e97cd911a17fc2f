#!/usr/bin/env bash
# The test command: prepare the checkout, then run the whole suite twice,
# once on the compiled codecs and once on the pure-Python twins.
# Extra arguments are passed to both pytest runs (e.g. `bash ci/test.sh -k echo`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# ensure_deb PACKAGE CHECK-COMMAND...: installs Debian's PACKAGE when CHECK-COMMAND
# fails, with root or passwordless sudo, retrying once after a pause (a mirror
# hiccup should not fail the run); fails with the command to run by hand otherwise.
ensure_deb() {
    local pkg="$1"
    shift
    "$@" && return 0
    if [[ $(id -u) -ne 0 ]] && ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
        echo "[test] ERROR: $pkg is missing and installing Debian's $pkg needs root." \
             "Run: sudo apt-get install -y $pkg (then run this command again)" >&2
        return 1
    fi
    local -a as_root=()
    [[ $(id -u) -eq 0 ]] || as_root=(sudo -n)
    echo "[test] installing $pkg from Debian" >&2
    local attempt
    for attempt in 1 2; do
        if "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; then
            break
        fi
        echo "[test] $pkg install failed (attempt $attempt)" >&2
        sleep 10
    done
    "$@"
}

# The browser is `chromium` on Debian and `chromium-browser` on some other systems: either will do.
have_chromium() { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }
have_nginx() { command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; }
have_redis() { command -v redis-server >/dev/null; }

bash "$ROOT/ci/setup.sh"
# the demo page runs in a real headless browser (tests/interop/test_demo_browser.py)
ensure_deb chromium have_chromium
# the adapter tests start private redis-server processes (tests/support/redis_server.py)
ensure_deb redis-server have_redis
# the nginx example of docs/scaling.md runs in its own nginx process
# (tests/interop/test_scaling_nginx.py); the system nginx service is never started
ensure_deb nginx have_nginx

PY="$ROOT/.venv/bin/python"
WORK="$ROOT/tests/.work"
mkdir -p "$WORK"
TIMEOUT="${FASTSIO_TEST_TIMEOUT:-120}"

# run_mode NAME ENVVAR: one pytest run; prints its verdict, returns its status.
run_mode() {
    local name="$1" envvar="$2" rc=0
    shift 2
    echo
    echo "=== pytest: $name codecs ($envvar=1) ==="
    rm -f "$WORK/junit-$name.xml"
    env -u FASTSIO_NO_EXTENSIONS -u FASTSIO_REQUIRE_EXTENSIONS "$envvar=1" \
        "$PY" -m pytest -p no:cacheprovider -q --timeout "$TIMEOUT" \
        --junitxml "$WORK/junit-$name.xml" "$@" </dev/null || rc=$?
    if [[ $rc -eq 5 ]]; then
        echo "[test] $name: pytest collected no tests: counted as a failure" >&2
    fi
    return "$rc"
}

rc_compiled=0
rc_pure=0
run_mode compiled FASTSIO_REQUIRE_EXTENSIONS "$@" || rc_compiled=$?
run_mode pure FASTSIO_NO_EXTENSIONS "$@" || rc_pure=$?

status=0
if [[ $rc_compiled -ne 0 || $rc_pure -ne 0 ]]; then
    echo "[test] FAILED (compiled exit $rc_compiled, pure exit $rc_pure)"
    status=1
else
    echo "[test] OK"
fi

# The last line: one summary over both runs, counted from the JUnit reports.
"$PY" - "$WORK/junit-compiled.xml" "$WORK/junit-pure.xml" "$rc_compiled" "$rc_pure" <<'PYEOF'
import sys
import xml.etree.ElementTree as ET

files, codes = sys.argv[1:3], sys.argv[3:5]
passed = failed = skipped = 0
parts = []
for name, path, code in zip(("compiled", "pure"), files, codes):
    p = f = s = 0
    try:
        root = ET.parse(path).getroot()
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            fail = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            p += tests - fail - skip
            f += fail
            s += skip
    except (OSError, ET.ParseError):
        pass
    if code != "0" and f == 0:
        f = 1  # the run failed without a failing test (collection error, no tests)
    parts.append(f"{name}: {p} passed, {f} failed, {s} skipped (exit {code})")
    passed, failed, skipped = passed + p, failed + f, skipped + s
print()
print("; ".join(parts))
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
PYEOF

exit "$status"
