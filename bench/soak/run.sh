#!/usr/bin/env bash
# The long soak:
#   bash bench/soak/run.sh [--connections 10000] [--duration 300] [soak.py options...]
# Sets up the project (ci/setup.sh; FASTSIO_SOAK_NO_SETUP=1 skips it), raises the
# fd limit to the hard limit (10,000 connections need ~25,000 descriptors across
# the server and the client processes; every process gets the raised limit),
# checks the ephemeral port range (every client connection to the one server
# port takes a local port: ~2 per client, polling clients keep a GET and a POST
# connection), picks one Node client process per 2,500 connections, then runs
# bench/soak/soak.py; the result goes to $FASTSIO_SOAK_OUT/last.json (default
# /tmp/fastsio-soak; and stdout), the logs beside it, a markdown summary to
# last.md (bench/soak/report.py). Exit code 1 when an invariant did not hold.
#
# Defaults for the long run (each can be given again on the command line, the
# last one wins): 10,000 connections held 300 s after they are all up, a 60 s
# warm-up left out of the trends (abandoned polling sessions take ping_interval +
# ping_timeout = 45 s to be reaped), a numbered broadcast every second (every
# 0.2 s in the CI size: at 10,000 clients the polling share alone would be
# 10,000 HTTP requests a second on a shared 2-core machine), 20 stopped readers
# and 20 fast readers in the heavy room, samples every 5 s, then the reconnect storm.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ "${FASTSIO_SOAK_NO_SETUP:-}" == 1 ]] || bash ci/setup.sh >/dev/null

connections=10000
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [[ "${args[$i]}" == --connections ]] && connections="${args[$((i + 1))]}"
done
procs=$(( (connections + 2499) / 2500 ))

hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || true
need_fds=$(( connections * 3 / procs + 2000 ))
if [[ "$hard" != unlimited ]] && (( hard < connections + 2000 )); then
    echo "[soak] the hard fd limit ($hard) is below what the server needs ($((connections + 2000))):" \
         "raise it (limits.conf / systemd LimitNOFILE) or run fewer --connections" >&2
    exit 2
fi
read -r port_lo port_hi < /proc/sys/net/ipv4/ip_local_port_range
ports=$(( port_hi - port_lo + 1 ))
need_ports=$(( connections * 2 + 2000 ))
if (( ports < need_ports )); then
    echo "[soak] the ephemeral port range ($port_lo-$port_hi: $ports ports) is smaller than the" \
         "~$need_ports local ports $connections connections to one server port can take; widen it:" \
         "sysctl -w net.ipv4.ip_local_port_range='1024 65535' (or run fewer --connections)" >&2
    exit 2
fi
tw_reuse=$(cat /proc/sys/net/ipv4/tcp_tw_reuse 2>/dev/null || echo '?')
echo "[soak] $connections connections from $procs client processes; fd limit $(ulimit -n) (need ~$need_fds per client process);" \
     "ephemeral ports $port_lo-$port_hi ($ports); tcp_tw_reuse=$tw_reuse; load average $(cut -d' ' -f1-3 /proc/loadavg);" \
     "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >&2

out="${FASTSIO_SOAK_OUT:-/tmp/fastsio-soak}"
mkdir -p "$out"
.venv/bin/python bench/soak/soak.py --connections 10000 --duration 300 --warmup 60 --interval 1.0 \
    --stopped 20 --heavy-fast 20 --sample-every 5 --churn-period 15 --procs "$procs" \
    --json "$out/last.json" --log-dir "$out" "${args[@]}" > "$out/stdout.json" && rc=0 || rc=$?
.venv/bin/python bench/soak/report.py "$out/last.json" > "$out/last.md" || true
cat "$out/last.md"
echo "[soak] result: $out/last.json, logs in $out" >&2
exit "$rc"
