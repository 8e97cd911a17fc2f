"""The server under soak: a fastsio Server that broadcasts on a timer and samples itself.

    python bench/soak/server.py --port 3000 --log server.log

Every socket joins room ``all``; a socket whose handshake query has
``heavy=1`` also joins ``heavy``. Broadcasts: ``b`` (a sequence number and a
small payload) to ``all`` every ``--interval`` seconds, a volatile ``v`` to
``all`` every second, and ``h`` (a sequence number and ``--heavy-bytes``
bytes) to ``heavy`` every ``--heavy-interval`` seconds: the clients of the
soak that stop reading (``stopped=1`` in the query) are in ``heavy`` with
fast readers, so the slow-consumer caps are what bounds the memory they would
hold. They are also in ``sink``, which gets ``--sink-bytes`` of binary every
``--sink-interval`` seconds, so that they reach the cap within seconds while
the fast readers of ``heavy`` keep a wide margin for a stall of their own.

Stdout gets one JSON line per event: ``ready``, a ``sample`` every
``--sample-every`` seconds (RSS, open fds, asyncio tasks, fastsio background
tasks, sessions, sockets, the last sequence numbers, disconnect reasons so
far), the broadcasts to everybody from SIGHUP on, ``stopped`` after SIGUSR1 (broadcasts stop; the final sequence numbers)
and ``closed`` after SIGTERM (a graceful ``io.close()``). Log records of level
WARNING and up go to ``--log``.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import logging
import os
import resource
import signal
import sys
import time
from typing import Any

import fastsio
from fastsio import _tasks


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def type_counts() -> "collections.Counter[str]":
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def out(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {"ping_interval": args.ping_interval, "ping_timeout": args.ping_timeout,
                               "drain_timeout": args.drain_timeout}
    if args.max_buffered_bytes:
        options["max_buffered_bytes"] = args.max_buffered_bytes
    if args.drop_volatile_above:
        options["drop_volatile_above"] = args.drop_volatile_above
    try:
        io = fastsio.Server(**options)
    except TypeError:
        # an older fastsio without the slow-consumer options
        options.pop("drop_volatile_above", None)
        io = fastsio.Server(**options)
    reasons: collections.Counter[str] = collections.Counter()
    connects = 0
    # the heavy room's clients (those that stop reading say so in their query): how each one ended
    stopped: dict[str, dict[str, Any]] = {}
    heavy_fast: dict[str, dict[str, Any]] = {}

    @io.on("connection")
    def on_connection(socket: Any) -> None:
        nonlocal connects
        connects += 1
        socket.join("all")
        entry: dict[str, Any] = {}

        def on_disconnect(reason: str, description: Any) -> None:
            reasons.update((reason,))
            if entry:
                entry.update(reason=reason, description=str(description), t_disconnect=now())

        socket.on("disconnect", on_disconnect)
        if socket.handshake.query.get("heavy") != "1":
            return
        if socket.handshake.query.get("stopped") != "1":
            socket.join("heavy")
            entry.update(transport=socket.conn.transport.name, t_connect=now())
            heavy_fast[socket.id] = entry
            return

        # A client that is about to stop reading says "stopped" once it has its connect
        # reply (else the flood could cut it before it even knows it is connected):
        # from then on it gets the heavy room and the sink.
        def on_stopped() -> None:
            if entry or not socket.connected:
                return
            entry.update(transport=socket.conn.transport.name, t_connect=now())
            stopped[socket.id] = entry
            socket.join(["heavy", "sink"])

        socket.on("stopped", on_stopped)

    started = time.monotonic()

    def now() -> float:
        return round(time.monotonic() - started, 2)

    await io.listen(args.port, host="127.0.0.1")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    halt = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, halt.set)
    # SIGHUP (sent once every client is connected): the numbered and volatile broadcasts
    # to everybody start (during the initial connect they would only slow it down)
    go = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, go.set)
    # SIGUSR2 (sent at the end of the warm-up): count the live objects by type, so that
    # "stopped" can say which kinds grew since (the first thing to look at for a leak)
    marks: list[collections.Counter[str]] = []
    loop.add_signal_handler(signal.SIGUSR2, lambda: marks.append(type_counts()))
    seq = -1
    hseq = -1
    payload = "p" * args.payload_bytes
    heavy = "h" * args.heavy_bytes

    async def broadcaster() -> None:
        nonlocal seq
        await go.wait()
        while not halt.is_set():
            seq += 1
            io.to("all").emit("b", seq, payload)
            await asyncio.sleep(args.interval)

    async def volatile() -> None:
        n = 0
        await go.wait()
        while not halt.is_set():
            n += 1
            io.volatile.emit("v", n)
            await asyncio.sleep(1.0)

    sink = b"s" * args.sink_bytes

    async def sink_broadcaster() -> None:
        while not halt.is_set():
            io.to("sink").emit("s", sink)
            await asyncio.sleep(args.sink_interval)

    async def heavy_broadcaster() -> None:
        nonlocal hseq
        while not halt.is_set():
            hseq += 1
            io.to("heavy").emit("h", hseq, heavy)
            await asyncio.sleep(args.heavy_interval)

    def sample() -> dict[str, Any]:
        return {
            "t": round(time.monotonic() - started, 2),
            "rss_kib": rss_kib(),
            "fds": len(os.listdir("/proc/self/fd")),
            "tasks": len(asyncio.all_tasks()),
            "objects": len(gc.get_objects()),
            "bg_tasks": len(_tasks.ALL),
            "sessions": len(io.engine.clients),
            "sockets": len(io.sockets.sockets),
            "connects": connects,
            "seq": seq,
            "hseq": hseq,
            "reasons": dict(reasons),
            "slow_consumer_disconnects": io.engine.stats.slow_consumer_disconnects,
            "volatile_dropped": io.engine.stats.volatile_dropped,
        }

    async def sampler() -> None:
        while not stop.is_set():
            out("sample", **sample())
            try:
                await asyncio.wait_for(stop.wait(), args.sample_every)
            except asyncio.TimeoutError:
                pass

    out("ready", pid=os.getpid(), implementation=fastsio.IMPLEMENTATION, rss_kib=rss_kib(),
        loop=type(loop).__module__, nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        max_buffered_bytes=io.engine.max_buffered_bytes, drain_timeout=io.engine.drain_timeout)
    jobs = [asyncio.ensure_future(j()) for j in (broadcaster, volatile, heavy_broadcaster, sink_broadcaster, sampler)]
    either = [asyncio.ensure_future(halt.wait()), asyncio.ensure_future(stop.wait())]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if halt.is_set():
        # the broadcasters finish their current sleep, then stop
        await asyncio.sleep(max(args.interval, args.heavy_interval) + 0.05)
        grown: dict[str, int] = {}
        if marks:
            diff = type_counts()
            diff.subtract(marks[0])
            grown = {k: v for k, v in diff.most_common(12) if v > 0}
        out("stopped", seq=seq, hseq=hseq, stopped_readers=list(stopped.values()), objects_grown=grown,
            heavy_fast_ended=[e for e in heavy_fast.values() if "reason" in e])
    await stop.wait()
    halt.set()
    for w in either:
        w.cancel()
    for j in jobs:
        j.cancel()
    t0 = time.monotonic()
    await io.close(timeout=5)
    out("closed", seconds=round(time.monotonic() - t0, 3), **sample())


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--log", default="soak-server.log")
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--payload-bytes", type=int, default=100)
    p.add_argument("--heavy-interval", type=float, default=0.1)
    p.add_argument("--heavy-bytes", type=int, default=32768)
    p.add_argument("--sink-interval", type=float, default=0.1)
    p.add_argument("--sink-bytes", type=int, default=256 * 1024)
    p.add_argument("--sample-every", type=float, default=2.0)
    p.add_argument("--ping-interval", type=float, default=25)
    p.add_argument("--ping-timeout", type=float, default=20)
    p.add_argument("--max-buffered-bytes", type=int, default=2 * 1024 * 1024)
    p.add_argument("--drop-volatile-above", type=int, default=256 * 1024)
    p.add_argument("--drain-timeout", type=float, default=5.0)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING, filename=a.log,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(a))
    else:
        uvloop.run(main(a))
