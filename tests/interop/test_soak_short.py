"""The soak at CI size: 1,000 connections for 30 s under churn and broadcasts.

The same script as the long soak (``bench/soak/soak.py``; figures in
bench/RESULTS.md, section S), from one Node process of raw Engine.IO /
Socket.IO clients: WebSocket, polling and polling->WebSocket upgrade clients,
a quarter of them churning (clean or abrupt disconnect, reconnect on a random
transport, upgrade) while the server broadcasts a numbered event to everybody
five times a second, 32 kB ten times a second to a "heavy" room, and a volatile
event every second; five clients (WebSocket and polling) stop reading once
connected. The invariants (bounds in soak.py's docstring, wide on purpose: the
CI machine is shared and noisy):

- every client that stayed connected got every numbered broadcast since it
  connected, in order, up to the last one; churned connections saw no gap
  while they lived;
- server RSS, open fds and asyncio tasks flat after a 10 s warm-up (least-squares
  slope times the span under the bound), peak RSS within a per-connection
  budget plus the caps of the stopped readers;
- every stopped reader cut by the server as a slow consumer ("transport error",
  a description naming max_buffered_bytes, no more than the cap pending);
- no ERROR or traceback in the server log; the graceful close is bounded.

The reconnect storm (every connection cut at once) is left to the long soak
(``bash bench/soak/run.sh``): at load 10 on the 2-core CI machine it adds
~20 s. About 45 s per mode (60 s at load 10); deselect with ``-m "not soak"``; FASTSIO_SOAK_CONNECTIONS /
FASTSIO_SOAK_SECONDS change the size.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "bench" / "soak"))

import soak  # noqa: E402

pytestmark = pytest.mark.soak


@pytest.mark.timeout(240)
async def test_soak_short(tmp_path: Path) -> None:
    connections = int(os.environ.get("FASTSIO_SOAK_CONNECTIONS", "1000"))
    duration = float(os.environ.get("FASTSIO_SOAK_SECONDS", "30"))
    result = await soak.run_soak(connections=connections, duration=duration, procs=1, warmup=10,
                                 churn_period=8, sample_every=1.0, storm=False, log_dir=tmp_path,
                                 pure=os.environ.get("FASTSIO_NO_EXTENSIONS") == "1")
    summary = {k: v for k, v in result.items() if k not in ("clients", "series")}
    failures = result["failures"]
    assert not failures, "soak invariants broken:\n  " + "\n  ".join(failures) + \
        f"\nlogs in {tmp_path}\n" + json.dumps(summary, indent=1, default=str)[:6000]
    # the run exercised what it claims to (a soak that did nothing would pass the checks above)
    delivery = result["delivery"]
    assert delivery["stable_connected"] == delivery["stable_clients"] > connections // 2
    assert result["final_seq"] > duration * 3 and delivery["stable_last_min"] == result["final_seq"]
    assert delivery["churns"] > connections // 10 and delivery["upgrades"] > connections // 20
    stopped = result["stopped"]
    assert stopped["cut_as_slow_consumers"] == stopped["clients"] > 0
    assert set(stopped["transports"]) == {"websocket", "polling"}
    assert result["samples"] >= duration / 2
