"""workers=N: N processes on one port, no sticky load balancer, no external bus.

The app (tests/interop/workers_app.py) is started in a subprocess through
the command line (``python -m fastsio serve workers_app:io --workers N``;
one test goes through ``io.run(workers=N)`` in a script); it inherits
FASTSIO_NO_EXTENSIONS, so both modes are covered. Every answer carries the pid of the worker that gave it, so a test
cannot pass on one worker by accident: each asserts the clients were spread
over all N workers. The tests that only connect clients and broadcast share
one cluster per worker count (``shared_workers``); those that count every
socket, kill or stop workers, or leave raw sessions behind start their own.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Optional, Union

import orjson
import pytest

from fastsio._impl import eio_codec

from conftest import NODE_MODULES, PEERS, RunNode, _another_port, _node_binary
from raw import RawConn, build_request

APP = Path(__file__).resolve().parent / "workers_app.py"
ROOT = Path(__file__).resolve().parent.parent.parent


class Served:
    """A running primary with its workers; stdout/stderr collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, count: int) -> None:
        self.proc = proc
        self.port = port
        self.count = count
        self.out: list[str] = []
        self.err: list[str] = []
        self._tasks = [asyncio.ensure_future(self._pump(proc.stdout, self.out)),
                       asyncio.ensure_future(self._pump(proc.stderr, self.err))]

    async def _pump(self, stream: Any, into: list[str]) -> None:
        while True:
            line = await stream.readline()
            if not line:
                return
            into.append(line.decode("utf-8", "replace").rstrip("\n"))

    def stderr(self) -> str:
        return "\n".join(self.err)

    async def wait_stderr(self, text: str, timeout: float = 20, start: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.err[start:]):
            if self.proc.returncode is not None or time.monotonic() > deadline:
                await asyncio.sleep(0.2)
                pytest.fail(f"no {text!r} from the primary (exit {self.proc.returncode}):\n{self.stderr()}")
            await asyncio.sleep(0.02)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> Optional[int]:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                pytest.fail(f"the primary did not stop in {timeout}s:\n{self.stderr()}")
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return self.proc.returncode


def _serve_command(port: int, count: int, app: str = "workers_app:io",
                   extra_env: Optional[dict[str, str]] = None) -> tuple[list[str], dict[str, str]]:
    """``python -m fastsio serve APP --workers N`` (run in workers_app.py's folder) and its environment."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "fastsio", "serve", app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(count)]
    return argv, env


async def start(port: int, count: int, app: str = "workers_app:io", extra_env: Optional[dict[str, str]] = None) -> Served:
    """``python -m fastsio serve workers_app:io --workers N``: the real command line, in a subprocess."""
    argv, env = _serve_command(port, count, app, extra_env)
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=str(APP.parent), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    served = Served(proc, port, count)
    try:
        await served.wait_stderr(f"all {count} workers ready")
    except BaseException:
        # a primary that did not come up must not outlive the test (its workers follow it)
        await served.stop(signal.SIGKILL if proc.returncode is None else signal.SIGTERM, timeout=5)
        raise
    return served


@pytest.fixture
async def workers(free_port: int) -> AsyncIterator[Any]:
    servers: list[Served] = []

    async def run(count: int) -> Served:
        s = await start(free_port, count)
        servers.append(s)
        return s

    yield run
    for s in servers:
        await s.stop()


class SharedServed:
    """A primary with its workers, started outside any event loop so that the tests of this
    module that leave the cluster as they found it (they only connect clients, which their
    driver disconnects, and broadcast) share one per worker count: ``port``, ``count``."""

    def __init__(self, count: int) -> None:
        self.port = _another_port()
        self.count = count
        argv, env = _serve_command(self.port, count)
        self.proc = subprocess.Popen(argv, cwd=str(APP.parent), env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.err: list[str] = []
        self._ready = threading.Event()
        self._pump = threading.Thread(target=self._read_stderr, daemon=True)
        self._pump.start()
        if not self._ready.wait(20) or self.proc.poll() is not None:
            self.stop()
            pytest.fail(f"the primary did not get all {count} workers ready (exit {self.proc.returncode}):\n"
                        + "\n".join(self.err))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw_line in self.proc.stderr:
            line = raw_line.decode("utf-8", "replace").rstrip("\n")
            self.err.append(line)
            if f"all {self.count} workers ready" in line:
                self._ready.set()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(5)


AnyServed = Union[Served, SharedServed]
Workers = Callable[[int], Awaitable[AnyServed]]


@pytest.fixture(scope="module")
def shared_workers() -> Iterator[Workers]:
    """``served = await shared_workers(count)``: this module's cluster of ``count`` workers, started
    at its first use and stopped after the module's last test (a dead one is started again)."""
    clusters: dict[int, SharedServed] = {}

    async def get(count: int) -> SharedServed:
        served = clusters.get(count)
        if served is None or not served.alive():
            served = clusters[count] = SharedServed(count)
        return served

    yield get
    for served in clusters.values():
        served.stop()


