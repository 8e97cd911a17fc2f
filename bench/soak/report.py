"""Markdown summary of a soak result (the JSON that bench/soak/soak.py writes).

    python bench/soak/report.py /tmp/fastsio-soak/last.json

Prints the run's header (date, commit, load average, N, duration), the server
trends after the warm-up (RSS, fds, tasks, sessions, live objects: first, last,
range, least-squares slope), delivery (per-client completeness and order), the
stopped readers, the storm, the close, the server log and the failed checks:
the tables of bench/RESULTS.md, section S.
"""
from __future__ import annotations

import json
import sys
from typing import Any


def _n(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render(r: dict[str, Any]) -> str:
    lines: list[str] = []
    server = r.get("server", {})
    la0 = r.get("load_avg_start") or [0, 0, 0]
    la1 = r.get("load_avg_end") or [0, 0, 0]
    lines.append(
        f"Run {r.get('started_utc', '?')} (commit {r.get('commit', '?')}): {r['connections']:,} connections from "
        f"{r['procs']} Node client process(es), held {r['duration_s']:.0f} s after the initial connect "
        f"({_n(r.get('initial_connect_s'))} s, {_n(r.get('initial_connected'))} connected); warm-up "
        f"{r['warmup_s']:.0f} s left out of the trends; server {server.get('implementation', '?')} on "
        f"{server.get('loop', '?')}; load average {la0[0]:.1f} at the start, {la1[0]:.1f} at the end "
        f"({r.get('cpus', '?')} cores); worst client event-loop lag {_n(r.get('client_lag_max_s'), 2)} s.")
    lines.append("")
    lines.append(
        f"Traffic: a numbered `b` to all every {r.get('interval_s')} s, a volatile `v` every second, "
        f"{r.get('heavy_bytes', 0) // 1024} KiB `h` every {r.get('heavy_interval_s')} s to the heavy room "
        f"({r.get('heavy_fast')} fast readers + {r.get('stopped_readers')} stopped readers); clients "
        f"{r.get('ws_frac', 0):.0%} WebSocket, {r.get('upgrade_frac', 0):.0%} polling->upgrade, rest polling; "
        f"a quarter churn every ~{r.get('churn_period_s')} s; max_buffered_bytes {r.get('max_buffered_bytes', 0):,}.")
    lines.append("")
    trend = r.get("trend", {})
    if trend:
        span = trend.get("span_s")
        lines.append(f"| server, sampled every {r.get('sample_every_s', '?')} s ({r.get('samples', '?')} samples) "
                     f"| first | last | min - max | slope /min | slope x span ({_n(span)} s) |")
        lines.append("|---|--:|--:|--:|--:|--:|")
        for key, label in (("rss_kib", "RSS KiB"), ("fds", "open fds"), ("tasks", "asyncio tasks"),
                           ("bg_tasks", "fastsio background tasks"), ("sessions", "Engine.IO sessions"),
                           ("objects", "live Python objects (gc)")):
            t = trend.get(key)
            if not t:
                continue
            lines.append(f"| {label} | {_n(t['first'], 0)} | {_n(t['last'], 0)} | {_n(t['min'], 0)} - "
                         f"{_n(t['max'], 0)} | {t['slope_per_min']:+,.1f} | {t['drift_over_span']:+,.1f} |")
        rss = r.get("rss", {})
        if rss:
            lines.append(f"| RSS peak above the idle server (KiB) | | {_n(rss.get('peak_above_idle_kib'))} | | "
                         f"budget {_n(rss.get('budget_kib'))} | |")
        lines.append("")
    d = r.get("delivery", {})
    st = r.get("stopped", {})
    storm = r.get("storm")
    rows = [
        ("clients meant to stay connected, connected at the end",
         f"{_n(d.get('stable_connected'))} of {_n(d.get('stable_clients'))}"),
        ("numbered broadcasts `b` sent", _n((r.get("final_seq") or 0) + 1)),
        ("last `b` of every client that stayed connected = the last sent",
         f"{d.get('stable_last_min') == r.get('final_seq')} ({_n(d.get('stable_last_min'))} / {_n(r.get('final_seq'))})"),
        ("gaps or reordering in `b` / `h`, every connection incl. churned ones",
         f"{_n(d.get('b_gaps'))} / {_n(d.get('h_gaps'))}"),
        ("heavy-room fast readers connected, with every `h`",
         f"{_n(d.get('heavy_fast_connected'))} (last {_n(d.get('heavy_last_min'))} of {_n(r.get('final_hseq'))})"),
        ("churn cycles / upgrades", f"{_n(d.get('churns'))} / {_n(d.get('upgrades'))}"),
        ("connections lost unexpectedly (client side)", f"{_n(d.get('lost'))} {d.get('client_errors') or ''}"),
        ("stopped readers cut as slow consumers (\"transport error\", max_buffered_bytes)",
         f"{_n(st.get('cut_as_slow_consumers'))} of {_n(st.get('clients'))} {st.get('transports', '')}, "
         f"at most {_n(st.get('pending_at_cut_max'))} bytes pending at the cut, "
         f"{_n(st.get('cut_after_connect_s_max'))} s after connecting at most"),
        ("volatile packets dropped (engine.stats)", _n(st.get("volatile_dropped"))),
    ]
    if storm:
        rows.append(("reconnect storm: all cut at once, back in",
                     f"{_n(storm.get('seconds'), 2)} s, {_n(storm.get('connected'))} of {_n(storm.get('clients'))} "
                     f"connected, {_n(storm.get('refused'))} refused, {_n(storm.get('timed_out_attempts'))} "
                     f"attempts timed out and retried"))
    rows += [
        ("graceful `io.close()` at the end", f"{_n(r.get('close_s'), 3)} s"),
        ("server log errors / warnings", f"{len(r.get('server_log_errors', []))} / {_n(r.get('server_log_warnings'))}"),
        ("server-side disconnect reasons", json.dumps(r.get("reasons", {}))),
        ("checks failed", json.dumps(r.get("failures", [])) if r.get("failures") else "none"),
    ]
    lines.append("| delivery and the rest | |")
    lines.append("|---|---|")
    for k, v in rows:
        lines.append(f"| {k} | {v} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    with open(sys.argv[1]) as f:
        r = json.load(f)
    sys.stdout.write(render(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
