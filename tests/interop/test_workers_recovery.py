"""Connection state recovery across workers (``--workers 2``, npm socket.io-client).

The app (tests/interop/workers_recovery_app.py) runs through the real
command line. Every worker broadcasts numbered ticks to room "r" while the
receiver's connection is cut; the receiver reconnects, and the driver cuts
again until the reconnect lands on the other worker than the one holding
its session (every answer names the worker's pid). It must come back with
``recovered`` true, its id, rooms and data, and every tick of every worker
exactly once and in each worker's order: the missed ones before the new.
"""
from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from conftest import RunNode
from test_workers import Served, start


@pytest.fixture
async def recovering(free_port: int) -> AsyncIterator[Any]:
    servers: list[Served] = []

    async def run(count: int = 2, duration: float = 60) -> Served:
        s = await start(free_port, count, app="workers_recovery_app:io",
                        extra_env={"FASTSIO_TEST_RECOVERY_S": str(duration)})
        servers.append(s)
        return s

    yield run
    for s in servers:
        await s.stop()


def ticks_by_worker(got: list[list[Any]]) -> dict[int, list[int]]:
    by: dict[int, list[int]] = {}
    for pid, k in got:
        by.setdefault(pid, []).append(k)
    return by


def check_moved_and_recovered(res: dict[str, Any]) -> None:
    rounds = res["rounds"]
    first_id = res["connects"][0]["id"]
    # it landed on the other worker in the end (the answers name the workers' pids)
    assert rounds[-1]["from"] != rounds[-1]["to"], rounds
    for r in rounds:
        assert r["recovered"] is True, r
        assert r["id"] == first_id and r["state"]["id"] == first_id, r
        assert "r" in r["state"]["rooms"] and first_id in r["state"]["rooms"], r
        assert r["state"]["data"]["name"] == "r", r
    # every tick of each worker exactly once, in that worker's order: none lost while away,
    # the missed ones delivered before the new ones
    by = ticks_by_worker(res["got"])
    assert len(by) == 2, by.keys()
    for pid, ks in by.items():
        assert ks == list(range(ks[0], ks[0] + len(ks))), (pid, ks)
    assert len(res["got"]) == sum(r["ticks"] for r in rounds), (len(res["got"]), rounds)


async def test_a_client_that_moves_to_another_worker_recovers_everything_and_a_dead_owner_gives_a_fresh_session(
        recovering: Any, run_node: RunNode) -> None:
    # one primary for the three runs (each start costs seconds on a loaded machine)
    served = await recovering()
    for mode in ("websocket", "polling"):
        res = (await run_node("workers_recovery.mjs", "scenario=move", f"port={served.port}", f"mode={mode}",
                              timeout=60)).check().one("result")
        check_moved_and_recovered(res)
    # the worker holding the session is killed (SIGKILL) as the client's connection drops
    start_at = len(served.err)
    run = (await run_node("workers_recovery.mjs", "scenario=dead", f"port={served.port}", timeout=60)).check()
    res = run.one("result")
    (r,) = res["rounds"]
    assert r["recovered"] is False, r
    assert r["to"] != r["from"], r  # the killed worker's pid is gone (a survivor or its restart answered)
    if r["to"] in run.one("start")["senders"]:
        # the survivor answered at once (the bus saw the owner go), not after the 5 s request timeout
        assert r["back_ms"] < 4000, r
    else:
        # the restarted worker took it: bounded by its start on this machine
        assert r["back_ms"] < 15000, r
    await served.wait_stderr("restarting it", start=start_at)
    assert served.proc.returncode is None


async def test_an_expired_session_gives_a_fresh_one(recovering: Any, run_node: RunNode) -> None:
    served = await recovering(duration=1)
    res = (await run_node("workers_recovery.mjs", "scenario=expire", f"port={served.port}", "away_ms=2500",
                          timeout=60)).check().one("result")
    (r,) = res["rounds"]
    assert r["recovered"] is False, r
    assert r["id"] != res["connects"][0]["id"], r