def clients_for(count: int) -> int:
    """Enough clients that the kernel's hash leaves no worker without one (p < 1e-4)."""
    return 16 if count <= 2 else 40


def spread(pids: list[int], count: int) -> None:
    """Every worker served at least one of the clients."""
    assert len(set(pids)) == count, f"clients were served by {len(set(pids))} workers, not {count}: {pids}"


@pytest.mark.parametrize("count", [2, 4])
@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
async def test_clients_spread_over_workers_and_stay_with_theirs(shared_workers: Workers, run_node: RunNode,
                                                                count: int, mode: str) -> None:
    served = await shared_workers(count)
    run = (await run_node("workers_clients.mjs", "scenario=spread", f"port={served.port}", f"mode={mode}",
                          f"n={clients_for(count)}", timeout=60)).check()
    seen = run.one("clients")
    spread(seen["pids"], count)
    # every later answer to a client comes from the worker that served it first, upgrade included
    for again in seen["again"]:
        assert again == seen["pids"]
    assert seen["after"] == seen["pids"]
    assert set(seen["transports"]) == {"polling" if mode == "polling" else "websocket"}


@pytest.mark.parametrize("count", [2, 4])
async def test_one_keep_alive_connection_carries_sessions_of_every_worker(shared_workers: Workers,
                                                                          run_node: RunNode, count: int) -> None:
    served = await shared_workers(count)
    run = (await run_node("workers_clients.mjs", "scenario=keepalive", f"port={served.port}",
                          f"n={clients_for(count)}",
                          timeout=40)).check()
    check_keepalive(run.one("keepalive")["results"], count)


def check_keepalive(results: list[dict[str, Any]], count: int) -> None:
    """Every request on the one connection was answered by its session's worker, all workers seen."""
    ports = {step["localPort"] for r in results for step in r["steps"]}
    assert len(ports) == 1, f"the agent used {len(ports)} connections"
    pid_of: dict[str, int] = {}
    for r in results:
        steps = r["steps"]
        assert all(step["status"] == 200 for step in steps), steps
        if r["round"] == 0:
            assert steps[0]["body"] == "ok" and steps[1]["body"].startswith("40{")
        assert steps[-2]["body"] == "ok"
        answer = steps[-1]["body"]
        assert answer.startswith(f"43{r['round']}["), answer
        pid = json.loads(answer[3:])[0]
        assert pid_of.setdefault(r["sid"], pid) == pid
    spread(list(pid_of.values()), count)


async def test_a_custom_generate_id_works_with_workers(free_port: int, run_node: RunNode) -> None:
    # the app sets io.engine.generate_id; each worker puts two characters naming it in front
    served = await start(free_port, 2, extra_env={"FASTSIO_TEST_CUSTOM_IDS": "1"})
    try:
        run = (await run_node("workers_clients.mjs", "scenario=keepalive", f"port={served.port}", "n=16",
                              timeout=40)).check()
        results = run.one("keepalive")["results"]
        for r in results:
            assert len(r["sid"]) == 19 and r["sid"][2] == "u", r["sid"]
        check_keepalive(results, 2)
        run = (await run_node("workers_clients.mjs", "scenario=spread", f"port={served.port}", "mode=upgrade",
                              "n=16", timeout=60)).check()
        seen = run.one("clients")
        spread(seen["pids"], 2)
        assert seen["again"] == [seen["pids"], seen["pids"]] and seen["after"] == seen["pids"]
    finally:
        await served.stop()


def _q(sid: str, eio: int = 4) -> str:
    return f"/socket.io/?EIO={eio}&transport=polling&sid={sid}"


def _post(sid: str, body: str, eio: int = 4) -> bytes:
    raw = body.encode()
    if eio == 3:
        raw = f"{len(body)}:{body}".encode()
    return build_request("POST", _q(sid, eio), {"Content-Type": "text/plain;charset=UTF-8"}, raw)


async def _handshakes(port: int, k: int, eio: int) -> list[str]:
    sids = []
    for _ in range(k):
        conn = await RawConn.connect(port)
        resp = await conn.request("GET", f"/socket.io/?EIO={eio}&transport=polling")
        await conn.close()
        assert resp.status == 200, resp
        text = resp.body.decode()
        sids.append(orjson.loads(text[text.index("{"):text.rindex("}") + 1])["sid"])
    return sids


@pytest.mark.parametrize("eio", [3, 4])
async def test_pipelined_requests_for_sessions_of_different_workers(workers: Any, eio: int) -> None:
    served = await workers(2)
    sids = await _handshakes(served.port, 16, eio)
    conn = await RawConn.connect(served.port)
    try:
        if eio == 4:
            # connect the namespace: POST 40, then the GET that returns the CONNECT answer
            for sid in sids:
                await conn.send(_post(sid, "40"))
                assert (await conn.read_response()).body == b"ok"
                resp = await conn.request("GET", _q(sid))
                assert resp.status == 200 and resp.body.startswith(b"40{"), resp
        else:
            # EIO3 (socket.io v2): "/" is joined at once; the first poll holds "40"
            for sid in sids:
                resp = await conn.request("GET", _q(sid, 3))
                assert resp.status == 200 and b"40" in resp.body, resp
        # now everything at once, pipelined: for every session a POST then a GET, in one write
        blob = b"".join(_post(sid, '421["pid"]', eio) + build_request("GET", _q(sid, eio)) for sid in sids)
        await conn.send(blob)
        pids = []
        for sid in sids:
            posted = await conn.read_response(timeout=10)
            assert posted.status == 200 and posted.body == b"ok", posted
            got = await conn.read_response(timeout=10)
            assert got.status == 200, got
            text = got.body.decode()
            assert "431[" in text, text
            pids.append(json.loads(text[text.index("431[") + 3:].split("\x1e")[0].rstrip("]") + "]")[0])
    finally:
        await conn.close()
    spread(pids, 2)


async def test_sigterm_closes_every_worker_gracefully(free_port: int) -> None:
    served = await start(free_port, 2)
    node = await _stream_node("scenario=resilient", f"port={free_port}", "mode=websocket", "n=16", "expect=stop")
    try:
        ready = await node.wait("ready")
        spread(ready["pids"], 2)
        code = await served.stop(signal.SIGTERM)
        assert code == 0, served.stderr()
        stopped = await node.wait("stopped")
        # as with Node's io.close(): the server ends each session, the client sees its transport close
        assert all(d == ["transport close"] for d in stopped["disconnects"]), stopped
        lines = [line for line in served.out if line.startswith("disconnect ")]
        assert len(lines) == 16 and all(line.endswith("server shutting down") for line in lines), served.out
        assert {int(line.split()[1]) for line in lines} == set(ready["pids"])
    finally:
        await node.close()
        await served.stop()


async def test_a_killed_worker_is_restarted_and_its_clients_come_back(workers: Any, run_node: RunNode) -> None:
    served = await workers(2)
    node = await _stream_node("scenario=resilient", f"port={served.port}", "mode=websocket", "n=16")
    try:
        ready = await node.wait("ready")
        spread(ready["pids"], 2)
        victim = ready["pids"][0]
        mark = len(served.err)
        os.kill(victim, signal.SIGKILL)
        await served.wait_stderr("restarting", start=mark)
        back = await node.wait("back", timeout=30)
        # every client answers again, none from the dead worker; the others never left
        assert victim not in back["later"] and len(back["later"]) == 16, back
        for i, pid in enumerate(ready["pids"]):
            assert bool(back["disconnects"][i]) == (pid == victim), back
            if pid != victim:
                assert back["later"][i] == pid
        # the successor serves (new clients spread over both workers again) and is on the bus
        survivor = next(p for p in ready["pids"] if p != victim)
        await _all_counted(served, run_node)
        run = (await run_node("workers_clients.mjs", "scenario=counts", f"port={served.port}", "n=16",
                              timeout=30)).check()
        pids = set(run.one("counts")["pids"])
        assert len(pids) == 2 and survivor in pids and victim not in pids
    finally:
        await node.close()


async def test_workers_stop_when_their_primary_is_killed(workers: Any, run_node: RunNode) -> None:
    served = await workers(2)
    run = (await run_node("workers_clients.mjs", "scenario=counts", f"port={served.port}", "n=16",
                          timeout=30)).check()
    pids = set(run.one("counts")["pids"])
    spread(list(pids), 2)
    served.proc.kill()  # SIGKILL: the primary cannot tell anybody
    await served.proc.wait()
    deadline = time.monotonic() + 20
    while any(os.path.exists(f"/proc/{pid}") and "zombie" not in _state(pid) for pid in pids):
        assert time.monotonic() < deadline, f"workers {pids} outlived their primary"
        await asyncio.sleep(0.05)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((line for line in f if line.startswith("State:")), "")
    except OSError:
        return "zombie"


BAD_APP = '''
import sys
import fastsio
io = fastsio.Server()
import fastsio_no_such_module_here
io.run(port=int(sys.argv[1]), host="127.0.0.1", workers=int(sys.argv[2]))
'''


async def test_workers_failing_at_start_stop_the_primary_with_their_error(free_port: int, tmp_path: Path) -> None:
    script = tmp_path / "bad_app.py"
    # the import fails in the workers only: the primary passes it once it is told it is a worker...
    script.write_text(BAD_APP.replace("import fastsio_no_such_module_here",
                                      "import os\nif os.environ.get('FASTSIO_WORKER'):\n"
                                      "    import fastsio_no_such_module_here"))
    began = time.monotonic()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script), str(free_port), "2", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1, err.decode()
    text = err.decode()
    assert "while starting: ModuleNotFoundError: No module named 'fastsio_no_such_module_here'" in text, text
    assert "restarting" not in text
    assert time.monotonic() - began < 20


class _StreamNode:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            self.raw.append(line.decode())
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                pass

    async def wait(self, event: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if line.get("event") == event:
                    return line
                if line.get("event") in ("fail", "timeout"):
                    pytest.fail(f"driver: {line}")
            if time.monotonic() > deadline or (self._task.done() and not any(
                    line.get("event") == event for line in self.lines)):
                err = b""
                if self.proc.stderr is not None and self._task.done():
                    err = await self.proc.stderr.read()
                pytest.fail(f"no {event!r} from the driver: {self.raw} {err.decode()[-2000:]}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._task.cancel()


async def _stream_node(*args: str) -> _StreamNode:
    node = _node_binary()
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    env.pop("NODE_OPTIONS", None)
    proc = await asyncio.create_subprocess_exec(node, str(PEERS / "workers_clients.mjs"), *args, cwd=str(PEERS),
                                                env=env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return _StreamNode(proc)


async def _all_counted(served: AnyServed, run_node: RunNode) -> None:
    """Waits until every worker's adapter counts all N servers (heartbeats went round)."""
    deadline = time.monotonic() + 20
    while True:
        run = (await run_node("workers_clients.mjs", "scenario=counts", f"port={served.port}",
                              f"n={clients_for(served.count)}", timeout=30)).check()
        counts = run.one("counts")
        if len(set(counts["pids"])) == served.count and all(c == served.count for c in counts["counts"]):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the workers do not all see each other: {counts}")
        await asyncio.sleep(0.2)


async def _across_workers(workers: Workers, run_node: RunNode, count: int, scenario: str,
                          mode: str = "websocket") -> dict[str, Any]:
    """``count`` workers that all see each other, then one run of ``scenario`` with
    ``clients_for(count)`` clients spread over every worker: the scenario's line."""
    served = await workers(count)
    await _all_counted(served, run_node)
    run = (await run_node("workers_clients.mjs", f"scenario={scenario}", f"port={served.port}", f"mode={mode}",
                          f"n={clients_for(count)}", timeout=40)).check()
    seen = run.one(scenario)
    spread(seen["pids"], count)
    return seen


@pytest.mark.parametrize("count", [2, 4])
@pytest.mark.parametrize("mode", ["polling", "websocket"])
async def test_a_broadcast_reaches_every_client_on_every_worker_once(shared_workers: Workers, run_node: RunNode,
                                                                     count: int, mode: str) -> None:
    # other clients on the shared cluster would get the broadcasts too: only these clients' inboxes count
    seen = await _across_workers(shared_workers, run_node, count, "broadcast", mode)
    senders = [0, clients_for(count) - 1]
    for i, got in enumerate(seen["got"]):
        # exactly once each, with the pid of the worker that broadcast it (broadcasts of
        # different workers have no defined order between them)
        assert sorted(got) == sorted([f"from-{k}", seen["pids"][k]] for k in senders), (i, got)


async def test_rooms_and_except_rooms_across_workers(shared_workers: Workers, run_node: RunNode) -> None:
    seen = await _across_workers(shared_workers, run_node, 4, "rooms")
    for i, got in enumerate(seen["got"]):
        odd, three = i % 2 == 1, i % 3 == 0
        want = []
        if odd:
            want.append("odd")
        if not odd and not three:
            want.append("even-not-three")
        if not odd:
            want.append("not-odd")
        if three or odd:
            want.append("three-or-odd")
        assert got == want, (i, got, want)


# this test and the next count every socket of the cluster (acks, fetch_sockets, kick): a cluster of their own
async def test_acks_fetch_sockets_count_and_server_side_emit_across_workers(workers: Any, run_node: RunNode) -> None:
    seen = await _across_workers(workers, run_node, 4, "cluster")
    n = clients_for(4)
    # broadcast acks: every client's answer, wherever it lives
    assert seen["acks"] == sorted(f"c{i}" for i in range(n))
    # fetch_sockets: every client, with its data (the pid of its own worker) and rooms
    fetched = seen["fetched"]
    assert len(fetched) == n
    by_name = {row[1]: row for row in fetched}
    for i in range(n):
        _sid, name, pid, rooms = by_name[f"c{i}"]
        assert pid == seen["pids"][i]
        assert f"r{i % 3}" in rooms
    assert seen["count"] == 4
    # server_side_emit with an ack: every OTHER worker answers with its pid
    assert len(seen["sse"]) == 3 and set(seen["sse"]) | {seen["pids"][2]} == set(seen["pids"])


async def test_disconnect_sockets_and_sockets_join_across_workers(workers: Any, run_node: RunNode) -> None:
    seen = await _across_workers(workers, run_node, 2, "kick")
    n = clients_for(2)
    assert all("everyone" in row[3] for row in seen["fetched"]) and len(seen["fetched"]) == n
    for i, reason in enumerate(seen["reasons"]):
        assert reason == ("io server disconnect" if i % 2 else None), (i, reason)


async def test_the_docs_example_serves_with_two_workers(free_port: int, tmp_path: Path) -> None:
    import re

    import socketio

    text = (ROOT / "docs" / "workers.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    script = tmp_path / "chat.py"
    script.write_text(code.group(1))
    served = await _serve_script(script, free_port, env={"PORT": str(free_port)})
    clients: list[Any] = []
    try:
        got: list[list[Any]] = []
        for _ in range(clients_for(2)):
            c = socketio.AsyncClient(reconnection=False)
            inbox: list[Any] = []
            c.on("chat", lambda *a, inbox=inbox: inbox.append(list(a)))
            await c.connect(f"http://127.0.0.1:{free_port}", transports=["websocket"])
            clients.append(c)
            got.append(inbox)
        pids = [await c.call("chat", f"hi {i}", timeout=10) for i, c in enumerate(clients)]
        spread(pids, 2)
        await _wait(lambda: all(len(inbox) == len(clients) for inbox in got), 10)
        for inbox in got:
            # each exactly once (the order of broadcasts from different workers is not defined)
            assert sorted(inbox) == sorted([f"hi {i}", pid] for i, pid in enumerate(pids))
    finally:
        for c in clients:
            await c.disconnect()
        assert await served.stop() == 0


async def _serve_script(script: Path, port: int, *args: str, env: Optional[dict[str, str]] = None) -> Served:
    """``python SCRIPT ARGS`` (an app that calls ``io.run(workers=2)``) in its folder, once its
    two workers are ready."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script), *args, cwd=str(script.parent),
                                                env=full_env, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    served = Served(proc, port, 2)
    try:
        await served.wait_stderr("all 2 workers ready")
    except BaseException:
        await served.stop(signal.SIGKILL if proc.returncode is None else signal.SIGTERM, timeout=5)
        raise
    return served


async def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.02)


ASGI_APP = '''
import os
import sys

import fastsio

io = fastsio.Server()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})


io.run(port=int(sys.argv[1]), host="127.0.0.1", app=app, workers=2)
'''


async def test_an_asgi_app_is_served_by_every_worker(free_port: int, tmp_path: Path) -> None:
    script = tmp_path / "asgi_app.py"
    script.write_text(ASGI_APP)
    served = await _serve_script(script, free_port, str(free_port))
    try:
        pids = []
        for _ in range(clients_for(2)):
            conn = await RawConn.connect(free_port)
            try:
                resp = await conn.request("GET", "/hello")
            finally:
                await conn.close()
            assert resp.status == 200, resp
            pids.append(int(resp.body))
        spread(pids, 2)
        # the Socket.IO path is still the server's
        sids = await _handshakes(free_port, 2, 4)
        assert all(len(sid) == 20 for sid in sids)
    finally:
        assert await served.stop() == 0
